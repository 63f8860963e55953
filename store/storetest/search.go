package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
)

// searchFixture is a small population whose search answers are worked out
// by hand in the tables below.
var searchFixture = []store.Write{
	put("Patient", "p1", `{"resourceType":"Patient","name":[{"family":"Müller","given":["Anna"]}],"birthDate":"1970-05-06","gender":"female",
		"identifier":[{"system":"urn:mrn","value":"100"}],"generalPractitioner":[{"reference":"Practitioner/d1"}],"managingOrganization":{"reference":"Organization/org1"}}`),
	put("Patient", "p2", `{"resourceType":"Patient","name":[{"family":"Muller","given":["Ben"]}],"birthDate":"1970","gender":"male",
		"identifier":[{"system":"urn:mrn","value":"200"}],"generalPractitioner":[{"reference":"Practitioner/d2"}]}`),
	put("Patient", "p3", `{"resourceType":"Patient","name":[{"family":"Smith","given":["José"]}],"birthDate":"1985-12-31","gender":"female",
		"identifier":[{"system":"urn:other","value":"100"}]}`),
	put("Patient", "p4", `{"resourceType":"Patient","name":[{"family":"Mullins","given":["Carla"]}],"birthDate":"2000-01-01",
		"generalPractitioner":[{"reference":"Organization/org1"}]}`),
	put("Observation", "o1", `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p1"},
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c"}]},"effectiveDateTime":"2020-03-01T10:00:00Z",
		"valueQuantity":{"value":7.5,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`),
	put("Observation", "o2", `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p1"},
		"code":{"coding":[{"system":"http://loinc.org","code":"2345-7"}]},"effectiveDateTime":"2020-03-01",
		"valueQuantity":{"value":120,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`),
	put("Observation", "o3", `{"resourceType":"Observation","status":"amended","subject":{"reference":"Patient/p2"},
		"code":{"coding":[{"system":"http://snomed.info/sct","code":"4548-4"}]},"effectivePeriod":{"start":"2020-02-15","end":"2020-03-15"}}`),
	put("Observation", "o4", `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p3"},
		"code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"effectiveDateTime":"2020-03-31T23:30:00-05:00"}`),
	put("Observation", "o5", `{"resourceType":"Observation","status":"preliminary","subject":{"reference":"Patient/p4"},
		"code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"effectiveDateTime":"2021"}`),
	put("Observation", "o6", `{"resourceType":"Observation","status":"registered","subject":{"reference":"Group/g1"},
		"code":{"coding":[{"code":"local"}]}}`),
	put("Group", "g1", `{"resourceType":"Group","type":"person","actual":true,"name":"Attributed to Org 1",
		"identifier":[{"system":"urn:atr","value":"contract-1"}],
		"characteristic":[{"code":{"coding":[{"system":"urn:c","code":"attributed-to"}]},"valueCodeableConcept":{"coding":[{"system":"urn:org","code":"org1"}]},"exclude":false},
		                  {"code":{"coding":[{"system":"urn:c","code":"program"}]},"valueCodeableConcept":{"coding":[{"system":"urn:p","code":"aco"}]},"exclude":false}],
		"member":[{"entity":{"reference":"Patient/p1"}},{"entity":{"reference":"Patient/p2"}}]}`),
	put("Group", "g2", `{"resourceType":"Group","type":"person","actual":true,"name":"Attributed to Org 2",
		"characteristic":[{"code":{"coding":[{"system":"urn:c","code":"attributed-to"}]},"valueCodeableConcept":{"coding":[{"system":"urn:org","code":"org2"}]},"exclude":false},
		                  {"code":{"coding":[{"system":"urn:c","code":"program"}]},"valueCodeableConcept":{"coding":[{"system":"urn:org","code":"org1"}]},"exclude":false}],
		"member":[{"entity":{"reference":"Patient/p3"}}]}`),
	put("Coverage", "cov1", `{"resourceType":"Coverage","status":"active","type":{"coding":[{"system":"urn:t","code":"HMO"}]},
		"beneficiary":{"reference":"Patient/p1"},"subscriber":{"reference":"Patient/p2"},"payor":[{"reference":"Organization/payer1"}],"period":{"start":"2020-01-01","end":"2020-12-31"}}`),
	put("ExplanationOfBenefit", "eob1", `{"resourceType":"ExplanationOfBenefit","status":"active","patient":{"reference":"Patient/p1"},
		"provider":{"reference":"Practitioner/d1"},"created":"2020-05-05T12:00:00Z","type":{"coding":[{"system":"urn:ct","code":"professional"}]}}`),
	put("Measure", "m1", `{"resourceType":"Measure","url":"http://example.org/Measure/cms165","version":"1.0.0","name":"CMS165","status":"active"}`),
}

