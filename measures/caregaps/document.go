package caregaps

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/report"
)

// DEQM 4.0.0 profiles, extensions and codes of the gaps document.
const (
	ProfileGapsBundle        = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/gaps-bundle-deqm"
	ProfileGapsComposition   = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/gaps-composition-deqm"
	ProfileGapsDetectedIssue = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/gaps-detectedissue-deqm"
	ExtGapStatus             = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-gapStatus"
	GapStatusSystem          = "http://hl7.org/fhir/us/davinci-deqm/CodeSystem/gaps-status"
	LOINC                    = "http://loinc.org"
	GapsReportCode           = "96315-7"
	ActCodeSystem            = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
)

func statusDisplay(s measure.GapStatus) string {
	switch s {
	case measure.OpenGap:
		return "Gap in care detected"
	case measure.ClosedGap:
		return "Gap in care closed"
	}
	return "Not applicable"
}

type (
	reference  = report.Reference
	coding     = measure.Coding
	concept    = measure.Concept
	meta       = report.Meta
	identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	entry struct {
		FullURL  string `json:"fullUrl"`
		Resource any    `json:"resource"`
	}
	bundle struct {
		ResourceType string     `json:"resourceType"`
		ID           string     `json:"id"`
		Meta         *meta      `json:"meta"`
		Identifier   identifier `json:"identifier"`
		Type         string     `json:"type"`
		Timestamp    string     `json:"timestamp"`
		Entry        []entry    `json:"entry"`
	}
	section struct {
		Title string      `json:"title"`
		Focus reference   `json:"focus"`
		Entry []reference `json:"entry"`
	}
	composition struct {
		ResourceType string      `json:"resourceType"`
		ID           string      `json:"id"`
		Meta         *meta       `json:"meta"`
		Status       string      `json:"status"`
		Type         concept     `json:"type"`
		Subject      reference   `json:"subject"`
		Date         string      `json:"date"`
		Author       []reference `json:"author"`
		Title        string      `json:"title"`
		Section      []section   `json:"section"`
	}
	extension struct {
		URL                  string  `json:"url"`
		ValueCodeableConcept concept `json:"valueCodeableConcept"`
	}
	evidence struct {
		Detail []reference `json:"detail"`
	}
	detectedIssue struct {
		ResourceType       string      `json:"resourceType"`
		ID                 string      `json:"id"`
		Meta               *meta       `json:"meta"`
		ModifierExtension  []extension `json:"modifierExtension"`
		Status             string      `json:"status"`
		Code               concept     `json:"code"`
		Patient            reference   `json:"patient"`
		IdentifiedDateTime string      `json:"identifiedDateTime"`
		Evidence           []evidence  `json:"evidence"`
		Detail             string      `json:"detail,omitempty"`
	}
)

