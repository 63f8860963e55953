package interaction

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/validate"
)

func TestRewriteRefs(t *testing.T) {
	alias := map[string]string{"urn:uuid:a": "Patient/1", "urn:oid:1.2": "Organization/9"}
	tests := []struct{ in, want string }{
		{`{"subject":{"reference":"urn:uuid:a"}}`, `{"subject":{"reference":"Patient/1"}}`},
		{`{"a":"urn:uuid:a","b":["urn:oid:1.2","urn:uuid:a"]}`, `{"a":"Patient/1","b":["Organization/9","Patient/1"]}`},
		{`{"text":"see urn:uuid:a"}`, `{"text":"see urn:uuid:a"}`},
		{`{"text":"\"urn:uuid:a\""}`, `{"text":"\"Patient/1\""}`},
		{`{"div":"<div><a href=\"urn:uuid:a\">p</a><img src='urn:oid:1.2'/></div>"}`, `{"div":"<div><a href=\"Patient/1\">p</a><img src='Organization/9'/></div>"}`},
		{`{"text":"see urn:uuid:a here"}`, `{"text":"see urn:uuid:a here"}`},
		{`{"r":"urn:uuid:ab"}`, `{"r":"urn:uuid:ab"}`},
		{`{"r":"urn:uuid:unknown"}`, `{"r":"urn:uuid:unknown"}`},
		{`{"r":"urn:`, `{"r":"urn:`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, string(rewriteRefs([]byte(tt.in), alias)), tt.in)
	}
}

func TestSplitValues(t *testing.T) {
	assert.Equal(t, []string{"a", "b"}, splitValues("a,b"))
	assert.Equal(t, []string{"a,b", "c"}, splitValues(`a\,b,c`))
	assert.Equal(t, []string{"x"}, splitValues("x"))
	assert.Equal(t, []string{"", ""}, splitValues(","))
}

func TestParseETag(t *testing.T) {
	for in, want := range map[string]uint64{`W/"3"`: 3, `"12"`: 12, `7`: 7, ` W/"1" `: 1} {
		v, ok := ParseETag(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, v, in)
	}
	for _, in := range []string{``, `W/"x"`, `"0"`, `-1`, `W/`} {
		_, ok := ParseETag(in)
		assert.False(t, ok, in)
	}
}

func TestParseSearch(t *testing.T) {
	q, err := ParseSearch("Observation", url.Values{
		"subject":     {"Patient/1"},
		"code":        {"http://loinc.org|4548-4,http://loinc.org|17856-6"},
		"date":        {"ge2020", "lt2021"},
		"_count":      {"5000"},
		"_sort":       {"-date,code"},
		"_include":    {"Observation:subject:Patient"},
		"_revinclude": {"Provenance:target"},
	}, false)
	require.NoError(t, err)
	assert.Equal(t, MaxCount, q.Query.Count)
	assert.Len(t, q.Query.Params, 4, "date twice is AND")
	assert.Equal(t, "date", q.Query.Sort[0].Param)
	assert.True(t, q.Query.Sort[0].Descending)
	assert.Equal(t, []Include{{Source: "Observation", Param: "subject", Target: "Patient"}}, q.Includes)
	assert.True(t, q.Query.Total)

	for _, bad := range []url.Values{
		{"nope": {"1"}}, {"_count": {"x"}}, {"_total": {"maybe"}}, {"_include": {"Patient:organization"}},
		{"_include": {"Observation:status"}}, {"subject.name": {"x"}}, {"_has": {"x"}}, {"_sort": {"nope"}},
		{"_summary": {"text"}}, {"subject:Patient.name": {"x"}}, {"_count:exact": {"1"}},
	} {
		_, err := ParseSearch("Observation", bad, false)
		assert.Error(t, err, "%v", bad)
		q, err := ParseSearch("Observation", bad, true)
		if err == nil {
			assert.NotEmpty(t, q.Ignored, "%v", bad)
		}
	}
}

func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{"family=a&_count=2", "_include=Patient:organization&_sort=-birthdate", "a,b=c&_elements=x", "_total=accurate&_cursor=zz"} {
		f.Add("Patient", s)
	}
	f.Fuzz(func(t *testing.T, typ, query string) {
		vals, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		q, err := ParseSearch(typ, vals, false)
		if err == nil && q.Query.Count > MaxCount {
			t.Fatalf("count %d above the maximum", q.Query.Count)
		}
		_, _ = ParseSearch(typ, vals, true)
	})
}

// FuzzParseBundle feeds arbitrary Bundles through parsing and entry
// planning, which must reject or accept without panicking.
func FuzzParseBundle(f *testing.F) {
	v, err := validate.New()
	if err != nil {
		f.Fatal(err)
	}
	s := New(nil, v)
	for _, b := range []string{
		`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`,
		`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient?name=x"}},{"request":{"method":"DELETE","url":"Patient/1"}}]}`,
		`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","id":"a"},"request":{"method":"PUT","url":"Patient?identifier=x|y","ifMatch":"W/\"1\""}}]}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rb, err := s.ParseBundle(body, "http://h/fhir")
		if err != nil {
			requireClientError(t, err)
			return
		}
		for _, e := range rb.Entries {
			if _, err := planEntry(e); err != nil {
				requireClientError(t, err)
			}
		}
	})
}

// requireClientError holds a rejection to the server's promise for bad
// input: a 4xx OperationOutcome that says what is wrong.
func requireClientError(t *testing.T, err error) {
	t.Helper()
	var he *outcome.HTTPError
	require.ErrorAs(t, err, &he)
	assert.GreaterOrEqual(t, he.Status, 400, "%v", err)
	assert.Less(t, he.Status, 500, "%v", err)
	assert.NotEmpty(t, he.Error())
}

func TestRewriteConditionalRefs(t *testing.T) {
	refs := map[string]string{"Patient?identifier=a|1": "Patient/p1"}
	tests := []struct{ in, want string }{
		{`{"subject":{"reference":"Patient?identifier=a|1"}}`, `{"subject":{"reference":"Patient/p1"}}`},
		{`{"subject":{"reference" : "Patient?identifier=a|1"},"x":"Patient?identifier=a|1"}`, `{"subject":{"reference" : "Patient/p1"},"x":"Patient?identifier=a|1"}`},
		{`{"subject":{"reference":"Patient?identifier=a|2"}}`, `{"subject":{"reference":"Patient?identifier=a|2"}}`},
		{`{"subject":{"reference":"Patient/p9"}}`, `{"subject":{"reference":"Patient/p9"}}`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, string(rewriteConditionalRefs([]byte(tt.in), refs)), tt.in)
	}
}
