package adt

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/hl7v2"
)

// visit is what PV1 (and PV2) say about an encounter.
type visit struct {
	ID          identifier // PV1-19
	Class       *coding    // PV1-2
	Location    string     // PV1-3, display
	LocationRef *reference
	Prior       string // PV1-6, display
	PriorRef    *reference
	Type        *codeableConcept
	ServiceType *codeableConcept
	Participant []participant
	AdmitSource *codeableConcept
	Disposition *codeableConcept
	Destination string
	Reason      *codeableConcept
	Start, End  *hl7v2.Time // PV1-44, PV1-45
}

type participant struct {
	Type       []codeableConcept `json:"type,omitempty"`
	Individual *reference        `json:"individual,omitempty"`
}

// visit maps PV1 (+PV2). The visit number is required: it is how later
// messages (A02, A03, A11, A13) find the encounter.
func (m *mapper) visit(pv1, pv2 *hl7v2.Segment) (*visit, error) {
	v := &visit{}
	ids := m.identifiers(pv1.Field(19))
	if len(ids) == 0 {
		return nil, hl7v2.Errorf(loc(pv1, 19), hl7v2.CodeRequiredMissing, "PV1-19 visit number is required")
	}
	v.ID = ids[0]
	v.ID.Type = &codeableConcept{Coding: []coding{{System: sysV2Prefix + "0203", Code: "VN", Display: "Visit number"}}}
	v.ID.Use = "usual"
	if c := strings.ToUpper(pv1.Field(2).String()); c != "" {
		cl, ok := encounterClass[c]
		if !ok {
			return nil, hl7v2.Errorf(loc(pv1, 2), hl7v2.CodeTableValue, "PV1-2 patient class is not in table 0004")
		}
		v.Class = &cl
	}
	v.Location, v.LocationRef = m.location(pv1.Field(3))
	v.Prior, v.PriorRef = m.location(pv1.Field(6))
	v.Type = cwe(pv1.Field(4).Repetition(1), "0007")
	v.ServiceType = cwe(pv1.Field(10).Repetition(1), "0069")
	v.AdmitSource = cwe(pv1.Field(14).Repetition(1), "0023")
	v.Disposition = cwe(pv1.Field(36).Repetition(1), "0112")
	v.Destination = str(pv1.Field(37).Component(1))
	v.Reason = cwe(pv2.Field(3).Repetition(1), "")
	for _, pt := range []struct {
		field      int
		code, name string
	}{{7, "ATND", "attender"}, {8, "REF", "referrer"}, {9, "CON", "consultant"}, {17, "ADM", "admitter"}} {
		for _, r := range pv1.Field(pt.field).Repetitions() {
			ref := m.xcn(r, true)
			if ref == nil {
				continue
			}
			v.Participant = append(v.Participant, participant{
				Type:       []codeableConcept{{Coding: []coding{{System: sysParticipType, Code: pt.code, Display: pt.name}}}},
				Individual: ref,
			})
		}
	}
	for _, f := range []struct {
		n   int
		dst **hl7v2.Time
	}{{44, &v.Start}, {45, &v.End}} {
		raw := pv1.Field(f.n).Component(1).String()
		if raw == "" {
			continue
		}
		t, err := hl7v2.ParseTime(raw, m.loc)
		if err != nil {
			return nil, &hl7v2.Error{Location: loc(pv1, f.n), Code: hl7v2.CodeDataType, Text: "PV1-" + strconv.Itoa(f.n) + " is not a valid date/time", Err: err}
		}
		*f.dst = &t
	}
	if v.Start != nil && v.End != nil && v.End.T.Before(v.Start.T) {
		return nil, hl7v2.Errorf(loc(pv1, 45), hl7v2.CodeDataType, "PV1-45 discharge date/time is before PV1-44 admit date/time")
	}
	return v, nil
}

