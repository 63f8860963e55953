package measureapi_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/access"
)

const (
	cms165 = "ControllingHighBloodPressureFHIR"
	cms122 = "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR"
	cms71  = "CMS71FHIRSTKAnticoagAFFlutter"

	extScoring          = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-measureScoring"
	extGroupImprovement = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-groupImprovementNotation"
)

// checkDEQM asserts the DEQM MeasureReport invariants deqm-1 … deqm-6
// (STU4 summary/individual/subject-list profiles) and the profile's
// required elements that Equitas fills.
func checkDEQM(t *testing.T, rep gjson.Result) {
	t.Helper()
	typ := rep.Get("type").String()
	// deqm-1: period start and end, at least to the day.
	for _, b := range []string{"period.start", "period.end"} {
		assert.GreaterOrEqual(t, len(rep.Get(b).String()), 10, "deqm-1: %s %q has day precision", b, rep.Get(b).String())
	}
	assert.NotEmpty(t, rep.Get("date").String(), "date 1..1")
	assert.True(t, rep.Get("reporter").Exists(), "reporter 1..1")
	assert.NotEmpty(t, rep.Get("measure").String(), "measure 1..1")
	rootScoring := rep.Get(`extension.#(url=="` + extScoring + `").valueCodeableConcept.coding.0.code`).String()
	groups := rep.Get("group").Array()
	scored := 0
	for _, g := range groups {
		if g.Get(`extension.#(url=="` + extScoring + `")`).Exists() {
			scored++
		}
	}
	// deqm-3: scoring at the root xor on every group.
	assert.True(t, (rootScoring != "") != (scored == len(groups) && scored > 0), "deqm-3: root scoring %q, %d of %d groups scored", rootScoring, scored, len(groups))
	needsNotation := func(s string) bool { return s == "proportion" || s == "ratio" || s == "continuous-variable" }
	// deqm-2: root proportion/ratio/CV scoring needs improvementNotation.
	if needsNotation(rootScoring) {
		assert.True(t, rep.Get("improvementNotation").Exists(), "deqm-2")
	}
	for i, g := range groups {
		gs := g.Get(`extension.#(url=="` + extScoring + `").valueCodeableConcept.coding.0.code`).String()
		if gs == "" {
			gs = rootScoring
		}
		// deqm-4: group-level scoring needs an improvement notation, at the
		// root or on the group (not both).
		groupNotation := g.Get(`extension.#(url=="` + extGroupImprovement + `")`).Exists()
		if needsNotation(gs) && rootScoring == "" {
			assert.True(t, rep.Get("improvementNotation").Exists() != groupNotation, "deqm-4: group %d needs exactly one improvement notation", i)
		}
		// deqm-5: non-composite groups have populations.
		if gs != "composite" {
			assert.NotEmpty(t, g.Get("population").Array(), "deqm-5: group %d", i)
		}
		// deqm-6: proportion scores lie in [0, 1].
		if gs == "proportion" && g.Get("measureScore.value").Exists() {
			v := g.Get("measureScore.value").Float()
			assert.True(t, v >= 0 && v <= 1, "deqm-6: group %d score %v", i, v)
		}
		for _, p := range g.Get("population").Array() {
			assert.NotEmpty(t, p.Get("code.coding.0.code").String(), "population code 1..1")
			assert.True(t, p.Get("count").Exists(), "population count 1..1")
			if typ == "summary" {
				assert.False(t, p.Get("subjectResults").Exists(), "summary: subjectResults 0..0")
			}
			if typ == "subject-list" {
				assert.True(t, p.Get("subjectResults").Exists(), "subject-list: subjectResults 1..1")
			}
		}
		for _, s := range g.Get("stratifier").Array() {
			assert.NotEmpty(t, s.Get("code").Array(), "stratifier.code 1..1 in DEQM")
		}
	}
	switch typ {
	case "individual":
		assert.True(t, strings.HasPrefix(rep.Get("subject.reference").String(), "Patient/"), "individual: subject is a Patient")
	case "summary":
		assert.False(t, rep.Get("subject").Exists(), "summary: subject 0..0")
	}
}

