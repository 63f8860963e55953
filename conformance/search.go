package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// population maps the labels the search tables use to the ids the server
// assigned, and back.
type population struct {
	run    runID
	ids    map[string]string
	labels map[string]string
}

func newPopulation(run runID) *population {
	return &population{run: run, ids: map[string]string{}, labels: map[string]string{}}
}

func (p *population) add(label, id string) {
	p.ids[label] = id
	p.labels[id] = label
}

// idsOf translates labels to ids.
func (p *population) idsOf(labels ...string) []string {
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		out = append(out, p.ids[l])
	}
	return out
}

// labelsOf translates ids to labels for readable failures; ids the suite did
// not create show as themselves.
func (p *population) labelsOf(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if l, ok := p.labels[id]; ok {
			out = append(out, l)
		} else {
			out = append(out, id)
		}
	}
	return out
}

// name makes a subtest name stable across runs: server-assigned ids in a
// query are replaced by their labels.
func (p *population) name(query string) string {
	for id, label := range p.labels {
		query = strings.ReplaceAll(query, id, "{"+label+"}")
	}
	query = strings.ReplaceAll(query, string(p.run), "{run}")
	return strings.ReplaceAll(query, strings.ToUpper(string(p.run)), "{RUN}")
}

// searchCase is one query with its hand-computed answer.
type searchCase struct {
	query string   // without the scope
	want  []string // labels
}

// searchGroup is a set of queries on one type, each ANDed with a scope that
// restricts it to the resources this run created.
type searchGroup struct {
	name  string
	typ   string
	scope string
	cases []searchCase
}

// runGroups runs every case as its own subtest, following next links.
func runGroups(t *testing.T, c *client, pop *population, groups []searchGroup) {
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(pop.name(tc.query), func(t *testing.T) {
					q := g.typ + "?" + tc.query + "&" + g.scope
					got, _ := c.searchAll(t, q)
					sameSet(t, tc.want, pop.labelsOf(got), "GET %s", q)
				})
			}
		})
	}
}

