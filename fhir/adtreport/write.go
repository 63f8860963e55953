package adtreport

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/equitas/equitas/fhir/interaction"
)

// FollowUpStatusSystem is the code system of Task.businessStatus in the
// report Bundle.
const FollowUpStatusSystem = "http://equitas.example/fhir/CodeSystem/follow-up-status"

// CSVHeader is the header row of WriteCSV.
var CSVHeader = []string{
	"section", "patient", "name", "birth_date", "member_id",
	"encounter", "class", "status", "start", "end", "discharge_disposition", "location",
	"follow_up_status", "days_since_discharge", "due_7", "due_14", "follow_up_7", "follow_up_14",
	"follow_up_encounter", "follow_up_date",
}

// WriteCSV writes the report as CSV: one row per admission, discharge and
// transfer, then one "follow-up" row per tracked discharge.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	item := func(section string, p Patient, e Encounter) []string {
		return []string{section, p.ID, p.Name, p.BirthDate, p.MemberID,
			e.ID, e.Class, e.Status, e.Start, e.End, e.Disposition, e.Location}
	}
	for _, sec := range []struct {
		name  string
		items []Item
	}{{"admission", r.Admissions}, {"discharge", r.Discharges}, {"transfer", r.Transfers}} {
		for _, it := range sec.items {
			row := append(item(sec.name, it.Patient, it.Encounter), "", "", "", "", "", "", "", "")
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	for _, f := range r.FollowUps {
		visit, visitDate := "", ""
		if f.Visit != nil {
			visit, visitDate = f.Visit.ID, datePart(f.Visit.Start)
		}
		row := append(item("follow-up", f.Patient, f.Discharge), f.Status, strconv.Itoa(f.DaysSinceDischarge),
			f.Due7, f.Due14, strconv.FormatBool(f.Within7), strconv.FormatBool(f.Within14), visit, visitDate)
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

type obj = map[string]any

// WriteBundle writes the report as a FHIR collection Bundle whose base is
// the server's FHIR base URL:
//   - three List resources (admissions, discharges, transfers on the date)
//     referencing the Encounters;
//   - one Task per tracked discharge: focus the discharge Encounter, for
//     the Patient, status completed (met-7, met-14), requested (open) or
//     failed (missed) with the code in businessStatus, restriction.period
//     the 14-day window, inputs due-7, due-14 and days-since-discharge,
//     and the follow-up visit as output;
//   - the Encounters and Patients those reference, as stored.
//
// Entries are streamed; stored resources are copied as they are.
func (r *Report) WriteBundle(w io.Writer, base string) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	head, err := json.Marshal(resource{
		"resourceType": "Bundle", "id": interaction.NewID(), "type": "collection",
		"meta":       obj{"tag": []obj{{"system": "http://equitas.example/fhir/CodeSystem/adt-report", "code": "adt-report"}}},
		"identifier": obj{"system": "http://equitas.example/fhir/adt-report", "value": r.Group.ID + "/" + r.Date},
		"timestamp":  time.Now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	bw.Write(head[:len(head)-1])
	bw.WriteString(`,"entry":[`)
	n := 0
	sep := func() {
		if n > 0 {
			bw.WriteByte(',')
		}
		n++
	}
	generated := func(res resource) error {
		b, err := json.Marshal(obj{"fullUrl": "urn:uuid:" + res["id"].(string), "resource": res})
		if err != nil {
			return err
		}
		sep()
		bw.Write(b)
		return nil
	}
	stored := func(typ, id string, body []byte) {
		sep()
		bw.WriteString(`{"fullUrl":`)
		q, _ := json.Marshal(base + "/" + typ + "/" + id)
		bw.Write(q)
		bw.WriteString(`,"resource":`)
		bw.Write(body)
		bw.WriteByte('}')
	}
	var encs []Encounter
	seen := map[string]bool{}
	addEnc := func(e Encounter) {
		if e.body != nil && !seen[e.ID] {
			seen[e.ID] = true
			encs = append(encs, e)
		}
	}
	for _, sec := range []struct {
		code, title string
		items       []Item
	}{
		{"admissions", "Admissions on " + r.Date, r.Admissions},
		{"discharges", "Discharges on " + r.Date, r.Discharges},
		{"transfers", "Transfers on " + r.Date, r.Transfers},
	} {
		l := resource{
			"resourceType": "List", "id": interaction.NewID(), "status": "current", "mode": "snapshot", "title": sec.title,
			"code":    obj{"coding": []obj{{"system": "http://equitas.example/fhir/CodeSystem/adt-report", "code": sec.code}}, "text": sec.title},
			"date":    r.Date,
			"subject": obj{"reference": "Group/" + r.Group.ID},
		}
		var es []obj
		for _, it := range sec.items {
			es = append(es, obj{"item": obj{"reference": "Encounter/" + it.Encounter.ID}})
			addEnc(it.Encounter)
		}
		if len(es) > 0 {
			l["entry"] = es
		} else {
			l["emptyReason"] = obj{"coding": []obj{{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "nilknown"}}}
		}
		if err := generated(l); err != nil {
			return err
		}
	}
	for _, f := range r.FollowUps {
		if err := generated(task(r, f)); err != nil {
			return err
		}
		addEnc(f.Discharge)
		if f.Visit != nil {
			addEnc(*f.Visit)
		}
	}
	for _, e := range encs {
		stored("Encounter", e.ID, e.body)
	}
	for _, id := range sortedKeys(r.patients) {
		stored("Patient", id, r.patients[id])
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

func task(r *Report, f FollowUp) resource {
	status := map[string]string{FollowUpMet7: "completed", FollowUpMet14: "completed", FollowUpOpen: "requested", FollowUpMissed: "failed"}[f.Status]
	t := resource{
		"resourceType": "Task", "id": interaction.NewID(), "status": status, "intent": "plan",
		"businessStatus": obj{"coding": []obj{{"system": FollowUpStatusSystem, "code": f.Status}}, "text": f.Status},
		"code":           obj{"text": "Post-discharge outpatient follow-up with the attributed provider"},
		"focus":          obj{"reference": "Encounter/" + f.Discharge.ID},
		"for":            obj{"reference": "Patient/" + f.Patient.ID},
		// The report's tasks share the report's identifier.
		"groupIdentifier": obj{"system": "http://equitas.example/fhir/adt-report", "value": r.Group.ID + "/" + r.Date},
		"authoredOn":      f.Discharge.End,
		"restriction":     obj{"period": obj{"start": f.DischargeDate, "end": f.Due14}},
		"input": []obj{
			{"type": obj{"text": "due-7"}, "valueDate": f.Due7},
			{"type": obj{"text": "due-14"}, "valueDate": f.Due14},
			{"type": obj{"text": "days-since-discharge"}, "valueInteger": f.DaysSinceDischarge},
		},
	}
	if r.Group.OrganizationID != "" {
		t["owner"] = obj{"reference": "Organization/" + r.Group.OrganizationID}
	}
	if f.Visit != nil {
		t["output"] = []obj{{"type": obj{"text": "follow-up visit"}, "valueReference": obj{"reference": "Encounter/" + f.Visit.ID}}}
	}
	return t
}

func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
