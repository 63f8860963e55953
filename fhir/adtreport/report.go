// Package adtreport builds the daily admission/discharge report of an ATR
// attribution list (Group/[id]/$adt-report): the admissions, discharges
// and transfers of the list's members on one date, and post-discharge
// follow-up tracking — whether each recent inpatient or emergency
// discharge was followed by an outpatient visit with the attributed
// provider within 7 and 14 days.
//
// The report is computed from the stored Encounters (whatever wrote them:
// HL7 v2 ADT, FHIR messaging, REST), as of the end of the report date: a
// visit after the report date does not count yet.
package adtreport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/store"
)

// ErrNotFound is returned for an unknown list.
var ErrNotFound = errors.New("adtreport: no such attribution list")

// Follow-up statuses.
const (
	FollowUpMet7   = "met-7"  // an outpatient visit within 7 days of discharge
	FollowUpMet14  = "met-14" // a visit on day 8 to 14
	FollowUpOpen   = "open"   // no visit yet, the 14-day window is still open
	FollowUpMissed = "missed" // no visit within 14 days
)

// Options configure Build.
type Options struct {
	// Lookback is how many days before the report date discharges are
	// tracked for follow-up (default 30, so missed follow-ups stay listed
	// for two weeks after their window closed).
	Lookback int
	// SeesPatient, when set, leaves out the members it refuses (a provider
	// caller's patients: a member attributed on a past report date may no
	// longer be the caller's).
	SeesPatient func(patientID string) bool
}

// Patient is the member an item is about.
type Patient struct {
	ID, Name, BirthDate, MemberID string
}

// Encounter is the summary of one stored Encounter.
type Encounter struct {
	ID, Class, Status, Start, End, Disposition, Location string
	body                                                 []byte
}

// Item is one admission, discharge or transfer on the report date.
type Item struct {
	Patient   Patient
	Encounter Encounter
}

// FollowUp tracks the outpatient follow-up of one discharge.
type FollowUp struct {
	Patient            Patient
	Discharge          Encounter
	DischargeDate      string // YYYY-MM-DD
	DaysSinceDischarge int    // as of the report date
	Due7, Due14        string // last day of each window
	Within7, Within14  bool
	Visit              *Encounter // the first qualifying visit
	Status             string     // FollowUpMet7, FollowUpMet14, FollowUpOpen, FollowUpMissed
}

// Report is the daily report of one list.
type Report struct {
	Group      *attribution.GroupInfo
	Date       string // YYYY-MM-DD
	Members    int    // members attributed on the date
	Admissions []Item
	Discharges []Item
	Transfers  []Item
	FollowUps  []FollowUp
	patients   map[string][]byte // Patient JSON of the members in the report
}

// Open lists the follow-ups still waiting for a visit.
func (r *Report) Open() []FollowUp {
	var out []FollowUp
	for _, f := range r.FollowUps {
		if f.Status == FollowUpOpen {
			out = append(out, f)
		}
	}
	return out
}

// acute are the Encounter classes (v3 ActCode) of inpatient and emergency
// stays, whose discharges call for follow-up.
var acute = map[string]bool{"IMP": true, "ACUTE": true, "NONAC": true, "OBSENC": true, "EMER": true, "SS": true}

// happened are the statuses of an Encounter that took place.
var happened = map[string]bool{"in-progress": true, "finished": true, "arrived": true, "triaged": true, "onleave": true}

