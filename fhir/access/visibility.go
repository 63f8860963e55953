package access

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/searchparam"
)

// Visibility is what a client bound to an organization may see: the
// patients attributed to the organization through an active list, and the
// organization's own Groups (its attribution lists).
type Visibility struct {
	Patients IDSet
	Groups   IDSet
}

// Resolver returns the Visibility of an organization (the value of an
// auth client's Organization: an NPI, a TIN or an Organization id).
type Resolver func(ctx context.Context, organization string) (Visibility, error)

// sharedTypes are the resource types outside the patient compartment that
// a restricted caller still sees: directories (who and where care is
// given, which attributed members and their claims reference) and
// definitional or terminology content. They carry no patient data.
// Every other type outside the compartment (Bundle, Binary,
// MessageHeader, Parameters, ...) may hold patient data of anyone and is
// hidden from restricted callers (Subscription has its own rule).
var sharedTypes = map[string]bool{
	"Organization": true, "OrganizationAffiliation": true, "Practitioner": true, "PractitionerRole": true,
	"Location": true, "HealthcareService": true, "Endpoint": true, "InsurancePlan": true,
	"Medication": true, "MedicationKnowledge": true, "Substance": true, "DeviceDefinition": true,
	"ObservationDefinition": true, "SpecimenDefinition": true,
	"CodeSystem": true, "ValueSet": true, "ConceptMap": true, "NamingSystem": true,
	"StructureDefinition": true, "StructureMap": true, "SearchParameter": true, "OperationDefinition": true,
	"CapabilityStatement": true, "CompartmentDefinition": true, "ImplementationGuide": true,
	"Measure": true, "Library": true, "PlanDefinition": true, "ActivityDefinition": true,
	"Questionnaire": true, "EventDefinition": true, "GraphDefinition": true, "MessageDefinition": true,
}

// Shared reports whether typ is visible to restricted callers although it
// is in no patient's compartment (see the rule on Sees).
func Shared(typ string) bool { return sharedTypes[typ] }

// Sees reports whether the caller may see res. It is the one rule behind
// read, vread, search (matches and includes), history and export:
//
//   - unrestricted callers (payer clients, auth none) see everything their
//     scopes allow;
//   - a Patient is seen when it is attributed to the caller's organization;
//   - a Group is seen when it is one of the organization's own lists,
//     never through its members (a Group may list other organizations'
//     patients);
//   - a resource of a patient-compartment type is seen when it is in the
//     compartment of at least one attributed patient (FHIR R4 Patient
//     CompartmentDefinition, as the store indexes it); one referencing no
//     patient at all is not seen;
//   - a Provenance targeting a Group (a list change) is seen when it
//     targets only the caller's own lists, whatever patients it names;
//   - a Subscription is seen by the organization that owns it (the
//     server-set SubscriptionOwnerExtension);
//   - other types are seen when Shared (directories, definitions) and
//     hidden otherwise.
func (p *Principal) Sees(res *store.Resource) bool {
	if p == nil {
		return false
	}
	if p.Patients == nil {
		return true
	}
	switch res.Type {
	case "Patient":
		return p.Patients.Contains(res.ID)
	case "Group":
		return p.SeesGroup(res.ID)
	case "Subscription":
		return p.ownsSubscription(res.Body)
	}
	if res.Body == nil {
		// A deletion carries no body to tell whose it was.
		return false
	}
	paths, ok := compartmentPaths[res.Type]
	if !ok {
		return sharedTypes[res.Type]
	}
	if res.Type != "Provenance" && !mentionsPatient(res.Body, p.Patients) {
		// Most resources a provider's broad search meets are other
		// patients': a byte scan rejects them without parsing the JSON.
		return false
	}
	if res.Type == "Provenance" {
		// A list's audit trail is its organization's: a change to another
		// organization's list stays hidden even when it names a shared
		// patient.
		ownList := false
		for _, ref := range searchparam.ReferenceValues("Provenance", "target", res.Body) {
			if id, ok := strings.CutPrefix(ref, "Group/"); ok {
				if !p.SeesGroup(id) {
					return false
				}
				ownList = true
			}
		}
		if ownList {
			return true
		}
	}
	root := gjson.ParseBytes(res.Body)
	for _, segs := range paths {
		if refersTo(root, segs, p.Patients) {
			return true
		}
	}
	return false
}