// xcn maps a practitioner (XCN) to a reference: by NPI when the
// identifier type or assigning authority says so. With create, an
// identified practitioner becomes a Practitioner resource (created when
// absent) that the reference points at.
func (m *mapper) xcn(r hl7v2.Repetition, create bool) *reference {
	id := str(r.Component(1))
	name := humanName{Family: str(r.Component(2).Subcomponent(1))}
	for _, n := range []int{3, 4} {
		if s := str(r.Component(n)); s != "" {
			name.Given = append(name.Given, s)
		}
	}
	if s := str(r.Component(6)); s != "" {
		name.Prefix = []string{s}
	}
	for _, n := range []int{5, 7} {
		if s := str(r.Component(n)); s != "" {
			name.Suffix = append(name.Suffix, s)
		}
	}
	var parts []string
	parts = append(parts, name.Prefix...)
	parts = append(parts, name.Given...)
	if name.Family != "" {
		parts = append(parts, name.Family)
	}
	parts = append(parts, name.Suffix...)
	display := strings.Join(parts, " ")
	if id == "" {
		if display == "" {
			return nil
		}
		return &reference{Type: "Practitioner", Display: display}
	}
	sys := hdSub(r.Component(9), m.authorities)
	if strings.EqualFold(r.Component(13).String(), "NPI") || strings.EqualFold(r.Component(9).Subcomponent(1).String(), "NPI") ||
		sys == "urn:oid:2.16.840.1.113883.4.6" {
		sys = sysNPI
	}
	if sys == "" {
		sys = m.sender
	}
	ident := &identifier{System: sys, Value: id}
	if !create {
		return &reference{Type: "Practitioner", Identifier: ident, Display: display}
	}
	rid := hashID("Practitioner", sys, id)
	body := map[string]any{"resourceType": "Practitioner", "id": rid, "identifier": []identifier{*ident}}
	if name.Family != "" || len(name.Given) > 0 {
		body["name"] = []humanName{name}
	}
	ref := m.ref("Practitioner", rid, ident, display, body)
	ref.Type = "Practitioner"
	return ref
}

// location maps a PL (pointOfCare^room^bed^facility) to its display and a
// reference to a Location resource (created when absent), identified by
// the facility and the three place components.
func (m *mapper) location(f hl7v2.Field) (string, *reference) {
	display := placeDisplay(f)
	if display == "" {
		return "", nil
	}
	fac := hdSub(f.Component(4), m.authorities)
	if fac == "" {
		fac = m.sender
	}
	poc, room, bed := str(f.Component(1)), str(f.Component(2)), str(f.Component(3))
	id := hashID("Location", fac, poc, room, bed)
	kind := coding{System: "http://terminology.hl7.org/CodeSystem/location-physical-type", Code: "wa", Display: "Ward"}
	switch {
	case bed != "":
		kind = coding{System: kind.System, Code: "bd", Display: "Bed"}
	case room != "":
		kind = coding{System: kind.System, Code: "ro", Display: "Room"}
	case poc == "":
		kind = coding{System: kind.System, Code: "si", Display: "Site"}
	}
	body := map[string]any{"resourceType": "Location", "id": id, "status": "active", "name": display, "mode": "instance",
		"physicalType": codeableConcept{Coding: []coding{kind}}}
	return display, m.ref("Location", id, nil, display, body)
}

// organizationRef registers the facility in f (MSH-4) as an Organization.
func (m *mapper) organizationRef(f hl7v2.Field) *reference {
	sys := hdField(f, m.authorities)
	if sys == "" {
		return nil
	}
	ident := &identifier{System: sysURI, Value: sys}
	name := str(f.Component(1))
	if name == "" {
		name = sys
	}
	id := hashID("Organization", sys)
	ref := m.ref("Organization", id, ident, name, map[string]any{"resourceType": "Organization", "id": id,
		"identifier": []identifier{*ident}, "active": true, "name": name})
	ref.Type = "Organization"
	return ref
}

// placeDisplay renders a PL (pointOfCare^room^bed^facility) for display.
func placeDisplay(f hl7v2.Field) string {
	var parts []string
	for _, n := range []int{1, 2, 3} {
		if s := str(f.Component(n)); s != "" {
			parts = append(parts, s)
		}
	}
	s := strings.Join(parts, " ")
	if fac := str(f.Component(4).Subcomponent(1)); fac != "" {
		if s == "" {
			return fac
		}
		s += " (" + fac + ")"
	}
	return s
}

