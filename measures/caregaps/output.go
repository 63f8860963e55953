package caregaps

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/store"
)

// Plan is a resolved request: the measures and the patients it covers.
type Plan struct {
	Request  *Request
	Measures []*Selected
	Patients []string
	// Progress, when set, is called with the number of patients done
	// every progressEvery patients (async status X-Progress).
	Progress func(done int)
	// reporter is the stored reporting Organization, if any.
	reporter json.RawMessage
}

const progressEvery = 500

// tick reports progress after n patients.
func (p *Plan) tick(n int) {
	if p.Progress != nil && n%progressEvery == 0 {
		p.Progress(n)
	}
}

// Prepare selects the measures and the population of req; visible limits
// the population (a provider client's attributed patients; nil: all).
func (s *Service) Prepare(ctx context.Context, req *Request, visible func(string) bool) (*Plan, error) {
	ms, err := s.SelectMeasures(ctx, req)
	if err != nil {
		return nil, err
	}
	ids, err := s.Population(ctx, req, visible)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Request: req, Measures: ms, Patients: ids}
	if typ, id, ok := splitRef(s.opts.Reporter); ok {
		r, err := s.st.Read(ctx, typ, id)
		switch {
		case err == nil:
			plan.reporter = r.Body
		case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrDeleted):
			return nil, fmt.Errorf("caregaps: reading the reporter %s: %w", s.opts.Reporter, err)
		}
	}
	return plan, nil
}

// Summary counts what a write produced.
type Summary struct {
	Stats
	Documents int // gaps documents (patients with a reported status)
	Rows      int // CSV rows
	Open      int // open gaps reported
	Closed    int
	NA        int
}

func (sum *Summary) count(mgs []MeasureGaps) {
	for _, mg := range mgs {
		for _, g := range mg.Groups {
			switch g.Status {
			case measure.OpenGap:
				sum.Open++
			case measure.ClosedGap:
				sum.Closed++
			default:
				sum.NA++
			}
		}
	}
}

// WriteParameters runs the plan and writes the Parameters output (one
// "return" Bundle per patient with a reported status) to w.
func (s *Service) WriteParameters(ctx context.Context, plan *Plan, base string, w io.Writer) (Summary, error) {
	var sum Summary
	pw := NewParametersWriter(w)
	st, err := s.Run(ctx, plan.Request, plan.Measures, plan.Patients, func(pg *PatientGaps) error {
		doc, ok, err := s.Document(plan, pg, base)
		if err != nil || !ok {
			return err
		}
		sum.count(pg.Reported(plan.Request))
		return pw.Add(doc)
	})
	sum.Stats = st
	if err != nil {
		return sum, err
	}
	sum.Documents = pw.Documents()
	return sum, pw.Close()
}

// WriteNDJSON runs the plan and writes one gaps document Bundle per line
// (the asynchronous output).
func (s *Service) WriteNDJSON(ctx context.Context, plan *Plan, base string, w io.Writer) (Summary, error) {
	var sum Summary
	bw := bufio.NewWriterSize(w, 64<<10)
	n := 0
	st, err := s.Run(ctx, plan.Request, plan.Measures, plan.Patients, func(pg *PatientGaps) error {
		n++
		plan.tick(n)
		doc, ok, err := s.Document(plan, pg, base)
		if err != nil || !ok {
			return err
		}
		sum.Documents++
		sum.count(pg.Reported(plan.Request))
		if _, err := bw.Write(doc); err != nil {
			return err
		}
		return bw.WriteByte('\n')
	})
	sum.Stats = st
	if err != nil {
		return sum, err
	}
	return sum, bw.Flush()
}

// csvHeader is the header row of the provider gap list.
func csvHeader() []string {
	return []string{"patient_id", "patient_name", "birth_date", "provider_npi", "organization",
		"measure_id", "measure_title", "measure_url", "group", "period_start", "period_end", "status", "reason"}
}

// WriteCSV runs the plan and writes the provider gap list: one row per
// patient × measure (× proportion group) with a reported status, with the
// patient's attributed provider NPIs and organizations (active attribution
// lists on the attribution date).
func (s *Service) WriteCSV(ctx context.Context, plan *Plan, w io.Writer) (Summary, error) {
	var sum Summary
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader()); err != nil {
		return sum, err
	}
	at := s.attributionDate(plan.Request)
	rp := reportPeriod(plan.Request.Period())
	st, err := s.Run(ctx, plan.Request, plan.Measures, plan.Patients, func(pg *PatientGaps) error {
		reported := pg.Reported(plan.Request)
		if len(reported) == 0 {
			return nil
		}
		sum.count(reported)
		as, err := attribution.Assignments(ctx, s.st.KV(), pg.Patient.ID, at)
		if err != nil {
			return fmt.Errorf("caregaps: attribution of Patient/%s: %w", pg.Patient.ID, err)
		}
		npis, orgs := assignmentColumns(as)
		name, dob := patientColumns(patientJSON(pg.Patient))
		for _, mg := range reported {
			for _, g := range mg.Groups {
				group := g.Group.ID
				if group == "" {
					group = fmt.Sprintf("%d", g.Group.Index+1)
				}
				row := []string{pg.Patient.ID, name, dob, npis, orgs, mg.Measure.ID, mg.Measure.Title, mg.Measure.Canonical(),
					group, rp.Start, rp.End, string(g.Status), g.Reason}
				for i := range row {
					row[i] = cell(row[i])
				}
				if err := cw.Write(row); err != nil {
					return err
				}
				sum.Rows++
			}
		}
		return nil
	})
	sum.Stats = st
	if err != nil {
		return sum, err
	}
	cw.Flush()
	return sum, cw.Error()
}

func assignmentColumns(as []Assignment) (npis, orgs string) {
	seenN, seenO := map[string]bool{}, map[string]bool{}
	var ns, ol []string
	for _, a := range as {
		if a.ProviderNPI != "" && !seenN[a.ProviderNPI] {
			seenN[a.ProviderNPI] = true
			ns = append(ns, a.ProviderNPI)
		}
		org := a.OrganizationID
		if org == "" {
			org = a.NPI
		}
		if org != "" && !seenO[org] {
			seenO[org] = true
			ol = append(ol, org)
		}
	}
	sort.Strings(ns)
	sort.Strings(ol)
	return strings.Join(ns, ";"), strings.Join(ol, ";")
}

// Assignment is an attribution list membership (fhir/attribution).
type Assignment = attribution.Assignment

// patientColumns reads "Given Family" and the birth date.
func patientColumns(raw []byte) (name, dob string) {
	p := gjson.ParseBytes(raw)
	dob = p.Get("birthDate").String()
	n := p.Get("name.0")
	if t := n.Get("text").String(); t != "" {
		return t, dob
	}
	var parts []string
	n.Get("given").ForEach(func(_, g gjson.Result) bool {
		parts = append(parts, g.String())
		return true
	})
	if f := n.Get("family").String(); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, " "), dob
}

// cell keeps a spreadsheet from reading a value as a formula (CSV
// injection): names and titles come from submitted data.
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