// counts returns a report's population counts per group.
func counts(rep gjson.Result) []map[string]int {
	var out []map[string]int
	for _, g := range rep.Get("group").Array() {
		m := map[string]int{}
		for _, p := range g.Get("population").Array() {
			m[p.Get("code.coding.0.code").String()] += int(p.Get("count").Int())
		}
		out = append(out, m)
	}
	return out
}

func evalQuery(measure string, period [2]string, kv ...string) url.Values {
	q := url.Values{"periodStart": {period[0]}, "periodEnd": {period[1]}}
	if measure != "" {
		q.Set("measure", measure)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// TestEvaluateOfficialMeasures loads the official measures and their test
// patients through the REST API and checks every report type: individual
// reports per test patient against the expected reports, and population
// and subject-list reports against the sum of the individual results.
func TestEvaluateOfficialMeasures(t *testing.T) {
	e := newEnv(t, envOptions{})
	names := []string{cms165, cms122, cms71}
	cases := map[string][]testCase{}
	for _, name := range names {
		e.loadMeasure(name)
		cases[name] = e.loadCases(name)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			period := cases[name][0].period
			checked, defects := 0, 0
			for _, tc := range cases[name] {
				res := e.get("/Measure/$evaluate-measure", evalQuery(name, tc.period, "subject", "Patient/"+tc.patient))
				require.Equal(t, http.StatusOK, res.status, "%s: %s", tc.dir, truncate(res.body))
				rep := gjson.ParseBytes(res.body)
				require.Equal(t, "individual", rep.Get("type").String())
				checkDEQM(t, rep)
				got := counts(rep)
				require.Len(t, got, len(tc.expected))
				agree := true
				for gi, exp := range tc.expected {
					for code, n := range exp {
						agree = agree && got[gi][code] == n
					}
				}
				if why, known := knownDataDefects[tc.patient]; known {
					assert.False(t, agree, "known data defect %s (%s) now agrees: remove it from the list", tc.patient, why)
					defects++
					continue
				}
				for gi, exp := range tc.expected {
					for code, n := range exp {
						assert.Equal(t, n, got[gi][code], "case %s group %d %s", tc.dir, gi, code)
					}
				}
				checked++
			}
			t.Logf("%s: %d test patients agree with their expected reports (%d known data defects)", name, checked, defects)

			summary := e.get("/Measure/"+name+"/$evaluate-measure", evalQuery("", period))
			require.Equal(t, http.StatusOK, summary.status, truncate(summary.body))
			srep := gjson.ParseBytes(summary.body)
			require.Equal(t, "summary", srep.Get("type").String())
			checkDEQM(t, srep)

			list := e.postParams("/Measure/$evaluate-measure", [][2]string{{"measure", name}, {"periodStart", period[0]}, {"periodEnd", period[1]}, {"reportType", "subject-list"}})
			require.Equal(t, http.StatusOK, list.status, truncate(list.body))
			bundle := gjson.ParseBytes(list.body)
			require.Equal(t, "Bundle", bundle.Get("resourceType").String())
			entries := bundle.Get("entry").Array()
			require.NotEmpty(t, entries)
			lrep := entries[0].Get("resource")
			require.Equal(t, "subject-list", lrep.Get("type").String(), "the subject-list report comes first")
			checkDEQM(t, lrep)

			// The population counts equal the sum of the individual results.
			byURL := map[string]gjson.Result{}
			sum := make([]map[string]int, len(counts(srep)))
			for i := range sum {
				sum[i] = map[string]int{}
			}
			for _, en := range entries[1:] {
				ind := en.Get("resource")
				require.Equal(t, "individual", ind.Get("type").String())
				byURL[en.Get("fullUrl").String()] = ind
				for gi, m := range counts(ind) {
					for code, n := range m {
						sum[gi][code] += n
					}
				}
			}
			assert.Equal(t, sum, counts(srep), "summary = sum of individual reports")
			assert.Equal(t, sum, counts(lrep), "subject-list = sum of individual reports")
			patients := map[string]bool{}
			for _, ind := range byURL {
				patients[ind.Get("subject.reference").String()] = true
			}
			assert.Len(t, patients, len(byURL), "one individual report per patient")
			assert.GreaterOrEqual(t, len(byURL), len(cases[name]), "every store patient is evaluated")

			// Each population's List holds the individual reports (in the
			// Bundle) of the patients counted in it.
			lists := map[string]gjson.Result{}
			for _, c := range lrep.Get("contained").Array() {
				if c.Get("resourceType").String() == "List" {
					lists["#"+c.Get("id").String()] = c
				}
			}
			base := strings.TrimSuffix(e.base, "/")
			for gi, g := range lrep.Get("group").Array() {
				for _, p := range g.Get("population").Array() {
					l, ok := lists[p.Get("subjectResults.reference").String()]
					require.True(t, ok, "group %d %s has a contained List", gi, p.Get("code.coding.0.code"))
					items := l.Get("entry").Array()
					if len(items) == 0 {
						assert.True(t, l.Get("emptyReason").Exists(), "an empty List says why")
					}
					code := p.Get("code.coding.0.code").String()
					n := 0
					for _, it := range items {
						ind, ok := byURL[base+"/"+it.Get("item.reference").String()]
						require.True(t, ok, "List item %s is an individual report of the Bundle", it.Get("item.reference"))
						assert.Positive(t, counts(ind)[gi][code], "a listed patient counts in %s", code)
						n++
					}
					members := 0
					for _, ind := range byURL {
						if counts(ind)[gi][code] > 0 {
							members++
						}
					}
					assert.Equal(t, members, n, "group %d %s lists every counted patient", gi, code)
				}
			}
		})
	}
}

