package export

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"golang.org/x/sync/errgroup"

	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/store"
)

// Kind is the job kind of exports.
const Kind = "export"

// GroupMembers returns the member patient ids of a Group as of the
// snapshot; the default reads Group.member.entity from the resource.
type GroupMembers func(ctx context.Context, snap store.Snapshot, groupID string) ([]string, error)

// Renderer completes a stored resource for output (an ATR Group's members
// are kept in an index and rendered into it); it returns res.Body when it
// has nothing to add.
type Renderer func(ctx context.Context, res *store.Resource) ([]byte, error)

// Options configure the exporter.
type Options struct {
	MaxFileBytes int64 // split files at this size (default 64 MiB)
	// Visibility resolves what an organization-bound client may see (its
	// attributed patients and its own Groups); without it such clients
	// export nothing but shared directory and definitional resources.
	Visibility access.Resolver
	Members    GroupMembers
	// Render, keyed by resource type, completes resources as they are
	// written (Group: members from the attribution index).
	Render map[string]Renderer
	// CompartmentTypes are the types served at Patient/Group level when
	// _type is absent.
	CompartmentTypes []string
}

// Exporter runs export jobs against a store.
type Exporter struct {
	st   store.Store
	opts Options
}

// New returns an exporter; register its Run with a job.Manager under Kind.
func New(st store.Store, opts Options) *Exporter {
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = 64 << 20
	}
	if opts.Members == nil {
		opts.Members = ResourceMembers
	}
	if len(opts.CompartmentTypes) == 0 {
		opts.CompartmentTypes = DefaultCompartmentTypes
	}
	return &Exporter{st: st, opts: opts}
}

// DefaultCompartmentTypes are the Patient-compartment types exported at
// Patient and Group level when _type is absent.
var DefaultCompartmentTypes = []string{
	"Patient", "AllergyIntolerance", "CarePlan", "CareTeam", "Claim", "Communication", "Condition",
	"Coverage", "Device", "DiagnosticReport", "DocumentReference", "Encounter", "ExplanationOfBenefit",
	"Goal", "Immunization", "MedicationAdministration", "MedicationDispense", "MedicationRequest",
	"MedicationStatement", "Observation", "Procedure", "Provenance", "QuestionnaireResponse",
	"RelatedPerson", "ServiceRequest",
}

// Manifest is the completion manifest of Bulk Data 2.0.0.
type Manifest struct {
	TransactionTime     string       `json:"transactionTime"`
	Request             string       `json:"request"`
	RequiresAccessToken bool         `json:"requiresAccessToken"`
	Output              []OutputFile `json:"output"`
	Deleted             []OutputFile `json:"deleted,omitempty"`
	Error               []OutputFile `json:"error"`
}

// OutputFile is one manifest entry.
type OutputFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count"`
}

// Run is the job.Run of exports.
func (e *Exporter) Run(ctx context.Context, rec *job.Record, dir string, progress func(string)) ([]byte, error) {
	var p Params
	if err := json.Unmarshal(rec.Params, &p); err != nil {
		return nil, fmt.Errorf("export: params: %w", err)
	}
	snap, err := e.st.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("export: snapshot: %w", err)
	}
	defer snap.Close()
	rec.TransactionTime = snap.Time().UTC()

	run := &run{e: e, p: &p, snap: snap, files: newFileSet(dir, e.opts.MaxFileBytes), progress: progress}
	for _, ig := range p.Ignored {
		run.warn("informational", "not-supported", "ignored "+ig)
	}
	if err := run.do(ctx); err != nil {
		run.files.close()
		return nil, err
	}
	if err := run.files.close(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	m := Manifest{
		TransactionTime:     rec.TransactionTime.Format(time.RFC3339Nano),
		Request:             rec.Request,
		RequiresAccessToken: p.RequiresAccessToken,
		Output:              []OutputFile{},
		Error:               []OutputFile{},
	}
	for _, f := range run.files.done {
		of := OutputFile{Type: f.typ, URL: p.FileBase + "/" + rec.ID + "/" + f.name, Count: f.count}
		switch f.kind {
		case kindOutput:
			m.Output = append(m.Output, of)
		case kindDeleted:
			m.Deleted = append(m.Deleted, of)
		case kindError:
			m.Error = append(m.Error, of)
		}
	}
	return json.Marshal(m)
}

