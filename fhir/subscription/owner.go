package subscription

import (
	"strings"

	"github.com/equitas/equitas/fhir/attribution"
)

// orgKey is the comparable form of an organization designation: a
// "system|value" identifier and an "Organization/id" reference are
// compared on their value.
func orgKey(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '|'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimPrefix(s, "Organization/")
}

// SameOrganization reports whether two organization designations name the
// same organization.
func SameOrganization(a, b string) bool {
	a, b = orgKey(a), orgKey(b)
	return a != "" && a == b
}

// ownedBy reports whether an assignment's list belongs to org, by the rule
// that decides which patients org's clients see (attribution's, behind
// access visibility): a notification must reach no one who could not read
// the patient. An "Organization/id" designation is an id.
func ownedBy(a attribution.Assignment, org string) bool {
	g := attribution.GroupInfo{OrganizationID: a.OrganizationID, NPI: a.NPI, TIN: a.TIN}
	return listOwnedBy(&g, org)
}

func listOwnedBy(g *attribution.GroupInfo, org string) bool {
	return g.OwnedBy(strings.TrimPrefix(strings.TrimSpace(org), "Organization/"))
}
