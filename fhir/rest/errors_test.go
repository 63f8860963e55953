package rest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/rest"
)

// TestBadInputNeverPanics drives the common bad inputs and requires a 4xx
// OperationOutcome for each, with the recover middleware never reached.
func TestBadInputNeverPanics(t *testing.T) {
	e := newEnv(t)
	p := e.create(patient("Bad"))
	id := p.Get("id").String()
	huge := `{"resourceType":"Patient","name":[{"family":"` + strings.Repeat("x", 2<<20) + `"}]}`
	deep := `{"resourceType":"Patient","extension":` + strings.Repeat(`[{"url":"x","extension":`, 200) + `[]` + strings.Repeat(`}]`, 200) + `}`
	cases := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		expr               string
	}{
		{"malformed JSON", "POST", "Patient", `{"resourceType":"Patient",`, nil, 400, ""},
		{"not an object", "POST", "Patient", `[1,2]`, nil, 400, ""},
		{"empty body", "POST", "Patient", ``, nil, 400, ""},
		{"wrong element type", "POST", "Patient", `{"resourceType":"Patient","active":"yes"}`, nil, 400, "Patient.active"},
		{"unknown element", "POST", "Patient", `{"resourceType":"Patient","shoeSize":42}`, nil, 400, "Patient.shoeSize"},
		{"null value", "POST", "Patient", `{"resourceType":"Patient","gender":null}`, nil, 400, "Patient.gender"},
		{"type mismatch with URL", "POST", "Observation", `{"resourceType":"Patient"}`, nil, 400, ""},
		{"deep nesting", "POST", "Patient", deep, nil, 400, ""},
		{"huge body", "POST", "Patient", huge, nil, 413, ""},
		{"wrong content type", "POST", "Patient", `{"resourceType":"Patient"}`, []string{"Content-Type", "application/xml"}, 415, ""},
		{"xml accept", "GET", "Patient/" + id, nil, []string{"Accept", "application/fhir+xml"}, 406, ""},
		{"xml _format", "GET", "Patient/" + id + "?_format=xml", nil, nil, 406, ""},
		{"unknown type", "GET", "Foo/1", nil, nil, 404, ""},
		{"unknown type search", "GET", "Foo?x=1", nil, nil, 404, ""},
		{"unknown endpoint", "GET", "Patient/1/foo", nil, nil, 404, ""},
		{"wrong method", "PATCH", "Patient/" + id, `{}`, nil, 405, ""},
		{"post to instance", "POST", "Patient/" + id, `{}`, nil, 405, ""},
		{"bad search param", "GET", "Patient?bogus=1", nil, nil, 400, "bogus"},
		{"bad _count", "GET", "Patient?_count=-1", nil, nil, 400, "_count"},
		{"bad date value", "GET", "Patient?birthdate=notadate", nil, nil, 400, ""},
		{"bad _sort", "GET", "Patient?_sort=nonsense", nil, nil, 400, "_sort"},
		{"bad cursor", "GET", "Patient?_cursor=%00garbage", nil, nil, 400, ""},
		{"chained param", "GET", "Observation?subject.name=x", nil, nil, 400, ""},
		{"chained param with type", "GET", "Observation?subject:Patient.name=x", nil, nil, 400, ""},
		{"bad If-Match", "PUT", "Patient/" + id, `{"resourceType":"Patient","id":"` + id + `"}`, []string{"If-Match", "nope"}, 400, ""},
		{"bad vid", "GET", "Patient/" + id + "/_history/abc", nil, nil, 404, ""},
		{"bad _since", "GET", "Patient/_history?_since=soon", nil, nil, 400, ""},
		{"bad history cursor", "GET", "_history?_cursor=%21%21", nil, nil, 400, "_cursor"},
		{"history cursor wrong shape", "GET", "_history?_cursor=YWJj", nil, nil, 400, "_cursor"},
		{"bundle not a bundle", "POST", "", `{"resourceType":"Patient"}`, nil, 400, ""},
		{"bundle malformed", "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{]}`, nil, 400, ""},
		{"bundle entry not object", "POST", "", `{"resourceType":"Bundle","type":"batch","entry":[1]}`, nil, 400, ""},
		{"bundle missing request", "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"}}]}`, nil, 400, ""},
		{"bundle bad method", "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"FLY","url":"Patient"}}]}`, nil, 400, ""},
		{"bundle PATCH entry", "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PATCH","url":"Patient/x"}}]}`, nil, 400, ""},
		{"bundle absolute foreign url", "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"http://elsewhere/Patient"}}]}`, nil, 400, ""},
		{"bundle duplicate target", "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","id":"d1"},"request":{"method":"PUT","url":"Patient/d1"}},{"resource":{"resourceType":"Patient","id":"d1"},"request":{"method":"PUT","url":"Patient/d1"}}]}`, nil, 400, ""},
		{"bundle duplicate fullUrl", "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`, nil, 400, "Bundle.entry[1].fullUrl"},
		{"conditional update without criteria", "PUT", "Patient", `{"resourceType":"Patient"}`, nil, 400, ""},
		{"unsupported _summary", "GET", "Patient?_summary=text", nil, nil, 400, ""},
		{"unknown operation", "GET", "$nothing", nil, nil, 404, ""},
		{"unknown type operation", "POST", "Patient/$nothing", `{}`, nil, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body, tc.headers...)
			assert.Equal(t, tc.status, r.Status, "%s", r)
			isOutcome(t, r)
			if tc.expr != "" {
				assert.Equal(t, tc.expr, r.get("issue.0.expression.0").String(), "%s", r)
			}
		})
	}
	assert.Zero(t, e.srv.Panics(), "bad input reached the recover middleware")
}

