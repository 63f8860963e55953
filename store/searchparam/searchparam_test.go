package searchparam

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
)

func micro(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi string
		ok     bool
	}{
		{"2020", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", true},
		{"2020-02", "2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z", true},
		{"2020-12", "2020-12-01T00:00:00Z", "2021-01-01T00:00:00Z", true},
		{"2020-02-29", "2020-02-29T00:00:00Z", "2020-03-01T00:00:00Z", true},
		{"2020-03-01T10:00", "2020-03-01T10:00:00Z", "2020-03-01T10:01:00Z", true},
		{"2020-03-01T10:00:05+02:00", "2020-03-01T08:00:05Z", "2020-03-01T08:00:06Z", true},
		{"2020-03-01T10:00:05.25Z", "2020-03-01T10:00:05.25Z", "2020-03-01T10:00:05.26Z", true},
		{"2021-02-29", "", "", false},
		{"20", "", "", false},
		{"2020-13", "", "", false},
		{"2020-01-01T25:00:00Z", "", "", false},
		{"2020-01-01X", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			lo, hi, ok := ParseDate(tc.in)
			require.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, micro(tc.lo), lo)
				assert.Equal(t, micro(tc.hi), hi)
			}
		})
	}
}

func TestFold(t *testing.T) {
	assert.Equal(t, "jose muller", Fold(" José  MÜLLER "))
	assert.Equal(t, "strasse", Fold("Straße"))
	assert.Equal(t, "ae", Fold("Æ"))
	assert.Equal(t, "cafe", Fold("cafe\u0301")) // decomposed accent
}

func TestRegistry(t *testing.T) {
	defs := For("Patient")
	require.NotEmpty(t, defs)
	for i := 1; i < len(defs); i++ {
		assert.Less(t, defs[i-1].Name, defs[i].Name)
	}
	for _, typ := range []string{"Patient", "Observation", "Group", "Coverage"} {
		_, ok := Lookup(typ, "_id")
		assert.True(t, ok, typ)
		_, ok = Lookup(typ, "_lastUpdated")
		assert.True(t, ok, typ)
	}
	d, ok := Lookup("Observation", "date")
	require.True(t, ok)
	assert.Equal(t, Date, d.Type)
	_, ok = Lookup("Observation", "nope")
	assert.False(t, ok)
}

func TestReferenceValues(t *testing.T) {
	body := []byte(`{"resourceType":"Observation","subject":{"reference":"http://x.org/fhir/Patient/p1/_history/3"},"performer":[{"reference":"Practitioner/d1"},{"reference":"#c1"},{"display":"x"}]}`)
	assert.Equal(t, []string{"Patient/p1"}, ReferenceValues("Observation", "subject", body))
	assert.Equal(t, []string{"Patient/p1"}, ReferenceValues("Observation", "patient", body))
	assert.Equal(t, []string{"Practitioner/d1"}, ReferenceValues("Observation", "performer", body))
	assert.Nil(t, ReferenceValues("Observation", "code", body))
}

func TestParseErrors(t *testing.T) {
	tests := []store.Param{
		{Name: "nope", Values: []string{"x"}},
		{Name: "date", Values: []string{"ge2020-13"}},
		{Name: "code", Modifier: "exact", Values: []string{"x"}},
		{Name: "code", Modifier: "missing", Values: []string{"maybe"}},
		{Name: "value-quantity", Values: []string{"abc"}},
		{Name: "subject", Values: []string{""}},
		{Name: "patient", Values: []string{"Group/1"}},
		{Name: "subject", Modifier: "Patient.family", Values: []string{"x"}},
		{Name: "subject", Modifier: "Pa tient", Values: []string{"x"}},
	}
	for _, p := range tests {
		_, err := Parse("Observation", p)
		var pe *store.ParamError
		assert.True(t, errors.As(err, &pe), "%+v: %v", p, err)
	}
}

