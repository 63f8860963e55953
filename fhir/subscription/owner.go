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

// ownedBy reports whether an assignment's provider organization is org.
func ownedBy(a attribution.Assignment, org string) bool {
	k := orgKey(org)
	if k == "" {
		return false
	}
	return k == a.OrganizationID || k == a.NPI || k == a.TIN
}