// SubscriptionOwnerExtension is the server-set extension (fhir/subscription
// writes it, never the client) naming the organization a Subscription
// belongs to.
const SubscriptionOwnerExtension = "http://equitas.example/fhir/StructureDefinition/subscription-owner"

// ownsSubscription reports whether a Subscription's owner extension names
// the caller's organization.
func (p *Principal) ownsSubscription(body []byte) bool {
	for _, ext := range gjson.GetBytes(body, "extension").Array() {
		if ext.Get("url").Str == SubscriptionOwnerExtension && SameOrganization(p.Organization, ext.Get("valueString").Str) {
			return true
		}
	}
	return false
}

// SameOrganization reports whether two organization designations name the
// same organization: identifiers ("system|value") and references
// ("Organization/id") compare on their value, so a Subscription bound
// under one spelling stays its owner's under another.
func SameOrganization(a, b string) bool {
	a, b = orgKey(a), orgKey(b)
	return a != "" && a == b
}

func orgKey(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '|'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimPrefix(s, "Organization/")
}

// compartmentPaths are the elements putting each type in a patient's
// compartment (searchparam's R4 CompartmentDefinition), split once.
var compartmentPaths = func() map[string][][]string {
	m := map[string][][]string{}
	for _, typ := range searchparam.PatientCompartmentTypes() {
		for _, p := range searchparam.PatientCompartmentPaths(typ) {
			m[typ] = append(m[typ], strings.Split(p, "."))
		}
	}
	return m
}()

// refersTo reports whether the element at segs below n (through arrays)
// holds a relative reference to a patient of set. Absolute references
// are not followed: a URL names a patient on some server, which may not
// be this one, so they never make a resource visible.
func refersTo(n gjson.Result, segs []string, set IDSet) bool {
	switch {
	case n.IsArray():
		found := false
		n.ForEach(func(_, v gjson.Result) bool {
			found = refersTo(v, segs, set)
			return !found
		})
		return found
	case !n.IsObject():
		return false
	case len(segs) > 0:
		return refersTo(n.Get(segs[0]), segs[1:], set)
	}
	id, ok := strings.CutPrefix(n.Get("reference").Str, "Patient/")
	if !ok {
		return false
	}
	if i := strings.IndexByte(id, '/'); i >= 0 { // Patient/x/_history/2
		id = id[:i]
	}
	return id != "" && set.Contains(id)
}

// mentionsPatient reports whether body may reference a patient of set: it
// holds "Patient/<id>" with id in set (or a JSON escape the scan cannot
// see through). Compartment references are among those strings, so false
// means the resource is in no compartment of set.
func mentionsPatient(body []byte, set IDSet) bool {
	if bytes.Contains(body, []byte(`\/`)) || bytes.Contains(body, []byte(`\u`)) {
		return true
	}
	rest := body
	for {
		i := bytes.Index(rest, patientPrefix)
		if i < 0 {
			return false
		}
		rest = rest[i+len(patientPrefix):]
		j := bytes.IndexAny(rest, `"/`)
		if j < 0 {
			return false
		}
		if set.Contains(string(rest[:j])) {
			return true
		}
	}
}

var patientPrefix = []byte("Patient/")

// MayWriteGroup checks a Group a restricted caller creates or replaces
// (ATR scenario 2: a provider creates its own list). A list grants its
// organization access to its members, so the Group must name the caller's
// organization (an identifier value or a characteristic referencing
// Organization/<id> equal to the binding's value) and may list only
// patients the caller already sees: otherwise writing a list would be a
// way to see anyone, or to hand its patients to another organization.
func (p *Principal) MayWriteGroup(body []byte) error {
	if !p.Restricted() {
		return nil
	}
	_, org, ok := strings.Cut(p.Organization, "|")
	if !ok {
		org = p.Organization
	}
	named := false
	for _, v := range gjson.GetBytes(body, "identifier.#.value").Array() {
		named = named || (org != "" && v.String() == org)
	}
	for _, v := range gjson.GetBytes(body, "characteristic.#.valueReference.reference").Array() {
		named = named || (org != "" && v.String() == "Organization/"+org)
	}
	if !named {
		return fmt.Errorf("a Group written by an organization-bound client must name its organization %s (identifier or characteristic)", org)
	}
	for _, m := range gjson.GetBytes(body, "member.#.entity.reference").Array() {
		id, ok := strings.CutPrefix(m.String(), "Patient/")
		if !ok || !p.Patients.Contains(id) {
			return fmt.Errorf("member %s is not a patient attributed to %s", m.String(), org)
		}
	}
	return nil
}
