// Package importjob runs bulk ingest as durable asynchronous jobs: the
// SMART "ping and pull" $import (the server fetches a Bulk Data export
// from another server, kicking it off itself or reading a finished
// manifest) and the HL7 Bulk Submit $bulk-submit / $bulk-submit-status
// (a submitter points the server at manifests it publishes).
//
// Each job reads the manifest's NDJSON files over HTTP and loads them
// with bulk/ingest: every line is validated, good lines are committed
// (idempotently: unchanged resources get no new version), bad lines are
// reported by file and line in an OperationOutcome NDJSON file listed in
// the job's result.
package importjob

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

// Kind is the job kind of imports (ping and pull, and each manifest of a
// bulk submission).
const Kind = "import"

// Export types of ping and pull.
const (
	Dynamic = "dynamic" // kick off an export at ExportURL and follow it
	Static  = "static"  // ExportURL is a finished manifest
)

// Params is a validated import request, stored with its job.
type Params struct {
	// ExportURL is the export kick-off (Dynamic) or manifest (Static) URL.
	ExportURL  string `json:"exportUrl"`
	ExportType string `json:"exportType"`
	// ExportParams are passed to a Dynamic kick-off (_type, _since, ...).
	ExportParams url.Values `json:"exportParams,omitempty"`
	// Headers are sent with every request to the data source (Bulk Submit
	// fileRequestHeader).
	Headers map[string]string `json:"headers,omitempty"`
	// Submission ties the job to a bulk submission (empty for $import).
	Submission string `json:"submission,omitempty"`

	ClientID            string   `json:"clientId"`
	Scopes              []string `json:"scopes"`
	FileBase            string   `json:"fileBase"` // absolute URL prefix of job files
	RequiresAccessToken bool     `json:"requiresAccessToken"`
}

// Validator is what the importer validates lines with
// (fhir/validate.Validator).
type Validator = ingest.Validator

// Options configure an Importer.
type Options struct {
	// HTTPClient fetches manifests and files (default: 30 s per response
	// header, no overall limit so large files can stream).
	HTTPClient *http.Client
	// AllowURL vets every URL the importer is told to fetch; the default
	// admits http and https. Deployments restrict it to known sources
	// (the server fetches what the client names).
	AllowURL func(*url.URL) error
	// MaxWait bounds how long a Dynamic export is followed (default 1 h).
	MaxWait time.Duration
	Ingest  ingest.Options
	Logger  *slog.Logger
}

// Importer runs import jobs.
type Importer struct {
	st   store.Store
	v    Validator
	opts Options
	log  *slog.Logger
	// recordMu makes "first write of a resource in a submission" decisions
	// atomic across the jobs of one submission.
	recordMu sync.Mutex
}

// New returns an importer; register its Run with a job.Manager under Kind.
func New(st store.Store, v Validator, opts Options) *Importer {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: 30 * time.Second, MaxIdleConnsPerHost: 8,
		}}
	}
	if opts.AllowURL == nil {
		opts.AllowURL = HTTPOnly
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = time.Hour
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Importer{st: st, v: v, opts: opts, log: log.With("component", "import")}
}

// HTTPOnly admits absolute http and https URLs.
func HTTPOnly(u *url.URL) error {
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s is not an absolute http(s) URL", u.Redacted())
	}
	return nil
}

// Manifest is the completion manifest of an import job (the ping-and-pull
// draft's shape: outcome files replace error files).
type Manifest struct {
	TransactionTime     string        `json:"transactionTime"`
	Request             string        `json:"request"`
	RequiresAccessToken bool          `json:"requiresAccessToken"`
	Outcome             []OutcomeFile `json:"outcome"`
	Extension           Extension     `json:"extension"`
}

// OutcomeFile lists an OperationOutcome NDJSON file.
type OutcomeFile struct {
	Type          string          `json:"type"`
	URL           string          `json:"url"`
	Count         int             `json:"count"`
	ManifestURL   string          `json:"manifestUrl,omitempty"`
	CountSeverity []SeverityCount `json:"countSeverity,omitempty"`
}

// SeverityCount is a Bulk Submit status count.
type SeverityCount struct {
	Code  string `json:"code"`
	Count int    `json:"count"`
}