type run struct {
	e        *Exporter
	p        *Params
	snap     store.Snapshot
	files    *fileSet
	progress func(string)
	filters  map[string]map[string]bool // type -> ids matching any _typeFilter query
	// principal is the client as captured at kick-off; restricted to its
	// organization's patients and Groups when it is bound to one.
	principal *access.Principal
	visible   access.PatientSet // nil: every patient
	written   atomic.Int64
	refs      *refCollector // references to export at Group level (davinci-data-export)
}

func (r *run) do(ctx context.Context) error {
	principal, err := r.e.Principal(ctx, r.p)
	if err != nil {
		return err
	}
	r.principal = principal
	if principal.Restricted() {
		r.visible = principal.Patients
	}
	types, err := r.types(ctx, principal)
	if err != nil {
		return err
	}
	if err := r.loadFilters(ctx); err != nil {
		return err
	}
	if len(r.p.Referenced) > 0 {
		r.refs = newRefCollector(r.p.Referenced)
	}
	switch r.p.Level {
	case System:
		return r.system(ctx, types)
	default:
		if err := r.patients(ctx, types); err != nil {
			return err
		}
		return r.referenced(ctx)
	}
}

// Principal is the client of an export as captured at kick-off, with the
// visibility of its organization resolved now (the job may run long after
// the kick-off, and a list may have changed since).
func (e *Exporter) Principal(ctx context.Context, p *Params) (*access.Principal, error) {
	principal := &access.Principal{ClientID: p.ClientID, Scopes: p.Scopes, Organization: p.Organization}
	if err := principal.Bind(ctx, e.opts.Visibility); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return principal, nil
}

// types resolves the exported types and drops those the client's scopes do
// not allow (noted in the error file, as the spec permits).
func (r *run) types(ctx context.Context, p *access.Principal) ([]string, error) {
	var types []string
	switch {
	case len(r.p.Types) > 0:
		types = r.p.Types
	case r.p.Level == System:
		counts, err := r.e.st.Counts(ctx)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		for t := range counts {
			types = append(types, t)
		}
		sort.Strings(types)
	default:
		types = r.e.opts.CompartmentTypes
	}
	var allowed []string
	for _, t := range types {
		if p.Allows(t, access.Read) {
			allowed = append(allowed, t)
		} else {
			r.warn("warning", "forbidden", "resource type "+t+" is outside the client's scopes and was not exported")
		}
	}
	return allowed, nil
}

func (r *run) loadFilters(ctx context.Context) error {
	if len(r.p.TypeFilters) == 0 {
		return nil
	}
	r.filters = map[string]map[string]bool{}
	for typ, queries := range r.p.TypeFilters {
		ids := map[string]bool{}
		for _, q := range queries {
			vals, err := url.ParseQuery(q)
			if err != nil {
				return &ParamError{Param: "_typeFilter", Reason: err.Error()}
			}
			sq := store.Query{Type: typ, Count: 1000}
			for name, vs := range vals {
				n, mod, _ := strings.Cut(name, ":")
				for _, v := range vs {
					sq.Params = append(sq.Params, store.Param{Name: n, Modifier: mod, Values: strings.Split(v, ",")})
				}
			}
			for {
				res, err := r.snap.Search(ctx, sq)
				var pe *store.ParamError
				if errors.As(err, &pe) {
					return &ParamError{Param: "_typeFilter", Reason: pe.Error()}
				}
				if err != nil {
					return fmt.Errorf("export: _typeFilter %s?%s: %w", typ, q, err)
				}
				for _, res := range res.Resources {
					ids[res.ID] = true
				}
				if res.NextCursor == "" {
					break
				}
				sq.Cursor = res.NextCursor
			}
		}
		r.filters[typ] = ids
	}
	return nil
}

func (r *run) keep(res *store.Resource) bool {
	if res.Deleted {
		return false
	}
	if !r.p.Since.IsZero() && !res.LastUpdated.After(r.p.Since) {
		return false
	}
	if !r.p.Until.IsZero() && res.LastUpdated.After(r.p.Until) {
		return false
	}
	if ids, ok := r.filters[res.Type]; ok && !ids[res.ID] {
		return false
	}
	return r.principal == nil || r.principal.Sees(res)
}