func checkSearch(t *testing.T, c *client, run runID) {
	pop := newPopulation(run)
	fam := run.family("Srch")
	sys1, sys2 := run.system("mrn"), run.system("ssn")

	// The patient population. Birth dates sit on the year and month
	// boundaries the date cases probe.
	patients := []struct {
		label, family, given, birthDate, gender string
		identifier                              map[string]any
	}{
		{"p1", fam + "berg", "Anna", "2019-12-31", "female", map[string]any{"system": sys1, "value": "A-1"}},
		{"p2", fam + "bergman", "Annabel", "2020-01-01", "female", map[string]any{"system": sys1, "value": "A-2"}},
		{"p3", fam + "olsen", "Bob", "2020-02-29", "male", map[string]any{"system": sys2, "value": "A-1"}},
		{"p4", fam + "olsen", "Bobby", "2020-03-01", "male", map[string]any{"value": "A-1"}},
		{"p5", fam + "BERGSTROM", "Carl", "2020-03-31", "other", map[string]any{"system": sys2, "value": "B-9"}},
		{"p6", fam + "ström", "Dana", "2020-04-01", "unknown", map[string]any{"system": sys1, "value": "B-9"}},
		{"p7", fam + "lund", "Eve", "2020-12-31", "female", nil},
		{"p8", fam + "lund", "Fay", "2021-01-01", "female", nil},
		{"p9", fam + "nobirth", "Gus", "", "male", nil},
	}
	for _, p := range patients {
		body := patient(p.family, p.given)
		body["gender"] = p.gender
		if p.birthDate != "" {
			body["birthDate"] = p.birthDate
		}
		if p.identifier != nil {
			body["identifier"] = []any{p.identifier}
		}
		pop.add(p.label, c.create(t, body).Get("id").String())
	}

	loinc, obsCat := "http://loinc.org", "http://terminology.hl7.org/CodeSystem/observation-category"
	observations := []struct {
		label, subject, status string
		code, category         map[string]any
		effective              map[string]any
	}{
		{"o1", "p1", "final", map[string]any{"system": loinc, "code": "8867-4"}, map[string]any{"system": obsCat, "code": "vital-signs"}, map[string]any{"effectiveDateTime": "2020-03-15T10:00:00Z"}},
		{"o2", "p1", "amended", map[string]any{"system": loinc, "code": "29463-7"}, map[string]any{"system": obsCat, "code": "laboratory"}, map[string]any{"effectiveDateTime": "2020-04-01T00:00:00Z"}},
		{"o3", "p3", "final", map[string]any{"system": loinc, "code": "8867-4"}, map[string]any{"system": obsCat, "code": "vital-signs"}, map[string]any{"effectiveDateTime": "2019-12-31T23:59:59Z"}},
		{"o4", "p3", "preliminary", map[string]any{"code": "8867-4"}, nil, map[string]any{"effectiveDateTime": "2021-06-01"}},
		{"o5", "p2", "cancelled", map[string]any{"system": "http://snomed.info/sct", "code": "8867-4"}, nil, map[string]any{"effectivePeriod": map[string]any{"start": "2020-06-01", "end": "2020-06-30"}}},
		// o6 belongs to p4, outside the main Observation scope: its
		// offset time is 2020-04-01T04:30:00Z.
		{"o6", "p4", "final", map[string]any{"system": loinc, "code": "8867-4"}, nil, map[string]any{"effectiveDateTime": "2020-03-31T23:30:00-05:00"}},
	}
	for _, o := range observations {
		body := map[string]any{
			"resourceType": "Observation",
			"status":       o.status,
			"code":         map[string]any{"coding": []any{o.code}},
			"subject":      map[string]any{"reference": "Patient/" + pop.ids[o.subject]},
		}
		if o.category != nil {
			body["category"] = []any{map[string]any{"coding": []any{o.category}}}
		}
		for k, v := range o.effective {
			body[k] = v
		}
		pop.add(o.label, c.create(t, body).Get("id").String())
	}

	// Quantities for p5, outside the main Observation scope.
	ucum := "http://unitsofmeasure.org"
	for _, q := range []struct {
		label string
		value any
		code  string
	}{
		{"v1", json.Number("5.4"), "kg"},
		{"v2", json.Number("70"), "kg"},
		{"v3", json.Number("5.4"), "mg"},
		{"v4", json.Number("0.0054"), "kg"},
	} {
		body := minimalResource("Observation", pop.ids["p5"])
		body["valueQuantity"] = map[string]any{"value": q.value, "unit": q.code, "system": ucum, "code": q.code}
		pop.add(q.label, c.create(t, body).Get("id").String())
	}

	encounters := []struct {
		label, subject, status string
		period                 map[string]any
	}{
		{"e1", "p1", "finished", map[string]any{"start": "2020-01-01T08:00:00Z", "end": "2020-01-05T12:00:00Z"}},
		{"e2", "p2", "in-progress", map[string]any{"start": "2020-02-10T09:00:00Z"}},
	}
	for _, e := range encounters {
		body := minimalResource("Encounter", pop.ids[e.subject])
		body["status"] = e.status
		body["period"] = e.period
		pop.add(e.label, c.create(t, body).Get("id").String())
	}

	id := func(label string) string { return pop.ids[label] }
	lower, upper := strings.ToLower(fam), strings.ToUpper(fam)
	groups := []searchGroup{
		{"Patient birthdate", "Patient", "family=" + fam, []searchCase{
			{"birthdate=2020", []string{"p2", "p3", "p4", "p5", "p6", "p7"}},
			{"birthdate=eq2020", []string{"p2", "p3", "p4", "p5", "p6", "p7"}},
			{"birthdate=2020-03", []string{"p4", "p5"}},
			{"birthdate=2020-02-29", []string{"p3"}},
			{"birthdate=lt2020", []string{"p1"}},
			{"birthdate=le2020", []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7"}},
			{"birthdate=gt2020", []string{"p8"}},
			{"birthdate=ge2020", []string{"p2", "p3", "p4", "p5", "p6", "p7", "p8"}},
			{"birthdate=lt2020-03", []string{"p1", "p2", "p3"}},
			{"birthdate=le2020-03", []string{"p1", "p2", "p3", "p4", "p5"}},
			{"birthdate=gt2020-03", []string{"p6", "p7", "p8"}},
			{"birthdate=ge2020-03", []string{"p4", "p5", "p6", "p7", "p8"}},
			{"birthdate=lt2020-03-01", []string{"p1", "p2", "p3"}},
			{"birthdate=gt2020-12-31", []string{"p8"}},
			{"birthdate=le2019-12-31", []string{"p1"}},
			{"birthdate=ge2020-03-01&birthdate=le2020-03-31", []string{"p4", "p5"}},
			{"birthdate=2019-12-31,2021-01-01", []string{"p1", "p8"}},
			{"birthdate=sa2020-03", []string{"p6", "p7", "p8"}},
			{"birthdate=sa2020-12-31", []string{"p8"}},
			{"birthdate=eb2020", []string{"p1"}},
			{"birthdate=eb2020-03-01", []string{"p1", "p2", "p3"}},
			{"birthdate=ne2020&birthdate=ge1900", []string{"p1", "p8"}},
		}},
		{"Patient token", "Patient", "family=" + fam, []searchCase{
			{"identifier=" + url.QueryEscape(sys1+"|A-1"), []string{"p1"}},
			{"identifier=A-1", []string{"p1", "p3", "p4"}},
			{"identifier=" + url.QueryEscape("|A-1"), []string{"p4"}},
			{"identifier=" + url.QueryEscape(sys2+"|"), []string{"p3", "p5"}},
			{"identifier=" + url.QueryEscape(sys1+"|B-9,"+sys2+"|B-9"), []string{"p5", "p6"}},
			{"gender=female", []string{"p1", "p2", "p7", "p8"}},
			{"gender=" + url.QueryEscape("http://hl7.org/fhir/administrative-gender|male"), []string{"p3", "p4", "p9"}},
			{"gender=other,unknown", []string{"p5", "p6"}},
			{"gender=female&birthdate=ge2020", []string{"p2", "p7", "p8"}},
		}},
		{"Patient string", "Patient", "family=" + fam, []searchCase{
			{"family=" + lower + "berg", []string{"p1", "p2", "p5"}},
			{"family=" + upper + "OLS", []string{"p3", "p4"}},
			{"family:exact=" + fam + "berg", []string{"p1"}},
			{"family:exact=" + fam + "Berg", nil},
			{"family=" + fam + "strom", []string{"p6"}},
			{"family:exact=" + url.QueryEscape(fam+"ström"), []string{"p6"}},
			{"family:exact=" + fam + "strom", nil},
			{"given=ann", []string{"p1", "p2"}},
			{"given:exact=Anna", []string{"p1"}},
			{"given=BOB", []string{"p3", "p4"}},
			{"name=anna", []string{"p1", "p2"}},
			{"name=" + fam + "lund", []string{"p7", "p8"}},
		}},
		{"Patient modifiers", "Patient", "family=" + fam, []searchCase{
			{"birthdate:missing=true", []string{"p9"}},
			{"birthdate:missing=false", []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"}},
			{"gender:not=female", []string{"p3", "p4", "p5", "p6", "p9"}},
			{"family:contains=ERGM", []string{"p2"}},
			{"family:contains=trom", []string{"p5", "p6"}},
		}},
		{"Patient _id", "Patient", "family=" + fam, []searchCase{
			{"_id=" + id("p1") + "," + id("p3"), []string{"p1", "p3"}},
			{"_id=" + id("p9"), []string{"p9"}},
		}},
		{"Observation", "Observation", "subject=" + url.QueryEscape(joinRefs("Patient", id("p1"), id("p2"), id("p3"))), []searchCase{
			{"subject=Patient/" + id("p1"), []string{"o1", "o2"}},
			{"patient=" + id("p3"), []string{"o3", "o4"}},
			{"subject=" + url.QueryEscape(c.base+"/Patient/"+id("p1")), []string{"o1", "o2"}},
			{"patient=Patient/" + id("p3"), []string{"o3", "o4"}},
			{"code=" + url.QueryEscape(loinc+"|8867-4"), []string{"o1", "o3"}},
			{"code=8867-4", []string{"o1", "o3", "o4", "o5"}},
			{"code=" + url.QueryEscape("|8867-4"), []string{"o4"}},
			{"code=" + url.QueryEscape(loinc+"|"), []string{"o1", "o2", "o3"}},
			{"status=final", []string{"o1", "o3"}},
			{"status=final,amended", []string{"o1", "o2", "o3"}},
			{"category=vital-signs", []string{"o1", "o3"}},
			{"category=" + url.QueryEscape(obsCat+"|laboratory"), []string{"o2"}},
			{"date=2020-03", []string{"o1"}},
			{"date=2020", []string{"o1", "o2", "o5"}},
			{"date=lt2020", []string{"o3"}},
			{"date=ge2020-04-01", []string{"o2", "o4", "o5"}},
			{"date=lt2020-04-01", []string{"o1", "o3"}},
			{"date=2020-06", []string{"o5"}},
			// eq needs the search range to contain the whole period.
			{"date=2020-06-15", nil},
			{"date=gt2020-06-15", []string{"o4", "o5"}},
			{"date=lt2020-06-15", []string{"o1", "o2", "o3", "o5"}},
			{"date=" + url.QueryEscape("ge2021-06-01T00:00:00Z"), []string{"o4"}},
			{"date=sa2020-05", []string{"o4", "o5"}},
			{"date=eb2020-06-15", []string{"o1", "o2", "o3"}},
			{"date=ne2020", []string{"o3", "o4"}},
			{"code=8867-4&status=final", []string{"o1", "o3"}},
			{"subject=Patient/" + id("p1") + "&code=" + url.QueryEscape(loinc+"|29463-7"), []string{"o2"}},
		}},
		{"Observation time zones", "Observation", "subject=Patient/" + id("p4"), []searchCase{
			{"date=" + url.QueryEscape("ge2020-04-01T00:00:00Z"), []string{"o6"}},
			{"date=" + url.QueryEscape("lt2020-04-01T00:00:00Z"), nil},
			{"date=" + url.QueryEscape("lt2020-03-31T23:45:00-05:00"), []string{"o6"}},
			{"date=" + url.QueryEscape("gt2020-03-31T23:45:00-05:00"), nil},
			{"date=" + url.QueryEscape("2020-04-01T04:30:00Z"), []string{"o6"}},
			{"date=" + url.QueryEscape("2020-04-01T06:30:00+02:00"), []string{"o6"}},
		}},
		{"Observation value-quantity", "Observation", "subject=Patient/" + id("p5"), []searchCase{
			// A value's precision is its range: 5.4 is [5.35, 5.45), 5 is [4.5, 5.5).
			{"value-quantity=5.4", []string{"v1", "v3"}},
			{"value-quantity=5", []string{"v1", "v3"}},
			{"value-quantity=" + url.QueryEscape("5.4|"+ucum+"|kg"), []string{"v1"}},
			{"value-quantity=" + url.QueryEscape("5.4||mg"), []string{"v3"}},
			{"value-quantity=" + url.QueryEscape("gt10|"+ucum+"|kg"), []string{"v2"}},
			{"value-quantity=lt1", []string{"v4"}},
			{"value-quantity=ge5.4", []string{"v1", "v2", "v3"}},
			{"value-quantity=le0.0054", []string{"v4"}},
			{"value-quantity=5.40", []string{"v1", "v3"}},
			{"value-quantity=5.41", nil},
		}},
		{"Encounter", "Encounter", "patient=" + id("p1") + "," + id("p2"), []searchCase{
			{"date=2020-01", []string{"e1"}},
			{"date=ge2020-02", []string{"e2"}},
			{"date=lt2020-02", []string{"e1"}},
			{"status=finished", []string{"e1"}},
			{"subject=Patient/" + id("p2"), []string{"e2"}},
		}},
	}
	runGroups(t, c, pop, groups)

	t.Run("chained parameter is answered correctly or rejected", func(t *testing.T) {
		// Support for chaining is optional; ignoring the chain or reading
		// it as something else is not.
		scope := "&subject=" + url.QueryEscape(joinRefs("Patient", id("p1"), id("p2"), id("p3")))
		for _, q := range []string{
			"subject:Patient.family=" + lower + "berg",
			"subject.family=" + lower + "berg",
			"patient.family=" + lower + "berg",
		} {
			t.Run(pop.name(q), func(t *testing.T) {
				r := c.do(t, http.MethodGet, "Observation?"+q+scope, nil)
				if r.Status == http.StatusOK {
					got, _ := c.searchAll(t, "Observation?"+q+scope)
					sameSet(t, []string{"o1", "o2", "o5"}, pop.labelsOf(got), "chained search %s", q)
					return
				}
				requireOutcome(t, r, http.StatusBadRequest)
			})
		}
	})

	t.Run("_include", func(t *testing.T) {
		cases := []struct {
			query        string
			want         []string
			wantIncludes []string
		}{
			{"Observation?subject=Patient/" + id("p1") + "&_include=Observation:subject", []string{"o1", "o2"}, []string{"Patient/" + id("p1")}},
			{"Observation?code=" + url.QueryEscape(loinc+"|8867-4") + "&subject=" + url.QueryEscape(joinRefs("Patient", id("p1"), id("p3"))) + "&_include=Observation:patient",
				[]string{"o1", "o3"}, []string{"Patient/" + id("p1"), "Patient/" + id("p3")}},
			{"Observation?subject=Patient/" + id("p1"), []string{"o1", "o2"}, nil},
			{"Observation?subject=Patient/" + id("p1") + "&_include=Observation:subject:Patient", []string{"o1", "o2"}, []string{"Patient/" + id("p1")}},
			{"Observation?subject=Patient/" + id("p1") + "&_include=Observation:subject:Group", []string{"o1", "o2"}, nil},
			{"Encounter?patient=" + id("p1") + "&_include=Encounter:subject", []string{"e1"}, []string{"Patient/" + id("p1")}},
		}
		for _, tc := range cases {
			t.Run(pop.name(tc.query), func(t *testing.T) {
				got, inc := c.searchAll(t, tc.query)
				sameSet(t, tc.want, pop.labelsOf(got), "matches of GET %s", tc.query)
				sameSet(t, tc.wantIncludes, inc, "includes of GET %s", tc.query)
			})
		}
	})

	t.Run("_sort", func(t *testing.T) {
		// p9 has no birth date; the ge1900 filter leaves it out so the
		// order is fully determined.
		ascending := pop.idsOf("p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8")
		descending := slices.Clone(ascending)
		slices.Reverse(descending)
		for _, tc := range []struct {
			sort string
			want []string
		}{
			{"birthdate", ascending},
			{"-birthdate", descending},
		} {
			t.Run(tc.sort+" across pages", func(t *testing.T) {
				got, _ := c.searchAll(t, "Patient?family="+fam+"&birthdate=ge1900&_count=3&_sort="+tc.sort)
				assert.Equal(t, pop.labelsOf(tc.want), pop.labelsOf(got))
			})
		}
	})

	t.Run("_include skips a deleted target", func(t *testing.T) {
		gone := c.create(t, patient(run.family("IncGone"))).Get("id").String()
		obs := minimalResource("Observation", gone)
		oid := c.create(t, obs).Get("id").String()
		dr := c.do(t, http.MethodDelete, "Patient/"+gone, nil)
		require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, dr.Status, "%s", dr)
		got, inc := c.searchAll(t, "Observation?subject=Patient/"+gone+"&_include=Observation:subject")
		assert.Equal(t, []string{oid}, got, "a reference to a deleted resource still matches")
		assert.Empty(t, inc, "deleted resource included")
	})

	t.Run("_revinclude", func(t *testing.T) {
		q := "Patient?_id=" + id("p1") + "&_revinclude=Observation:subject"
		got, inc := c.searchAll(t, q)
		sameSet(t, []string{"p1"}, pop.labelsOf(got), "matches of GET %s", q)
		sameSet(t, []string{"Observation/" + id("o1"), "Observation/" + id("o2")}, inc, "includes of GET %s", q)
	})

	t.Run("POST _search with a form body equals GET", func(t *testing.T) {
		form := "family=" + url.QueryEscape(lower+"berg") + "&birthdate=ge2020"
		r := c.do(t, http.MethodPost, "Patient/_search", []byte(form), header{"Content-Type", "application/x-www-form-urlencoded"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		require.Equal(t, "searchset", r.get("type").String(), "%s", r)
		var got []string
		for _, e := range r.get("entry").Array() {
			got = append(got, e.Get("resource.id").String())
		}
		sameSet(t, []string{"p2", "p5"}, pop.labelsOf(got), "POST Patient/_search %s", form)
	})

	t.Run("searchset Bundle shape", func(t *testing.T) {
		q := "Observation?subject=Patient/" + id("p1") + "&_include=Observation:subject"
		r := c.do(t, http.MethodGet, q, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.NotEmpty(t, linkURL(r, "self"), "self link")
		for i, e := range r.get("entry").Array() {
			typ, rid := e.Get("resource.resourceType").String(), e.Get("resource.id").String()
			assert.Equal(t, c.base+"/"+typ+"/"+rid, e.Get("fullUrl").String(), "entry %d fullUrl", i)
			assert.Contains(t, []string{"match", "include"}, e.Get("search.mode").String(), "entry %d search.mode", i)
			assert.False(t, e.Get("request").Exists(), "entry %d: searchset entries carry no request (bdl-5)", i)
			assert.False(t, e.Get("response").Exists(), "entry %d: searchset entries carry no response", i)
		}
	})

	t.Run("POST _search merges URL and body parameters", func(t *testing.T) {
		r := c.do(t, http.MethodPost, "Patient/_search?birthdate=ge2020", []byte("family="+url.QueryEscape(lower+"berg")), header{"Content-Type", "application/x-www-form-urlencoded"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		var got []string
		for _, e := range r.get("entry").Array() {
			got = append(got, e.Get("resource.id").String())
		}
		sameSet(t, []string{"p2", "p5"}, pop.labelsOf(got), "URL birthdate AND body family")
		wrong := c.do(t, http.MethodPost, "Patient/_search", []byte("family=x"), header{"Content-Type", "application/json"})
		requireOutcome(t, wrong, http.StatusUnsupportedMediaType, http.StatusBadRequest)
	})

	t.Run("_count=0 gives the total only", func(t *testing.T) {
		r := c.do(t, http.MethodGet, "Patient?family="+fam+"&gender=female&_count=0", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.EqualValues(t, 4, r.get("total").Int(), "%s", r)
		assert.Empty(t, r.get("entry").Array(), "%s", r)
		assert.Empty(t, linkURL(r, "next"), "next link on a _count=0 page")
	})

	t.Run("_elements returns the listed elements, tagged SUBSETTED", func(t *testing.T) {
		r := c.do(t, http.MethodGet, "Patient?_id="+id("p1")+"&_elements=gender", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		res := r.get("entry.0.resource")
		assert.Equal(t, "female", res.Get("gender").String())
		assert.False(t, res.Get("name").Exists(), "unlisted element returned: %s", res.Raw)
		assert.Contains(t, res.Get("meta.tag.#.code").String(), "SUBSETTED", "%s", res.Raw)
	})

	t.Run("_summary=count gives the total without entries", func(t *testing.T) {
		r := c.do(t, http.MethodGet, "Patient?family="+fam+"&gender=female&_summary=count", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.EqualValues(t, 4, r.get("total").Int(), "%s", r)
		assert.Empty(t, r.get("entry").Array(), "%s", r)
	})

	t.Run("index follows updates and deletes", func(t *testing.T) {
		before, after := run.family("IdxBefore"), run.family("IdxAfter")
		body := patient(before)
		body["birthDate"] = "1999-09-09"
		id := c.create(t, body).Get("id").String()
		body["id"] = id
		body["name"] = []any{map[string]any{"family": after}}
		body["birthDate"] = "2001-01-01"
		c.put(t, body)
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"family=" + before, nil},
			{"family=" + after, []string{id}},
			{"family=" + after + "&birthdate=1999-09-09", nil},
			{"family=" + after + "&birthdate=2001-01-01", []string{id}},
		} {
			got, _ := c.searchAll(t, "Patient?"+tc.query)
			sameSet(t, tc.want, got, "after update: %s", tc.query)
		}
		dr := c.do(t, http.MethodDelete, "Patient/"+id, nil)
		require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, dr.Status, "%s", dr)
		got, _ := c.searchAll(t, "Patient?family="+after)
		assert.Empty(t, got, "deleted resource found by search")
	})

	t.Run("product parameters", func(t *testing.T) { checkProductSearch(t, c, run) })
	t.Run("_lastUpdated", func(t *testing.T) { checkLastUpdated(t, c, run) })
	t.Run("_count paging", func(t *testing.T) { checkPaging(t, c, run) })
	t.Run("paging with sort ties at scale", func(t *testing.T) { checkSortedPaging(t, c, run) })
}

// checkLastUpdated writes two groups a little over a second apart and
// searches on second-precision boundaries between them.
func checkLastUpdated(t *testing.T, c *client, run runID) {
	family := run.family("LastUpd")
	var a, b []string
	var aLast, bFirst time.Time
	for range 2 {
		r := c.create(t, patient(family, "A"))
		a = append(a, r.Get("id").String())
		aLast = parseInstant(t, r.Get("meta.lastUpdated").String())
	}
	time.Sleep(1100 * time.Millisecond)
	for i := range 2 {
		r := c.create(t, patient(family, "B"))
		b = append(b, r.Get("id").String())
		if i == 0 {
			bFirst = parseInstant(t, r.Get("meta.lastUpdated").String())
		}
	}
	require.GreaterOrEqual(t, bFirst.Sub(aLast), time.Second, "server clock: groups not a second apart")
	sec := func(ts time.Time) string { return ts.UTC().Truncate(time.Second).Format(time.RFC3339) }
	// At the full precision the server reports, the boundaries are exact.
	b0 := c.read(t, "Patient", b[0]).Get("meta.lastUpdated").String()
	exact := url.QueryEscape(b0)
	cases := []struct {
		name, query string
		want        []string
	}{
		{"gt the second of the last early write", "_lastUpdated=gt" + sec(aLast), b},
		{"lt the second of the first late write", "_lastUpdated=lt" + sec(bFirst), a},
		{"ge the second of the first late write", "_lastUpdated=ge" + sec(bFirst), b},
		{"le the second of the last early write", "_lastUpdated=le" + sec(aLast), a},
		{"eq an exact lastUpdated", "_lastUpdated=eq" + exact, b[:1]},
		{"ge an exact lastUpdated", "_lastUpdated=ge" + exact, b},
		{"gt an exact lastUpdated", "_lastUpdated=gt" + exact, b[1:]},
		{"le an exact lastUpdated", "_lastUpdated=le" + exact, append(slices.Clone(a), b[0])},
		{"lt an exact lastUpdated", "_lastUpdated=lt" + exact, a},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := c.searchAll(t, "Patient?family="+family+"&"+tc.query)
			sameSet(t, tc.want, got, "%s", tc.query)
		})
	}
}

// checkPaging creates 23 matches and walks them 5 at a time.
func checkPaging(t *testing.T, c *client, run runID) {
	const n, size = 23, 5
	family := run.family("Page")
	var want []string
	for range n {
		want = append(want, c.create(t, patient(family)).Get("id").String())
	}

	t.Run("next links visit every match once", func(t *testing.T) {
		next := "Patient?family=" + family + "&_count=5"
		var got []string
		pages := 0
		for next != "" {
			require.Less(t, pages, 2*n, "next links do not end")
			r := c.do(t, http.MethodGet, next, nil)
			require.Equal(t, http.StatusOK, r.Status, "page %d: %s", pages, r)
			if pages == 0 {
				total := r.get("total")
				if assert.True(t, total.Exists(), "searchset Bundle.total missing: %s", r) {
					assert.EqualValues(t, n, total.Int(), "Bundle.total")
				}
				assert.NotEmpty(t, linkURL(r, "self"), "self link")
			}
			entries := r.get("entry").Array()
			assert.LessOrEqual(t, len(entries), size, "page %d larger than _count", pages)
			for _, e := range entries {
				got = append(got, e.Get("resource.id").String())
			}
			pages++
			next = linkURL(r, "next")
			if next != "" {
				next = c.resolve(r.URL, next)
				assert.NotEmpty(t, entries, "page %d is empty but has a next link", pages)
			}
		}
		sameSet(t, want, got, "ids over all pages")
		assert.Equal(t, (n+size-1)/size, pages, "page count")
	})

	t.Run("writes between pages neither repeat nor skip the original matches", func(t *testing.T) {
		fam2 := run.family("LivePage")
		var original []string
		for range 12 {
			original = append(original, c.create(t, patient(fam2)).Get("id").String())
		}
		r := c.do(t, http.MethodGet, "Patient?family="+fam2+"&_count=4", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		var got []string
		for _, e := range r.get("entry").Array() {
			got = append(got, e.Get("resource.id").String())
		}
		// New matches and an update of an unseen one arrive mid-paging.
		for range 6 {
			c.create(t, patient(fam2))
		}
		for _, id := range original {
			if !slices.Contains(got, id) {
				b := patient(fam2, "Touched")
				b["id"] = id
				c.put(t, b)
				break
			}
		}
		next := linkURL(r, "next")
		require.NotEmpty(t, next, "first page of 12 with _count=4 has no next link")
		rest, _ := c.searchAll(t, c.resolve(r.URL, next))
		got = append(got, rest...)
		seen := map[string]int{}
		for _, id := range got {
			seen[id]++
		}
		for id, n := range seen {
			assert.Equal(t, 1, n, "Patient/%s returned %d times across pages", id, n)
		}
		for _, id := range original {
			assert.Contains(t, seen, id, "original match Patient/%s skipped", id)
		}
	})

	t.Run("_count above the server maximum is capped, not refused", func(t *testing.T) {
		// search.html: the server need not return as many as _count asks.
		r := c.do(t, http.MethodGet, "Patient?family="+family+"&_count=1000000", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Len(t, r.get("entry").Array(), n)
	})

	t.Run("_count above the total gives one page", func(t *testing.T) {
		r := c.do(t, http.MethodGet, "Patient?family="+family+"&_count=100", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Len(t, r.get("entry").Array(), n)
		assert.Empty(t, linkURL(r, "next"), "next link on the only page")
	})
}

// checkSortedPaging loads 600 patients with only three birth dates and two
// genders, so every sort key has long runs of ties across page boundaries,
// where cursor paging tends to skip or repeat.
func checkSortedPaging(t *testing.T, c *client, run runID) {
	const n = 600
	family := run.family("Ties")
	dates := []string{"1980-05-05", "1970-01-01", "1990-12-31"}
	genders := []string{"female", "male"}
	entries := make([]map[string]any, n)
	females := 0
	for i := range entries {
		p := patient(family, fmt.Sprint(i))
		p["birthDate"] = dates[i%len(dates)]
		p["gender"] = genders[(i/len(dates))%len(genders)]
		if p["gender"] == "female" {
			females++
		}
		entries[i] = entry("urn:uuid:"+newUUID(), p, "POST", "Patient")
	}
	r := c.do(t, http.MethodPost, "", bundle("transaction", entries...))
	require.Equal(t, http.StatusOK, r.Status, "%.500s", r)

	// key returns the sort key of a resource for a _sort element.
	key := func(res gjson.Result, field string) string {
		if field == "birthdate" {
			return res.Get("birthDate").String()
		}
		return res.Get(field).String()
	}
	cases := []struct {
		query string
		sorts []string // "field" or "-field"
		want  int
	}{
		{"_count=37", nil, n},
		{"_count=37&_sort=birthdate", []string{"birthdate"}, n},
		{"_count=41&_sort=-birthdate", []string{"-birthdate"}, n},
		{"_count=50&_sort=gender,-birthdate", []string{"gender", "-birthdate"}, n},
		{"_count=13&gender=female&_sort=birthdate", []string{"birthdate"}, females},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			res, _ := c.searchResources(t, "Patient?family="+family+"&"+tc.query)
			seen := map[string]bool{}
			for _, r := range res {
				id := r.Get("id").String()
				assert.False(t, seen[id], "Patient/%s returned twice", id)
				seen[id] = true
			}
			assert.Len(t, seen, tc.want, "distinct matches over all pages")
			for i := 1; i < len(res); i++ {
				if !inOrder(res[i-1], res[i], tc.sorts, key) {
					assert.Failf(t, "out of order", "entries %d and %d: %s then %s", i-1, i, res[i-1].Raw, res[i].Raw)
					break
				}
			}
		})
	}
}

// inOrder reports whether a may precede b under the sort keys.
func inOrder(a, b gjson.Result, sorts []string, key func(gjson.Result, string) string) bool {
	for _, s := range sorts {
		field, desc := strings.TrimPrefix(s, "-"), strings.HasPrefix(s, "-")
		ka, kb := key(a, field), key(b, field)
		if ka == kb {
			continue
		}
		return (ka < kb) != desc
	}
	return true
}