// Document builds the DEQM gaps document of one patient: a document Bundle
// whose first entry is the Composition (LOINC 96315-7, one section per
// measure with focus on the individual MeasureReport and an entry per
// DetectedIssue), then the Patient, then per measure the MeasureReport,
// its DetectedIssues and the resources it evaluated. Only groups whose
// status the request asked for are reported; ok is false when none is.
// base is the absolute FHIR base URL, for the fullUrl of stored resources.
// The reporting Organization (the Composition's author) is included when
// the plan found it in the store, so the document's references resolve
// inside it.
func (s *Service) Document(plan *Plan, pg *PatientGaps, base string) (doc []byte, ok bool, err error) {
	req := plan.Request
	reported := pg.Reported(req)
	if len(reported) == 0 {
		return nil, false, nil
	}
	now := s.opts.Now().UTC()
	stamp := now.Format(time.RFC3339)
	subject := "Patient/" + pg.Patient.ID
	base = strings.TrimRight(base, "/")
	comp := &composition{
		ResourceType: "Composition", ID: newID(), Meta: &meta{Profile: []string{ProfileGapsComposition}},
		Status:  "final",
		Type:    concept{Coding: []coding{{System: LOINC, Code: GapsReportCode, Display: "Gaps in care report"}}},
		Subject: reference{Reference: subject}, Date: stamp,
		Author: []reference{{Reference: s.opts.Reporter}},
		Title:  "Gaps in Care Report for " + subject,
	}
	b := &bundle{
		ResourceType: "Bundle", ID: newID(), Meta: &meta{Profile: []string{ProfileGapsBundle}},
		Type: "document", Timestamp: stamp,
	}
	b.Identifier = identifier{System: "urn:ietf:rfc:3986", Value: "urn:uuid:" + b.ID}
	b.Entry = append(b.Entry, entry{FullURL: "urn:uuid:" + comp.ID, Resource: comp})
	if raw := patientJSON(pg.Patient); raw != nil {
		b.Entry = append(b.Entry, entry{FullURL: base + "/" + subject, Resource: raw})
	}
	if plan.reporter != nil {
		b.Entry = append(b.Entry, entry{FullURL: base + "/" + s.opts.Reporter, Resource: plan.reporter})
	}
	included := map[string]bool{subject: true, s.opts.Reporter: true}
	rp := reportPeriod(req.Period())
	for _, mg := range reported {
		mr := report.Individual(mg.Measure.Def, report.Options{Period: rp, Date: now, Reporter: s.opts.Reporter}, mg.Result)
		mrRef := reference{Reference: "urn:uuid:" + mr.ID}
		sec := section{Title: mg.Measure.Title, Focus: mrRef}
		if sec.Title == "" {
			sec.Title = mg.Measure.Canonical()
		}
		b.Entry = append(b.Entry, entry{FullURL: "urn:uuid:" + mr.ID, Resource: mr})
		for _, g := range mg.Groups {
			di := &detectedIssue{
				ResourceType: "DetectedIssue", ID: newID(), Meta: &meta{Profile: []string{ProfileGapsDetectedIssue}},
				ModifierExtension: []extension{{URL: ExtGapStatus, ValueCodeableConcept: concept{
					Coding: []coding{{System: GapStatusSystem, Code: string(g.Status), Display: statusDisplay(g.Status)}}}}},
				Status:             "final",
				Code:               concept{Coding: []coding{{System: ActCodeSystem, Code: "CAREGAP", Display: "Care Gaps"}}},
				Patient:            reference{Reference: subject},
				IdentifiedDateTime: stamp,
				Evidence:           []evidence{{Detail: []reference{mrRef}}},
				Detail:             detail(mg.Measure, g),
			}
			sec.Entry = append(sec.Entry, reference{Reference: "urn:uuid:" + di.ID})
			b.Entry = append(b.Entry, entry{FullURL: "urn:uuid:" + di.ID, Resource: di})
		}
		comp.Section = append(comp.Section, sec)
		for _, ev := range mr.EvaluatedResource {
			if included[ev.Reference] {
				continue
			}
			if raw := findResource(pg, ev.Reference); raw != nil {
				included[ev.Reference] = true
				b.Entry = append(b.Entry, entry{FullURL: base + "/" + ev.Reference, Resource: raw})
			}
		}
	}
	out, err := json.Marshal(b)
	if err != nil {
		return nil, false, fmt.Errorf("caregaps: encoding the gaps document: %w", err)
	}
	return out, true, nil
}

func detail(m *Selected, g GroupGap) string {
	d := g.Reason
	if len(m.Def.Groups) > 1 {
		id := g.Group.ID
		if id == "" {
			id = fmt.Sprintf("%d", g.Group.Index+1)
		}
		d = "group " + id + ": " + d
	}
	return d
}

// reportPeriod renders the period at day precision (DEQM deqm-1).
func reportPeriod(p measure.Period) report.Period {
	day := func(y, m, d int) string { return fmt.Sprintf("%04d-%02d-%02d", y, m, d) }
	return report.Period{Start: day(p.Start.Year, p.Start.Month, p.Start.Day), End: day(p.End.Year, p.End.Month, p.End.Day)}
}

// findResource returns the patient's resource "Type/id".
func findResource(pg *PatientGaps, ref string) json.RawMessage {
	typ, id, ok := strings.Cut(ref, "/")
	if !ok {
		return nil
	}
	for _, raw := range pg.Patient.Resources[typ] {
		if gjson.GetBytes(raw, "id").String() == id {
			return raw
		}
	}
	return nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// ParametersWriter streams the operation's output: a Parameters resource
// with one "return" part per gaps document. FHIR JSON forbids an empty
// array, so a run without documents yields a Parameters without parameter.
type ParametersWriter struct {
	w   *bufio.Writer
	n   int
	err error
}

// NewParametersWriter starts the Parameters on w.
func NewParametersWriter(w io.Writer) *ParametersWriter {
	p := &ParametersWriter{w: bufio.NewWriterSize(w, 64<<10)}
	_, p.err = p.w.WriteString(`{"resourceType":"Parameters"`)
	return p
}

// Add appends one document.
func (p *ParametersWriter) Add(doc []byte) error {
	if p.err != nil {
		return p.err
	}
	sep := ",\n"
	if p.n == 0 {
		sep = `,"parameter":[` + "\n"
	}
	p.n++
	if _, p.err = p.w.WriteString(sep + `{"name":"return","resource":`); p.err != nil {
		return p.err
	}
	if _, p.err = p.w.Write(doc); p.err != nil {
		return p.err
	}
	_, p.err = p.w.WriteString("}")
	return p.err
}

// Close ends the Parameters and flushes.
func (p *ParametersWriter) Close() error {
	if p.err != nil {
		return p.err
	}
	end := "}\n"
	if p.n > 0 {
		end = "\n]}\n"
	}
	if _, err := p.w.WriteString(end); err != nil {
		return err
	}
	return p.w.Flush()
}

// Documents returns how many documents were written.
func (p *ParametersWriter) Documents() int { return p.n }
