package conformance

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// productSearchParams lists, per resource type, the search parameters the
// Equitas product promises, restricted to names R4 defines for that type
// (e.g. Immunization has vaccine-code, not code; Claim has created, not date).
func productSearchParams() map[string][]string {
	clinical := []string{"patient", "subject", "code", "status", "category"}
	return map[string][]string{
		"Patient":              {"identifier", "name", "family", "given", "birthdate", "gender"},
		"Encounter":            {"patient", "subject", "date", "status"},
		"Condition":            {"patient", "subject", "code", "category"},
		"Observation":          append(clinical, "date"),
		"Procedure":            append(clinical, "date"),
		"MedicationRequest":    clinical,
		"Immunization":         {"patient", "date", "status", "vaccine-code"},
		"ServiceRequest":       clinical,
		"Claim":                {"patient", "created", "status"},
		"ExplanationOfBenefit": {"patient", "created", "status"},
		"Coverage":             {"patient", "beneficiary", "status"},
		"Group":                {"identifier", "characteristic", "member"},
		"Practitioner":         {"identifier", "name"},
		"Organization":         {"identifier", "name"},
		"PractitionerRole":     {"identifier"},
	}
}

// minimalResource returns a valid instance of typ (every R4 1..1 element
// set) about the patient with the given id, or nil when the suite has no
// example for the type. References other than the patient are display-only,
// which R4 allows, so no other resource needs to exist.
func minimalResource(typ, patientID string) map[string]any {
	subject := map[string]any{"reference": "Patient/" + patientID}
	concept := func(system, code string) map[string]any {
		return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
	}
	other := map[string]any{"display": "conformance placeholder"}
	r := map[string]any{}
	switch typ {
	case "Patient":
		r["name"] = []any{map[string]any{"family": "Minimal"}}
	case "Practitioner":
		r["name"] = []any{map[string]any{"family": "Minimal"}}
	case "Organization":
		r["name"] = "Minimal Org"
	case "PractitionerRole":
		r["active"] = true
	case "Encounter":
		r["status"] = "finished"
		r["class"] = map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
		r["subject"] = subject
	case "Condition":
		r["subject"] = subject
		r["code"] = concept("http://snomed.info/sct", "44054006")
	case "Observation":
		r["status"] = "final"
		r["code"] = concept("http://loinc.org", "8867-4")
		r["subject"] = subject
	case "Procedure":
		r["status"] = "completed"
		r["code"] = concept("http://snomed.info/sct", "80146002")
		r["subject"] = subject
	case "MedicationRequest":
		r["status"] = "active"
		r["intent"] = "order"
		r["medicationCodeableConcept"] = concept("http://www.nlm.nih.gov/research/umls/rxnorm", "197361")
		r["subject"] = subject
	case "Immunization":
		r["status"] = "completed"
		r["vaccineCode"] = concept("http://hl7.org/fhir/sid/cvx", "207")
		r["patient"] = subject
		r["occurrenceDateTime"] = "2021-01-15"
	case "ServiceRequest":
		r["status"] = "active"
		r["intent"] = "order"
		r["subject"] = subject
	case "Coverage":
		r["status"] = "active"
		r["beneficiary"] = subject
		r["payor"] = []any{other}
	case "Claim":
		r["status"] = "active"
		r["type"] = concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional")
		r["use"] = "claim"
		r["patient"] = subject
		r["created"] = "2021-02-01"
		r["provider"] = other
		r["priority"] = concept("http://terminology.hl7.org/CodeSystem/processpriority", "normal")
		r["insurance"] = []any{map[string]any{"sequence": 1, "focal": true, "coverage": other}}
	case "ExplanationOfBenefit":
		r["status"] = "active"
		r["type"] = concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional")
		r["use"] = "claim"
		r["patient"] = subject
		r["created"] = "2021-02-01"
		r["insurer"] = other
		r["provider"] = other
		r["outcome"] = "complete"
		r["insurance"] = []any{map[string]any{"focal": true, "coverage": other}}
	case "Group":
		r["type"] = "person"
		r["actual"] = true
	default:
		return nil
	}
	r["resourceType"] = typ
	return r
}

