// Package export implements FHIR Bulk Data Access 2.0.0 $export: kick-off
// parameter handling, the export job that writes NDJSON files from a
// consistent store snapshot, and the completion manifest.
//
// Choices where the spec lets the server decide (documented in README.md):
//   - a missing `Prefer: respond-async` or `Accept` header is treated as if
//     it had been sent (the spec allows either an error or this);
//   - `_since` on Group export returns only resources changed after _since,
//     also for patients added to the group later;
//   - files are split when they reach Options.MaxFileBytes;
//   - `deleted` is filled for system-level exports with `_since`;
//   - at Patient and Group level `_type` may only name types of the
//     Patient compartment (others are a 400, or ignored under lenient);
//     a resource in several patients' compartments is written once;
//   - Provenance is exported like any other type (all of it at system
//     level, the compartment's at Patient/Group level), so the
//     includeAssociatedData values change nothing;
//   - a client bound to an organization exports, at every level, only what
//     access.Principal.Sees lets it see (its attributed patients'
//     compartments, its own Groups, directory resources); Authorize is the
//     kick-off policy (scopes, Group visibility);
//   - Group/[id]/$davinci-data-export (ParseDaVinci) also writes the Group
//     itself, rendered with its members, and the Practitioner,
//     PractitionerRole, Organization and Location resources the export
//     references.
package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/equitas/equitas/fhir/resourcetype"
)

// Level is where the export was kicked off.
type Level string

const (
	System  Level = "system"
	Patient Level = "patient"
	Group   Level = "group"
)

// Params is a validated kick-off request; it is stored with the job.
type Params struct {
	Level        Level               `json:"level"`
	GroupID      string              `json:"groupId,omitempty"`
	OutputFormat string              `json:"outputFormat"`
	Since        time.Time           `json:"since,omitzero"`
	Until        time.Time           `json:"until,omitzero"`
	Types        []string            `json:"types,omitempty"`
	Elements     []string            `json:"elements,omitempty"`
	Patients     []string            `json:"patients,omitempty"`
	Associated   []string            `json:"includeAssociatedData,omitempty"`
	TypeFilters  map[string][]string `json:"typeFilters,omitempty"` // type -> raw query strings (OR-ed)
	Ignored      []string            `json:"ignored,omitempty"`     // parameters ignored under handling=lenient
	MinimumTypes []string            `json:"minimumTypes,omitempty"`
	// Referenced are types outside the patient compartment exported at
	// Group level when the exported resources reference them
	// ($davinci-data-export: the attributed Practitioner, PractitionerRole,
	// Organization and Location).
	Referenced []string `json:"referenced,omitempty"`
	// ExportType is $davinci-data-export's exportType.
	ExportType string `json:"exportType,omitempty"`

	// Who asked, as captured at kick-off; the job runs without the request.
	ClientID     string   `json:"clientId"`
	Scopes       []string `json:"scopes"`
	Organization string   `json:"organization,omitempty"`
	// FileBase is the absolute URL prefix of job files, e.g.
	// https://host/fhir/bulkfiles; a file's URL is FileBase/<job>/<name>.
	FileBase            string `json:"fileBase"`
	RequiresAccessToken bool   `json:"requiresAccessToken"`
}

// ParamError is a kick-off parameter the server cannot honour; the HTTP
// layer answers 400 with an OperationOutcome naming it.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string { return fmt.Sprintf("parameter %s: %s", e.Param, e.Reason) }

// Kickoff is the raw request: query parameters for GET, or the parameters
// of a Parameters body for POST, both as repeated name → values.
type Kickoff struct {
	Level   Level
	GroupID string
	Values  url.Values
	Lenient bool // Prefer: handling=lenient
	IsPOST  bool
}

var outputFormats = map[string]bool{
	"application/fhir+ndjson": true, "application/ndjson": true, "ndjson": true,
}

// associatedValues are the includeAssociatedData codes this server supports.
var associatedValues = map[string]bool{"LatestProvenanceResources": true, "RelevantProvenanceResources": true}

