package attribution

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/equitas/equitas/store"
)

// DefaultContractSystem is the identifier system of the contract
// identifiers a run assigns.
const DefaultContractSystem = "http://payer.equitas.example.org/fhir/sid/contract"

// RunOptions configure a Run.
type RunOptions struct {
	Options
	// Status is the attributionListStatus of the lists written (default
	// open; draft and final are the others).
	Status string
	// ContractStart and ContractEnd bound contractValidityPeriod (default
	// the calendar year of AsOf).
	ContractStart, ContractEnd time.Time
	// ContractSystem is the system of contract identifiers (default
	// DefaultContractSystem).
	ContractSystem string
	// BatchSize is the number of patients whose index changes are written
	// in one KV batch (default 256).
	BatchSize int
	// Contract, when set, limits the run to one list: the one with this
	// contract identifier value or Group id. Other lists and the members
	// attributed to them are left as they are.
	Contract string
	// Audit is recorded in the Provenance of every Group version written
	// (default: who "equitas attribution run", why the method and date).
	Audit  Audit
	Logger *slog.Logger
}

// Result summarises a run.
type Result struct {
	Patients   int            `json:"patients"`
	Attributed int            `json:"attributed"`
	Changes    map[string]int `json:"changes"` // by changeType
	Groups     []GroupResult  `json:"groups"`
	Elapsed    time.Duration  `json:"elapsed"`
}

// GroupResult is one list written by a run.
type GroupResult struct {
	ID       string `json:"id"`
	Version  uint64 `json:"version"`
	Active   int    `json:"active"`
	Inactive int    `json:"inactive"`
	Status   string `json:"status,omitempty"`
	// Provenance is the id of the Provenance recording the change.
	Provenance string `json:"provenance,omitempty"`
}

