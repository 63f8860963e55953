package validate

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/outcome"
)

const patient = `{"resourceType":"Patient","id":"p1","meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},` +
	`"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3","display":"White"}},{"url":"text","valueString":"White"}]}],` +
	`"identifier":[{"system":"http://hospital.example/mrn","value":"12345"}],"active":true,` +
	`"name":[{"use":"official","family":"Doe","given":["Jane","Q"]}],"gender":"female","birthDate":"1980-02-29",` +
	`"_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1980-02-29T10:00:00Z"}]},` +
	`"address":[{"line":["1 Main St"],"city":"Springfield","state":"IL","postalCode":"62701"}],` +
	`"contained":[{"resourceType":"Organization","id":"o1","name":"Acme"}],"managingOrganization":{"reference":"#o1"}}`

const observation = `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},` +
	`"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-01-05T08:30:00Z","valueQuantity":{"value":7.40,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`

func TestResourceValid(t *testing.T) {
	v, err := New()
	require.NoError(t, err)
	tests := []struct {
		name, body, typ, id string
	}{
		{"patient with extensions and contained", patient, "Patient", "p1"},
		{"observation without id", observation, "Observation", ""},
		{"primitive array with extensions",
			`{"resourceType":"Patient","name":[{"given":["A"],"_given":[{"extension":[{"url":"http://x","valueString":"y"}]}]}]}`, "Patient", ""},
		{"transaction bundle with urn:uuid references",
			`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},` +
				`{"resource":` + observation[:len(observation)-1] + `,"performer":[{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}]},"request":{"method":"POST","url":"Observation"}}]}`, "Bundle", ""},
		{"parameters carrying a resource (google/fhir v0.7.4 bug worked around)",
			`{"resourceType":"Parameters","parameter":[{"name":"MemberPatient","resource":{"resourceType":"Patient","id":"x","gender":"male"}},{"name":"n","part":[{"name":"c","resource":{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/x"},"payor":[{"reference":"Organization/o"}]}}]}]}`, "Parameters", ""},
		{"whitespace around the object", " \n" + observation + "\n", "Observation", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, id, err := v.Resource([]byte(tt.body))
			require.NoError(t, err)
			assert.Equal(t, tt.typ, typ)
			assert.Equal(t, tt.id, id)
		})
	}
}

func TestResourceInvalid(t *testing.T) {
	v, err := New()
	require.NoError(t, err)
	tests := []struct {
		name, body string
		code       string
		expr       string // expected expression of the first issue
	}{
		{"not JSON", `{"resourceType":"Patient",`, "structure", "Patient"},
		{"array at top level", `[{"resourceType":"Patient"}]`, "structure", ""},
		{"empty body", ``, "structure", ""},
		{"trailing garbage", `{"resourceType":"Patient"} x`, "structure", "Patient"},
		{"missing resourceType", `{"id":"a"}`, "required", ""},
		{"unknown resourceType", `{"resourceType":"Foo"}`, "invalid", "Foo"},
		{"unknown element", `{"resourceType":"Patient","name":[{"family":"x","bar":1}]}`, "structure", "Patient.name[0].bar"},
		{"object for array", `{"resourceType":"Patient","name":[{"given":"Amy"}]}`, "value", "Patient.name[0].given"},
		{"bad date", `{"resourceType":"Patient","birthDate":"1987-13-45"}`, "value", "Patient.birthDate"},
		{"bad code", `{"resourceType":"Patient","gender":"F"}`, "code-invalid", "Patient.gender"},
		{"bad id", `{"resourceType":"Patient","id":"a b"}`, "value", "Patient.id"},
		{"missing required", `{"resourceType":"Observation","code":{"text":"x"}}`, "required", "Observation"},
		{"wrong reference target", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Medication/m"}}`, "value", "Observation.subject"},
		{"string for boolean", `{"resourceType":"Patient","active":"true"}`, "value", "Patient.active"},
		{"empty array", `{"resourceType":"Patient","name":[]}`, "value", "Patient.name"},
		{"null property", `{"resourceType":"Patient","gender":null}`, "value", "Patient.gender"},
		{"empty object", `{"resourceType":"Patient","name":[{}]}`, "value", "Patient.name[0]"},
		{"empty string", `{"resourceType":"Patient","name":[{"family":""}]}`, "value", "Patient.name[0].family"},
		{"whitespace string", `{"resourceType":"Patient","name":[{"given":["a","  \t"]}]}`, "value", "Patient.name[0].given[1]"},
		{"escaped whitespace string", `{"resourceType":"Patient","name":[{"family":"\n\u0020"}]}`, "value", "Patient.name[0].family"},
		{"duplicate property", `{"resourceType":"Patient","gender":"male","gender":"female"}`, "structure", "Patient.gender"},
		{"invalid UTF-8", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"\xff\"}]}", "structure", ""},
		{"too deep", `{"resourceType":"Patient","extension":` + strings.Repeat(`[{"url":"x","extension":`, 60) + `[]` + strings.Repeat(`}]`, 60) + `}`, "too-costly", ""},
		{"bundle entry names the entry", `{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Patient","gender":"F"}}]}`, "code-invalid", "Bundle.entry[1].resource.gender"},
		{"contained resource missing required element", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o"},{"resourceType":"Observation","id":"x","code":{"text":"x"}}]}`, "required", "Patient.contained[1]"},
		{"invalid resource nested in Parameters", `{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","gender":"F"}}]}`, "code-invalid", "Parameters.parameter[0].resource.gender"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := v.Resource([]byte(tt.body))
			require.Error(t, err)
			var he *outcome.HTTPError
			require.True(t, errors.As(err, &he), "error %T is not an *outcome.HTTPError", err)
			assert.Equal(t, http.StatusBadRequest, he.Status)
			require.NotEmpty(t, he.Issues)
			is := he.Issues[0]
			assert.Equal(t, tt.code, is.Code, "diagnostics: %s", is.Diagnostics)
			assert.NotEmpty(t, is.Diagnostics)
			if tt.expr != "" {
				require.NotEmpty(t, is.Expression, "diagnostics: %s", is.Diagnostics)
				assert.Equal(t, tt.expr, is.Expression[0])
			}
		})
	}
}

func TestResourceReportsEveryMissingElement(t *testing.T) {
	v, err := New()
	require.NoError(t, err)
	_, _, err = v.Resource([]byte(`{"resourceType":"Observation"}`))
	var he *outcome.HTTPError
	require.True(t, errors.As(err, &he))
	var diags []string
	for _, is := range he.Issues {
		diags = append(diags, is.Diagnostics)
	}
	assert.Len(t, he.Issues, 2)
	assert.Contains(t, strings.Join(diags, "\n"), `"status"`)
	assert.Contains(t, strings.Join(diags, "\n"), `"code"`)
}

// TestConcurrentUse runs valid and invalid resources through one Validator
// from several goroutines (run with -race): the REST server shares one.
func TestConcurrentUse(t *testing.T) {
	v, err := New()
	require.NoError(t, err)
	bad := `{"resourceType":"Patient","gender":"F"}`
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, _, err := v.Resource([]byte(patient)); err != nil {
					errs <- err
					return
				}
				if _, _, err := v.Resource([]byte(bad)); err == nil {
					errs <- fmt.Errorf("invalid resource accepted")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