// cwe maps a coded value; table names the v2 table whose code system
// applies when the value names none (or names that table).
func cwe(r hl7v2.Repetition, table string) *codeableConcept {
	c, text, sys := code(r.Component(1).String()), str(r.Component(2)), strings.ToUpper(clean(r.Component(3).String()))
	cc := &codeableConcept{Text: text}
	if c != "" {
		co := coding{Code: c, Display: text}
		switch {
		case sys == "I10" || sys == "I10C" || sys == "ICD10CM":
			co.System = "http://hl7.org/fhir/sid/icd-10-cm"
		case sys == "SCT" || sys == "SNM":
			co.System = "http://snomed.info/sct"
		case table != "" && (sys == "" || sys == "HL7"+table):
			co.System = sysV2Prefix + table
		}
		if co.System != "" {
			cc.Coding = []coding{co}
			cc.Text = ""
		} else if cc.Text == "" {
			cc.Text = c
		}
	}
	if cc.empty() {
		return nil
	}
	return cc
}

// encounterInput is everything encounter() needs.
type encounterInput struct {
	ID, PatientID string
	Trigger       string
	Status        string // from the trigger; "" = keep (A08)
	V             *visit
	Existing      []byte // stored body, nil when new
	At            time.Time
	EventTime     string // FHIR dateTime of the event (EVN-6/EVN-2/MSH-7)
	Provider      *reference
	Diagnoses     []encounterDiagnosis // from DG1; nil keeps the stored ones
}

type encounterDiagnosis struct {
	Condition reference        `json:"condition"`
	Use       *codeableConcept `json:"use,omitempty"`
	Rank      int              `json:"rank,omitempty"`
}

// encounter builds the Encounter body: the stored one with what the
// message says applied to it, or a new one.
func (m *mapper) encounter(in encounterInput) ([]byte, error) {
	o := newObject("Encounter", in.ID)
	if in.Existing != nil {
		var err error
		if o, err = parseObject(in.Existing); err != nil {
			return nil, err
		}
	}
	v := in.V

	status := in.Status
	switch in.Trigger {
	case "A04":
		if v.Start != nil {
			// Many feeds send A04 for an arrived outpatient/ED visit; an
			// admit time means the visit has begun.
			status = "in-progress"
		}
	case "A08":
		switch {
		case v.End != nil:
			status = "finished"
		case o.get("status").Exists():
			status = o.get("status").String()
		default:
			status = "unknown" // ConceptMap HL70003: A08 → unknown
		}
	}
	o.setValue("status", status)
	if v.Class != nil {
		o.setValue("class", v.Class)
	} else if !o.get("class").Exists() {
		return nil, hl7v2.Errorf(hl7v2.At("PV1", 2), hl7v2.CodeRequiredMissing, "PV1-2 patient class is required")
	}
	o.setValue("identifier", mergeIdentifiers(o.get("identifier"), []identifier{v.ID}))
	if v.Type != nil {
		o.setValue("type", []codeableConcept{*v.Type})
	}
	if v.ServiceType != nil {
		o.setValue("serviceType", v.ServiceType)
	}
	o.setValue("subject", reference{Reference: "Patient/" + in.PatientID})
	if len(v.Participant) > 0 {
		o.setValue("participant", v.Participant)
	}
	if v.Reason != nil {
		o.setValue("reasonCode", []codeableConcept{*v.Reason})
	}
	if len(in.Diagnoses) > 0 {
		o.setValue("diagnosis", in.Diagnoses)
	}
	if in.Provider != nil {
		o.setValue("serviceProvider", in.Provider)
	}

	// Period: PV1-44/45 when sent; otherwise the event time starts an
	// admission and ends a discharge. A13 reopens the encounter.
	per := o.get("period")
	start, end := per.Get("start").String(), per.Get("end").String()
	if v.Start != nil {
		start = fhirDateTime(*v.Start)
	} else if start == "" && (in.Trigger == "A01" || (in.Trigger == "A04" && status == "in-progress")) {
		start = in.EventTime
	}
	switch {
	case v.End != nil:
		end = fhirDateTime(*v.End)
	case in.Trigger == "A03" && end == "":
		end = in.EventTime
	}
	if in.Trigger == "A13" || (status != "finished" && in.Trigger != "A08" && in.Trigger != "A11") {
		end = ""
	}
	if before(end, start) {
		return nil, hl7v2.Errorf(hl7v2.At("PV1", 45), hl7v2.CodeDataType, "the discharge time is before the admit time")
	}
	if p := (period{Start: start, End: end}); p.Start != "" || p.End != "" {
		o.setValue("period", p)
	} else {
		o.del("period")
	}

	// Hospitalization: keep what is stored, override what is sent.
	hosp := map[string]json.RawMessage{}
	if h := o.get("hospitalization"); h.IsObject() {
		h.ForEach(func(k, val gjson.Result) bool {
			hosp[k.String()] = json.RawMessage(val.Raw)
			return true
		})
	}
	if v.AdmitSource != nil {
		hosp["admitSource"] = raw(v.AdmitSource)
	}
	if v.Disposition != nil {
		hosp["dischargeDisposition"] = raw(v.Disposition)
	}
	if v.Destination != "" {
		hosp["destination"] = raw(reference{Type: "Location", Display: v.Destination})
	}
	if in.Trigger == "A13" {
		delete(hosp, "dischargeDisposition")
		delete(hosp, "destination")
	}
	if len(hosp) > 0 {
		o.setValue("hospitalization", hosp)
	} else {
		o.del("hospitalization")
	}
	if locs := locations(o.get("location"), v, status, in.EventTime); len(locs) > 0 {
		o.setValue("location", locs)
	}
	return o.bytes(), nil
}