// Build computes the report of list groupID for date (only its calendar
// day counts).
func Build(ctx context.Context, st store.Store, groupID string, date time.Time, opts Options) (*Report, error) {
	if opts.Lookback <= 0 {
		opts.Lookback = 30
	}
	kv := st.KV()
	g, err := attribution.Group(ctx, kv, groupID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("adtreport: %w", err)
	}
	day := date.Format(time.DateOnly)
	from := date.AddDate(0, 0, -opts.Lookback).Format(time.DateOnly)
	r := &Report{Group: g, Date: day, patients: map[string][]byte{}}
	var members []*attribution.Entry
	err = attribution.Members(ctx, kv, groupID, func(e *attribution.Entry) error {
		if !e.Inactive && (e.PeriodStart == "" || e.PeriodStart <= day) && (e.PeriodEnd == "" || e.PeriodEnd >= day) &&
			(opts.SeesPatient == nil || opts.SeesPatient(e.PatientID)) {
			members = append(members, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("adtreport: members of %s: %w", groupID, err)
	}
	r.Members = len(members)
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("adtreport: %w", err)
	}
	defer snap.Close()
	for _, e := range members {
		if err := r.member(ctx, snap, e, day, from); err != nil {
			return nil, err
		}
	}
	r.sort()
	return r, nil
}

// member adds one member's events and follow-ups.
func (r *Report) member(ctx context.Context, snap store.Snapshot, e *attribution.Entry, day, from string) error {
	var encs []gjson.Result
	var patient []byte
	err := snap.Compartment(ctx, e.PatientID, []string{"Encounter", "Patient"}, func(res *store.Resource) error {
		if res.Type == "Patient" {
			patient = res.Body
			return nil
		}
		encs = append(encs, gjson.ParseBytes(res.Body))
		return nil
	})
	if err != nil {
		return fmt.Errorf("adtreport: encounters of Patient/%s: %w", e.PatientID, err)
	}
	p := Patient{ID: e.PatientID, Name: e.Name, BirthDate: e.BirthDate, MemberID: e.MemberID}
	used := false
	var visits []gjson.Result
	for _, enc := range encs {
		if enc.Get("class.code").String() == "AMB" && happened[enc.Get("status").String()] && r.withProvider(enc, e) {
			visits = append(visits, enc)
		}
	}
	for _, enc := range encs {
		status, class := enc.Get("status").String(), enc.Get("class.code").String()
		if !acute[class] || !happened[status] {
			continue
		}
		start, end := datePart(enc.Get("period.start").String()), datePart(enc.Get("period.end").String())
		sum := summary(enc)
		if start == day {
			r.Admissions = append(r.Admissions, Item{p, sum})
			used = true
		}
		if transferredOn(enc, day) {
			r.Transfers = append(r.Transfers, Item{p, sum})
			used = true
		}
		if status != "finished" || end == "" || end > day || end < from {
			continue
		}
		if end == day {
			r.Discharges = append(r.Discharges, Item{p, sum})
		}
		r.FollowUps = append(r.FollowUps, followUp(p, sum, enc.Get("period.end").String(), day, visits))
		used = true
	}
	if used && patient != nil {
		r.patients[e.PatientID] = patient
	}
	return nil
}

// sort orders every section by patient and encounter (follow-ups by
// discharge date first), so reports are stable.
func (r *Report) sort() {
	sortItems(r.Admissions)
	sortItems(r.Discharges)
	sortItems(r.Transfers)
	slices.SortStableFunc(r.FollowUps, func(a, b FollowUp) int {
		if c := strings.Compare(a.DischargeDate, b.DischargeDate); c != 0 {
			return c
		}
		return strings.Compare(a.Patient.ID+"/"+a.Discharge.ID, b.Patient.ID+"/"+b.Discharge.ID)
	})
}

func sortItems(items []Item) {
	slices.SortStableFunc(items, func(a, b Item) int {
		return strings.Compare(a.Patient.ID+"/"+a.Encounter.ID, b.Patient.ID+"/"+b.Encounter.ID)
	})
}

// followUp decides the follow-up of one discharge as of day. A visit counts
// when it starts after the discharge and on or before both the window's
// last day and the report date.
func followUp(p Patient, disch Encounter, dischargedAt, day string, visits []gjson.Result) FollowUp {
	dd := datePart(dischargedAt)
	d0, _ := time.Parse(time.DateOnly, dd)
	now, _ := time.Parse(time.DateOnly, day)
	f := FollowUp{
		Patient: p, Discharge: disch, DischargeDate: dd,
		DaysSinceDischarge: int(now.Sub(d0).Hours() / 24),
		Due7:               d0.AddDate(0, 0, 7).Format(time.DateOnly),
		Due14:              d0.AddDate(0, 0, 14).Format(time.DateOnly),
	}
	var first gjson.Result
	for _, v := range visits {
		vs := v.Get("period.start").String()
		vd := datePart(vs)
		if vd == "" || vd > day || vd > f.Due14 || !after(vs, dischargedAt) {
			continue
		}
		if !first.Exists() || vs < first.Get("period.start").String() {
			first = v
		}
	}
	switch {
	case first.Exists():
		s := summary(first)
		f.Visit = &s
		f.Within14 = true
		f.Within7 = datePart(s.Start) <= f.Due7
		f.Status = FollowUpMet14
		if f.Within7 {
			f.Status = FollowUpMet7
		}
	case day > f.Due14:
		f.Status = FollowUpMissed
	default:
		f.Status = FollowUpOpen
	}
	return f
}

// after reports whether FHIR dateTime a is after b: by instant when both
// carry a time, else by date (a same-day visit of a date-only record
// counts).
func after(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339, a)
	tb, errB := time.Parse(time.RFC3339, b)
	if errA == nil && errB == nil {
		return ta.After(tb)
	}
	return datePart(a) >= datePart(b)
}

// withProvider reports whether an outpatient Encounter was with the
// member's attributed provider: the list's organization as service
// provider, or the attributed clinician as participant (by reference or
// NPI).
func (r *Report) withProvider(enc gjson.Result, e *attribution.Entry) bool {
	g := r.Group
	sp := enc.Get("serviceProvider")
	if g.OrganizationID != "" && sp.Get("reference").String() == "Organization/"+g.OrganizationID {
		return true
	}
	if v := sp.Get("identifier.value").String(); v != "" && (v == g.NPI || v == g.TIN) {
		return true
	}
	prov := e.Provider
	for _, part := range enc.Get("participant").Array() {
		ind := part.Get("individual")
		ref := ind.Get("reference").String()
		if prov.PractitionerID != "" && ref == "Practitioner/"+prov.PractitionerID {
			return true
		}
		if prov.NPI != "" && ind.Get("identifier.value").String() == prov.NPI {
			return true
		}
		if g.OrganizationID != "" && ref == "Organization/"+g.OrganizationID {
			return true
		}
	}
	return false
}

// transferredOn reports a transfer on day: a location that started on day
// and is not the first location of the stay (the HL7 v2 A02 mapping adds
// the new location with the event time as its period start).
func transferredOn(enc gjson.Result, day string) bool {
	var starts []string
	for _, l := range enc.Get("location").Array() {
		if s := l.Get("period.start").String(); s != "" {
			starts = append(starts, s)
		}
	}
	if len(starts) < 2 {
		return false
	}
	slices.Sort(starts)
	for _, s := range starts[1:] {
		if datePart(s) == day {
			return true
		}
	}
	return false
}

func summary(enc gjson.Result) Encounter {
	loc := ""
	for _, l := range enc.Get("location").Array() {
		if l.Get("status").String() == "active" || loc == "" {
			loc = l.Get("location.display").String()
			if loc == "" {
				loc = l.Get("location.reference").String()
			}
		}
	}
	disp := enc.Get("hospitalization.dischargeDisposition.coding.0.code").String()
	if disp == "" {
		disp = enc.Get("hospitalization.dischargeDisposition.text").String()
	}
	return Encounter{
		ID: enc.Get("id").String(), Class: enc.Get("class.code").String(), Status: enc.Get("status").String(),
		Start: enc.Get("period.start").String(), End: enc.Get("period.end").String(),
		Disposition: disp, Location: loc, body: []byte(enc.Raw),
	}
}

// datePart is the calendar date of a FHIR date or dateTime, as recorded
// (the local date of the sender).
func datePart(s string) string {
	if len(s) >= 10 {
		return s[:10]
	}
	return ""
}