// TestGoodVariants covers inputs that look unusual but are valid.
func TestGoodVariants(t *testing.T) {
	e := newEnv(t)
	id := e.create(patient("Variant")).Get("id").String()
	cases := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
	}{
		{"content type with charset", "POST", "Patient", `{"resourceType":"Patient"}`, []string{"Content-Type", "application/fhir+json; charset=UTF-8"}, 201},
		{"plain application/json", "POST", "Patient", `{"resourceType":"Patient"}`, []string{"Content-Type", "application/json"}, 201},
		{"_format with raw plus", "GET", "Patient/" + id + "?_format=application/fhir+json", nil, nil, 200},
		{"_format json", "GET", "Patient/" + id + "?_format=json", nil, nil, 200},
		{"accept list with json", "GET", "Patient/" + id, nil, []string{"Accept", "application/fhir+xml;q=0.9, application/fhir+json"}, 200},
		{"accept any", "GET", "Patient/" + id, nil, []string{"Accept", "*/*"}, 200},
		{"HEAD read", "HEAD", "Patient/" + id, nil, nil, 200},
		{"HEAD search", "HEAD", "Patient?family=Variant", nil, nil, 200},
		{"empty parameter value", "GET", "Patient?family=", nil, nil, 200},
		{"If-None-Exist with type prefix", "POST", "Patient", `{"resourceType":"Patient","name":[{"family":"Variant"}]}`, []string{"If-None-Exist", "Patient?_id=" + id}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body, tc.headers...)
			assert.Equal(t, tc.status, r.Status, "%s", r)
		})
	}
	assert.Zero(t, e.srv.Panics())
}

func TestRecoverAnswersWithOutcome(t *testing.T) {
	e := newEnv(t)
	e.srv.Router().Get("/boom", func(http.ResponseWriter, *http.Request) { panic("test panic") })
	r := e.do(http.MethodGet, e.http.URL+"/boom", nil)
	assert.Equal(t, http.StatusInternalServerError, r.Status)
	isOutcome(t, r)
	assert.EqualValues(t, 1, e.srv.Panics())
}

func TestCapabilityStatement(t *testing.T) {
	e := newEnv(t)
	e.srv.Operation(rest.Operation{Name: "ping", Level: rest.Type, Types: []string{"Group"},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			outcome.Write(w, http.StatusOK, outcome.New("information", "informational", "pong "+chi.URLParam(r, "type")))
		})})
	e.srv.Instantiate("http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data")
	r := e.do(http.MethodGet, "metadata", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	assert.Equal(t, "CapabilityStatement", r.get("resourceType").String())
	assert.Equal(t, "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data", r.get("instantiates.0").String())
	assert.Equal(t, "4.0.1", r.get("fhirVersion").String())
	var patient, group string
	for _, res := range r.get("rest.0.resource").Array() {
		switch res.Get("type").String() {
		case "Patient":
			patient = res.Raw
		case "Group":
			group = res.Raw
		}
	}
	require.NotEmpty(t, patient)
	assert.Contains(t, patient, `"name":"birthdate"`)
	assert.Contains(t, patient, `"code":"create"`)
	assert.Contains(t, patient, `"conditionalCreate":true`)
	assert.Contains(t, group, `"name":"ping"`)
	assert.NotContains(t, patient, `"name":"ping"`)
	assert.Contains(t, r.get("rest.0.interaction").Raw, "transaction")

	op := e.do(http.MethodPost, "Group/$ping", `{}`)
	assert.Equal(t, http.StatusOK, op.Status, "%s", op)
	assert.Contains(t, string(op.Body), "pong Group")
	op = e.do(http.MethodPost, "Patient/$ping", `{}`)
	assert.Equal(t, http.StatusNotFound, op.Status)

	// Extra routes under the FHIR base win over the generic {type}/{id}.
	e.srv.FHIR().Get("/bulkstatus/{job}", func(w http.ResponseWriter, r *http.Request) {
		outcome.Write(w, http.StatusAccepted, outcome.New("information", "informational", "job "+chi.URLParam(r, "job")))
	})
	st := e.do(http.MethodGet, "bulkstatus/j1", nil)
	assert.Equal(t, http.StatusAccepted, st.Status, "%s", st)
	assert.Contains(t, string(st.Body), "job j1")
}

func TestOperationalEndpoints(t *testing.T) {
	e := newEnv(t)
	e.create(patient("Metrics"))
	r := e.do(http.MethodGet, e.http.URL+"/healthz", nil)
	assert.Equal(t, http.StatusOK, r.Status)
	r = e.do(http.MethodGet, e.http.URL+"/metrics", nil)
	require.Equal(t, http.StatusOK, r.Status)
	body := string(r.Body)
	assert.Contains(t, body, `equitas_http_requests_total{code="201",interaction="create",type="Patient"} 1`)
	assert.Contains(t, body, `equitas_store_resources{type="Patient"} 1`)
	assert.Contains(t, body, `equitas_http_request_duration_seconds_bucket{interaction="create",type="Patient"`)
}