// TestEvaluateGroupSubject evaluates a Group's members only.
func TestEvaluateGroupSubject(t *testing.T) {
	e := newEnv(t, envOptions{reporter: "Organization/reporting-org"})
	e.loadMeasure(cms165)
	cases := e.loadSomeCases(cms165, 4)
	period := cases[0].period
	members := []string{cases[0].patient, cases[1].patient, cases[2].patient}
	group := `{"resourceType":"Group","id":"g1","type":"person","actual":true,"member":[` +
		`{"entity":{"reference":"Patient/` + members[0] + `"}},{"entity":{"reference":"Patient/` + members[1] + `"}},` +
		`{"entity":{"reference":"Patient/` + members[2] + `"}},{"entity":{"reference":"Patient/` + cases[3].patient + `"},"inactive":true}]}`
	res := e.do(http.MethodPut, "/Group/g1", []byte(group))
	require.Equal(t, http.StatusCreated, res.status, truncate(res.body))

	sum := []map[string]int{{}}
	for _, p := range members {
		r := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Patient/"+p))
		require.Equal(t, http.StatusOK, r.status)
		for code, n := range counts(r.json("@this"))[0] {
			sum[0][code] += n
		}
	}
	pop := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Group/g1", "reportType", "population"))
	require.Equal(t, http.StatusOK, pop.status, truncate(pop.body))
	checkDEQM(t, pop.json("@this"))
	assert.Equal(t, sum, counts(pop.json("@this")), "a Group's report counts its active members only")
	assert.Equal(t, "Organization/reporting-org", pop.json("reporter.reference").String())

	// subject=Group defaults to individual reports, one per member.
	ind := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Group/g1"))
	require.Equal(t, http.StatusOK, ind.status)
	assert.Equal(t, "Bundle", ind.json("resourceType").String())
	assert.Len(t, ind.json("entry").Array(), len(members))

	sl := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Group/g1", "reportType", "subject-list"))
	require.Equal(t, http.StatusOK, sl.status)
	assert.Equal(t, sum, counts(sl.json("entry.0.resource")))
	assert.Len(t, sl.json("entry").Array(), 1+len(members))
}