// sampleValue returns a syntactically valid value for a search parameter
// type, chosen to match nothing.
func sampleValue(paramType string) (string, bool) {
	switch paramType {
	case "token":
		return "zz-conformance-nomatch", true
	case "string":
		return "zzconformancenomatch", true
	case "date":
		return "1901-01-01", true
	case "reference":
		// A bare id: "Type/id" would be rejected where Type is not a
		// target of the parameter.
		return "zz-conformance-nomatch", true
	case "number":
		return "1", true
	case "quantity":
		return "1", true
	case "uri":
		return "http://example.org/zz-conformance-nomatch", true
	}
	return "", false // composite, special: no generic value
}

func checkCapability(t *testing.T, c *client, run runID) {
	r := c.do(t, http.MethodGet, "metadata", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	cs := gjson.ParseBytes(r.Body)

	t.Run("is an R4 CapabilityStatement", func(t *testing.T) {
		assert.Contains(t, r.Header.Get("Content-Type"), "json", "%s", r)
		assert.Equal(t, "CapabilityStatement", cs.Get("resourceType").String())
		assert.Contains(t, []string{"draft", "active", "retired", "unknown"}, cs.Get("status").String(), "status")
		assert.Equal(t, "instance", cs.Get("kind").String(), "kind")
		assert.Equal(t, "4.0.1", cs.Get("fhirVersion").String(), "fhirVersion")
		_, err := time.Parse(time.RFC3339, cs.Get("date").String())
		if err != nil {
			_, err = time.Parse("2006-01-02", cs.Get("date").String())
		}
		assert.NoError(t, err, "date %q", cs.Get("date").String())
		formats := []string{}
		for _, f := range cs.Get("format").Array() {
			formats = append(formats, f.String())
		}
		assert.True(t, slices.Contains(formats, "json") || slices.Contains(formats, fhirJSON), "format %v lacks json", formats)
		assert.Equal(t, "server", cs.Get("rest.0.mode").String(), "rest[0].mode")
	})

	declared := map[string]gjson.Result{}
	for _, res := range cs.Get("rest.0.resource").Array() {
		declared[res.Get("type").String()] = res
	}

	t.Run("declares the product's resources and search parameters", func(t *testing.T) {
		for typ, params := range productSearchParams() {
			res, ok := declared[typ]
			if !assert.True(t, ok, "resource %s not declared", typ) {
				continue
			}
			names := declaredParams(res)
			for _, p := range params {
				assert.Contains(t, names, p, "%s search parameter %s not declared", typ, p)
			}
			assert.True(t, hasInteraction(res, "search-type"), "%s: search-type not declared", typ)
			assert.True(t, hasInteraction(res, "read"), "%s: read not declared", typ)
		}
	})

	t.Run("declared parameter types match R4", func(t *testing.T) {
		// The R4 SearchParameter types of the product's parameters.
		byName := map[string]string{
			"identifier": "token", "name": "string", "family": "string", "given": "string",
			"birthdate": "date", "gender": "token", "patient": "reference", "subject": "reference",
			"code": "token", "date": "date", "status": "token", "category": "token",
			"vaccine-code": "token", "created": "date", "beneficiary": "reference",
			"characteristic": "token", "member": "reference",
		}
		for typ, params := range productSearchParams() {
			for _, p := range declared[typ].Get("searchParam").Array() {
				name := p.Get("name").String()
				if want, ok := byName[name]; ok && slices.Contains(params, name) {
					assert.Equal(t, want, p.Get("type").String(), "%s.%s type", typ, name)
				}
			}
		}
	})

	// One patient for resources that need a subject.
	var patientID string
	if hasInteraction(declared["Patient"], "create") {
		patientID = c.create(t, patient(run.family("Cap"))).Get("id").String()
	}

	for _, typ := range sortedKeys(declared) {
		res := declared[typ]
		t.Run("declared interactions work/"+typ, func(t *testing.T) {
			checkDeclaredInteractions(t, c, run, typ, res, patientID)
		})
		t.Run("declared search parameters are accepted/"+typ, func(t *testing.T) {
			if !hasInteraction(res, "search-type") {
				t.Skip("search-type not declared")
			}
			for _, p := range res.Get("searchParam").Array() {
				v, ok := sampleValue(p.Get("type").String())
				if !ok {
					continue
				}
				q := typ + "?" + url.QueryEscape(p.Get("name").String()) + "=" + url.QueryEscape(v)
				sr := c.do(t, http.MethodGet, q, nil, header{"Prefer", "handling=strict"})
				if assert.Equal(t, http.StatusOK, sr.Status, "declared parameter rejected: %s", sr) {
					assert.Equal(t, "searchset", sr.get("type").String(), "%s", sr)
				}
			}
			for _, inc := range res.Get("searchInclude").Array() {
				if inc.String() == "*" {
					continue
				}
				sr := c.do(t, http.MethodGet, typ+"?_include="+url.QueryEscape(inc.String())+"&_count=1", nil, header{"Prefer", "handling=strict"})
				assert.Equal(t, http.StatusOK, sr.Status, "declared _include rejected: %s", sr)
			}
		})
	}

	t.Run("declared system interactions work", func(t *testing.T) {
		for _, i := range cs.Get("rest.0.interaction").Array() {
			switch code := i.Get("code").String(); code {
			case "transaction", "batch":
				r := c.do(t, http.MethodPost, "", map[string]any{"resourceType": "Bundle", "type": code})
				assert.Equal(t, http.StatusOK, r.Status, "empty %s: %s", code, r)
				assert.Equal(t, code+"-response", r.get("type").String(), "%s", r)
			case "history-system":
				r := c.do(t, http.MethodGet, "_history?_count=1", nil)
				assert.Equal(t, http.StatusOK, r.Status, "%s", r)
				assert.Equal(t, "history", r.get("type").String(), "%s", r)
			case "search-system":
				r := c.do(t, http.MethodGet, "?_count=1", nil)
				assert.Equal(t, http.StatusOK, r.Status, "%s", r)
			}
		}
	})

	t.Run("declared operations exist", func(t *testing.T) {
		// An operation may refuse a bare call (missing parameters), but
		// it must not be unknown. $export gets a window that exports
		// nothing so the probe costs nothing.
		probe := func(path, name string) {
			q := ""
			if name == "export" {
				q = "?_since=2999-01-01T00:00:00Z"
			}
			r := c.do(t, http.MethodGet, path+"$"+name+q, nil, header{"Accept", fhirJSON}, header{"Prefer", "respond-async"})
			if r.Status == http.StatusMethodNotAllowed {
				// Operations that change state are POST-only; an empty
				// Parameters body must be refused for what it lacks.
				r = c.do(t, http.MethodPost, path+"$"+name, map[string]any{"resourceType": "Parameters"}, header{"Accept", fhirJSON}, header{"Prefer", "respond-async"})
			}
			assert.NotContains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, r.Status, "declared operation %s$%s: %s", path, name, r)
			assert.Less(t, r.Status, 500, "declared operation %s$%s: %s", path, name, r)
		}
		for _, op := range cs.Get("rest.0.operation").Array() {
			probe("", op.Get("name").String())
		}
		for _, typ := range sortedKeys(declared) {
			for _, op := range declared[typ].Get("operation").Array() {
				if typ == "Group" {
					continue // instance-level ($export on Group/[id]): exercised by the bulk checks
				}
				probe(typ+"/", op.Get("name").String())
			}
		}
	})

	t.Run("undeclared type is 404", func(t *testing.T) {
		// Valid R4 types a value-based-care gateway has no reason to
		// serve; the first one not declared checks the answer. A server
		// declaring them all still must refuse a type it cannot know.
		typ := "NotAType"
		for _, cand := range []string{"VisionPrescription", "SupplyDelivery", "Linkage", "BodyStructure", "ImagingStudy", "Substance", "Basic"} {
			if _, ok := declared[cand]; !ok {
				typ = cand
				break
			}
		}
		requireOutcome(t, c.do(t, http.MethodGet, typ, nil), http.StatusNotFound)
		requireOutcome(t, c.do(t, http.MethodGet, typ+"/"+run.id("x"), nil), http.StatusNotFound)
		requireOutcome(t, c.do(t, http.MethodPost, typ, map[string]any{"resourceType": typ}), http.StatusNotFound)
	})

	t.Run("undeclared search parameter with handling=strict is 400", func(t *testing.T) {
		sr := c.do(t, http.MethodGet, "Patient?zz-undeclared-param=1", nil, header{"Prefer", "handling=strict"})
		requireOutcome(t, sr, http.StatusBadRequest)
	})

	t.Run("undeclared search parameter by default is an error or ignored", func(t *testing.T) {
		// R4 search.html: without a Prefer header the server may ignore
		// the parameter (200, and the self link must not claim it) or
		// reject it (4xx OperationOutcome); it must never fail with a 5xx.
		sr := c.do(t, http.MethodGet, "Patient?zz-undeclared-param=1&_count=1", nil)
		if sr.Status == http.StatusOK {
			assert.NotContains(t, linkURL(sr, "self"), "zz-undeclared-param", "ignored parameter in self link: %s", sr)
			return
		}
		requireOutcome(t, sr, http.StatusBadRequest)
	})
}