// Run attributes every patient of st, updates the member index with the
// changeType of each membership against the previous run, and writes each
// payer–provider list as a new version of its ATR Group. Patients are read
// one at a time from a snapshot (Patient scan, then the patient's
// compartment), so memory does not grow with the population; only the
// provider directory and the set of lists are held.
//
// A run must not overlap another run or a Lists change on the same store:
// both read the index and write it back. The CLI holds the store's
// directory lock for the whole run; a server serialises them.
func Run(ctx context.Context, st store.Store, opts RunOptions) (*Result, error) {
	start := time.Now()
	if opts.AsOf.IsZero() {
		return nil, fmt.Errorf("attribution: as-of date required")
	}
	if _, err := ParseMethod(string(opts.Method)); err != nil {
		return nil, err
	}
	switch opts.Status {
	case "":
		opts.Status = StatusOpen
	case StatusDraft, StatusOpen, StatusFinal:
	default:
		return nil, fmt.Errorf("attribution: unknown list status %q", opts.Status)
	}
	if opts.ContractStart.IsZero() {
		opts.ContractStart = time.Date(opts.AsOf.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.ContractEnd.IsZero() {
		opts.ContractEnd = time.Date(opts.AsOf.Year(), 12, 31, 0, 0, 0, 0, time.UTC)
	}
	if opts.ContractSystem == "" {
		opts.ContractSystem = DefaultContractSystem
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Audit.Who == "" {
		opts.Audit.Who = "equitas attribution run"
	}
	if opts.Audit.Why == "" {
		opts.Audit.Why = fmt.Sprintf("%s attribution as of %s", opts.Method, opts.AsOf.Format(time.DateOnly))
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	defer snap.Close()
	dir, err := LoadDirectory(ctx, snap)
	if err != nil {
		return nil, err
	}
	r := &runner{
		st: st, snap: snap, kv: st.KV(), dir: dir, opts: opts, attr: NewAttributor(dir, opts.Options),
		next: map[string]uint64{}, known: map[string]*GroupInfo{},
		asOf:   opts.AsOf.Format(time.DateOnly),
		ended:  opts.AsOf.AddDate(0, 0, -1).Format(time.DateOnly),
		groups: map[string]*GroupInfo{},
		ops:    map[string][]byte{},
		res:    &Result{Changes: map[string]int{}},
	}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	kinds := []string{"Coverage", "ExplanationOfBenefit", "Claim"}
	err = snap.Scan(ctx, "Patient", time.Time{}, func(p *store.Resource) error {
		var related [][]byte
		if err := snap.Compartment(ctx, p.ID, kinds, func(c *store.Resource) error {
			related = append(related, c.Body)
			return nil
		}); err != nil {
			return fmt.Errorf("attribution: compartment of Patient/%s: %w", p.ID, err)
		}
		r.res.Patients++
		m, ok := r.attr.Attribute(p.Body, related)
		return r.update(ctx, p.ID, m, ok)
	})
	if err == nil {
		err = r.flush(ctx)
	}
	if err == nil {
		err = r.sweep(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := r.writeGroups(ctx, st); err != nil {
		return nil, err
	}
	r.res.Elapsed = time.Since(start)
	return r.res, nil
}

type runner struct {
	st          store.Store
	snap        store.Snapshot
	kv          store.KV
	next        map[string]uint64 // Group version each list's changes are written at
	known       map[string]*GroupInfo
	dir         *Directory
	opts        RunOptions
	attr        *Attributor
	asOf, ended string
	groups      map[string]*GroupInfo // lists touched by this run
	ops         map[string][]byte     // pending KV batch
	pending     int
	res         *Result
}

// update moves one patient's index entries from the previous run's state
// to this run's: a member no longer attributed to a list is marked inactive
// and dropped (and removed by the following run), a new one is new, a
// continuing one is changed when its provider or coverage moved and
// nochange otherwise.
func (r *runner) update(ctx context.Context, patientID string, m Member, ok bool) error {
	var prev patientLists
	if err := getJSON(ctx, r.kv, kvPatient+patientID, &prev); err != nil && !notFound(err) {
		return err
	}
	target := ""
	if ok {
		r.res.Attributed++
		target = GroupID(m.PayerID, m.Provider)
		ok = r.inScope(target)
	}
	var next patientLists
	var before *Entry
	var beforeRaw []byte
	for _, g := range prev.Groups {
		if !r.inScope(g) {
			next.Groups = append(next.Groups, g)
			continue
		}
		raw, err := r.kv.Get(ctx, memberKey(g, patientID))
		if notFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		var e Entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("attribution: corrupt member record %s/%s: %w", g, patientID, err)
		}
		if g == target {
			before, beforeRaw = &e, raw
			continue
		}
		if e.Inactive {
			if err := r.drop(ctx, g, patientID); err != nil {
				return err
			}
			continue
		}
		e.Inactive, e.ChangeType, e.PeriodEnd = true, ChangeDropped, r.ended
		if err := r.put(ctx, g, &e, raw); err != nil {
			return err
		}
		r.touch(g, nil)
		r.res.Changes[ChangeDropped]++
		next.Groups = append(next.Groups, g)
	}
	if ok {
		e := Entry{Member: m, GroupID: target, PeriodStart: r.asOf, ChangeType: ChangeNew}
		if before != nil && !before.Inactive {
			e.PeriodStart, e.ChangeType = before.PeriodStart, ChangeNoChange
			if before.Provider != m.Provider || before.CoverageID != m.CoverageID || before.MemberID != m.MemberID {
				e.ChangeType = ChangeChanged
			}
		}
		r.touch(target, &m)
		if err := r.put(ctx, target, &e, beforeRaw); err != nil {
			return err
		}
		r.res.Changes[e.ChangeType]++
		next.Groups = append(next.Groups, target)
	}
	switch {
	case len(next.Groups) == 0:
		if len(prev.Groups) > 0 {
			r.ops[kvPatient+patientID] = nil
		}
	case slices.Equal(next.Groups, prev.Groups) && prev.Run == "":
		// Unchanged: a steady month writes nothing for the patient.
	default:
		if err := r.putJSON(kvPatient+patientID, &next); err != nil {
			return err
		}
	}
	r.pending++
	if r.pending >= r.opts.BatchSize {
		return r.flush(ctx)
	}
	return nil
}

// sweep treats patients that the index knows but this run did not see
// (deleted since) as no longer attributed.
func (r *runner) sweep(ctx context.Context) error {
	var stale []string
	if err := r.kv.Scan(ctx, kvPatient, func(key string, _ []byte) error {
		id := key[len(kvPatient):]
		_, err := r.snap.Read(ctx, "Patient", id)
		switch {
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted):
			stale = append(stale, id)
		case err != nil:
			return fmt.Errorf("attribution: read Patient/%s: %w", id, err)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, id := range stale {
		if err := r.update(ctx, id, Member{}, false); err != nil {
			return err
		}
	}
	return r.flush(ctx)
}

func (r *runner) putJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("attribution: %w", err)
	}
	r.ops[key] = b
	return nil
}

// put writes a member entry and its history at the list's next version,
// unless it equals the entry already stored (prev): a member whose
// attribution did not change costs no write.
func (r *runner) put(ctx context.Context, groupID string, e *Entry, prev []byte) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("attribution: %w", err)
	}
	if bytes.Equal(b, prev) {
		return nil
	}
	ver, err := r.version(ctx, groupID)
	if err != nil {
		return err
	}
	r.ops[memberKey(groupID, e.PatientID)] = b
	r.ops[histKey(groupID, e.PatientID, ver)] = b
	return nil
}

// drop removes a member from a list.
func (r *runner) drop(ctx context.Context, groupID, patientID string) error {
	ver, err := r.version(ctx, groupID)
	if err != nil {
		return err
	}
	r.ops[memberKey(groupID, patientID)] = nil
	r.ops[histKey(groupID, patientID, ver)] = tombstone
	return nil
}

// version is the Group version this run writes for a list: the one after
// the stored Group's (a run holds the list lock, so nothing else writes
// it meanwhile).
func (r *runner) version(ctx context.Context, groupID string) (uint64, error) {
	if v, ok := r.next[groupID]; ok {
		return v, nil
	}
	cur, err := r.st.Read(ctx, "Group", groupID)
	var v uint64 = 1
	switch {
	case err == nil || errors.Is(err, store.ErrDeleted):
		v = cur.Version + 1
	case !errors.Is(err, store.ErrNotFound):
		return 0, fmt.Errorf("attribution: read Group/%s: %w", groupID, err)
	}
	r.next[groupID] = v
	return v, nil
}

// inScope reports whether the run may change list id (see
// RunOptions.Contract).
func (r *runner) inScope(id string) bool {
	c := r.opts.Contract
	if c == "" || id == c {
		return true
	}
	g, ok := r.known[id]
	return ok && g.Contract == c
}

// prepare starts the member history of lists written before it was kept,
// at the version this run writes for them.
func (r *runner) prepare(ctx context.Context) error {
	known, err := Groups(ctx, r.kv)
	if err != nil {
		return err
	}
	for _, g := range known {
		r.known[g.ID] = g
		if g.Layout >= layoutHistory || !r.inScope(g.ID) {
			continue
		}
		ver, err := r.version(ctx, g.ID)
		if err != nil {
			return err
		}
		if err := backfill(ctx, r.kv, g, ver, func(ops map[string][]byte) error { return r.kv.Batch(ctx, ops) }); err != nil {
			return err
		}
		b, err := json.Marshal(g)
		if err != nil {
			return fmt.Errorf("attribution: %w", err)
		}
		if err := r.kv.Put(ctx, kvGroup+g.ID, b); err != nil {
			return fmt.Errorf("attribution: %w", err)
		}
	}
	return nil
}

func (r *runner) flush(ctx context.Context) error {
	if len(r.ops) == 0 {
		return nil
	}
	if err := r.kv.Batch(ctx, r.ops); err != nil {
		return fmt.Errorf("attribution: write member index: %w", err)
	}
	r.ops, r.pending = map[string][]byte{}, 0
	return nil
}

// touch records that list id changed in this run; m describes the contract
// when the list may be new.
func (r *runner) touch(id string, m *Member) {
	if _, ok := r.groups[id]; ok || m == nil {
		if !ok {
			r.groups[id] = nil // known list, description loaded when written
		}
		return
	}
	g := &GroupInfo{ID: id, PayerID: m.PayerID, OrganizationID: m.Provider.OrganizationID, TIN: m.Provider.TIN}
	if o, ok := r.dir.Organization(m.PayerID); ok {
		g.PayerName = o.Name
	}
	if o, ok := r.dir.Organization(m.Provider.OrganizationID); ok {
		g.OrganizationName, g.NPI = o.Name, o.NPI
	} else {
		g.NPI = m.Provider.NPI
	}
	r.groups[id] = g
}

// writeGroups writes a new version of every list this run touched, and of
// lists it did not touch but whose members it may have swept, rendered
// from the index, with the list description in the same transaction.
func (r *runner) writeGroups(ctx context.Context, st store.Store) error {
	known, err := Groups(ctx, r.kv)
	if err != nil {
		return err
	}
	for _, g := range known {
		if !r.inScope(g.ID) {
			continue
		}
		if cur, ok := r.groups[g.ID]; !ok || cur == nil {
			r.groups[g.ID] = g
		} else {
			cur.Contract, cur.ContractSystem = g.Contract, g.ContractSystem
		}
	}
	for _, id := range sortedKeys(r.groups) {
		g := r.groups[id]
		if g == nil {
			continue // a list without a description cannot be rendered
		}
		if g.Contract == "" {
			g.ContractSystem, g.Contract = r.opts.ContractSystem, id
		}
		g.Status, g.AsOf, g.Method = r.opts.Status, r.asOf, r.opts.Method
		g.ContractStart, g.ContractEnd = r.opts.ContractStart.Format(time.DateOnly), r.opts.ContractEnd.Format(time.DateOnly)
		gr, err := r.publish(ctx, st, g)
		if err != nil {
			return err
		}
		r.res.Groups = append(r.res.Groups, *gr)
		r.opts.Logger.Debug("attribution list written", "group", id, "version", gr.Version, "active", gr.Active, "inactive", gr.Inactive)
	}
	return nil
}

// publish writes a list's new Group version (no members: they are in the
// index, rendered on read) with its description and Provenance.
func (r *runner) publish(ctx context.Context, st store.Store, g *GroupInfo) (*GroupResult, error) {
	g.Active, g.Inactive = 0, 0
	if err := Members(ctx, r.kv, g.ID, func(e *Entry) error {
		if e.Inactive {
			g.Inactive++
		} else {
			g.Active++
		}
		return nil
	}); err != nil {
		return nil, err
	}
	ver, err := r.version(ctx, g.ID)
	if err != nil {
		return nil, err
	}
	cur, err := st.Read(ctx, "Group", g.ID)
	activity := "UPDATE"
	switch {
	case errors.Is(err, store.ErrNotFound):
		cur, activity = nil, "CREATE"
	case err != nil && !errors.Is(err, store.ErrDeleted):
		return nil, fmt.Errorf("attribution: read Group/%s: %w", g.ID, err)
	}
	return commitVersion(ctx, st, newChange(g, ver), cur, time.Now().UTC(), "attribute", activity, nil, r.opts.Audit)
}