func (r *run) write(ctx context.Context, res *store.Resource) error {
	body := res.Body
	if fn := r.e.opts.Render[res.Type]; fn != nil {
		var err error
		if body, err = fn(ctx, res); err != nil {
			return fmt.Errorf("export: render %s/%s: %w", res.Type, res.ID, err)
		}
	}
	if r.refs != nil {
		r.refs.collect(body)
	}
	if els := elementsFor(r.p.Elements, res.Type); els != nil {
		var err error
		if body, err = subset(body, res.Type, els); err != nil {
			return fmt.Errorf("export: _elements on %s/%s: %w", res.Type, res.ID, err)
		}
	}
	if n := r.written.Add(1); n%10000 == 0 {
		r.progress(fmt.Sprintf("%d resources written", n))
	}
	return r.files.add(kindOutput, res.Type, body)
}

// system exports whole types, then (with _since) their deletions.
func (r *run) system(ctx context.Context, types []string) error {
	if err := r.scanTypes(ctx, types, nil); err != nil {
		return err
	}
	if r.p.Since.IsZero() {
		return nil
	}
	var inExport func(string) bool
	if r.visible != nil {
		inExport = r.visible.Contains
	}
	return r.deleted(ctx, types, inExport)
}

// deleted lists resources deleted after _since (and before the snapshot)
// as transaction Bundles of DELETE entries. inExport, when set, keeps
// only those whose last live version was in the compartment of a patient
// it accepts (Patient and Group level).
func (r *run) deleted(ctx context.Context, types []string, inExport func(patientID string) bool) error {
	for _, t := range types {
		versions, err := r.e.st.History(ctx, store.HistoryQuery{Type: t, Since: r.p.Since, Count: -1})
		if err != nil {
			return fmt.Errorf("export: deleted %s: %w", t, err)
		}
		seen := map[string]bool{}
		for _, v := range versions { // newest first
			if seen[v.ID] || v.LastUpdated.After(r.snap.Time()) {
				continue
			}
			seen[v.ID] = true
			if !v.Deleted {
				continue
			}
			if inExport != nil {
				ok, err := r.wasInExport(ctx, v, inExport)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
			}
			b, _ := json.Marshal(map[string]any{
				"resourceType": "Bundle", "type": "transaction",
				"entry": []any{map[string]any{"request": map[string]string{"method": "DELETE", "url": t + "/" + v.ID}}},
			})
			if err := r.files.add(kindDeleted, "Bundle", b); err != nil {
				return err
			}
		}
	}
	return nil
}

// wasInExport reports whether the last live version before tombstone was
// in the compartment of a patient inExport accepts.
func (r *run) wasInExport(ctx context.Context, tombstone *store.Resource, inExport func(string) bool) (bool, error) {
	var last *store.Resource
	if tombstone.Version > 1 {
		v, err := r.e.st.VRead(ctx, tombstone.Type, tombstone.ID, tombstone.Version-1)
		if err == nil && !v.Deleted && v.Body != nil {
			last = v
		}
	}
	if last == nil {
		// Versions are not consecutive, or the one before is a tombstone
		// too: look through the resource's history.
		versions, err := r.e.st.History(ctx, store.HistoryQuery{Type: tombstone.Type, ID: tombstone.ID, Count: -1})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, fmt.Errorf("export: history of %s/%s: %w", tombstone.Type, tombstone.ID, err)
		}
		for _, v := range versions { // newest first
			if v.Version < tombstone.Version && !v.Deleted && v.Body != nil {
				last = v
				break
			}
		}
	}
	if last == nil {
		return false, nil
	}
	for _, pid := range compartmentPatients(last.Type, last.ID, last.Body) {
		if inExport(pid) {
			return true, nil
		}
	}
	return false, nil
}

// manyTypes is the number of types above which a Patient/Group export
// reads each compartment whole rather than type by type.
const manyTypes = 8

