package attribution

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/equitas/equitas/store"
)

// Errors of the reconciliation operations; the REST layer maps them to
// OperationOutcomes.
var (
	ErrListFinal      = errors.New("attribution: the list is final")
	ErrNoList         = errors.New("attribution: no such attribution list")
	ErrMemberNotFound = errors.New("attribution: not a member of the list")
)

// Audit says who asked for a list change and why; it is recorded with the
// change so disputes can be reconciled.
type Audit struct {
	Who string `json:"who"`
	Why string `json:"why,omitempty"`
}

// auditRecord is one entry of atr/audit/<group>/<time>.
type auditRecord struct {
	Audit
	At       string `json:"at"`
	Op       string `json:"op"`
	Patient  string `json:"patient,omitempty"`
	Provider string `json:"provider,omitempty"`
}

// Selector picks members to remove: the patient, optionally narrowed to
// one provider NPI and one coverage.
type Selector struct {
	PatientID   string
	ProviderNPI string
	CoverageID  string
}

// Lists applies the ATR reconciliation operations ($member-add,
// $member-remove, $confirm-attribution-list) to the member index and writes
// the changed Group as a new version. Changes to one Lists are serialised so
// a Group version always renders every change made before it.
type Lists struct {
	st  store.Store
	mu  sync.Mutex
	now func() time.Time
}

// NewLists returns a Lists over st.
func NewLists(st store.Store) *Lists { return &Lists{st: st, now: time.Now} }

// Add makes m a member of the list, attributed to m.Provider over
// [start, end] (dates; empty for open). A member already in the list gets
// the new provider and period (changeType changed).
func (l *Lists) Add(ctx context.Context, groupID string, m Member, start, end string, a Audit) (*GroupResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g, err := l.open(ctx, groupID)
	if err != nil {
		return nil, err
	}
	key := kvMember + groupID + "/" + m.PatientID
	e := Entry{Member: m, GroupID: groupID, PeriodStart: start, PeriodEnd: end, ChangeType: ChangeNew}
	var prev Entry
	switch err := getJSON(ctx, l.st.KV(), key, &prev); {
	case err == nil && !prev.Inactive:
		e.ChangeType = ChangeChanged
	case err != nil && !notFound(err):
		return nil, err
	}
	var pl patientLists
	if err := getJSON(ctx, l.st.KV(), kvPatient+m.PatientID, &pl); err != nil && !notFound(err) {
		return nil, err
	}
	if !slices.Contains(pl.Groups, groupID) {
		pl.Groups = append(pl.Groups, groupID)
	}
	ops := map[string][]byte{}
	if err := putJSON(ops, key, &e); err != nil {
		return nil, err
	}
	if err := putJSON(ops, kvPatient+m.PatientID, &pl); err != nil {
		return nil, err
	}
	return l.apply(ctx, g, ops, auditRecord{Audit: a, Op: "member-add", Patient: m.PatientID, Provider: m.Provider.NPI})
}

// Remove takes the selected members out of the list: in a draft list they
// stay, marked inactive and dropped (they are still exchanged until the
// list is final); in an open list they are removed.
func (l *Lists) Remove(ctx context.Context, groupID string, sel Selector, a Audit) (*GroupResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g, err := l.open(ctx, groupID)
	if err != nil {
		return nil, err
	}
	key := kvMember + groupID + "/" + sel.PatientID
	var e Entry
	if err := getJSON(ctx, l.st.KV(), key, &e); err != nil {
		if notFound(err) {
			return nil, ErrMemberNotFound
		}
		return nil, err
	}
	if (sel.ProviderNPI != "" && sel.ProviderNPI != e.Provider.NPI) || (sel.CoverageID != "" && sel.CoverageID != e.CoverageID) ||
		(g.Status == StatusDraft && e.Inactive) {
		return nil, ErrMemberNotFound
	}
	ops := map[string][]byte{}
	if g.Status == StatusDraft {
		e.Inactive, e.ChangeType = true, ChangeDropped
		if e.PeriodEnd == "" {
			e.PeriodEnd = l.now().UTC().Format(time.DateOnly)
		}
		if err := putJSON(ops, key, &e); err != nil {
			return nil, err
		}
	} else {
		ops[key] = nil
		var pl patientLists
		if err := getJSON(ctx, l.st.KV(), kvPatient+sel.PatientID, &pl); err != nil && !notFound(err) {
			return nil, err
		}
		pl.Groups = slices.DeleteFunc(pl.Groups, func(id string) bool { return id == groupID })
		if len(pl.Groups) == 0 {
			ops[kvPatient+sel.PatientID] = nil
		} else if err := putJSON(ops, kvPatient+sel.PatientID, &pl); err != nil {
			return nil, err
		}
	}
	return l.apply(ctx, g, ops, auditRecord{Audit: a, Op: "member-remove", Patient: sel.PatientID, Provider: e.Provider.NPI})
}