// Extension carries the load summary.
type Extension struct {
	ManifestURL string           `json:"manifestUrl"`
	Files       int              `json:"files"`
	Read        int64            `json:"read"`
	Written     map[string]int64 `json:"written"`
	Unchanged   map[string]int64 `json:"unchanged"`
	Failed      int64            `json:"failed"`
}

// exportManifest is the part of a Bulk Data manifest the importer reads.
type exportManifest struct {
	TransactionTime     string `json:"transactionTime"`
	RequiresAccessToken bool   `json:"requiresAccessToken"`
	Output              []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"output"`
	Link []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
}

// Run is the job.Run of imports.
func (im *Importer) Run(ctx context.Context, rec *job.Record, dir string, progress func(string)) ([]byte, error) {
	var p Params
	if err := json.Unmarshal(rec.Params, &p); err != nil {
		return nil, fmt.Errorf("import: params: %w", err)
	}
	progress("fetching the manifest")
	manifestURL, m, err := im.manifest(ctx, &p, progress)
	if err != nil {
		return nil, err
	}
	out, err := newOutcomeWriter(filepath.Join(dir, outcomeFile))
	if err != nil {
		return nil, err
	}
	defer out.close()
	principal := &access.Principal{ClientID: p.ClientID, Scopes: p.Scopes}
	ext := Extension{ManifestURL: manifestURL, Written: map[string]int64{}, Unchanged: map[string]int64{}}
	opts := im.opts.Ingest
	opts.OnError = out.lineError
	if p.Submission != "" {
		opts.OnWritten = func(w []ingest.Written) error { return im.record(ctx, p.Submission, w) }
	}
	// One load over every file keeps the validate/commit pipeline full; a
	// file that cannot be fetched, or breaks off, is reported and ends
	// early instead of stopping the others.
	srcs := make([]ingest.Source, 0, len(m.Output))
	for _, f := range m.Output {
		src, err := im.source(ctx, &p, f.Type, f.URL, out)
		if err != nil {
			out.fileError(f.URL, err)
			continue
		}
		srcs = append(srcs, src)
	}
	// Progress is saved with the job record (a synced write), so at most
	// once a second rather than after every batch.
	var lastProgress time.Time
	opts.Progress = func(pr ingest.Progress) {
		if time.Since(lastProgress) < time.Second {
			return
		}
		lastProgress = time.Now()
		progress(fmt.Sprintf("%d resources loaded, %d failed", pr.Resources, pr.Failed))
	}
	sum, err := ingest.New(im.st, scoped{im.v, principal}, opts).Load(ctx, srcs...)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	ext.Files = len(srcs)
	ext.Read, ext.Failed = sum.Read, sum.Failed
	for t, n := range sum.Written {
		ext.Written[t] += n
	}
	for t, n := range sum.Unchanged {
		ext.Unchanged[t] += n
	}
	rec.TransactionTime = time.Now().UTC()
	out.summary(ext)
	if err := out.close(); err != nil {
		return nil, err
	}
	res := Manifest{
		TransactionTime: rec.TransactionTime.Format(time.RFC3339Nano), Request: rec.Request,
		RequiresAccessToken: p.RequiresAccessToken, Extension: ext,
		Outcome: []OutcomeFile{{Type: "OperationOutcome", URL: p.FileBase + "/" + rec.ID + "/" + outcomeFile, Count: out.count,
			ManifestURL: manifestURL, CountSeverity: out.severities()}},
	}
	return json.Marshal(res)
}

const outcomeFile = "OperationOutcome-1.ndjson"

// manifest returns the manifest URL and the manifest of a job's data.
func (im *Importer) manifest(ctx context.Context, p *Params, progress func(string)) (string, *exportManifest, error) {
	u, err := im.vet(p.ExportURL)
	if err != nil {
		return "", nil, err
	}
	manifestURL := u.String()
	if p.ExportType == Dynamic {
		if manifestURL, err = im.kickoff(ctx, p, u); err != nil {
			return "", nil, err
		}
	}
	var m exportManifest
	deadline := time.Now().Add(im.opts.MaxWait)
	for {
		res, err := im.get(ctx, p, manifestURL, "application/json")
		if err != nil {
			return "", nil, fmt.Errorf("import: manifest %s: %w", manifestURL, err)
		}
		switch res.StatusCode {
		case http.StatusOK:
			err = json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&m)
			res.Body.Close()
			if err != nil {
				return "", nil, fmt.Errorf("import: manifest %s is not JSON: %w", manifestURL, err)
			}
			if err := m.followLinks(ctx, im, p); err != nil {
				return "", nil, err
			}
			return manifestURL, &m, nil
		case http.StatusAccepted, http.StatusTooManyRequests:
			res.Body.Close()
			if x := res.Header.Get("X-Progress"); x != "" {
				progress("source export: " + x)
			}
			if time.Now().After(deadline) {
				return "", nil, fmt.Errorf("import: the source export did not finish within %s", im.opts.MaxWait)
			}
			if err := sleep(ctx, retryAfter(res.Header.Get("Retry-After"))); err != nil {
				return "", nil, err
			}
		default:
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
			res.Body.Close()
			return "", nil, fmt.Errorf("import: manifest %s: HTTP %d: %s", manifestURL, res.StatusCode, strings.TrimSpace(string(body)))
		}
	}
}

// followLinks appends the outputs of "next" manifests (Bulk Data 3.0
// allowPartialManifests, which Bulk Submit says to follow).
func (m *exportManifest) followLinks(ctx context.Context, im *Importer, p *Params) error {
	seen := map[string]bool{}
	for hops := 0; hops < 1000; hops++ {
		next := ""
		for _, l := range m.Link {
			if l.Relation == "next" && !seen[l.URL] {
				next = l.URL
			}
		}
		if next == "" {
			return nil
		}
		seen[next] = true
		if _, err := im.vet(next); err != nil {
			return err
		}
		res, err := im.get(ctx, p, next, "application/json")
		if err != nil {
			return fmt.Errorf("import: manifest page %s: %w", next, err)
		}
		var page exportManifest
		err = json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&page)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || err != nil {
			return fmt.Errorf("import: manifest page %s: HTTP %d", next, res.StatusCode)
		}
		m.Output = append(m.Output, page.Output...)
		m.Link = page.Link
	}
	return errors.New("import: too many manifest pages")
}

// kickoff starts the source export and returns its status URL.
func (im *Importer) kickoff(ctx context.Context, p *Params, u *url.URL) (string, error) {
	q := u.Query()
	for k, vs := range p.ExportParams {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "respond-async")
	im.headers(req, p)
	res, err := im.opts.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("import: export kick-off %s: %w", u.Redacted(), err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return "", fmt.Errorf("import: export kick-off %s: HTTP %d: %s", u.Redacted(), res.StatusCode, strings.TrimSpace(string(body)))
	}
	loc := res.Header.Get("Content-Location")
	if loc == "" {
		return "", fmt.Errorf("import: export kick-off %s: no Content-Location", u.Redacted())
	}
	su, err := u.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("import: export status URL %q: %w", loc, err)
	}
	if _, err := im.vet(su.String()); err != nil {
		return "", err
	}
	return su.String(), nil
}

// source is one manifest file as an ingest source streamed over HTTP. A
// fetch or read failure is reported to out and ends the file.
func (im *Importer) source(ctx context.Context, p *Params, typ, raw string, out *outcomeWriter) (ingest.Source, error) {
	u, err := im.vet(raw)
	if err != nil {
		return ingest.Source{}, err
	}
	name := u.String()
	return ingest.Source{Name: name, Format: ingest.NDJSON, Type: typ, Open: func() (io.ReadCloser, error) {
		res, err := im.get(ctx, p, name, "application/fhir+ndjson")
		if err != nil {
			out.fileError(name, err)
			return io.NopCloser(strings.NewReader("")), nil
		}
		if res.StatusCode != http.StatusOK {
			res.Body.Close()
			out.fileError(name, fmt.Errorf("HTTP %d", res.StatusCode))
			return io.NopCloser(strings.NewReader("")), nil
		}
		return &tolerant{rc: res.Body, name: name, out: out, ctx: ctx}, nil
	}}, nil
}

// tolerant turns a read error into the end of the file, reported.
type tolerant struct {
	rc   io.ReadCloser
	name string
	out  *outcomeWriter
	ctx  context.Context
	n    int64
}

func (t *tolerant) Read(b []byte) (int, error) {
	n, err := t.rc.Read(b)
	t.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && t.ctx.Err() == nil {
		t.out.fileError(t.name, fmt.Errorf("transfer broke off after %d bytes: %w", t.n, err))
		return n, io.EOF
	}
	return n, err
}

func (t *tolerant) Close() error { return t.rc.Close() }

func (im *Importer) vet(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("import: %q is not a URL", raw)
	}
	if err := im.opts.AllowURL(u); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return u, nil
}

func (im *Importer) get(ctx context.Context, p *Params, u, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	im.headers(req, p)
	return im.opts.HTTPClient.Do(req)
}

func (im *Importer) headers(req *http.Request, p *Params) {
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
}

func retryAfter(h string) time.Duration {
	d := time.Second
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 50*time.Millisecond), 30*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// scoped refuses resources of types the importing client may not write.
type scoped struct {
	v Validator
	p *access.Principal
}

// ErrForbiddenType is the per-line error of a resource type outside the
// importing client's scopes.
var ErrForbiddenType = errors.New("the client's scopes do not allow writing this resource type")

func (s scoped) Resource(body []byte) (string, string, error) {
	typ, id, err := s.v.Resource(body)
	if err != nil {
		return typ, id, err
	}
	if !s.p.Allows(typ, access.Create) || !s.p.Allows(typ, access.Update) {
		return typ, id, fmt.Errorf("%s: %w", typ, ErrForbiddenType)
	}
	return typ, id, nil
}

// outcomeWriter writes the job's OperationOutcome NDJSON file.
type outcomeWriter struct {
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	count int
	sev   map[string]int
	err   error
}

func newOutcomeWriter(path string) (*outcomeWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return &outcomeWriter{f: f, w: bufio.NewWriter(f), sev: map[string]int{}}, nil
}

func (o *outcomeWriter) write(issues []outcome.Issue) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, err := json.Marshal(outcome.FromIssues(issues))
	if err == nil {
		_, err = o.w.Write(append(b, '\n'))
	}
	if err != nil && o.err == nil {
		o.err = err
	}
	o.count++
	o.sev[issues[0].Severity]++
}

// lineError reports one rejected resource, keeping the validator's issues.
func (o *outcomeWriter) lineError(le *ingest.LineError) {
	where := fmt.Sprintf("%s line %d", le.File, le.Line)
	if le.Entry >= 0 {
		where = fmt.Sprintf("%s entry %d", le.File, le.Entry)
	}
	var he *outcome.HTTPError
	if errors.As(le.Err, &he) && len(he.Issues) > 0 {
		issues := make([]outcome.Issue, len(he.Issues))
		for i, is := range he.Issues {
			is.Diagnostics = where + ": " + is.Diagnostics
			issues[i] = is
		}
		o.write(issues)
		return
	}
	code := "invalid"
	if errors.Is(le.Err, ErrForbiddenType) {
		code = "forbidden"
	}
	o.write([]outcome.Issue{{Severity: "error", Code: code, Diagnostics: where + ": " + le.Err.Error()}})
}

func (o *outcomeWriter) fileError(u string, err error) {
	o.write([]outcome.Issue{{Severity: "error", Code: "exception", Diagnostics: u + ": " + err.Error()}})
}

func (o *outcomeWriter) summary(e Extension) {
	var w, u int64
	for _, n := range e.Written {
		w += n
	}
	for _, n := range e.Unchanged {
		u += n
	}
	o.write([]outcome.Issue{{Severity: "information", Code: "informational",
		Diagnostics: fmt.Sprintf("%d files, %d resources read: %d written, %d unchanged, %d failed", e.Files, e.Read, w, u, e.Failed)}})
}

func (o *outcomeWriter) severities() []SeverityCount {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []SeverityCount
	for _, s := range []string{"fatal", "error", "warning", "information"} {
		if n := o.sev[s]; n > 0 {
			out = append(out, SeverityCount{Code: s, Count: n})
		}
	}
	return out
}

func (o *outcomeWriter) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return o.err
	}
	err := o.w.Flush()
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	o.f = nil
	if o.err == nil {
		o.err = err
	}
	return o.err
}