func (r *run) patients(ctx context.Context, types []string) error {
	var ids []string
	switch r.p.Level {
	case Group:
		if !r.principal.SeesGroup(r.p.GroupID) {
			return &ParamError{Param: "id", Reason: "Group/" + r.p.GroupID + " not found"}
		}
		members, err := r.e.opts.Members(ctx, r.snap, r.p.GroupID)
		if err != nil {
			return err
		}
		ids = members
		if slices.Contains(types, "Group") {
			if err := r.group(ctx); err != nil {
				return err
			}
		}
	case Patient:
		err := r.snap.Scan(ctx, "Patient", time.Time{}, func(res *store.Resource) error {
			ids = append(ids, res.ID)
			return nil
		})
		if err != nil {
			return fmt.Errorf("export: scan patients: %w", err)
		}
	}
	all := len(ids)
	if r.visible != nil {
		// First, so that a patient the client may not see is reported
		// exactly like one that does not exist.
		kept := ids[:0]
		for _, id := range ids {
			if r.visible.Contains(id) {
				kept = append(kept, id)
			}
		}
		ids = kept
	}
	if len(r.p.Patients) > 0 {
		in := map[string]bool{}
		for _, id := range ids {
			in[id] = true
		}
		ids = ids[:0]
		for _, id := range r.p.Patients {
			if !in[id] {
				r.warn("error", "not-found", "Patient/"+id+" is not on this server or not in the group; it was not exported")
				continue
			}
			ids = append(ids, id)
		}
	}
	scan := r.p.Level == Patient && len(r.p.Patients) == 0 && len(ids)*10 >= all
	if r.p.Level == Group && len(r.p.Patients) == 0 {
		counts, err := r.e.st.Counts(ctx)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		scan = int64(len(ids))*10 >= counts["Patient"]
	}
	var err error
	// Scanning every resource of a type beats a compartment read per
	// patient unless the patients are a small part of the store (a
	// provider's members among a payer's population, a small Group).
	if scan {
		err = r.everyPatient(ctx, types, ids)
	} else {
		err = r.compartments(ctx, types, ids)
	}
	if err != nil {
		return err
	}
	if r.p.Since.IsZero() {
		return nil
	}
	// Deletions are reported for the patients whose data the export
	// holds: the group's members or the requested patients; at Patient
	// level without "patient", every patient the client may see, deleted
	// patients included.
	inExport := func(pid string) bool { return r.visible == nil || r.visible.Contains(pid) }
	if r.p.Level == Group || len(r.p.Patients) > 0 {
		set := make(map[string]bool, len(ids))
		for _, id := range ids {
			set[id] = true
		}
		inExport = func(pid string) bool { return set[pid] && (r.visible == nil || r.visible.Contains(pid)) }
	}
	return r.deleted(ctx, types, inExport)
}

