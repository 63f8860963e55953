package measureapi_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// TestDataRequirements checks the Library against the measure's own ELM:
// every value set a primary-library retrieve filters on is listed, every
// library of the closure is a dependency.
func TestDataRequirements(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.loadMeasure(cms165)
	res := e.get("/Measure/"+cms165+"/$data-requirements", url.Values{"periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"}})
	require.Equal(t, http.StatusOK, res.status, truncate(res.body))
	lib := res.json("@this")
	assert.Equal(t, "Library", lib.Get("resourceType").String())
	assert.Equal(t, "module-definition", lib.Get("type.coding.0.code").String())

	// What the primary library's ELM retrieves, read independently.
	raw, err := os.ReadFile(filepath.Join(ecqmDir(t), "libraries", cms165+".json"))
	require.NoError(t, err)
	elmJSON, err := base64.StdEncoding.DecodeString(gjson.GetBytes(raw, `content.#(contentType=="application/elm+json").data`).String())
	require.NoError(t, err)
	valueSets := map[string]string{}
	gjson.GetBytes(elmJSON, "library.valueSets.def").ForEach(func(_, d gjson.Result) bool {
		valueSets[d.Get("name").String()] = d.Get("id").String()
		return true
	})
	want := map[string]bool{}
	var walk func(n gjson.Result)
	walk = func(n gjson.Result) {
		if n.Get("type").String() == "Retrieve" && n.Get("codes.type").String() == "ValueSetRef" && !n.Get("codes.libraryName").Exists() {
			dt := n.Get("dataType").String()
			want[dt[strings.LastIndexByte(dt, '}')+1:]+"|"+valueSets[n.Get("codes.name").String()]] = true
		}
		if n.IsObject() || n.IsArray() {
			n.ForEach(func(_, c gjson.Result) bool { walk(c); return true })
		}
	}
	walk(gjson.GetBytes(elmJSON, "library.statements"))
	require.NotEmpty(t, want)
	got := map[string]bool{}
	for _, dr := range lib.Get("dataRequirement").Array() {
		require.NotEmpty(t, dr.Get("type").String())
		for _, cf := range dr.Get("codeFilter").Array() {
			if vs := cf.Get("valueSet").String(); vs != "" {
				got[dr.Get("type").String()+"|"+vs] = true
				assert.NotEmpty(t, cf.Get("path").String())
			}
		}
	}
	for k := range want {
		assert.True(t, got[k], "data requirement %s", k)
	}
	deps := map[string]bool{}
	for _, ra := range lib.Get("relatedArtifact").Array() {
		assert.Equal(t, "depends-on", ra.Get("type").String())
		deps[ra.Get("resource").String()] = true
	}
	gjson.GetBytes(elmJSON, "library.includes.def").ForEach(func(_, d gjson.Result) bool {
		path := d.Get("path").String()
		name := path[strings.LastIndexByte(path, '/')+1:]
		found := false
		for dep := range deps {
			found = found || strings.HasSuffix(dep, "/"+name+"|"+d.Get("version").String())
		}
		assert.True(t, found, "included library %s is a dependency", d.Get("path"))
		return true
	})

	// The type level with a measure parameter answers the same Library.
	typeLevel := e.get("/Measure/$data-requirements", url.Values{"measure": {cms165}})
	require.Equal(t, http.StatusOK, typeLevel.status)
	assert.Equal(t, len(lib.Get("dataRequirement").Array()), len(typeLevel.json("dataRequirement").Array()))
}

func submission(reportID, identifier, updateType string, resources ...string) []byte {
	ext := ""
	if updateType != "" {
		ext = `"extension":[{"url":"http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-submitDataUpdateType","valueCode":"` + updateType + `"}],`
	}
	ident := ""
	if identifier != "" {
		ident = `"identifier":[{"system":"urn:example:submissions","value":"` + identifier + `"}],`
	}
	mr := `{"resourceType":"MeasureReport",` + ext + ident + `"status":"complete","type":"data-collection","measure":"https://madie.cms.gov/Measure/ControllingHighBloodPressureFHIR|0.1.000",` +
		`"subject":{"reference":"Patient/sub-1"},"date":"2025-06-01","reporter":{"reference":"Organization/o1"},"period":{"start":"2025-01-01","end":"2025-12-31"}}`
	params := `{"name":"measureReport","resource":` + mr + `}`
	for _, r := range resources {
		params += `,{"name":"resource","resource":` + r + `}`
	}
	return []byte(`{"resourceType":"Parameters","parameter":[` + params + `]}`)
}

const (
	subPatient = `{"resourceType":"Patient","id":"sub-1","gender":"female","birthDate":"1960-02-03"}`
	subObs     = `{"resourceType":"Observation","id":"sub-obs-1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"subject":{"reference":"Patient/sub-1"},"effectiveDateTime":"2025-05-01","valueQuantity":{"value":128,"unit":"mm[Hg]","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}`
	badObs     = `{"resourceType":"Observation","id":"sub-obs-2","status":"not-a-status","code":{"text":"x"}}`
)

