// Package attribution computes member attribution for value-based contracts
// and publishes it as Da Vinci ATR (Member Attribution List IG 2.1.0)
// Groups.
//
// The algorithms are the ones payers run: prospective (the member's selected
// PCP from Patient.generalPractitioner or a Coverage plan assignment),
// retrospective (plurality of outpatient E&M services in the 12 months
// before the as-of date, from ExplanationOfBenefit and Claim, with ties
// broken by the most recent service and then the highest allowed amount, or
// simply the most recent visit) and hybrid (prospective where a PCP is
// selected, retrospective otherwise). Provider NPIs are rolled up to the
// billing organization and its TIN through PractitionerRole.
//
// A Run streams the store's patients one compartment at a time, so memory
// stays flat in population size. Membership lives in a member index in the
// store's KV space (one key per group member, plus one history key per
// member change), from which each run computes the month-over-month
// changeType and from which CSV lists for provider portals are written.
// The stored Group carries no members: RenderGroup renders them on read,
// as of the version read. Lists applies the ATR reconciliation operations,
// each a small commit (member keys, Group version, Provenance); Jobs runs
// attributions asynchronously; Assignments and OrganizationPatients answer
// who is attributed to whom for provider-scoped access.
package attribution

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Method selects the attribution algorithm.
type Method string

const (
	Prospective   Method = "prospective"
	Retrospective Method = "retrospective"
	Hybrid        Method = "hybrid"
)

// ParseMethod accepts the CLI and operation spellings of a Method.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case Prospective, Retrospective, Hybrid:
		return m, nil
	}
	return "", fmt.Errorf("attribution: unknown method %q (want prospective, retrospective or hybrid)", s)
}

// DefaultEMCodes is the outpatient evaluation-and-management CPT/HCPCS code
// set counted by retrospective attribution: office visits (new and
// established), office consultations, home visits, online digital and
// telephone E&M, preventive visits and Medicare annual wellness visits
// (after the Medicare Shared Savings Program's primary-care service list). Emergency-department and inpatient E&M
// codes are left out on purpose: they do not indicate a primary-care
// relationship.
func DefaultEMCodes() map[string]bool {
	set := map[string]bool{"G0402": true, "G0438": true, "G0439": true}
	add := func(from, to int) {
		for c := from; c <= to; c++ {
			set[fmt.Sprint(c)] = true
		}
	}
	add(99202, 99205)
	add(99211, 99215)
	add(99242, 99245)
	add(99341, 99350)
	add(99381, 99387)
	add(99421, 99423)
	add(99441, 99443)
	add(99391, 99397)
	return set
}

// LookbackMonths is the retrospective window: services in the 12 rolling
// months before the as-of date count.
const LookbackMonths = 12

// Service is one counted outpatient E&M service line.
type Service struct {
	NPI     string    // rendering provider NPI
	Date    time.Time // date of service
	Allowed float64   // allowed (eligible) amount of the line
}

// Window returns the retrospective window [asOf-12 months, asOf).
func Window(asOf time.Time) (start, end time.Time) {
	return asOf.AddDate(0, -LookbackMonths, 0), asOf
}

// Choose picks the provider NPI a member is attributed to from the member's
// services inside the window. With mostRecent false it is the plurality
// rule: most services, ties broken by the most recent date of service, then
// the highest total allowed amount, then the lowest NPI (so the answer never
// depends on input order). With mostRecent true it is the provider of the
// latest service, ties broken by the highest allowed amount on that date,
// then the lowest NPI. ok is false when no service falls in the window.
func Choose(services []Service, asOf time.Time, mostRecent bool) (npi string, ok bool) {
	type tally struct {
		npi     string
		count   int
		last    time.Time
		allowed float64 // total, or on the last date for mostRecent
	}
	start, end := Window(asOf)
	var ts []tally
	for _, s := range services {
		if s.NPI == "" || s.Date.Before(start) || !s.Date.Before(end) {
			continue
		}
		i := slices.IndexFunc(ts, func(t tally) bool { return t.npi == s.NPI })
		if i < 0 {
			ts = append(ts, tally{npi: s.NPI})
			i = len(ts) - 1
		}
		t := &ts[i]
		t.count++
		switch {
		case !mostRecent:
			t.allowed += s.Allowed
			if s.Date.After(t.last) {
				t.last = s.Date
			}
		case s.Date.After(t.last):
			t.last, t.allowed = s.Date, s.Allowed
		case s.Date.Equal(t.last):
			t.allowed += s.Allowed
		}
	}
	if len(ts) == 0 {
		return "", false
	}
	best := slices.MinFunc(ts, func(a, b tally) int {
		if !mostRecent {
			if c := cmp.Compare(b.count, a.count); c != 0 {
				return c
			}
		}
		if c := b.last.Compare(a.last); c != 0 {
			return c
		}
		if c := cmp.Compare(b.allowed, a.allowed); c != 0 {
			return c
		}
		return cmp.Compare(a.npi, b.npi)
	})
	return best.npi, true
}
