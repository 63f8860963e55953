package auth

import (
	"fmt"
	"strings"

	"github.com/equitas/equitas/fhir/resourcetype"
)

// scope is one parsed SMART system scope: "system/Observation.rs" is
// {typ: "Observation", perms: "rs"}; scopes without a resource part (for
// example "system/bulk-submit") keep their name in name.
type scope struct {
	raw   string
	typ   string // resource type or "*"
	perms string // subset of "cruds"
	name  string // non-resource scope
}

// parseScope accepts SMART v1 (read, write, *) and v2 (c, r, u, d, s
// letters in that order) system scopes. Query-restricted v2 scopes
// ("?category=...") are rejected: the server cannot enforce them.
func parseScope(s string) (scope, error) {
	rest, ok := strings.CutPrefix(s, "system/")
	if !ok {
		return scope{}, fmt.Errorf("scope %q: only system/ scopes are granted to backend services", s)
	}
	typ, perm, hasPerm := strings.Cut(rest, ".")
	if !hasPerm {
		if rest == "" || strings.ContainsAny(rest, " *?/") {
			return scope{}, fmt.Errorf("scope %q is malformed", s)
		}
		return scope{raw: s, name: rest}, nil
	}
	if typ != "*" && !resourcetype.Valid(typ) {
		return scope{}, fmt.Errorf("scope %q: unknown resource type %q", s, typ)
	}
	sc := scope{raw: s, typ: typ}
	switch perm {
	case "read":
		sc.perms = "rs"
	case "write":
		sc.perms = "cud"
	case "*":
		sc.perms = "cruds"
	default:
		if perm == "" || !inOrder(perm, "cruds") {
			return scope{}, fmt.Errorf("scope %q: permissions must be read, write, * or letters of cruds in order", s)
		}
		sc.perms = perm
	}
	return sc, nil
}

// inOrder reports whether s is a non-repeating subsequence of letters.
func inOrder(s, letters string) bool {
	i := 0
	for _, c := range s {
		j := strings.IndexRune(letters[i:], c)
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return true
}

// ParseScopes splits a space-separated scope string and validates each.
func ParseScopes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Fields(s) {
		if _, err := parseScope(f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// within reports whether every permission requested is granted by one of
// the allowed scopes.
func within(requested scope, allowed []scope) bool {
	if requested.name != "" {
		for _, a := range allowed {
			if a.name == requested.name {
				return true
			}
		}
		return false
	}
	for _, p := range requested.perms {
		ok := false
		for _, a := range allowed {
			if a.name == "" && (a.typ == "*" || a.typ == requested.typ) && strings.ContainsRune(a.perms, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// grant returns the requested scopes the client is pre-authorized for, in
// request order; the rest are dropped (SMART lets the server grant less
// than asked).
func grant(requested string, allowed []string) ([]string, error) {
	var al []scope
	for _, a := range allowed {
		sc, err := parseScope(a)
		if err != nil {
			continue // registered before a rule tightened; never granted
		}
		al = append(al, sc)
	}
	var out []string
	for _, f := range strings.Fields(requested) {
		sc, err := parseScope(f)
		if err != nil {
			return nil, err
		}
		if within(sc, al) {
			out = append(out, f)
		}
	}
	return out, nil
}
