package subscription

import (
	"strings"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
)

// SameOrganization reports whether two organization designations name the
// same organization (access.SameOrganization, the rule that shows a
// Subscription to its owner).
func SameOrganization(a, b string) bool { return access.SameOrganization(a, b) }

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
