package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/measures/report"
	"github.com/equitas/equitas/store"
)

// ExtSubmitDataUpdateType is the DEQM extension saying whether submitted
// data are incremental or a snapshot.
const ExtSubmitDataUpdateType = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-submitDataUpdateType"

// Submission is one $submit-data: a data-collection MeasureReport and the
// resources it reports.
type Submission struct {
	MeasureReport []byte
	Resources     [][]byte
	// Measure, when set (instance-level call), is the Measure the report
	// must be about.
	Measure string
}

// SubmitResult says what a submission did.
type SubmitResult struct {
	// ReportID is the stored MeasureReport's id.
	ReportID string
	// Duplicate is true when a report with the same identifier had been
	// submitted before: nothing was written.
	Duplicate bool
	// Written counts the resources written (the report included); unchanged
	// resources are not rewritten.
	Written int
}

// Submit validates a submission and writes the report and its resources in
// one transaction (all or nothing). A report with an identifier gets an id
// derived from its first identifier, so submitting it again is a no-op
// (Duplicate). Problems with the request wrap ErrBadRequest or are
// validation *outcome.HTTPErrors.
func (c *Catalog) Submit(ctx context.Context, v *validate.Validator, s Submission) (*SubmitResult, error) {
	mr := s.MeasureReport
	if _, _, err := v.ResourceAt(mr, "Parameters.parameter[measureReport].resource"); err != nil {
		return nil, err
	}
	h := gjson.GetManyBytes(mr, "resourceType", "type", "subject.reference", "measure", "identifier.0.system", "identifier.0.value")
	switch {
	case h[0].String() != "MeasureReport":
		return nil, fmt.Errorf("%w: measureReport must be a MeasureReport, not %s", ErrBadRequest, h[0].String())
	case h[1].String() != "data-collection":
		return nil, fmt.Errorf("%w: measureReport.type must be data-collection, not %q", ErrBadRequest, h[1].String())
	}
	if subj := h[2].String(); len(subj) <= len("Patient/") || subj[:len("Patient/")] != "Patient/" {
		return nil, fmt.Errorf("%w: measureReport.subject must reference a Patient (got %q)", ErrBadRequest, subj)
	}
	updateType := gjson.GetBytes(mr, `extension.#(url=="`+ExtSubmitDataUpdateType+`").valueCode`).String()
	if updateType != "incremental" && updateType != "snapshot" {
		return nil, fmt.Errorf("%w: measureReport needs the DEQM extension %s with valueCode incremental or snapshot (got %q)", ErrBadRequest, ExtSubmitDataUpdateType, updateType)
	}
	if s.Measure != "" {
		m, err := c.Measure(ctx, s.Measure)
		if err != nil {
			return nil, err
		}
		if got := h[3].String(); got != m.Def.URL && got != m.Def.Canonical() {
			return nil, fmt.Errorf("%w: measureReport.measure %q is not Measure %s (%s)", ErrBadRequest, got, s.Measure, m.Def.Canonical())
		}
	}
	id := gjson.GetBytes(mr, "id").String()
	if sys, val := h[4].String(), h[5].String(); val != "" {
		sum := sha256.Sum256([]byte(sys + "|" + val))
		id = "submitted-" + hex.EncodeToString(sum[:16])
	}
	if id == "" {
		id = report.NewID()
	}
	mr, err := sjson.SetBytes(mr, "id", id)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if _, err := c.st.Read(ctx, "MeasureReport", id); err == nil {
		return &SubmitResult{ReportID: id, Duplicate: true}, nil
	} else if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrDeleted) {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	tx := store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "MeasureReport", ID: id, Body: mr, IfNoneExist: true}}}
	for i, raw := range s.Resources {
		typ, rid, err := v.ResourceAt(raw, fmt.Sprintf("Parameters.parameter[resource][%d].resource", i))
		if err != nil {
			return nil, err
		}
		if rid == "" {
			rid = report.NewID()
			if raw, err = sjson.SetBytes(raw, "id", rid); err != nil {
				return nil, fmt.Errorf("catalog: %w", err)
			}
		}
		tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: typ, ID: rid, Body: raw, SkipUnchanged: true})
	}
	written, err := c.st.Commit(ctx, tx)
	if errors.Is(err, store.ErrVersionConflict) {
		// A concurrent submission of the same report won the race.
		return &SubmitResult{ReportID: id, Duplicate: true}, nil
	}
	if errors.Is(err, store.ErrInvalid) {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: submitting data: %w", err)
	}
	return &SubmitResult{ReportID: id, Written: len(written)}, nil
}