// TestEvaluateBadParameters: every malformed request is a 4xx with an
// OperationOutcome, never a report.
func TestEvaluateBadParameters(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.loadMeasure(cms165)
	cases := e.loadSomeCases(cms165, 1)
	period := cases[0].period
	p := "Patient/" + cases[0].patient
	tests := []struct {
		name   string
		path   string
		q      url.Values
		params [][2]string // POST Parameters instead of a query
		body   string      // raw POST body
		status int
		want   string
	}{
		{"no periodStart", "/Measure/$evaluate-measure", url.Values{"measure": {cms165}, "periodEnd": {"2025"}}, nil, "", 400, "periodStart"},
		{"no periodEnd", "/Measure/$evaluate-measure", url.Values{"measure": {cms165}, "periodStart": {"2025"}}, nil, "", 400, "periodEnd"},
		{"bad date", "/Measure/$evaluate-measure", evalQuery(cms165, [2]string{"2025-13-01", "2025-12-31"}), nil, "", 400, "period"},
		{"start after end", "/Measure/$evaluate-measure", evalQuery(cms165, [2]string{"2026-01-01", "2025-12-31"}), nil, "", 400, "after"},
		{"unknown parameter", "/Measure/$evaluate-measure", evalQuery(cms165, period, "foo", "bar"), nil, "", 400, `"foo"`},
		{"repeated parameter", "/Measure/$evaluate-measure", url.Values{"measure": {cms165}, "periodStart": {"2025", "2024"}, "periodEnd": {"2025"}}, nil, "", 400, "only once"},
		{"bad reportType", "/Measure/$evaluate-measure", evalQuery(cms165, period, "reportType", "everything"), nil, "", 400, "reportType"},
		{"subject report without subject", "/Measure/$evaluate-measure", evalQuery(cms165, period, "reportType", "subject"), nil, "", 400, "subject"},
		{"bare subject id", "/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", cases[0].patient), nil, "", 400, "Patient/[id]"},
		{"subject of another type", "/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Encounter/1"), nil, "", 400, "subject"},
		{"unknown patient", "/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Patient/nobody"), nil, "", 400, "Patient/nobody"},
		{"unknown group", "/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Group/nogroup"), nil, "", 400, "Group/nogroup"},
		{"bad practitioner", "/Measure/$evaluate-measure", evalQuery(cms165, period, "practitioner", "Organization/1"), nil, "", 400, "Practitioner/[id]"},
		{"unknown practitioner", "/Measure/$evaluate-measure", evalQuery(cms165, period, "practitioner", "Practitioner/nobody"), nil, "", 400, "Practitioner/nobody"},
		{"no measure at type level", "/Measure/$evaluate-measure", evalQuery("", period), nil, "", 400, "measure"},
		{"unknown measure", "/Measure/$evaluate-measure", evalQuery("http://example.org/Measure/none", period), nil, "", 400, "not found"},
		{"two measure selectors", "/Measure/$evaluate-measure", evalQuery(cms165, period, "measureId", cms165), nil, "", 400, "only one"},
		{"conflicting measure at instance level", "/Measure/" + cms165 + "/$evaluate-measure", evalQuery("other", period), nil, "", 400, "conflicts"},
		{"unknown measure instance", "/Measure/none/$evaluate-measure", evalQuery("", period), nil, "", 404, "none"},
		{"bad lastReceivedOn", "/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", p, "lastReceivedOn", "yesterday"), nil, "", 400, "lastReceivedOn"},
		{"bad reporter", "/Measure/$evaluate-measure", evalQuery(cms165, period, "reporter", "Nobody"), nil, "", 400, "reporter"},
		{"unknown measureIdentifier", "/Measure/$evaluate-measure", evalQuery("", period, "measureIdentifier", "urn:x|y"), nil, "", 400, "identifier"},
		{"POST unknown parameter", "/Measure/$evaluate-measure", nil, [][2]string{{"measure", cms165}, {"periodStart", period[0]}, {"periodEnd", period[1]}, {"bogus", "1"}}, "", 400, "bogus"},
		{"POST without periodEnd", "/Measure/$evaluate-measure", nil, [][2]string{{"measure", cms165}, {"periodStart", period[0]}}, "", 400, "periodEnd"},
		{"POST not Parameters", "/Measure/$evaluate-measure", nil, nil, `{"resourceType":"Patient"}`, 400, "Parameters"},
		{"POST malformed JSON", "/Measure/$evaluate-measure", nil, nil, `{"resourceType":`, 400, "JSON"},
		{"POST parameter without name", "/Measure/$evaluate-measure", nil, nil, `{"resourceType":"Parameters","parameter":[{"valueString":"x"}]}`, 400, "name"},
		{"POST complex value", "/Measure/$evaluate-measure", nil, nil, `{"resourceType":"Parameters","parameter":[{"name":"periodStart","valuePeriod":{"start":"2025"}}]}`, 400, "valuePeriod"},
		{"data-requirements unknown parameter", "/Measure/" + cms165 + "/$data-requirements", url.Values{"x": {"1"}}, nil, "", 400, `"x"`},
		{"data-requirements half a period", "/Measure/" + cms165 + "/$data-requirements", url.Values{"periodStart": {"2025"}}, nil, "", 400, "periodEnd"},
		{"data-requirements no measure", "/Measure/$data-requirements", nil, nil, "", 400, "measure"},
	}
	// A Measure whose library is not on the server: the content, not the
	// request, is at fault (422), and the outcome names the missing piece.
	broken := `{"resourceType":"Measure","id":"broken","url":"http://example.org/Measure/broken","status":"active",` +
		`"library":["http://example.org/Library/missing"],"scoring":{"coding":[{"code":"cohort"}]},` +
		`"group":[{"population":[{"code":{"coding":[{"code":"initial-population"}]},"criteria":{"language":"text/cql-identifier","expression":"IP"}}]}]}`
	res := e.do(http.MethodPut, "/Measure/broken", []byte(broken))
	require.Equal(t, http.StatusCreated, res.status, truncate(res.body))
	tests = append(tests, struct {
		name   string
		path   string
		q      url.Values
		params [][2]string
		body   string
		status int
		want   string
	}{"measure content incomplete", "/Measure/broken/$evaluate-measure", evalQuery("", period), nil, "", 422, "http://example.org/Library/missing"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res response
			switch {
			case tt.params != nil:
				res = e.postParams(tt.path, tt.params)
			case tt.body != "":
				res = e.do(http.MethodPost, tt.path, []byte(tt.body))
			default:
				res = e.get(tt.path, tt.q)
			}
			assert.Equal(t, tt.status, res.status, truncate(res.body))
			assert.Equal(t, "OperationOutcome", res.json("resourceType").String(), truncate(res.body))
			assert.Contains(t, res.json("issue.0.diagnostics").String(), tt.want)
		})
	}
}

