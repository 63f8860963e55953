package attribution

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

// Errors of resolving the parameters of the reconciliation operations.
var (
	ErrUnknownMember   = errors.New("attribution: no patient with that member identifier")
	ErrUnknownPatient  = errors.New("attribution: no such patient")
	ErrUnknownProvider = errors.New("attribution: no such provider")
)

// Resolver turns the member identifiers, NPIs and references of the
// reconciliation operations into members and providers, from the store.
type Resolver struct{ st store.Store }

// NewResolver returns a Resolver over st.
func NewResolver(st store.Store) *Resolver { return &Resolver{st: st} }

// MemberByIdentifier finds the member with a payer member identifier: the
// Coverage carrying it (its beneficiary is the patient), else a Patient
// carrying it. system may be empty.
func (r *Resolver) MemberByIdentifier(ctx context.Context, g *GroupInfo, system, value string) (Member, error) {
	tok := value
	if system != "" {
		tok = system + "|" + value
	}
	covs, err := r.st.Search(ctx, store.Query{Type: "Coverage", Params: []store.Param{{Name: "identifier", Values: []string{tok}}}, Count: 20})
	if err != nil {
		return Member{}, fmt.Errorf("attribution: find member %s: %w", value, err)
	}
	for _, c := range covs.Resources {
		cov := gjson.ParseBytes(c.Body)
		if g.PayerID != "" && !paidBy(cov, g.PayerID) {
			continue
		}
		pid := refID(cov.Get("beneficiary.reference").String(), "Patient")
		if pid == "" {
			continue
		}
		m, err := r.patient(ctx, pid)
		if err != nil {
			return Member{}, err
		}
		setCoverage(&m, cov)
		return m, nil
	}
	pts, err := r.st.Search(ctx, store.Query{Type: "Patient", Params: []store.Param{{Name: "identifier", Values: []string{tok}}}, Count: 2})
	if err != nil {
		return Member{}, fmt.Errorf("attribution: find member %s: %w", value, err)
	}
	if len(pts.Resources) == 0 {
		return Member{}, fmt.Errorf("%w: %s", ErrUnknownMember, tok)
	}
	return r.MemberByPatient(ctx, g, pts.Resources[0].ID)
}

// MemberByPatient describes a patient as a member of list g, with its
// coverage by g's payer in force today (the latest starting one), if any.
func (r *Resolver) MemberByPatient(ctx context.Context, g *GroupInfo, patientID string) (Member, error) {
	m, err := r.patient(ctx, patientID)
	if err != nil {
		return Member{}, err
	}
	today := time.Now().UTC().Format(time.DateOnly)
	var best gjson.Result
	err = r.st.Compartment(ctx, patientID, []string{"Coverage"}, func(c *store.Resource) error {
		cov := gjson.ParseBytes(c.Body)
		if cov.Get("status").String() != "active" || (g.PayerID != "" && !paidBy(cov, g.PayerID)) ||
			refID(cov.Get("beneficiary.reference").String(), "Patient") != patientID ||
			!covers(cov.Get("period.start").String(), cov.Get("period.end").String(), today) {
			return nil
		}
		if !best.Exists() || cov.Get("period.start").String() > best.Get("period.start").String() {
			best = cov
		}
		return nil
	})
	if err != nil {
		return Member{}, fmt.Errorf("attribution: coverage of Patient/%s: %w", patientID, err)
	}
	if best.Exists() {
		setCoverage(&m, best)
	}
	if m.PayerID == "" {
		m.PayerID = g.PayerID
	}
	return m, nil
}

// Coverage checks that a Coverage exists and returns its id.
func (r *Resolver) Coverage(ctx context.Context, ref string) (string, error) {
	id := refID(ref, "Coverage")
	if id == "" {
		return "", fmt.Errorf("%w: %q is not a Coverage reference", ErrUnknownMember, ref)
	}
	return id, nil
}

// Provider resolves an NPI or a Practitioner, PractitionerRole or
// Organization reference through the provider directory.
func (r *Resolver) Provider(ctx context.Context, npi, ref string) (Provider, error) {
	dir, err := LoadDirectory(ctx, r.st)
	if err != nil {
		return Provider{}, err
	}
	if ref != "" {
		p, ok := dir.Resolve(ref)
		if !ok {
			return Provider{}, fmt.Errorf("%w: %s", ErrUnknownProvider, ref)
		}
		if npi != "" && p.NPI != npi {
			return Provider{}, fmt.Errorf("%w: %s does not have NPI %s", ErrUnknownProvider, ref, npi)
		}
		return p, nil
	}
	p := dir.ByNPI(npi)
	if p.PractitionerID == "" && p.OrganizationID == "" {
		return Provider{}, fmt.Errorf("%w: NPI %s is not in the provider directory", ErrUnknownProvider, npi)
	}
	return p, nil
}

func (r *Resolver) patient(ctx context.Context, id string) (Member, error) {
	res, err := r.st.Read(ctx, "Patient", id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		return Member{}, fmt.Errorf("%w: Patient/%s", ErrUnknownPatient, id)
	}
	if err != nil {
		return Member{}, fmt.Errorf("attribution: read Patient/%s: %w", id, err)
	}
	p := gjson.ParseBytes(res.Body)
	return Member{PatientID: id, Name: humanName(p), BirthDate: p.Get("birthDate").String()}, nil
}

func paidBy(cov gjson.Result, payerID string) bool {
	for _, p := range cov.Get("payor").Array() {
		if refID(p.Get("reference").String(), "Organization") == payerID {
			return true
		}
	}
	return false
}

func setCoverage(m *Member, cov gjson.Result) {
	m.CoverageID = cov.Get("id").String()
	m.MemberID = memberID(cov)
	m.PayerID = refID(cov.Get("payor.0.reference").String(), "Organization")
}

// ListOf returns the description of list id: its index record, or for a
// Group created over REST and not yet changed, one read from the Group.
// ErrNoList when neither exists.
func ListOf(ctx context.Context, st store.Store, id string) (*GroupInfo, error) {
	g, err := Group(ctx, st.KV(), id)
	if err == nil || !notFound(err) {
		return g, err
	}
	cur, err := st.Read(ctx, "Group", id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		return nil, fmt.Errorf("%w: Group/%s", ErrNoList, id)
	}
	if err != nil {
		return nil, err
	}
	return adoptInfo(cur.Body, id), nil
}

// OwnedBy reports whether the list belongs to an organization binding (an
// Organization id, NPI or TIN, bare or "system|value").
func (g *GroupInfo) OwnedBy(org string) bool { return g.ownedBy(org) }

// isReference reports whether s looks like a relative reference Type/id.
func isReference(s string) bool {
	t, id, ok := strings.Cut(s, "/")
	return ok && t != "" && id != "" && t[0] >= 'A' && t[0] <= 'Z'
}