// Parse validates a kick-off request. Unsupported parameters or values are
// errors unless k.Lenient, in which case they are recorded in Ignored and
// reported in the manifest's error file.
func Parse(k Kickoff) (*Params, error) {
	p := &Params{Level: k.Level, GroupID: k.GroupID, OutputFormat: "application/fhir+ndjson"}
	reject := func(param, reason string) error {
		if k.Lenient {
			p.Ignored = append(p.Ignored, fmt.Sprintf("%s: %s", param, reason))
			return nil
		}
		return &ParamError{Param: param, Reason: reason}
	}
	// Repeated parameters are treated as if comma-joined (Bulk Data 2.0.0).
	list := func(name string) []string {
		var out []string
		for _, v := range k.Values[name] {
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
		}
		return out
	}
	names := make([]string, 0, len(k.Values))
	for n := range k.Values {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		vals := k.Values[name]
		switch name {
		case "_outputFormat":
			f := vals[len(vals)-1]
			if !outputFormats[f] {
				if err := reject(name, fmt.Sprintf("unsupported format %q (supported: application/fhir+ndjson, application/ndjson, ndjson)", f)); err != nil {
					return nil, err
				}
			}
		case "_since", "_until":
			t, err := parseInstant(vals[len(vals)-1])
			if err != nil {
				if err := reject(name, err.Error()); err != nil {
					return nil, err
				}
				continue
			}
			if name == "_since" {
				p.Since = t
			} else {
				p.Until = t
			}
		case "_type", "resourceTypes":
			for _, t := range list(name) {
				if !resourcetype.Valid(t) {
					if err := reject("_type", fmt.Sprintf("unknown resource type %q", t)); err != nil {
						return nil, err
					}
					continue
				}
				if k.Level != System && !inPatientCompartment(t) {
					if err := reject("_type", fmt.Sprintf("%s is not in the Patient compartment, so a %s-level export cannot hold it", t, k.Level)); err != nil {
						return nil, err
					}
					continue
				}
				p.Types = appendUnique(p.Types, t)
			}
		case "_elements":
			for _, e := range list(name) {
				if !validElement(e) {
					if err := reject(name, fmt.Sprintf("invalid element %q (want [Type.]element)", e)); err != nil {
						return nil, err
					}
					continue
				}
				p.Elements = appendUnique(p.Elements, e)
			}
		case "patient":
			if k.Level == System {
				if err := reject(name, "not allowed at system level"); err != nil {
					return nil, err
				}
				continue
			}
			if !k.IsPOST {
				if err := reject(name, "only supported with POST (Bulk Data 2.0.0)"); err != nil {
					return nil, err
				}
				continue
			}
			for _, ref := range list(name) {
				id, ok := strings.CutPrefix(ref, "Patient/")
				if !ok || id == "" || strings.Contains(id, "/") {
					if err := reject(name, fmt.Sprintf("invalid patient reference %q", ref)); err != nil {
						return nil, err
					}
					continue
				}
				p.Patients = appendUnique(p.Patients, id)
			}
		case "includeAssociatedData":
			for _, v := range list(name) {
				if !associatedValues[v] {
					if err := reject(name, fmt.Sprintf("unsupported value %q", v)); err != nil {
						return nil, err
					}
					continue
				}
				p.Associated = appendUnique(p.Associated, v)
			}
		case "_typeFilter":
			for _, v := range list(name) {
				q, err := url.QueryUnescape(v)
				if err != nil {
					q = v
				}
				typ, query, _ := strings.Cut(q, "?")
				if !resourcetype.Valid(typ) {
					if err := reject(name, fmt.Sprintf("unknown resource type in %q", q)); err != nil {
						return nil, err
					}
					continue
				}
				vals, err := url.ParseQuery(query)
				if err == nil {
					for n := range vals {
						if n == "_include" || n == "_revinclude" || n == "_sort" {
							err = errors.New(n + " is not allowed in _typeFilter")
						}
					}
				}
				if err != nil {
					if err := reject(name, fmt.Sprintf("%q: %v", q, err)); err != nil {
						return nil, err
					}
					continue
				}
				if p.TypeFilters == nil {
					p.TypeFilters = map[string][]string{}
				}
				p.TypeFilters[typ] = append(p.TypeFilters[typ], query)
			}
		case "exportType":
			// $davinci-data-export; validated by the caller that knows the operation.
		default:
			if err := reject(name, "unsupported parameter"); err != nil {
				return nil, err
			}
		}
	}
	if !p.Until.IsZero() && !p.Since.IsZero() && !p.Until.After(p.Since) {
		return nil, &ParamError{Param: "_until", Reason: "must be after _since"}
	}
	return p, nil
}

