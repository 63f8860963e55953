package caregaps

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/attribution"
)

// JobKind is the bulk/job kind of asynchronous $care-gaps runs.
const JobKind = "care-gaps"

// OutputFile is the name of an asynchronous run's output: one gaps
// document Bundle per line.
const OutputFile = "Bundle-1.ndjson"

// JobParams are the durable parameters of an asynchronous run.
type JobParams struct {
	Request Request `json:"request"`
	// Organization restricts the population to the patients attributed to
	// this organization when the run starts (a provider client's binding);
	// empty for unrestricted callers.
	Organization string `json:"organization,omitempty"`
	// Base is the absolute FHIR base URL of the kick-off request.
	Base                string `json:"base"`
	RequiresAccessToken bool   `json:"requiresAccessToken"`
}

// Manifest is the completed run's status body (the Bulk Data manifest
// shape, so bulk clients can fetch the output).
type Manifest struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []ManifestFile `json:"output"`
	Error               []ManifestFile `json:"error"`
}

// ManifestFile is one output file.
type ManifestFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count,omitempty"`
}

// RunJob is the bulk/job runner of JobKind.
func (s *Service) RunJob(ctx context.Context, rec *job.Record, dir string, progress func(string)) ([]byte, error) {
	var p JobParams
	if err := json.Unmarshal(rec.Params, &p); err != nil {
		return nil, fmt.Errorf("care-gaps job %s: parameters: %w", rec.ID, err)
	}
	if err := p.Request.Check(); err != nil {
		return nil, fmt.Errorf("care-gaps job %s: %w", rec.ID, err)
	}
	started := s.opts.Now().UTC()
	var visible func(string) bool
	if p.Organization != "" {
		ids, err := attribution.OrganizationPatients(ctx, s.st.KV(), p.Organization, started)
		if err != nil {
			return nil, fmt.Errorf("care-gaps job %s: attributed patients: %w", rec.ID, err)
		}
		visible = func(id string) bool { return ids[id] }
	}
	plan, err := s.Prepare(ctx, &p.Request, visible)
	if err != nil {
		return nil, fmt.Errorf("care-gaps job %s: %w", rec.ID, err)
	}
	total := len(plan.Patients)
	progress(fmt.Sprintf("evaluating %d patients × %d measures", total, len(plan.Measures)))
	plan.Progress = func(done int) { progress(fmt.Sprintf("%d of %d patients", done, total)) }
	file := filepath.Join(dir, OutputFile)
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("care-gaps job %s: %w", rec.ID, err)
	}
	sum, err := s.WriteNDJSON(ctx, plan, p.Base, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("care-gaps job %s: %w", rec.ID, err)
	}
	m := Manifest{TransactionTime: started.Format(time.RFC3339), Request: rec.Request,
		RequiresAccessToken: p.RequiresAccessToken, Output: []ManifestFile{}, Error: []ManifestFile{}}
	if sum.Documents > 0 {
		m.Output = append(m.Output, ManifestFile{Type: "Bundle", URL: p.Base + "/bulkfiles/" + rec.ID + "/" + OutputFile, Count: sum.Documents})
	} else if err := os.Remove(file); err != nil {
		return nil, fmt.Errorf("care-gaps job %s: %w", rec.ID, err)
	}
	s.log.Info("care-gaps job done", "job", rec.ID, "patients", sum.Patients, "failed", sum.Failed, "documents", sum.Documents, "open", sum.Open, "closed", sum.Closed)
	return json.Marshal(m)
}