// query parses "a=1&b:mod=x,y" into Params (repeated names AND-ed).
func query(t *testing.T, typ, raw string) store.Query {
	t.Helper()
	q := store.Query{Type: typ, Count: 100}
	for _, part := range strings.Split(raw, "&") {
		name, val, ok := strings.Cut(part, "=")
		require.True(t, ok, part)
		val, err := url.QueryUnescape(val)
		require.NoError(t, err)
		n, mod, _ := strings.Cut(name, ":")
		q.Params = append(q.Params, store.Param{Name: n, Modifier: mod, Values: strings.Split(val, ",")})
	}
	return q
}

func ids(res *store.SearchResult) []string {
	out := []string{}
	for _, r := range res.Resources {
		out = append(out, r.ID)
	}
	return out
}

func testSearch(t *testing.T, st store.Store) {
	ctx := context.Background()
	for _, w := range searchFixture { // one commit each: distinct lastUpdated
		commit(t, st, w)
	}
	tests := []struct {
		typ, q string
		want   []string
	}{
		// string: case- and accent-insensitive prefix, :exact, :contains
		{"Patient", "family=mul", []string{"p1", "p2", "p4"}},
		{"Patient", "family=MÜLLER", []string{"p1", "p2"}},
		{"Patient", "family:exact=Muller", []string{"p2"}},
		{"Patient", "family:exact=muller", []string{}},
		{"Patient", "family:contains=LL", []string{"p1", "p2", "p4"}},
		{"Patient", "family:contains=mit", []string{"p3"}},
		{"Patient", "name=jose", []string{"p3"}},
		{"Patient", "given=ann", []string{"p1"}},
		// token
		{"Patient", "gender=female", []string{"p1", "p3"}},
		{"Patient", "gender:not=female", []string{"p2", "p4"}},
		{"Patient", "gender=http://hl7.org/fhir/administrative-gender|male", []string{"p2"}},
		{"Patient", "gender=http://hl7.org/fhir/administrative-gender|", []string{"p1", "p2", "p3"}},
		{"Patient", "gender=|male", []string{}},
		{"Patient", "gender:missing=true", []string{"p4"}},
		{"Patient", "gender:missing=false", []string{"p1", "p2", "p3"}},
		{"Patient", "identifier=100", []string{"p1", "p3"}},
		{"Patient", "identifier=urn:mrn|100", []string{"p1"}},
		{"Patient", "identifier=urn:mrn|", []string{"p1", "p2"}},
		{"Patient", "identifier=|100", []string{}},
		{"Patient", "_id=p2,p3", []string{"p2", "p3"}},
		// date ranges and prefixes (R4 search §3.1.1.4.2)
		{"Patient", "birthdate=1970", []string{"p1", "p2"}},
		{"Patient", "birthdate=1970-05", []string{"p1"}},
		{"Patient", "birthdate=ge1985", []string{"p3", "p4"}},
		{"Patient", "birthdate=gt1985-12-31", []string{"p4"}},
		{"Patient", "birthdate=lt1970-05-06", []string{"p2"}},
		{"Patient", "birthdate=le1970-05-06", []string{"p1", "p2"}},
		{"Patient", "birthdate=sa1970-06", []string{"p3", "p4"}},
		{"Patient", "birthdate=eb1970-06", []string{"p1"}},
		{"Patient", "birthdate=ne1970", []string{"p3", "p4"}},
		{"Patient", "birthdate=1970,2000", []string{"p1", "p2", "p4"}},
		{"Patient", "birthdate=ge1970&birthdate=lt1986", []string{"p1", "p2", "p3"}},
		// reference forms
		{"Patient", "general-practitioner=Practitioner/d1", []string{"p1"}},
		{"Patient", "general-practitioner=d2", []string{"p2"}},
		{"Patient", "general-practitioner=Organization/org1", []string{"p4"}},
		{"Patient", "general-practitioner=http://example.org/fhir/Practitioner/d1", []string{"p1"}},
		{"Patient", "general-practitioner:Practitioner=d1", []string{"p1"}},
		{"Patient", "organization=org1", []string{"p1"}},
		{"Patient", "organization:missing=true", []string{"p2", "p3", "p4"}},
		// Observation
		{"Observation", "code=4548-4", []string{"o1", "o3", "o4", "o5"}},
		{"Observation", "code=http://loinc.org|4548-4", []string{"o1", "o4", "o5"}},
		{"Observation", "code=http://snomed.info/sct|", []string{"o3"}},
		{"Observation", "code=|local", []string{"o6"}},
		{"Observation", "code=http://loinc.org|4548-4&status=final", []string{"o1", "o4"}},
		{"Observation", "code:text=hemoglobin", []string{"o1"}},
		{"Observation", "patient=p1", []string{"o1", "o2"}},
		{"Observation", "subject=Patient/p1", []string{"o1", "o2"}},
		{"Observation", "subject=Group/g1", []string{"o6"}},
		{"Observation", "patient=Patient/p2,Patient/p4", []string{"o3", "o5"}},
		{"Observation", "date=2020-03-01", []string{"o1", "o2"}},
		{"Observation", "date=2020-03", []string{"o1", "o2"}},
		{"Observation", "date=2020-04-01", []string{"o4"}},
		{"Observation", "date=2020-03-31", []string{}},
		{"Observation", "date=lt2020-03-01", []string{"o3"}},
		{"Observation", "date=ge2020-03-15", []string{"o4", "o5"}},
		{"Observation", "date=gt2020-03-14", []string{"o3", "o4", "o5"}},
		{"Observation", "date=sa2020-03-01", []string{"o4", "o5"}},
		{"Observation", "date=eb2020-03-01", []string{}},
		{"Observation", "date=eb2020-03-17", []string{"o1", "o2", "o3"}},
		{"Observation", "date=eb2020-03-16", []string{"o1", "o2", "o3"}},
		{"Observation", "date=eb2020-03-15", []string{"o1", "o2"}},
		{"Observation", "date:missing=true", []string{"o6"}},
		{"Observation", "date=2020-03-01T10:00:00Z", []string{"o1"}},
		{"Observation", "date=2020-03-01T05:00:00-05:00", []string{"o1"}},
		{"Observation", "date=2020-03-01T10:00", []string{"o1"}},
		{"Observation", "category=laboratory", []string{"o1"}},
		{"Observation", "status=final,amended", []string{"o1", "o2", "o3", "o4"}},
		{"Observation", "status=http://hl7.org/fhir/observation-status|final", []string{"o1", "o2", "o4"}},
		{"Observation", "status:not=final", []string{"o3", "o5", "o6"}},
		{"Observation", "status:not=final,amended", []string{"o5", "o6"}},
		// quantity: implied precision, prefixes, units
		{"Observation", "value-quantity=7.5", []string{"o1"}},
		{"Observation", "value-quantity=8", []string{"o1"}},
		{"Observation", "value-quantity=7", []string{}},
		{"Observation", "value-quantity=gt100", []string{"o2"}},
		{"Observation", "value-quantity=lt100|http://unitsofmeasure.org|%25", []string{"o1"}},
		{"Observation", "value-quantity=ge7.5||mg/dL", []string{"o2"}},
		{"Observation", "value-quantity:missing=true", []string{"o3", "o4", "o5", "o6"}},
		// Group: composite characteristic-value pairs within one characteristic
		{"Group", "characteristic-value=attributed-to$org1", []string{"g1"}},
		{"Group", "characteristic-value=urn:c|program$urn:org|org1", []string{"g2"}},
		{"Group", "characteristic-value=attributed-to$org2,program$aco", []string{"g1", "g2"}},
		{"Group", "characteristic=program", []string{"g1", "g2"}},
		{"Group", "member=Patient/p3", []string{"g2"}},
		{"Group", "member=p1", []string{"g1"}},
		{"Group", "name=attributed to org 1", []string{"g1"}},
		{"Group", "identifier=urn:atr|contract-1", []string{"g1"}},
		{"Group", "type=person&actual=true", []string{"g1", "g2"}},
		// Coverage and EOB
		{"Coverage", "beneficiary=Patient/p1", []string{"cov1"}},
		{"Coverage", "patient=p1", []string{"cov1"}},
		{"Coverage", "subscriber=p2", []string{"cov1"}},
		{"Coverage", "payor=Organization/payer1", []string{"cov1"}},
		{"Coverage", "type=HMO", []string{"cov1"}},
		{"ExplanationOfBenefit", "provider=Practitioner/d1&created=2020-05", []string{"eob1"}},
		{"ExplanationOfBenefit", "patient=p1&type=urn:ct|professional", []string{"eob1"}},
		// uri
		{"Measure", "url=http://example.org/Measure/cms165", []string{"m1"}},
		{"Measure", "url:below=http://example.org/Measure", []string{"m1"}},
		{"Measure", "url=http://example.org/Measure", []string{}},
		{"Measure", "version=1.0.0&name=cms", []string{"m1"}},
	}
	for _, tc := range tests {
		t.Run(tc.typ+"?"+tc.q, func(t *testing.T) {
			res, err := st.Search(ctx, query(t, tc.typ, tc.q))
			require.NoError(t, err)
			assert.Equal(t, tc.want, ids(res))
			assert.Empty(t, res.NextCursor)
		})
	}

	t.Run("errors", func(t *testing.T) {
		for _, q := range []string{"nope=1", "birthdate=notadate", "birthdate=2020-02-30", "general-practitioner=Patient/x",
			"gender:exact=x", "gender:missing=perhaps", "family=", "name.family=x"} {
			_, err := st.Search(ctx, query(t, "Patient", q))
			var pe *store.ParamError
			assert.True(t, errors.As(err, &pe), "%s: %v", q, err)
		}
		_, err := st.Search(ctx, store.Query{Type: "Patient", Cursor: "garbage!"})
		var pe *store.ParamError
		assert.True(t, errors.As(err, &pe), "bad cursor: %v", err)
		_, err = st.Search(ctx, store.Query{Type: "Patient", Sort: []store.SortKey{{Param: "nope"}}})
		assert.True(t, errors.As(err, &pe), "bad sort: %v", err)
	})

	t.Run("sort", func(t *testing.T) {
		sorts := []struct {
			key  store.SortKey
			want []string
		}{
			{store.SortKey{Param: "birthdate"}, []string{"p2", "p1", "p3", "p4"}},
			{store.SortKey{Param: "birthdate", Descending: true}, []string{"p4", "p3", "p2", "p1"}},
			{store.SortKey{Param: "family"}, []string{"p1", "p2", "p4", "p3"}},
			{store.SortKey{Param: "gender"}, []string{"p1", "p3", "p2", "p4"}},
			{store.SortKey{Param: "_id", Descending: true}, []string{"p4", "p3", "p2", "p1"}},
			{store.SortKey{Param: "_lastUpdated", Descending: true}, []string{"p4", "p3", "p2", "p1"}},
			{store.SortKey{Param: "_lastUpdated"}, []string{"p1", "p2", "p3", "p4"}},
		}
		for _, s := range sorts {
			res, err := st.Search(ctx, store.Query{Type: "Patient", Sort: []store.SortKey{s.key}})
			require.NoError(t, err)
			assert.Equal(t, s.want, ids(res), "%+v", s.key)
		}
	})

	t.Run("total and filter", func(t *testing.T) {
		q := query(t, "Patient", "family=mul")
		q.Total = true
		res, err := st.Search(ctx, q)
		require.NoError(t, err)
		assert.Equal(t, 3, res.Total)
		q.Filter = func(r *store.Resource) bool { return r.ID != "p2" }
		q.Count = 1
		var got []string
		for {
			res, err = st.Search(ctx, q)
			require.NoError(t, err)
			assert.Equal(t, 2, res.Total)
			got = append(got, ids(res)...)
			if res.NextCursor == "" {
				break
			}
			q.Cursor = res.NextCursor
		}
		assert.Equal(t, []string{"p1", "p4"}, got)
		res, err = st.Search(ctx, store.Query{Type: "Observation", Params: []store.Param{{Name: "code", Values: []string{"4548-4"}}}})
		require.NoError(t, err)
		assert.Equal(t, -1, res.Total, "total only when asked")
	})

	t.Run("deleted and updated resources leave the index", func(t *testing.T) {
		commit(t, st, store.Write{Op: store.OpDelete, Type: "Observation", ID: "o5"},
			put("Observation", "o4", `{"resourceType":"Observation","status":"cancelled","subject":{"reference":"Patient/p3"},"code":{"coding":[{"system":"http://loinc.org","code":"1-8"}]}}`))
		res, err := st.Search(ctx, query(t, "Observation", "code=4548-4"))
		require.NoError(t, err)
		assert.Equal(t, []string{"o1", "o3"}, ids(res))
		res, err = st.Search(ctx, query(t, "Observation", "status=cancelled"))
		require.NoError(t, err)
		assert.Equal(t, []string{"o4"}, ids(res))
	})
}