// compartments exports the compartments of the patients ids.
func (r *run) compartments(ctx context.Context, types, ids []string) error {
	want := map[string]bool{}
	for _, t := range types {
		want[t] = true
	}
	// A resource in the compartments of several patients (a shared
	// Encounter, a Group) is written once.
	var seenMu sync.Mutex
	seen := map[string]struct{}{}
	if r.p.Level == Group {
		seen["Group/"+r.p.GroupID] = struct{}{} // written by r.group
	}
	first := func(res *store.Resource) bool {
		if res.Type == "Patient" {
			return true
		}
		k := res.Type + "/" + res.ID
		seenMu.Lock()
		defer seenMu.Unlock()
		if _, ok := seen[k]; ok {
			return false
		}
		seen[k] = struct{}{}
		return true
	}
	// The store seeks once per listed type; with many types (the default
	// is every compartment type) one pass over the patient's whole
	// compartment, filtered here, costs less than those seeks (measured with
	// all ~70 compartment types: 10–13 against 25.7 cpu-µs/resource).
	readTypes := types
	if len(types) > manyTypes {
		readTypes = nil
	}
	// Patients are exported by several goroutines: a compartment read is
	// many small index lookups, which one core cannot keep fed alone.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, min(runtime.GOMAXPROCS(0), 4)))
	for i, id := range ids {
		if r.visible != nil && !r.visible.Contains(id) {
			continue
		}
		if i%1000 == 0 {
			r.progress(fmt.Sprintf("%d of %d patients", i, len(ids)))
		}
		g.Go(func() error {
			err := r.snap.Compartment(gctx, id, readTypes, func(res *store.Resource) error {
				if !want[res.Type] || !r.keep(res) || !first(res) {
					return nil
				}
				return r.write(gctx, res)
			})
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("export: compartment of %s: %w", id, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// everyPatient exports the compartments of every patient, as a
// Patient-level export without "patient" asks, by scanning each type once
// and keeping the resources in a live patient's compartment: one iterator
// per type instead of one seek per patient and type (measured on 10k
// patients: ~7 against ~11 cpu-µs/resource), and a resource shared
// by several patients is met once.
func (r *run) everyPatient(ctx context.Context, types, ids []string) error {
	live := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		live[id] = struct{}{}
	}
	return r.scanTypes(ctx, types, func(res *store.Resource) bool {
		if r.p.Level == Group && res.Type == "Group" && res.ID == r.p.GroupID {
			return false // written by r.group
		}
		for _, pid := range compartmentPatients(res.Type, res.ID, res.Body) {
			if _, ok := live[pid]; ok {
				return true
			}
		}
		return false
	})
}

// scanTypes scans types a few at once (each type goes to its own files, so
// types are independent and a scan keeps one core busy) and writes the
// resources that r.keep and, when set, inExport accept.
func (r *run) scanTypes(ctx context.Context, types []string, inExport func(*store.Resource) bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, min(runtime.GOMAXPROCS(0), 4)))
	var started atomic.Int64
	for _, t := range types {
		g.Go(func() error {
			r.progress(fmt.Sprintf("exporting %s (%d of %d types)", t, started.Add(1), len(types)))
			err := r.snap.Scan(gctx, t, r.p.Since, func(res *store.Resource) error {
				if !r.keep(res) || (inExport != nil && !inExport(res)) {
					return nil
				}
				return r.write(gctx, res)
			})
			if err != nil {
				return fmt.Errorf("export: scan %s: %w", t, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// group writes the exported Group itself (Group level with Group among
// the types), rendered with its members.
func (r *run) group(ctx context.Context) error {
	res, err := r.snap.Read(ctx, "Group", r.p.GroupID)
	if err != nil {
		return fmt.Errorf("export: group %s: %w", r.p.GroupID, err)
	}
	// The list itself is the point of $davinci-data-export: it is written
	// whatever its lastUpdated (_since/_until select the member data).
	if r.p.ExportType == "" && !r.keep(res) || !r.principal.Sees(res) {
		return nil
	}
	return r.write(ctx, res)
}

func (r *run) warn(severity, code, msg string) {
	b, _ := json.Marshal(map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []any{map[string]string{"severity": severity, "code": code, "diagnostics": msg}},
	})
	_ = r.files.add(kindError, "OperationOutcome", b)
}

// ResourceMembers reads active members from Group.member (members marked
// inactive or whose period has ended are left out).
func ResourceMembers(ctx context.Context, snap store.Snapshot, groupID string) ([]string, error) {
	g, err := snap.Read(ctx, "Group", groupID)
	if err != nil {
		return nil, fmt.Errorf("export: group %s: %w", groupID, err)
	}
	now := snap.Time()
	var ids []string
	for _, m := range gjson.GetBytes(g.Body, "member").Array() {
		if m.Get("inactive").Bool() {
			continue
		}
		if end := m.Get("period.end").String(); end != "" {
			if t, err := time.Parse(time.RFC3339, end); err == nil && t.Before(now) {
				continue
			}
			if t, err := time.Parse("2006-01-02", end); err == nil && t.AddDate(0, 0, 1).Before(now) {
				continue
			}
		}
		if id, ok := strings.CutPrefix(m.Get("entity.reference").String(), "Patient/"); ok && id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// mandatory lists top-level elements with min cardinality 1 in R4 that
// _elements must keep; a trailing "[x]" marks a choice element.
var mandatory = map[string][]string{
	"Observation":          {"status", "code"},
	"Encounter":            {"status", "class"},
	"Condition":            {"subject"},
	"Procedure":            {"status", "subject"},
	"MedicationRequest":    {"status", "intent", "medication[x]", "subject"},
	"Immunization":         {"status", "vaccineCode", "patient", "occurrence[x]"},
	"ServiceRequest":       {"status", "intent", "subject"},
	"Claim":                {"status", "type", "use", "patient", "created", "provider", "priority", "insurance"},
	"ExplanationOfBenefit": {"status", "type", "use", "patient", "created", "insurer", "provider", "outcome", "insurance"},
	"Coverage":             {"status", "beneficiary", "payor"},
	"Group":                {"type", "actual"},
	"Provenance":           {"target", "recorded", "agent"},
	"AllergyIntolerance":   {"patient"},
	"DiagnosticReport":     {"status", "code"},
	"DocumentReference":    {"status", "content"},
	"CarePlan":             {"status", "intent", "subject"},
	"Goal":                 {"lifecycleStatus", "description", "subject"},
	"MeasureReport":        {"status", "type", "measure", "period"},
	"Device":               {},
	"RelatedPerson":        {"patient"},
}

func elementsFor(elements []string, typ string) []string {
	if len(elements) == 0 {
		return nil
	}
	var out []string
	for _, e := range elements {
		t, el, qualified := strings.Cut(e, ".")
		switch {
		case !qualified:
			out = append(out, t)
		case t == typ:
			out = append(out, el)
		}
	}
	if out == nil {
		// Elements were listed only for other types: this type is exported whole.
		return nil
	}
	out = append(out, "resourceType", "id", "meta")
	return append(out, mandatory[typ]...)
}

func subset(body []byte, typ string, keep []string) ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	var ferr error
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		if !matchElement(k.Str, keep) {
			return true
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		kb, err := json.Marshal(k.Str)
		if err != nil {
			ferr = err
			return false
		}
		b.Write(kb)
		b.WriteByte(':')
		b.WriteString(v.Raw)
		return true
	})
	if ferr != nil {
		return nil, ferr
	}
	b.WriteByte('}')
	out, err := sjson.SetBytes([]byte(b.String()), "meta.tag.-1", map[string]string{
		"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
		"display": "subsetted",
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// matchElement matches an element name, including primitive extensions
// (_birthDate) and choice types (value matches valueQuantity).
func matchElement(key string, keep []string) bool {
	key = strings.TrimPrefix(key, "_")
	for _, k := range keep {
		base, _ := strings.CutSuffix(k, "[x]")
		if key == base {
			return true
		}
		// A choice element may be named without its type suffix.
		if rest, ok := strings.CutPrefix(key, base); ok && rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' {
			return true
		}
	}
	return false
}

type fileKind int

const (
	kindOutput fileKind = iota
	kindDeleted
	kindError
)

type openFile struct {
	kind  fileKind
	typ   string
	name  string
	n     int // part number
	count int
	bytes int64
	f     *os.File
	w     *bufio.Writer
}

// fileSet writes NDJSON files per kind and type, splitting at a size.
type fileSet struct {
	mu    sync.Mutex // add is called from the scans of several types
	dir   string
	max   int64
	open  map[string]*openFile
	parts map[string]int
	done  []*openFile
}

func newFileSet(dir string, max int64) *fileSet {
	return &fileSet{dir: dir, max: max, open: map[string]*openFile{}, parts: map[string]int{}}
}

func (fs *fileSet) add(kind fileKind, typ string, line []byte) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key := fmt.Sprintf("%d/%s", kind, typ)
	f := fs.open[key]
	if f != nil && f.bytes > 0 && f.bytes+int64(len(line))+1 > fs.max {
		if err := fs.finish(f); err != nil {
			return err
		}
		delete(fs.open, key)
		f = nil
	}
	if f == nil {
		fs.parts[key]++
		prefix := map[fileKind]string{kindOutput: "", kindDeleted: "deleted-", kindError: "error-"}[kind]
		name := fmt.Sprintf("%s%s-%d.ndjson", prefix, typ, fs.parts[key])
		osf, err := os.Create(filepath.Join(fs.dir, name))
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		f = &openFile{kind: kind, typ: typ, name: name, n: fs.parts[key], f: osf, w: bufio.NewWriterSize(osf, 256<<10)}
		fs.open[key] = f
	}
	if _, err := f.w.Write(line); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := f.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	f.bytes += int64(len(line)) + 1
	f.count++
	return nil
}

func (fs *fileSet) finish(f *openFile) error {
	if err := f.w.Flush(); err != nil {
		f.f.Close()
		return fmt.Errorf("export: %w", err)
	}
	if err := f.f.Sync(); err != nil {
		f.f.Close()
		return fmt.Errorf("export: %w", err)
	}
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fs.done = append(fs.done, f)
	return nil
}

func (fs *fileSet) close() error {
	keys := make([]string, 0, len(fs.open))
	for k := range fs.open {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var first error
	for _, k := range keys {
		if err := fs.finish(fs.open[k]); err != nil && first == nil {
			first = err
		}
		delete(fs.open, k)
	}
	sort.SliceStable(fs.done, func(i, j int) bool {
		a, b := fs.done[i], fs.done[j]
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		return a.n < b.n
	})
	return first
}