// TestEvaluateAsync runs a population report through the asynchronous
// pattern: 202 with Content-Location, status polling, file download.
func TestEvaluateAsync(t *testing.T) {
	e := newEnv(t, envOptions{asyncOver: 5})
	e.loadMeasure(cms165)
	cases := e.loadSomeCases(cms165, 20)
	period := cases[0].period
	sync := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Patient/"+cases[0].patient))
	require.Equal(t, http.StatusOK, sync.status, "small populations stay synchronous")

	reports := map[string][]gjson.Result{}
	for _, tt := range []struct {
		name   string
		header []string
		q      url.Values
		last   string
	}{
		{"Prefer respond-async", []string{"Prefer", "respond-async"}, evalQuery(cms165, period, "reportType", "population"), "summary"},
		{"population above the async threshold", nil, evalQuery(cms165, period, "reportType", "subject-list"), "subject-list"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kick := e.get("/Measure/$evaluate-measure", tt.q, tt.header...)
			require.Equal(t, http.StatusAccepted, kick.status, truncate(kick.body))
			assert.Equal(t, "OperationOutcome", kick.json("resourceType").String())
			status := kick.header.Get("Content-Location")
			require.NotEmpty(t, status)
			var manifest response
			deadline := time.Now().Add(2 * time.Minute)
			for {
				manifest = e.get(status, nil)
				if manifest.status != http.StatusAccepted || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			require.Equal(t, http.StatusOK, manifest.status, truncate(manifest.body))
			out := manifest.json("output.0")
			assert.Equal(t, "MeasureReport", out.Get("type").String())
			file := e.get(out.Get("url").String(), nil, "Accept", "application/fhir+ndjson")
			require.Equal(t, http.StatusOK, file.status, truncate(file.body))
			var lines []gjson.Result
			sc := bufio.NewScanner(bytes.NewReader(file.body))
			sc.Buffer(nil, 64<<20)
			for sc.Scan() {
				lines = append(lines, gjson.ParseBytes(append([]byte(nil), sc.Bytes()...)))
			}
			require.NotEmpty(t, lines)
			assert.EqualValues(t, len(lines), out.Get("count").Int())
			last := lines[len(lines)-1]
			assert.Equal(t, tt.last, last.Get("type").String(), "the aggregate report is the last line")
			checkDEQM(t, last)
			reports[tt.last] = lines
		})
	}
	// The async summary counts what the async subject-list's individual
	// reports add up to.
	require.Len(t, reports, 2)
	list := reports["subject-list"]
	require.Len(t, list, len(cases)+1, "one individual report per patient, then the subject-list")
	sum := []map[string]int{{}}
	for _, ind := range list[:len(list)-1] {
		for code, n := range counts(ind)[0] {
			sum[0][code] += n
		}
	}
	assert.Equal(t, sum, counts(reports["summary"][0]))
	assert.Equal(t, sum, counts(list[len(list)-1]))
}