func testPaging(t *testing.T, st store.Store) {
	ctx := context.Background()
	const n = 230
	var ws []store.Write
	for i := range n {
		ws = append(ws, put("Patient", fmt.Sprintf("p%03d", i),
			fmt.Sprintf(`{"resourceType":"Patient","gender":"other","birthDate":"19%02d-01-01","name":[{"family":"F%d"}]}`, i%100, i%7)))
	}
	commit(t, st, ws...)
	orders := []struct {
		name string
		sort []store.SortKey
	}{
		{"id", nil},
		{"birthdate", []store.SortKey{{Param: "birthdate"}}},
		{"-family", []store.SortKey{{Param: "family", Descending: true}}},
	}
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) {
			q := store.Query{Type: "Patient", Count: 50, Sort: o.sort,
				Params: []store.Param{{Name: "gender", Values: []string{"other"}}}}
			seen := map[string]int{}
			pages := 0
			extra := 0
			for {
				res, err := st.Search(ctx, q)
				require.NoError(t, err)
				require.LessOrEqual(t, len(res.Resources), 50)
				pages++
				for _, r := range res.Resources {
					seen[r.ID]++
				}
				if res.NextCursor == "" {
					break
				}
				q.Cursor = res.NextCursor
				// Writes between pages: new resources, and updates to
				// existing ones that do not change the sort values.
				extra++
				commit(t, st,
					put("Patient", fmt.Sprintf("new-%s-%d", o.name, extra), `{"resourceType":"Patient","gender":"other","birthDate":"1950-06-06","name":[{"family":"F3"}]}`),
					put("Patient", fmt.Sprintf("p%03d", extra*37%n), fmt.Sprintf(`{"resourceType":"Patient","gender":"other","active":true,"birthDate":"19%02d-01-01","name":[{"family":"F%d"}]}`, (extra*37%n)%100, (extra*37%n)%7)))
			}
			assert.GreaterOrEqual(t, pages, 5)
			for i := range n {
				id := fmt.Sprintf("p%03d", i)
				assert.Equal(t, 1, seen[id], "%s seen %d times", id, seen[id])
			}
			for id, c := range seen {
				assert.Equal(t, 1, c, id)
			}
		})
	}
}
