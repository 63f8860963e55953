package importjob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/store"
)

const submissionPrefix = "bulk/submission/"

// Submission states (http://hl7.org/fhir/event-status codes Bulk Submit uses).
const (
	InProgress = "in-progress"
	Completed  = "completed"
	Stopped    = "stopped"
)

// Errors callers test with errors.Is.
var (
	ErrSubmissionNotFound = errors.New("importjob: no such submission")
	ErrSubmissionClosed   = errors.New("importjob: the submission is completed or stopped")
	ErrBadSubmission      = errors.New("importjob: invalid submission request")
)

// Submission is the durable state of one Bulk Submit submission.
type Submission struct {
	Key          string              `json:"key"`
	Submitter    string              `json:"submitter"` // system|value
	SubmissionID string              `json:"submissionId"`
	Owner        string              `json:"owner"`
	Status       string              `json:"status"`
	Manifests    []SubmittedManifest `json:"manifests"`
	CreatedAt    time.Time           `json:"createdAt"`
	UpdatedAt    time.Time           `json:"updatedAt"`
}

// SubmittedManifest is one manifest of a submission and the job loading it.
type SubmittedManifest struct {
	URL      string `json:"url"`
	JobID    string `json:"jobId"`
	Replaced bool   `json:"replaced,omitempty"`
}

// SubmitRequest is a validated $bulk-submit call.
type SubmitRequest struct {
	Submitter           string // system|value
	SubmissionID        string
	Status              string // "" keeps the current status
	ManifestURL         string
	ReplacesManifestURL string
	FHIRBaseURL         string
	Headers             map[string]string
	Request             string // the $bulk-submit URL
}

// Submissions tracks submissions and runs their manifests as import jobs.
type Submissions struct {
	st   store.Store
	kv   store.KV
	jobs *job.Manager
	mu   sync.Mutex // serializes read-modify-write of submission records
}

// NewSubmissions returns the tracker over st (where the submissions'
// data goes, so a stopped submission can be undone); jobs must run
// Importer.Run under Kind.
func NewSubmissions(st store.Store, jobs *job.Manager) *Submissions {
	return &Submissions{st: st, kv: st.KV(), jobs: jobs}
}

// Key is the opaque identifier of a submitter's submission.
func Key(submitter, submissionID string) string {
	sum := sha256.Sum256([]byte(submitter + "\x00" + submissionID))
	return hex.EncodeToString(sum[:16])
}