func TestMatch(t *testing.T) {
	obs := []byte(`{"resourceType":"Observation","id":"o1","status":"final",
	 "code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c"}],"text":"HbA1c"},
	 "subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2020-03-01","end":"2020-03-05"},
	 "valueQuantity":{"value":7.5,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`)
	tests := []struct {
		p    store.Param
		want bool
	}{
		{store.Param{Name: "code", Values: []string{"4548-4"}}, true},
		{store.Param{Name: "code", Values: []string{"http://loinc.org|4548-4"}}, true},
		{store.Param{Name: "code", Values: []string{"http://snomed.info/sct|4548-4"}}, false},
		{store.Param{Name: "code", Values: []string{"|4548-4"}}, false},
		{store.Param{Name: "code", Values: []string{"http://loinc.org|"}}, true},
		{store.Param{Name: "code", Modifier: "not", Values: []string{"4548-4"}}, false},
		{store.Param{Name: "code", Modifier: "not", Values: []string{"1-1"}}, true},
		{store.Param{Name: "code", Modifier: "text", Values: []string{"hemo"}}, true},
		{store.Param{Name: "code", Modifier: "text", Values: []string{"glucose"}}, false},
		{store.Param{Name: "subject", Values: []string{"Patient/p1"}}, true},
		{store.Param{Name: "subject", Values: []string{"p1"}}, true},
		{store.Param{Name: "subject", Modifier: "Patient", Values: []string{"p1"}}, true},
		{store.Param{Name: "patient", Values: []string{"https://h/fhir/Patient/p1"}}, true},
		{store.Param{Name: "subject", Values: []string{"Patient/p2", "Patient/p1"}}, true},
		{store.Param{Name: "date", Values: []string{"2020-03"}}, true},
		{store.Param{Name: "date", Values: []string{"2020-03-01"}}, false},
		{store.Param{Name: "date", Values: []string{"ge2020-03-03"}}, true},
		{store.Param{Name: "date", Values: []string{"gt2020-03-05"}}, false},
		{store.Param{Name: "date", Values: []string{"lt2020-03-01"}}, false},
		{store.Param{Name: "date", Values: []string{"lt2020-03-02"}}, true},
		{store.Param{Name: "date", Values: []string{"sa2020-02-29"}}, true},
		{store.Param{Name: "date", Values: []string{"eb2020-03-06"}}, true},
		{store.Param{Name: "date", Values: []string{"eb2020-03-05"}}, false},
		{store.Param{Name: "date", Values: []string{"ne2020-03"}}, false},
		{store.Param{Name: "value-quantity", Values: []string{"7.5"}}, true},
		{store.Param{Name: "value-quantity", Values: []string{"8"}}, true}, // 8 means [7.5, 8.5)
		{store.Param{Name: "value-quantity", Values: []string{"gt7|http://unitsofmeasure.org|%"}}, true},
		{store.Param{Name: "value-quantity", Values: []string{"gt7||mg"}}, false},
		{store.Param{Name: "encounter", Modifier: "missing", Values: []string{"true"}}, true},
		{store.Param{Name: "subject", Modifier: "missing", Values: []string{"true"}}, false},
		{store.Param{Name: "status", Values: []string{"final"}}, true},
	}
	for _, tc := range tests {
		c, err := Parse("Observation", tc.p)
		require.NoError(t, err, "%+v", tc.p)
		assert.Equal(t, tc.want, c.Match(obs), "%+v", tc.p)
	}
}

func TestTermsAndRangesAgree(t *testing.T) {
	pat := []byte(`{"resourceType":"Patient","id":"p1","name":[{"family":"Müller","given":["Zoë","Ann"]}],"birthDate":"1970-05-06",
	"identifier":[{"system":"urn:mrn","value":"123"}],"generalPractitioner":[{"reference":"Practitioner/d1"}]}`)
	tests := []store.Param{
		{Name: "family", Values: []string{"mul"}},
		{Name: "name", Values: []string{"zoe"}},
		{Name: "given", Modifier: "contains", Values: []string{"nn"}},
		{Name: "identifier", Values: []string{"urn:mrn|123"}},
		{Name: "identifier", Values: []string{"urn:mrn|"}},
		{Name: "birthdate", Values: []string{"1970"}},
		{Name: "birthdate", Values: []string{"ge1970-05-06"}},
		{Name: "birthdate", Values: []string{"le1970-05-06"}},
		{Name: "birthdate", Values: []string{"sa1969"}},
		{Name: "birthdate", Values: []string{"eb1971"}},
		{Name: "general-practitioner", Values: []string{"d1"}},
	}
	for _, p := range tests {
		c, err := Parse("Patient", p)
		require.NoError(t, err)
		require.True(t, c.Match(pat), "%+v", p)
		rs, ok := c.Ranges()
		require.True(t, ok)
		terms := Terms(c.Def, Extract(c.Def, pat))
		hit := false
		for _, r := range rs {
			for _, term := range terms {
				k := term + "\x00p1"
				if k >= r.From && k < r.To && (r.Contains == "" || contains(term, r.Contains)) &&
					(r.Suffix == "" || (len(term) >= len(r.Suffix) && term[len(term)-len(r.Suffix):] == r.Suffix)) {
					hit = true
				}
			}
		}
		assert.True(t, hit, "index ranges %q miss terms %q for %+v", rs, terms, p)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