// Confirm moves the list to final and drops its inactive members.
func (l *Lists) Confirm(ctx context.Context, groupID string, a Audit) (*GroupResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g, err := l.open(ctx, groupID)
	if err != nil {
		return nil, err
	}
	ops := map[string][]byte{}
	if err := Members(ctx, l.st.KV(), groupID, func(e *Entry) error {
		if e.Inactive {
			ops[kvMember+groupID+"/"+e.PatientID] = nil
		}
		return nil
	}); err != nil {
		return nil, err
	}
	g.Status = StatusFinal
	return l.apply(ctx, g, ops, auditRecord{Audit: a, Op: "confirm-attribution-list"})
}

// open loads a list that may still change.
func (l *Lists) open(ctx context.Context, groupID string) (*GroupInfo, error) {
	g, err := Group(ctx, l.st.KV(), groupID)
	if notFound(err) {
		return nil, fmt.Errorf("%w: %s", ErrNoList, groupID)
	}
	if err != nil {
		return nil, err
	}
	if g.Status == StatusFinal {
		return nil, ErrListFinal
	}
	return g, nil
}

// apply writes the index changes with the audit record, then the Group
// rendered from the updated index together with its description. The
// index is the record of membership; were the Group write to fail, the
// next change or run renders it again.
func (l *Lists) apply(ctx context.Context, g *GroupInfo, ops map[string][]byte, rec auditRecord) (*GroupResult, error) {
	at := l.now().UTC()
	rec.At = at.Format(time.RFC3339Nano)
	if err := putJSON(ops, "atr/audit/"+g.ID+"/"+at.Format("20060102T150405.000000000Z"), &rec); err != nil {
		return nil, err
	}
	if err := l.st.KV().Batch(ctx, ops); err != nil {
		return nil, fmt.Errorf("attribution: write member index: %w", err)
	}
	return publish(ctx, l.st, g)
}

// publish renders list g from the index and writes it as a new Group
// version with its description.
func publish(ctx context.Context, st store.Store, g *GroupInfo) (*GroupResult, error) {
	var body bytes.Buffer
	counts, err := WriteGroup(ctx, st.KV(), g, &body)
	if err != nil {
		return nil, err
	}
	info, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	res, err := st.Commit(ctx, store.Tx{
		Writes: []store.Write{{Op: store.OpPut, Type: "Group", ID: g.ID, Body: body.Bytes(), SkipUnchanged: true}},
		KV:     map[string][]byte{kvGroup + g.ID: info},
	})
	if err != nil {
		return nil, fmt.Errorf("attribution: write Group/%s: %w", g.ID, err)
	}
	return &GroupResult{ID: g.ID, Version: res[0].Version, Active: counts.Active, Inactive: counts.Inactive}, nil
}

func putJSON(ops map[string][]byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("attribution: %w", err)
	}
	ops[key] = b
	return nil
}

// Run runs Run on the Lists' store, serialised with its other changes.
func (l *Lists) Run(ctx context.Context, opts RunOptions) (*Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Run(ctx, l.st, opts)
}