// checkDeclaredInteractions exercises every interaction the statement
// declares for typ on a resource created for the purpose.
func checkDeclaredInteractions(t *testing.T, c *client, run runID, typ string, res gjson.Result, patientID string) {
	if hasInteraction(res, "search-type") {
		sr := c.do(t, http.MethodGet, typ+"?_count=1", nil)
		require.Equal(t, http.StatusOK, sr.Status, "search-type: %s", sr)
		assert.Equal(t, "searchset", sr.get("type").String(), "%s", sr)
	}
	if hasInteraction(res, "history-type") {
		hr := c.do(t, http.MethodGet, typ+"/_history?_count=1", nil)
		require.Equal(t, http.StatusOK, hr.Status, "history-type: %s", hr)
		assert.Equal(t, "history", hr.get("type").String(), "%s", hr)
	}
	if hasInteraction(res, "read") {
		requireOutcome(t, c.do(t, http.MethodGet, typ+"/"+run.id("absent"), nil), http.StatusNotFound)
	}
	body := minimalResource(typ, patientID)
	if !hasInteraction(res, "create") || body == nil || patientID == "" {
		return
	}
	created := c.create(t, body)
	id := created.Get("id").String()
	require.NotEmpty(t, id, "created %s has no id", typ)
	if hasInteraction(res, "read") {
		c.read(t, typ, id)
	}
	if hasInteraction(res, "vread") {
		vr := c.do(t, http.MethodGet, typ+"/"+id+"/_history/"+created.Get("meta.versionId").String(), nil)
		assert.Equal(t, http.StatusOK, vr.Status, "vread: %s", vr)
	}
	if hasInteraction(res, "update") {
		body["id"] = id
		updated := c.put(t, body)
		assert.NotEqual(t, created.Get("meta.versionId").String(), updated.Get("meta.versionId").String(), "update did not make a new version")
	}
	if hasInteraction(res, "history-instance") {
		hr := c.do(t, http.MethodGet, typ+"/"+id+"/_history", nil)
		require.Equal(t, http.StatusOK, hr.Status, "history-instance: %s", hr)
		assert.Equal(t, "history", hr.get("type").String(), "%s", hr)
		assert.NotEmpty(t, hr.get("entry").Array(), "history-instance: %s", hr)
	}
	if hasInteraction(res, "delete") {
		dr := c.do(t, http.MethodDelete, typ+"/"+id, nil)
		assert.Contains(t, []int{http.StatusOK, http.StatusNoContent}, dr.Status, "delete: %s", dr)
		if hasInteraction(res, "read") {
			requireOutcome(t, c.do(t, http.MethodGet, typ+"/"+id, nil), http.StatusGone)
		}
	}
}

func hasInteraction(res gjson.Result, code string) bool {
	for _, i := range res.Get("interaction").Array() {
		if i.Get("code").String() == code {
			return true
		}
	}
	return false
}

func declaredParams(res gjson.Result) []string {
	var names []string
	for _, p := range res.Get("searchParam").Array() {
		names = append(names, p.Get("name").String())
	}
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
