package conformance

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// oversizeBytes is the size of the body the oversized-request check sends;
// far above any sane single-resource limit, streamed so the suite never
// holds it in memory.
const oversizeBytes = 96 << 20

func checkErrors(t *testing.T, c *client, run runID) {
	family := run.family("Err")
	invalid := []int{http.StatusBadRequest, http.StatusUnprocessableEntity}
	obsNoStatus := `{"resourceType":"Observation","code":{"text":"x"},"subject":{"reference":"Patient/x"}}`
	cases := []struct {
		name        string
		method      string
		path        string
		body        string
		contentType string // empty: application/fhir+json
		wants       []int
		headers     []header
	}{
		{"malformed JSON", http.MethodPost, "Patient", `{"resourceType":"Patient","name":[`, "", []int{http.StatusBadRequest}, nil},
		{"body is a JSON array", http.MethodPost, "Patient", `[{"resourceType":"Patient"}]`, "", []int{http.StatusBadRequest}, nil},
		{"empty body", http.MethodPost, "Patient", "", "", []int{http.StatusBadRequest}, nil},
		{"resourceType differs from the URL on create", http.MethodPost, "Patient", obsNoStatus, "", invalid, nil},
		{"resourceType differs from the URL on update", http.MethodPut, "Patient/" + run.id("err"), `{"resourceType":"Organization","id":"` + run.id("err") + `"}`, "", invalid, nil},
		{"resourceType missing", http.MethodPost, "Patient", `{"name":[{"family":"` + family + `"}]}`, "", invalid, nil},
		{"missing required element (Observation.status)", http.MethodPost, "Observation", obsNoStatus, "", invalid, nil},
		{"invalid date value", http.MethodPost, "Patient", `{"resourceType":"Patient","birthDate":"not-a-date"}`, "", invalid, nil},
		{"invalid code value", http.MethodPost, "Patient", `{"resourceType":"Patient","gender":"robot"}`, "", invalid, nil},
		{"wrong JSON type for an element", http.MethodPost, "Patient", `{"resourceType":"Patient","active":"yes"}`, "", invalid, nil},
		{"duplicate JSON property", http.MethodPost, "Patient", `{"resourceType":"Patient","active":true,"active":false}`, "", invalid, nil},
		{"null property value", http.MethodPost, "Patient", `{"resourceType":"Patient","active":null}`, "", invalid, nil},
		{"empty array", http.MethodPost, "Patient", `{"resourceType":"Patient","name":[]}`, "", invalid, nil},
		{"empty string", http.MethodPost, "Patient", `{"resourceType":"Patient","gender":""}`, "", invalid, nil},
		{"unknown element", http.MethodPost, "Patient", `{"resourceType":"Patient","favouriteColour":"blue"}`, "", invalid, nil},
		{"JSON nested 10000 deep", http.MethodPost, "Patient", `{"resourceType":"Patient","text":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, "", []int{http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge}, nil},
		{"invalid UTF-8", http.MethodPost, "Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"\xff\xfe\"}]}", "", invalid, nil},
		{"NUL character in a string", http.MethodPost, "Patient", `{"resourceType":"Patient","name":[{"family":"a\u0000b"}]}`, "", invalid, nil},
		{"impossible calendar date", http.MethodPost, "Patient", `{"resourceType":"Patient","birthDate":"2020-02-30"}`, "", invalid, nil},
		{"dateTime with a time but no zone", http.MethodPost, "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2020-01-01T10:00:00"}`, "", invalid, nil},
		{"integer with a fraction", http.MethodPost, "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueInteger":1.5}`, "", invalid, nil},
		{"invalid month in a search date", http.MethodGet, "Patient?birthdate=2020-13", "", "", []int{http.StatusBadRequest}, nil},
		{"update with an id longer than 64", http.MethodPut, "Patient/" + strings.Repeat("a", 65), `{"resourceType":"Patient","id":"` + strings.Repeat("a", 65) + `"}`, "", invalid, nil},
		{"non-Bundle posted to the base", http.MethodPost, "", `{"resourceType":"Patient"}`, "", invalid, nil},
		{"invalid search value", http.MethodGet, "Patient?birthdate=not-a-date", "", "", []int{http.StatusBadRequest}, nil},
		{"unknown _include", http.MethodGet, "Patient?_include=Patient:no-such-param", "", "", []int{http.StatusBadRequest}, nil},
		{"invalid _count", http.MethodGet, "Patient?_count=many", "", "", []int{http.StatusBadRequest}, nil},
		{"wrong Content-Type text/plain", http.MethodPost, "Patient", `{"resourceType":"Patient"}`, "text/plain", []int{http.StatusUnsupportedMediaType}, nil},
		{"wrong Content-Type application/xml", http.MethodPost, "Patient", `{"resourceType":"Patient"}`, "application/xml", []int{http.StatusUnsupportedMediaType}, nil},
		{"Accept of a format the server cannot produce", http.MethodGet, "Patient?_count=1", "", "", []int{http.StatusNotAcceptable}, []header{{"Accept", "application/fhir+xml"}}},
		{"_format the server cannot produce", http.MethodGet, "Patient?_count=1&_format=xml", "", "", []int{http.StatusNotAcceptable}, nil},
		{"DELETE on the type without criteria", http.MethodDelete, "Patient", "", "", []int{http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusPreconditionFailed}, nil},
		{"PUT on the type without criteria", http.MethodPut, "Patient", `{"resourceType":"Patient"}`, "", []int{http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusPreconditionFailed}, nil},
		{"POST to an instance", http.MethodPost, "Patient/" + run.id("absent"), `{"resourceType":"Patient"}`, "", []int{http.StatusBadRequest, http.StatusMethodNotAllowed}, nil},
		{"If-None-Exist with an unknown parameter", http.MethodPost, "Patient", `{"resourceType":"Patient"}`, "", []int{http.StatusBadRequest}, []header{{"If-None-Exist", "zz-unknown-param=1"}}},
		{"unknown type search", http.MethodGet, "NotAType", "", "", []int{http.StatusNotFound}, nil},
		{"unknown type read", http.MethodGet, "NotAType/1", "", "", []int{http.StatusNotFound}, nil},
		{"unknown type create", http.MethodPost, "NotAType", `{"resourceType":"NotAType"}`, "", []int{http.StatusNotFound}, nil},
		{"unknown id", http.MethodGet, "Patient/" + run.id("absent"), "", "", []int{http.StatusNotFound}, nil},
		{"id with invalid characters", http.MethodGet, "Patient/bad!id", "", "", []int{http.StatusNotFound}, nil},
		{"id longer than 64 characters", http.MethodGet, "Patient/" + strings.Repeat("a", 65), "", "", []int{http.StatusNotFound}, nil},
		{"update with an invalid id", http.MethodPut, "Patient/bad!id", `{"resourceType":"Patient","id":"bad!id"}`, "", invalid, nil},
		{"unsupported method", http.MethodPatch, "Patient/" + run.id("absent"), `{"resourceType":"Patient"}`, "", []int{http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs := tc.headers
			if tc.contentType != "" {
				hs = append(hs, header{"Content-Type", tc.contentType})
			}
			var body any
			if tc.body != "" || tc.method == http.MethodPost || tc.method == http.MethodPut {
				body = []byte(tc.body)
			}
			requireOutcome(t, c.do(t, tc.method, tc.path, body, hs...), tc.wants...)
		})
	}

	t.Run("application/json is accepted as FHIR JSON", func(t *testing.T) {
		r := c.do(t, http.MethodPost, "Patient", patient(family, "Json"), header{"Content-Type", "application/json"})
		assert.Equal(t, http.StatusCreated, r.Status, "%s", r)
	})

	t.Run("oversized body is 413", func(t *testing.T) { checkOversize(t, c) })

	t.Run("rejected writes leave nothing behind", func(t *testing.T) {
		matches, _ := c.searchAll(t, "Patient?family="+family+"&given=Json")
		assert.Len(t, matches, 1, "only the accepted application/json create")
		matches, _ = c.searchAll(t, "Patient?family="+family)
		assert.Len(t, matches, 1, "a rejected request wrote a resource")
	})
}

// checkOversize streams a syntactically valid Patient far larger than any
// resource limit, announcing its length and asking for 100-continue so a
// server can refuse it before reading.
func checkOversize(t *testing.T, c *client) {
	head := `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">`
	tail := `</div>"}}`
	pad := int64(oversizeBytes - len(head) - len(tail))
	body := io.MultiReader(strings.NewReader(head), io.LimitReader(repeatByte('a'), pad), strings.NewReader(tail))

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, c.url("Patient"), body)
	require.NoError(t, err)
	req.ContentLength = oversizeBytes
	req.Header.Set("Content-Type", fhirJSON)
	req.Header.Set("Accept", fhirJSON)
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 60 * time.Second}).Do(req)
	require.NoError(t, err, "the server must answer 413, not drop the connection")
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	requireOutcome(t, &response{Method: req.Method, URL: req.URL.String(), Status: res.StatusCode, Header: res.Header, Body: data}, http.StatusRequestEntityTooLarge)
}

// repeatByte is an endless reader of one byte.
type repeatByte byte

func (b repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