// Submit applies a $bulk-submit request for the client owner: it records
// the submission, queues a job for a new manifest (re-sending a manifest
// already in the submission is a no-op), and completes or stops it.
func (s *Submissions) Submit(ctx context.Context, owner string, scopes []string, fileBase string, req SubmitRequest) (*Submission, error) {
	if req.Submitter == "" || req.SubmissionID == "" {
		return nil, fmt.Errorf("%w: submitter and submissionId are required", ErrBadSubmission)
	}
	if req.Status == "" && req.ManifestURL == "" {
		return nil, fmt.Errorf("%w: give submissionStatus or manifestUrl", ErrBadSubmission)
	}
	if req.ManifestURL != "" && req.FHIRBaseURL == "" {
		return nil, fmt.Errorf("%w: fhirBaseUrl is required with manifestUrl", ErrBadSubmission)
	}
	switch req.Status {
	case "", InProgress, Completed, Stopped:
	default:
		return nil, fmt.Errorf("%w: submissionStatus must be in-progress, completed or stopped", ErrBadSubmission)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := Key(req.Submitter, req.SubmissionID)
	sub, err := s.get(ctx, key)
	switch {
	case errors.Is(err, ErrSubmissionNotFound):
		now := time.Now().UTC()
		sub = &Submission{Key: key, Submitter: req.Submitter, SubmissionID: req.SubmissionID, Owner: owner, Status: InProgress, CreatedAt: now}
	case err != nil:
		return nil, err
	case sub.Owner != owner:
		// Another client's submission ids are not revealed.
		return nil, fmt.Errorf("%w: submissionId is in use by another client", ErrBadSubmission)
	case sub.Status != InProgress:
		return nil, ErrSubmissionClosed
	}
	if req.ManifestURL != "" && !sub.has(req.ManifestURL) {
		if req.ReplacesManifestURL != "" {
			for i := range sub.Manifests {
				m := &sub.Manifests[i]
				if m.URL == req.ReplacesManifestURL && !m.Replaced {
					m.Replaced = true
					_ = s.jobs.Cancel(ctx, m.JobID) // stop loading data being replaced
				}
			}
		}
		p := &Params{ExportURL: req.ManifestURL, ExportType: Static, Headers: req.Headers, Submission: key,
			ClientID: owner, Scopes: scopes, FileBase: fileBase}
		rec, err := s.jobs.Submit(ctx, Kind, owner, req.Request, p)
		if err != nil {
			return nil, err
		}
		sub.Manifests = append(sub.Manifests, SubmittedManifest{URL: req.ManifestURL, JobID: rec.ID})
	}
	switch req.Status {
	case Completed:
		sub.Status = Completed
	case Stopped:
		sub.Status = Stopped
		// The jobs must have stopped writing before their data is undone.
		for _, m := range sub.Manifests {
			if rec, err := s.jobs.Get(ctx, m.JobID); err == nil && !rec.Done() {
				if err := s.jobs.Stop(ctx, m.JobID); err != nil && !errors.Is(err, job.ErrNotFound) {
					return nil, fmt.Errorf("importjob: stop submission: %w", err)
				}
			}
		}
	}
	sub.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(sub)
	if err != nil {
		return nil, fmt.Errorf("importjob: %w", err)
	}
	if sub.Status == Stopped {
		// Bulk Submit: on "stopped" the server SHALL delete data already
		// processed. Undo and the stopped status commit together, so a
		// failed undo leaves the submission in progress, to be stopped again.
		writes, kv, err := undo(ctx, s.st, key)
		if err != nil {
			return nil, err
		}
		kv[submissionPrefix+key] = b
		if _, err := s.st.Commit(ctx, store.Tx{Writes: writes, KV: kv}); err != nil {
			return nil, fmt.Errorf("importjob: stop submission: %w", err)
		}
		return sub, nil
	}
	if err := s.kv.Put(ctx, submissionPrefix+key, b); err != nil {
		return nil, fmt.Errorf("importjob: save submission: %w", err)
	}
	return sub, nil
}

func (sub *Submission) has(url string) bool {
	for _, m := range sub.Manifests {
		if m.URL == url {
			return true
		}
	}
	return false
}

// Get returns a submission of owner.
func (s *Submissions) Get(ctx context.Context, owner, key string) (*Submission, error) {
	sub, err := s.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if sub.Owner != owner {
		return nil, ErrSubmissionNotFound
	}
	return sub, nil
}

func (s *Submissions) get(ctx context.Context, key string) (*Submission, error) {
	b, err := s.kv.Get(ctx, submissionPrefix+key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrSubmissionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("importjob: read submission: %w", err)
	}
	var sub Submission
	if err := json.Unmarshal(b, &sub); err != nil {
		return nil, fmt.Errorf("importjob: submission %s: %w", key, err)
	}
	return &sub, nil
}

// StatusManifest is the Bulk Submit status manifest.
type StatusManifest struct {
	TransactionTime     string        `json:"transactionTime"`
	RequiresAccessToken bool          `json:"requiresAccessToken"`
	SubmissionID        string        `json:"submissionId"`
	ManifestType        string        `json:"manifestType"`
	Output              []OutcomeFile `json:"output"`
	Outcome             []OutcomeFile `json:"outcome"`
	Error               []OutcomeFile `json:"error"`
	Extension           struct {
		Status    string       `json:"status"`
		Manifests []JobSummary `json:"manifests"`
	} `json:"extension"`
}

// JobSummary is the state of one submitted manifest.
type JobSummary struct {
	ManifestURL string     `json:"manifestUrl"`
	State       string     `json:"state"`
	Error       string     `json:"error,omitempty"`
	Summary     *Extension `json:"summary,omitempty"`
}

// Status reports a submission: done is true once the submitter marked it
// completed or stopped and every manifest job finished; the manifest is
// filled either way (partial while in progress).
func (s *Submissions) Status(ctx context.Context, owner, key string, requiresToken bool) (done bool, progress string, m *StatusManifest, err error) {
	sub, err := s.Get(ctx, owner, key)
	if err != nil {
		return false, "", nil, err
	}
	m = &StatusManifest{SubmissionID: sub.SubmissionID, RequiresAccessToken: requiresToken,
		ManifestType: "http://hl7.org/fhir/uv/bulkdata/StructureDefinition/BulkSubmitStatusManifest",
		Output:       []OutcomeFile{}, Outcome: []OutcomeFile{}, Error: []OutcomeFile{}}
	m.Extension.Status = sub.Status
	done = sub.Status != InProgress
	var latest time.Time
	running := 0
	for _, sm := range sub.Manifests {
		js := JobSummary{ManifestURL: sm.URL}
		rec, err := s.jobs.Get(ctx, sm.JobID)
		switch {
		case errors.Is(err, job.ErrNotFound):
			js.State = "cancelled"
		case err != nil:
			return false, "", nil, err
		default:
			js.State, js.Error = string(rec.State), rec.Error
			if !rec.Done() {
				running++
				done = false
			}
			if rec.State == job.Completed {
				var jm Manifest
				if json.Unmarshal(rec.Result, &jm) == nil {
					m.Outcome = append(m.Outcome, jm.Outcome...)
					js.Summary = &jm.Extension
				}
				if rec.TransactionTime.After(latest) {
					latest = rec.TransactionTime
				}
			}
		}
		m.Extension.Manifests = append(m.Extension.Manifests, js)
	}
	if latest.IsZero() {
		latest = sub.UpdatedAt
	}
	m.TransactionTime = latest.Format(time.RFC3339Nano)
	progress = fmt.Sprintf("%d of %d manifests loading; submission %s", running, len(sub.Manifests), sub.Status)
	return done, progress, m, nil
}

// Expire deletes submissions that were completed or stopped more than ttl
// ago and whose jobs are gone (the job manager expires those with their
// files), so submission records do not pile up.
func (s *Submissions) Expire(ctx context.Context, ttl time.Duration) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := time.Now().Add(-ttl)
	var old []string
	err := s.kv.Scan(ctx, submissionPrefix, func(k string, v []byte) error {
		var sub Submission
		if json.Unmarshal(v, &sub) != nil || sub.Status == InProgress || sub.UpdatedAt.After(cutoff) {
			return nil
		}
		for _, m := range sub.Manifests {
			if _, err := s.jobs.Get(ctx, m.JobID); !errors.Is(err, job.ErrNotFound) {
				return nil
			}
		}
		old = append(old, k)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("importjob: expire submissions: %w", err)
	}
	for _, k := range old {
		// The records of what the submission changed are of no more use.
		ops := map[string][]byte{k: nil}
		err := s.kv.Scan(ctx, submissionDataPrefix+strings.TrimPrefix(k, submissionPrefix)+"/", func(dk string, _ []byte) error {
			ops[dk] = nil
			return nil
		})
		if err == nil {
			err = s.kv.Batch(ctx, ops)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("importjob: expire submissions: %w", err)
		}
	}
	return len(old), nil
}