// locations updates Encounter.location: the location sent becomes active
// (planned for a planned encounter), the previously active ones and PV1-6
// become completed, and everything is completed when the encounter is
// finished.
func locations(old gjson.Result, v *visit, status, at string) []json.RawMessage {
	var out []json.RawMessage
	present := map[string]int{}
	old.ForEach(func(_, l gjson.Result) bool {
		present[l.Get("location.display").String()] = len(out)
		out = append(out, json.RawMessage(l.Raw))
		return true
	})
	setStatus := func(i int, s string, endAt bool) {
		b := []byte(out[i])
		if gjson.GetBytes(b, "status").String() == s {
			return
		}
		b, _ = sjson.SetBytes(b, "status", s)
		if endAt && at != "" && !gjson.GetBytes(b, "period.end").Exists() {
			b, _ = sjson.SetBytes(b, "period.end", at)
		}
		out[i] = b
	}
	add := func(display string, ref *reference, s string, withStart bool) {
		loc := reference{Display: display}
		if ref != nil {
			loc.Reference = ref.Reference
		}
		e := map[string]any{"location": loc, "status": s}
		if withStart && at != "" {
			e["period"] = period{Start: at}
		}
		present[display] = len(out)
		out = append(out, raw(e))
	}
	if v.Prior != "" {
		if i, ok := present[v.Prior]; ok {
			setStatus(i, "completed", true)
		} else {
			add(v.Prior, v.PriorRef, "completed", false)
		}
	}
	cur := "active"
	if status == "planned" {
		cur = "planned"
	}
	if v.Location != "" {
		for d, i := range present {
			if d != v.Location && gjson.GetBytes(out[i], "status").String() == "active" {
				setStatus(i, "completed", true)
			}
		}
		if i, ok := present[v.Location]; ok {
			setStatus(i, cur, false)
		} else {
			add(v.Location, v.LocationRef, cur, true)
		}
	}
	if status == "finished" {
		for i := range out {
			if s := gjson.GetBytes(out[i], "status").String(); s == "active" || s == "planned" {
				setStatus(i, "completed", true)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// mergeIdentifiers keeps the stored identifiers and adds the new ones that
// are not there yet (same system and value).
func mergeIdentifiers(old gjson.Result, add []identifier) []json.RawMessage {
	var out []json.RawMessage
	have := map[string]bool{}
	old.ForEach(func(_, id gjson.Result) bool {
		have[id.Get("system").String()+"|"+id.Get("value").String()] = true
		out = append(out, json.RawMessage(id.Raw))
		return true
	})
	for _, id := range add {
		if !have[id.System+"|"+id.Value] {
			have[id.System+"|"+id.Value] = true
			out = append(out, raw(id))
		}
	}
	return out
}

// before reports whether FHIR dateTime a is before b; values that do not
// parse (or are empty) compare as not before.
func before(a, b string) bool {
	ta, ok1 := parseFHIRTime(a)
	tb, ok2 := parseFHIRTime(b)
	return ok1 && ok2 && ta.Before(tb)
}

func parseFHIRTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
