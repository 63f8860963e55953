package export

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		k       Kickoff
		want    func(t *testing.T, p *Params)
		wantErr string
	}{
		{
			name: "all three ndjson spellings",
			k:    Kickoff{Level: System, Values: url.Values{"_outputFormat": {"ndjson"}}},
			want: func(t *testing.T, p *Params) { assert.Equal(t, "application/fhir+ndjson", p.OutputFormat) },
		},
		{name: "application/ndjson", k: Kickoff{Level: System, Values: url.Values{"_outputFormat": {"application/ndjson"}}}},
		{name: "application/fhir+ndjson", k: Kickoff{Level: System, Values: url.Values{"_outputFormat": {"application/fhir+ndjson"}}}},
		{
			name:    "unsupported format",
			k:       Kickoff{Level: System, Values: url.Values{"_outputFormat": {"text/csv"}}},
			wantErr: "_outputFormat",
		},
		{
			name: "unsupported format is ignored under lenient handling",
			k:    Kickoff{Level: System, Lenient: true, Values: url.Values{"_outputFormat": {"text/csv"}}},
			want: func(t *testing.T, p *Params) { assert.Len(t, p.Ignored, 1) },
		},
		{
			name: "repeated _type is comma-joined",
			k:    Kickoff{Level: System, Values: url.Values{"_type": {"Patient,Observation", "Condition", "Patient"}}},
			want: func(t *testing.T, p *Params) {
				assert.Equal(t, []string{"Patient", "Observation", "Condition"}, p.Types)
			},
		},
		{
			name:    "unknown type",
			k:       Kickoff{Level: System, Values: url.Values{"_type": {"Patient,Bogus"}}},
			wantErr: "Bogus",
		},
		{
			name: "resourceTypes alias",
			k:    Kickoff{Level: Group, Values: url.Values{"resourceTypes": {"Group,Patient,Coverage"}}},
			want: func(t *testing.T, p *Params) { assert.Equal(t, []string{"Group", "Patient", "Coverage"}, p.Types) },
		},
		{
			name: "_since instant",
			k:    Kickoff{Level: System, Values: url.Values{"_since": {"2024-01-02T03:04:05+01:00"}}},
			want: func(t *testing.T, p *Params) {
				assert.Equal(t, time.Date(2024, 1, 2, 2, 4, 5, 0, time.UTC), p.Since)
			},
		},
		{name: "_since not an instant", k: Kickoff{Level: System, Values: url.Values{"_since": {"2024-01-02"}}}, wantErr: "_since"},
		{
			name: "_elements",
			k:    Kickoff{Level: System, Values: url.Values{"_elements": {"id,Patient.gender", "birthDate"}}},
			want: func(t *testing.T, p *Params) {
				assert.Equal(t, []string{"id", "Patient.gender", "birthDate"}, p.Elements)
			},
		},
		{name: "_elements nested path", k: Kickoff{Level: System, Values: url.Values{"_elements": {"Patient.name.given"}}}, wantErr: "_elements"},
		{name: "patient on GET", k: Kickoff{Level: Patient, Values: url.Values{"patient": {"Patient/1"}}}, wantErr: "POST"},
		{name: "patient at system level", k: Kickoff{Level: System, IsPOST: true, Values: url.Values{"patient": {"Patient/1"}}}, wantErr: "system"},
		{
			name: "patient on POST",
			k:    Kickoff{Level: Group, IsPOST: true, Values: url.Values{"patient": {"Patient/1", "Patient/2"}}},
			want: func(t *testing.T, p *Params) { assert.Equal(t, []string{"1", "2"}, p.Patients) },
		},
		{
			name: "_typeFilter OR-ed per type",
			k: Kickoff{Level: System, Values: url.Values{"_typeFilter": {
				"MedicationRequest%3Fstatus%3Dactive", "MedicationRequest?status=completed,Observation?category=laboratory",
			}}},
			want: func(t *testing.T, p *Params) {
				assert.Equal(t, []string{"status=active", "status=completed"}, p.TypeFilters["MedicationRequest"])
				assert.Equal(t, []string{"category=laboratory"}, p.TypeFilters["Observation"])
			},
		},
		{name: "_typeFilter with _include", k: Kickoff{Level: System, Values: url.Values{"_typeFilter": {"Patient?_include=Patient:organization"}}}, wantErr: "_include"},
		{name: "unknown parameter", k: Kickoff{Level: System, Values: url.Values{"_bogus": {"1"}}}, wantErr: "_bogus"},
		{
			name: "includeAssociatedData",
			k:    Kickoff{Level: System, Values: url.Values{"includeAssociatedData": {"LatestProvenanceResources"}}},
			want: func(t *testing.T, p *Params) { assert.Equal(t, []string{"LatestProvenanceResources"}, p.Associated) },
		},
		{name: "includeAssociatedData unknown", k: Kickoff{Level: System, Values: url.Values{"includeAssociatedData": {"_custom"}}}, wantErr: "includeAssociatedData"},
		{
			name:    "_until before _since",
			k:       Kickoff{Level: System, Values: url.Values{"_since": {"2024-01-02T00:00:00Z"}, "_until": {"2024-01-01T00:00:00Z"}}},
			wantErr: "_until",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.k)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				var pe *ParamError
				assert.ErrorAs(t, err, &pe)
				return
			}
			require.NoError(t, err)
			if tt.want != nil {
				tt.want(t, p)
			}
		})
	}
}

func TestParametersBody(t *testing.T) {
	v, err := ParametersBody([]byte(`{"resourceType":"Parameters","parameter":[
		{"name":"_since","valueInstant":"2024-01-01T00:00:00Z"},
		{"name":"_type","valueString":"Patient"},{"name":"_type","valueString":"Observation,Condition"},
		{"name":"patient","valueReference":{"reference":"Patient/123"}}]}`))
	require.NoError(t, err)
	assert.Equal(t, []string{"Patient", "Observation,Condition"}, v["_type"])
	assert.Equal(t, []string{"Patient/123"}, v["patient"])
	assert.Equal(t, []string{"2024-01-01T00:00:00Z"}, v["_since"])

	for _, bad := range []string{`{`, `{"resourceType":"Patient"}`, `{"resourceType":"Parameters","parameter":[{"valueString":"x"}]}`,
		`{"resourceType":"Parameters","parameter":[{"name":"_type"}]}`, `{"resourceType":"Parameters","parameter":[{"name":"_type","valueInteger":3}]}`} {
		_, err := ParametersBody([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestSubset(t *testing.T) {
	body := []byte(`{"resourceType":"Observation","id":"o1","meta":{"versionId":"2"},"status":"final","code":{"text":"x"},"valueQuantity":{"value":1},"_status":{"extension":[]},"subject":{"reference":"Patient/1"},"note":[{"text":"n"}]}`)
	out, err := subset(body, "Observation", elementsFor([]string{"Observation.value", "Patient.gender"}, "Observation"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"resourceType":"Observation","id":"o1","meta":{"versionId":"2","tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED","display":"subsetted"}]},"status":"final","code":{"text":"x"},"valueQuantity":{"value":1},"_status":{"extension":[]}}`, string(out))
	assert.Nil(t, elementsFor([]string{"Patient.gender"}, "Observation"), "elements for other types only leave this type whole")
}
