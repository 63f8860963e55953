package attribution

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

// Errors of the reconciliation operations; the REST layer maps them to
// OperationOutcomes.
var (
	ErrListFinal      = errors.New("attribution: the list is final")
	ErrNoList         = errors.New("attribution: no such attribution list")
	ErrMemberNotFound = errors.New("attribution: not a member of the list")
	// ErrConflict is a list changed under the operation by a plain REST
	// write of its Group; retrying sees the new version.
	ErrConflict = errors.New("attribution: the Group changed concurrently")
)

// Audit says who asked for a list change and why; it is recorded as a
// Provenance of the new Group version, in the same commit, so disputes can
// be reconciled.
type Audit struct {
	// Who is the requester: a reference ("Organization/x") or a client id.
	Who string `json:"who"`
	// OnBehalfOf is the organization the requester acts for, if any (an
	// id, NPI or TIN, possibly "system|value").
	OnBehalfOf string `json:"onBehalfOf,omitempty"`
	Why        string `json:"why,omitempty"`
}

// Selector picks members to remove: the patient, optionally narrowed to
// one provider (by NPI or reference) and one coverage.
type Selector struct {
	PatientID   string
	ProviderNPI string
	// ProviderRef is "Practitioner/x", "PractitionerRole/x" or
	// "Organization/x".
	ProviderRef string
	CoverageID  string
}

// matches reports whether e is the selected attribution.
func (s Selector) matches(e *Entry) bool {
	if s.ProviderNPI != "" && s.ProviderNPI != e.Provider.NPI {
		return false
	}
	if s.ProviderRef != "" && s.ProviderRef != e.Provider.Reference() &&
		s.ProviderRef != "Organization/"+e.Provider.OrganizationID {
		return false
	}
	return s.CoverageID == "" || s.CoverageID == e.CoverageID
}

// Lists applies the ATR reconciliation operations ($member-add,
// $member-remove, $confirm-attribution-list) and runs. A change writes the
// member's index keys, a small new Group version (quantity and list
// status; no members) and its Provenance in one store commit, so its cost
// does not grow with the list. Changes through one Lists are serialised:
// each knows the version it writes, which keys the member history.
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
	c, cur, err := l.begin(ctx, groupID)
	if err != nil {
		return nil, err
	}
	kv := l.st.KV()
	e := Entry{Member: m, GroupID: groupID, PeriodStart: start, PeriodEnd: end, ChangeType: ChangeNew}
	var prev Entry
	switch err := getJSON(ctx, kv, memberKey(groupID, m.PatientID), &prev); {
	case err == nil && !prev.Inactive:
		e.ChangeType = ChangeChanged
	case err == nil:
		c.g.Inactive--
		c.g.Active++
	case notFound(err):
		c.g.Active++
	default:
		return nil, err
	}
	if err := c.put(&e); err != nil {
		return nil, err
	}
	if err := l.linkPatient(ctx, c, m.PatientID, true); err != nil {
		return nil, err
	}
	return l.commit(ctx, c, cur, "member-add", "UPDATE", []string{"Patient/" + m.PatientID}, a)
}

// Remove takes the selected member out of the list: in a draft list it
// stays, marked inactive and dropped (it is still exchanged until the list
// is final); in an open list it is removed.
func (l *Lists) Remove(ctx context.Context, groupID string, sel Selector, a Audit) (*GroupResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, cur, err := l.begin(ctx, groupID)
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := getJSON(ctx, l.st.KV(), memberKey(groupID, sel.PatientID), &e); err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("%w: Patient/%s", ErrMemberNotFound, sel.PatientID)
		}
		return nil, err
	}
	if !sel.matches(&e) || (c.g.Status == StatusDraft && e.Inactive) {
		return nil, fmt.Errorf("%w: Patient/%s with that provider and coverage", ErrMemberNotFound, sel.PatientID)
	}
	switch {
	case c.g.Status == StatusDraft:
		e.Inactive, e.ChangeType = true, ChangeDropped
		if e.PeriodEnd == "" {
			e.PeriodEnd = l.now().UTC().Format(time.DateOnly)
		}
		if err := c.put(&e); err != nil {
			return nil, err
		}
		c.g.Active--
		c.g.Inactive++
	default:
		c.drop(sel.PatientID)
		if e.Inactive {
			c.g.Inactive--
		} else {
			c.g.Active--
		}
		if err := l.linkPatient(ctx, c, sel.PatientID, false); err != nil {
			return nil, err
		}
	}
	return l.commit(ctx, c, cur, "member-remove", "UPDATE", []string{"Patient/" + sel.PatientID}, a)
}