// TestEvaluateRestrictedCaller: a caller bound to some patients (an
// organization's attributed patients) gets reports over those only, and
// a caller without a MeasureReport read scope gets none.
func TestEvaluateRestrictedCaller(t *testing.T) {
	open := newEnv(t, envOptions{})
	open.loadMeasure(cms165)
	cases := open.loadSomeCases(cms165, 6)
	period := cases[0].period
	visible := access.Set{cases[0].patient: true, cases[1].patient: true, cases[2].patient: true}
	sum := []map[string]int{{}}
	for id := range visible {
		r := open.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Patient/"+id))
		require.Equal(t, http.StatusOK, r.status)
		for code, n := range counts(r.json("@this"))[0] {
			sum[0][code] += n
		}
	}

	e := newEnv(t, envOptions{store: open.st, principal: &access.Principal{ClientID: "org-client", Scopes: []string{"system/*.read"}, Patients: visible, Groups: access.Set{}}})
	pop := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period))
	require.Equal(t, http.StatusOK, pop.status, truncate(pop.body))
	assert.Equal(t, sum, counts(pop.json("@this")), "only the caller's patients count")
	hidden := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Patient/"+cases[5].patient))
	assert.Equal(t, http.StatusBadRequest, hidden.status, "another organization's patient is not found")
	group := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "subject", "Group/any"))
	assert.Equal(t, http.StatusBadRequest, group.status)

	noScope := newEnv(t, envOptions{store: open.st, principal: &access.Principal{ClientID: "c", Scopes: []string{"system/Patient.read"}}})
	res := noScope.get("/Measure/$evaluate-measure", evalQuery(cms165, period))
	assert.Equal(t, http.StatusForbidden, res.status)
	assert.Equal(t, "OperationOutcome", res.json("resourceType").String())
}