func parseInstant(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a FHIR instant (e.g. 2024-01-01T00:00:00Z)", s)
}

func validElement(e string) bool {
	typ, el, qualified := strings.Cut(e, ".")
	if !qualified {
		el = typ
	} else if !resourcetype.Valid(typ) {
		return false
	}
	if el == "" || strings.ContainsAny(el, ". ") {
		return false
	}
	return true
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// ParametersBody turns a POST kick-off Parameters resource into repeated
// name → values, accepting the value types bulk clients send.
func ParametersBody(body []byte) (url.Values, error) {
	var params struct {
		ResourceType string `json:"resourceType"`
		Parameter    []map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &params); err != nil {
		return nil, fmt.Errorf("malformed Parameters: %w", err)
	}
	if params.ResourceType != "Parameters" {
		return nil, fmt.Errorf("body must be a Parameters resource, not %q", params.ResourceType)
	}
	out := url.Values{}
	for i, prm := range params.Parameter {
		var name string
		if err := json.Unmarshal(prm["name"], &name); err != nil || name == "" {
			return nil, fmt.Errorf("parameter[%d]: missing name", i)
		}
		found := false
		for k, raw := range prm {
			if !strings.HasPrefix(k, "value") {
				continue
			}
			found = true
			switch k {
			case "valueReference":
				var ref struct{ Reference string }
				if err := json.Unmarshal(raw, &ref); err != nil {
					return nil, fmt.Errorf("parameter[%d] %s: %w", i, name, err)
				}
				out.Add(name, ref.Reference)
			default:
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return nil, fmt.Errorf("parameter[%d] %s: %s must be a string-valued type", i, name, k)
				}
				out.Add(name, s)
			}
		}
		if !found {
			return nil, fmt.Errorf("parameter[%d] %s: no value", i, name)
		}
	}
	return out, nil
}

// inPatientCompartment reports whether resources of typ can be in a
// patient's compartment (FHIR R4 Patient CompartmentDefinition, as the
// store indexes it); Patient/Group-level exports hold only these types.
func inPatientCompartment(typ string) bool {
	return slices.Contains(patientCompartmentTypes, typ)
}

var patientCompartmentTypes = []string{
	"Patient",
	"Account", "AdverseEvent", "AllergyIntolerance", "Appointment", "AppointmentResponse", "AuditEvent",
	"Basic", "BodyStructure", "CarePlan", "CareTeam", "ChargeItem", "Claim", "ClaimResponse",
	"ClinicalImpression", "Communication", "CommunicationRequest", "Composition", "Condition", "Consent",
	"Coverage", "CoverageEligibilityRequest", "CoverageEligibilityResponse", "DetectedIssue", "Device",
	"DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest", "DocumentReference",
	"Encounter", "EnrollmentRequest", "EpisodeOfCare", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag",
	"Goal", "Group", "ImagingStudy", "Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation",
	"Invoice", "List", "MeasureReport", "Media", "MedicationAdministration", "MedicationDispense",
	"MedicationRequest", "MedicationStatement", "MolecularSequence", "NutritionOrder", "Observation", "Patient",
	"Person", "Procedure", "Provenance", "QuestionnaireResponse", "RelatedPerson", "RequestGroup",
	"ResearchSubject", "RiskAssessment", "Schedule", "ServiceRequest", "Specimen", "SupplyDelivery",
	"SupplyRequest", "Task", "VisionPrescription",
}