// TestSubmitData: a data-collection report and its resources are written
// in one transaction; resubmitting the same report changes nothing; bad
// submissions write nothing.
func TestSubmitData(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.loadMeasure(cms165)
	ctx := context.Background()

	res := e.do(http.MethodPost, "/Measure/"+cms165+"/$submit-data", submission("", "s-1", "snapshot", subPatient, subObs))
	require.Equal(t, http.StatusOK, res.status, truncate(res.body))
	assert.Contains(t, res.json("issue.0.diagnostics").String(), "submitted")
	obs, err := e.st.Read(ctx, "Observation", "sub-obs-1")
	require.NoError(t, err)
	_, err = e.st.Read(ctx, "Patient", "sub-1")
	require.NoError(t, err)
	reports := e.get("/MeasureReport", url.Values{"identifier": {"urn:example:submissions|s-1"}})
	require.Equal(t, http.StatusOK, reports.status)
	require.EqualValues(t, 1, reports.json("total").Int(), truncate(reports.body))

	// Idempotent by MeasureReport.identifier.
	again := e.do(http.MethodPost, "/Measure/$submit-data", submission("", "s-1", "snapshot", subPatient, subObs))
	require.Equal(t, http.StatusOK, again.status, truncate(again.body))
	assert.Contains(t, again.json("issue.0.diagnostics").String(), "already submitted")
	obs2, err := e.st.Read(ctx, "Observation", "sub-obs-1")
	require.NoError(t, err)
	assert.Equal(t, obs.Version, obs2.Version, "nothing rewritten")
	reports = e.get("/MeasureReport", url.Values{"identifier": {"urn:example:submissions|s-1"}})
	assert.EqualValues(t, 1, reports.json("total").Int())

	for _, tt := range []struct {
		name, path string
		body       []byte
		status     int
		want       string
	}{
		{"no update type", "/Measure/$submit-data", submission("", "s-2", "", subPatient), 400, "submitDataUpdateType"},
		{"bad update type", "/Measure/$submit-data", submission("", "s-2", "sometimes", subPatient), 400, "incremental or snapshot"},
		{"invalid resource", "/Measure/$submit-data", submission("", "s-3", "incremental", `{"resourceType":"Patient","id":"sub-2"}`, badObs), 400, "status"},
		{"other measure", "/Measure/" + cms165 + "/$submit-data", []byte(strings.Replace(string(submission("", "s-4", "snapshot")), "ControllingHighBloodPressureFHIR|", "Other|", 1)), 400, "measure"},
		{"not data-collection", "/Measure/$submit-data", []byte(strings.Replace(string(submission("", "s-5", "snapshot")), `"data-collection"`, `"individual"`, 1)), 400, "data-collection"},
		{"no measureReport", "/Measure/$submit-data", []byte(`{"resourceType":"Parameters","parameter":[{"name":"resource","resource":` + subPatient + `}]}`), 400, "measureReport"},
		{"unknown parameter", "/Measure/$submit-data", []byte(`{"resourceType":"Parameters","parameter":[{"name":"extra","valueString":"x"}]}`), 400, "extra"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := e.do(http.MethodPost, tt.path, tt.body)
			assert.Equal(t, tt.status, res.status, truncate(res.body))
			assert.Equal(t, "OperationOutcome", res.json("resourceType").String())
			assert.Contains(t, res.json("issue.0.diagnostics").String()+res.json("issue.0.expression.0").String(), tt.want)
		})
	}
	// The invalid submission wrote nothing, not even its valid Patient.
	_, err = e.st.Read(ctx, "Patient", "sub-2")
	assert.Error(t, err)
	get := e.get("/Measure/$submit-data", nil)
	assert.Equal(t, http.StatusMethodNotAllowed, get.status)
}

// TestEvaluatePractitioner: practitioner= selects the patients whose
// generalPractitioner it is.
func TestEvaluatePractitioner(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.loadMeasure(cms165)
	cases := e.loadSomeCases(cms165, 12)
	period := cases[0].period
	res := e.do(http.MethodPut, "/Practitioner/doc-1", []byte(`{"resourceType":"Practitioner","id":"doc-1","name":[{"family":"Doe"}]}`))
	require.Equal(t, http.StatusCreated, res.status, truncate(res.body))
	mine := map[string]bool{}
	for _, tc := range cases[:4] {
		p, err := e.st.Read(context.Background(), "Patient", tc.patient)
		require.NoError(t, err)
		body := gjson.ParseBytes(p.Body).Value().(map[string]any)
		body["generalPractitioner"] = []any{map[string]any{"reference": "Practitioner/doc-1"}}
		delete(body, "meta")
		raw, err := jsonMarshal(body)
		require.NoError(t, err)
		res := e.do(http.MethodPut, "/Patient/"+tc.patient, raw)
		require.Equal(t, http.StatusOK, res.status, truncate(res.body))
		mine[tc.patient] = true
	}
	list := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "practitioner", "Practitioner/doc-1", "reportType", "subject-list"))
	require.Equal(t, http.StatusOK, list.status, truncate(list.body))
	entries := list.json("entry").Array()
	require.Len(t, entries, 1+len(mine))
	for _, en := range entries[1:] {
		ref := en.Get("resource.subject.reference").String()
		assert.True(t, mine[strings.TrimPrefix(ref, "Patient/")], "%s is the practitioner's patient", ref)
	}
	// With a subject too, the intersection.
	one := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "practitioner", "Practitioner/doc-1", "subject", "Patient/"+cases[0].patient))
	require.Equal(t, http.StatusOK, one.status)
	assert.Equal(t, "individual", one.json("type").String())
	none := e.get("/Measure/$evaluate-measure", evalQuery(cms165, period, "practitioner", "Practitioner/doc-1", "subject", "Patient/"+cases[10].patient, "reportType", "population"))
	require.Equal(t, http.StatusOK, none.status)
	for _, m := range counts(none.json("@this")) {
		for code, n := range m {
			assert.Zero(t, n, "%s: a patient who is not the practitioner's is not counted", code)
		}
	}
}