// Confirm moves the list to final and drops its inactive members.
func (l *Lists) Confirm(ctx context.Context, groupID string, a Audit) (*GroupResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, cur, err := l.begin(ctx, groupID)
	if err != nil {
		return nil, err
	}
	var dropped []string
	if err := Members(ctx, l.st.KV(), groupID, func(e *Entry) error {
		if e.Inactive {
			dropped = append(dropped, e.PatientID)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, pid := range dropped {
		c.drop(pid)
		if err := l.linkPatient(ctx, c, pid, false); err != nil {
			return nil, err
		}
	}
	c.g.Inactive = 0
	c.g.Status = StatusFinal
	return l.commit(ctx, c, cur, "confirm-attribution-list", "UPDATE", nil, a)
}

// begin loads a list that may still change and prepares its next version.
// A Group created over REST becomes a list (adopted) on its first change.
func (l *Lists) begin(ctx context.Context, groupID string) (*change, *store.Resource, error) {
	cur, err := l.st.Read(ctx, "Group", groupID)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		return nil, nil, fmt.Errorf("%w: Group/%s", ErrNoList, groupID)
	}
	if err != nil {
		return nil, nil, err
	}
	kv := l.st.KV()
	g, err := Group(ctx, kv, groupID)
	adopt := notFound(err)
	if adopt {
		g = adoptInfo(cur.Body, groupID)
	} else if err != nil {
		return nil, nil, err
	}
	if g.Status == StatusFinal {
		return nil, nil, ErrListFinal
	}
	c := newChange(g, cur.Version+1)
	if adopt {
		if err := adoptMembers(ctx, kv, c, cur.Body); err != nil {
			return nil, nil, err
		}
	} else if err := backfill(ctx, kv, g, c.next, func(ops map[string][]byte) error { return kv.Batch(ctx, ops) }); err != nil {
		return nil, nil, err
	}
	return c, cur, nil
}

// linkPatient keeps the patient's pointer to its lists in step.
func (l *Lists) linkPatient(ctx context.Context, c *change, patientID string, in bool) error {
	var pl patientLists
	if err := getJSON(ctx, l.st.KV(), kvPatient+patientID, &pl); err != nil && !notFound(err) {
		return err
	}
	has := slices.Contains(pl.Groups, c.g.ID)
	switch {
	case in && !has:
		pl.Groups = append(pl.Groups, c.g.ID)
	case !in && has:
		pl.Groups = slices.DeleteFunc(pl.Groups, func(id string) bool { return id == c.g.ID })
	default:
		return nil
	}
	if len(pl.Groups) == 0 {
		c.kv[kvPatient+patientID] = nil
		return nil
	}
	b, err := json.Marshal(&pl)
	if err != nil {
		return fmt.Errorf("attribution: %w", err)
	}
	c.kv[kvPatient+patientID] = b
	return nil
}

// commit writes the change's index keys, the list description, the new
// Group version and its Provenance atomically.
func (l *Lists) commit(ctx context.Context, c *change, cur *store.Resource, op, activity string, also []string, a Audit) (*GroupResult, error) {
	return commitVersion(ctx, l.st, c, cur, l.now().UTC(), op, activity, also, a)
}

func commitVersion(ctx context.Context, st store.Store, c *change, cur *store.Resource, at time.Time, op, activity string, also []string, a Audit) (*GroupResult, error) {
	var base []byte
	if cur != nil && !cur.Deleted {
		base = cur.Body
	}
	h, err := head(c.g, base)
	if err != nil {
		return nil, err
	}
	c.g.Version, c.g.Layout = c.next, layoutHistory
	info, err := json.Marshal(c.g)
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	c.kv[kvGroup+c.g.ID] = info
	provID := newID()
	targets := append([]string{fmt.Sprintf("Group/%s/_history/%d", c.g.ID, c.next)}, also...)
	prov, err := provenance(provID, at, targets, op, activity, a)
	if err != nil {
		return nil, err
	}
	gw := store.Write{Op: store.OpPut, Type: "Group", ID: c.g.ID, Body: h}
	if cur != nil {
		gw.IfMatch = cur.Version
	} else {
		gw.IfNoneExist = true
	}
	res, err := st.Commit(ctx, store.Tx{
		Writes: []store.Write{gw, {Op: store.OpPut, Type: "Provenance", ID: provID, Body: prov}},
		KV:     c.kv,
	})
	if errors.Is(err, store.ErrVersionConflict) {
		return nil, fmt.Errorf("%w: Group/%s", ErrConflict, c.g.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("attribution: write Group/%s: %w", c.g.ID, err)
	}
	return &GroupResult{ID: c.g.ID, Version: res[0].Version, Active: c.g.Active, Inactive: c.g.Inactive,
		Status: c.g.Status, Provenance: provID}, nil
}

// provenance records who changed a list, when and why.
func provenance(id string, at time.Time, targets []string, op, activity string, a Audit) ([]byte, error) {
	refs := make([]jsonObj, len(targets))
	for i, t := range targets {
		refs[i] = jsonObj{"reference": t}
	}
	who := jsonObj{"display": a.Who}
	if isReference(a.Who) {
		who = jsonObj{"reference": a.Who}
	} else if a.Who != "" {
		who["identifier"] = jsonObj{"system": "urn:equitas:client", "value": a.Who}
	} else {
		who["display"] = "unknown"
	}
	agent := jsonObj{
		"type": jsonObj{"coding": []jsonObj{{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author", "display": "Author"}}},
		"who":  who,
	}
	if a.OnBehalfOf != "" {
		agent["onBehalfOf"] = jsonObj{"display": a.OnBehalfOf}
	}
	p := jsonObj{
		"resourceType": "Provenance",
		"id":           id,
		"target":       refs,
		"recorded":     at.Format(time.RFC3339Nano),
		"activity": jsonObj{
			"coding": []jsonObj{{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": activity}},
			"text":   op,
		},
		"agent": []jsonObj{agent},
	}
	if a.Why != "" {
		p["reason"] = []jsonObj{{"text": a.Why}}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	return b, nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// adoptInfo describes a client-written Group as a list: its NPI, TIN and
// contract identifiers, contract period and list status (draft when
// absent), and the payer from managingEntity.
func adoptInfo(body []byte, id string) *GroupInfo {
	r := gjson.ParseBytes(body)
	g := &GroupInfo{ID: id, Adopted: true, Status: StatusDraft, Layout: layoutHistory,
		PayerID: refID(r.Get("managingEntity.reference").String(), "Organization"), OrganizationName: r.Get("name").String()}
	for _, ident := range r.Get("identifier").Array() {
		sys, val := ident.Get("system").String(), ident.Get("value").String()
		switch {
		case sys == SystemNPI:
			g.NPI = val
		case sys == SystemTIN:
			g.TIN = val
		case g.Contract == "":
			g.ContractSystem, g.Contract = sys, val
		}
	}
	for _, ext := range r.Get("extension").Array() {
		switch ext.Get("url").String() {
		case ExtAttributionListStatus:
			if s := ext.Get("valueCode").String(); s != "" {
				g.Status = s
			}
		case ExtContractValidity:
			g.ContractStart, g.ContractEnd = ext.Get("valuePeriod.start").String(), ext.Get("valuePeriod.end").String()
		}
	}
	for _, ch := range r.Get("characteristic").Array() {
		if id := refID(ch.Get("valueReference.reference").String(), "Organization"); id != "" {
			g.OrganizationID = id
			break
		}
	}
	return g
}

// adoptMembers moves the members of a client-written Group into the index.
func adoptMembers(ctx context.Context, kv store.KV, c *change, body []byte) error {
	for _, m := range gjson.GetBytes(body, "member").Array() {
		pid := refID(m.Get("entity.reference").String(), "Patient")
		if pid == "" {
			continue
		}
		e := Entry{Member: Member{PatientID: pid, PayerID: c.g.PayerID}, GroupID: c.g.ID,
			PeriodStart: m.Get("period.start").String(), PeriodEnd: m.Get("period.end").String(),
			Inactive: m.Get("inactive").Bool(), ChangeType: ChangeNew}
		for _, ext := range m.Get("extension").Array() {
			v := ext.Get("valueReference")
			switch ext.Get("url").String() {
			case ExtChangeType:
				e.ChangeType = ext.Get("valueCode").String()
			case ExtCoverageReference:
				e.CoverageID = refID(v.Get("reference").String(), "Coverage")
			case ExtAttributedProvider:
				ref := v.Get("reference").String()
				e.Provider.PractitionerID = refID(ref, "Practitioner")
				if e.Provider.PractitionerID == "" {
					e.Provider.OrganizationID = refID(ref, "Organization")
				}
				e.Provider.NPI = npiOf(v)
			}
		}
		if e.Inactive {
			c.g.Inactive++
		} else {
			c.g.Active++
		}
		if err := c.put(&e); err != nil {
			return err
		}
		var pl patientLists
		if err := getJSON(ctx, kv, kvPatient+pid, &pl); err != nil && !notFound(err) {
			return err
		}
		if !slices.Contains(pl.Groups, c.g.ID) {
			pl.Groups = append(pl.Groups, c.g.ID)
			b, err := json.Marshal(&pl)
			if err != nil {
				return fmt.Errorf("attribution: %w", err)
			}
			c.kv[kvPatient+pid] = b
		}
	}
	return nil
}

// Run runs Run on the Lists' store, serialised with its other changes.
func (l *Lists) Run(ctx context.Context, opts RunOptions) (*Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Run(ctx, l.st, opts)
}
