package attribution

import (
	"context"
	"strings"
	"time"

	"github.com/equitas/equitas/store"
)

// Assignment is one active list membership of a patient: the contract's
// provider organization and the clinician the member is attributed to.
// Provider-scoped access and ADT alert routing use it.
type Assignment struct {
	GroupID          string
	OrganizationID   string
	OrganizationName string
	NPI              string // the provider organization's NPI
	TIN              string
	ProviderNPI      string // the attributed clinician (or organization) NPI
	PayerID          string
	PeriodStart      string
	PeriodEnd        string
}

// Assignments returns the active list memberships of a patient at at: the
// member is not inactive, the member period and the contract period cover
// at, and the list is draft, open or final.
func Assignments(ctx context.Context, kv store.KV, patientID string, at time.Time) ([]Assignment, error) {
	var pl patientLists
	if err := getJSON(ctx, kv, kvPatient+patientID, &pl); err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, err
	}
	day := at.UTC().Format(time.DateOnly)
	var out []Assignment
	for _, gid := range pl.Groups {
		g, err := Group(ctx, kv, gid)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !g.ActiveOn(day) {
			continue
		}
		var e Entry
		if err := getJSON(ctx, kv, memberKey(gid, patientID), &e); err != nil {
			if notFound(err) {
				continue
			}
			return nil, err
		}
		if !e.ActiveOn(day) {
			continue
		}
		out = append(out, Assignment{
			GroupID: gid, OrganizationID: g.OrganizationID, OrganizationName: g.OrganizationName,
			NPI: g.NPI, TIN: g.TIN, ProviderNPI: e.Provider.NPI, PayerID: g.PayerID,
			PeriodStart: e.PeriodStart, PeriodEnd: e.PeriodEnd,
		})
	}
	return out, nil
}

// OrganizationGroups returns the lists of a provider organization. org is
// an Organization id, an NPI or a TIN, bare or as "system|value" (the
// form an auth client's Organization binding takes); a system restricts
// the match to that identifier.
func OrganizationGroups(ctx context.Context, kv store.KV, org string) ([]*GroupInfo, error) {
	if org == "" {
		return nil, nil
	}
	gs, err := Groups(ctx, kv)
	if err != nil {
		return nil, err
	}
	out := gs[:0]
	for _, g := range gs {
		if g.ownedBy(org) {
			out = append(out, g)
		}
	}
	return out, nil
}

// OrganizationPatients returns the ids of the patients attributed to org
// (see OrganizationGroups) through a list active at at.
func OrganizationPatients(ctx context.Context, kv store.KV, org string, at time.Time) (map[string]bool, error) {
	gs, err := OrganizationGroups(ctx, kv, org)
	if err != nil {
		return nil, err
	}
	day := at.UTC().Format(time.DateOnly)
	out := map[string]bool{}
	for _, g := range gs {
		if !g.ActiveOn(day) {
			continue
		}
		err := Members(ctx, kv, g.ID, func(e *Entry) error {
			if e.ActiveOn(day) {
				out[e.PatientID] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ownedBy matches a list to an organization binding.
func (g *GroupInfo) ownedBy(org string) bool {
	system, value, ok := strings.Cut(org, "|")
	if !ok {
		value, system = org, ""
	}
	if value == "" {
		return false
	}
	switch system {
	case "":
		return value == g.OrganizationID || value == g.NPI || value == g.TIN
	case SystemNPI:
		return value == g.NPI
	case SystemTIN:
		return value == g.TIN
	}
	return false
}

// ActiveOn reports whether the list's status and contract make it active
// on day (YYYY-MM-DD).
func (g *GroupInfo) ActiveOn(day string) bool {
	switch g.Status {
	case StatusDraft, StatusOpen, StatusFinal:
	default:
		return false
	}
	return covers(g.ContractStart, g.ContractEnd, day)
}

// ActiveOn reports whether the member is active and attributed on day
// (YYYY-MM-DD).
func (e *Entry) ActiveOn(day string) bool {
	return !e.Inactive && covers(e.PeriodStart, e.PeriodEnd, day)
}

// covers compares dates as strings: start and end may be dateTimes (their
// date counts) or partial dates, which cover their whole year or month
// ("2026-11" as an end covers 2026-11-30).
func covers(start, end, day string) bool {
	if start != "" && dateOnly(start) > day {
		return false
	}
	if end == "" {
		return true
	}
	end = dateOnly(end)
	return end >= day[:min(len(end), len(day))]
}
