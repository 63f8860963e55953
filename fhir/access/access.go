// Package access carries who is calling and what they may see through a
// request's context. Authentication (fhir/auth) puts a Principal in the
// context; every endpoint (read, search, history, export, operations) asks
// the same Principal, so scoping rules live in one place: scopes (Allows)
// and, for provider clients bound to an organization, the patients and
// Groups attributed to that organization (Sees).
package access

import (
	"context"
	"fmt"
	"strings"
)

// Principal is an authenticated caller.
type Principal struct {
	ClientID string
	// Scopes are SMART scopes such as "system/*.read", "system/Patient.rs",
	// "system/Observation.cud".
	Scopes []string
	// Organization binds a provider client to an organization (its NPI,
	// TIN or Organization id); empty for payer/system clients.
	Organization string
	// Patients, when non-nil, limits the caller to these patient ids (and
	// the resources in their compartments). It is resolved per request from
	// the active attribution lists of Organization.
	Patients PatientSet
	// Groups are the Group ids a restricted caller may see (its own
	// attribution lists); nil with Patients set means none.
	Groups IDSet
}

// IDSet answers whether an id is in a set.
type IDSet interface {
	Contains(id string) bool
}

// PatientSet answers whether a patient is visible to the caller.
type PatientSet = IDSet

// Set is an IDSet held in a map.
type Set map[string]bool

// Contains reports whether id is in the set.
func (s Set) Contains(id string) bool { return s[id] }

// NoPatients is the PatientSet of a caller bound to an organization whose
// patients are not known: it sees none rather than all.
type NoPatients struct{}

// Contains reports false for every patient.
func (NoPatients) Contains(string) bool { return false }

// unrestricted is the principal of servers without auth (loopback only);
// Anonymous hands out copies so no request can change it.
var unrestricted = Principal{ClientID: "anonymous", Scopes: []string{"system/*.*"}}

// Anonymous returns the principal for servers started with --auth none.
func Anonymous() *Principal {
	p := unrestricted
	p.Scopes = append([]string(nil), unrestricted.Scopes...)
	return &p
}

type ctxKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the caller, or nil when the request is unauthenticated.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// Interaction classes used for scope checks (SMART v1 read/write and v2
// c/r/u/d/s letters).
const (
	Read   = 'r' // read, vread, history
	Search = 's'
	Create = 'c'
	Update = 'u'
	Delete = 'd'
)

// Allows reports whether the principal's scopes permit interaction on typ.
// It accepts SMART v1 (".read", ".write", ".*") and v2 (".rs", ".cud",
// ".cruds") scope suffixes, for the "system" context only.
func (p *Principal) Allows(typ string, interaction rune) bool {
	if p == nil {
		return false
	}
	for _, s := range p.Scopes {
		ctx, rest, ok := strings.Cut(s, "/")
		if !ok || ctx != "system" {
			continue
		}
		rt, perm, ok := strings.Cut(rest, ".")
		if !ok || (rt != "*" && rt != typ) {
			continue
		}
		if i := strings.IndexByte(perm, '?'); i >= 0 {
			perm = perm[:i]
		}
		switch perm {
		case "*":
			return true
		case "read":
			if interaction == Read || interaction == Search {
				return true
			}
		case "write":
			if interaction == Create || interaction == Update || interaction == Delete {
				return true
			}
		default:
			if strings.ContainsRune(perm, interaction) && strings.Trim(perm, "cruds") == "" {
				return true
			}
		}
	}
	return false
}

// SeesPatient reports whether the caller may see data of patientID.
func (p *Principal) SeesPatient(patientID string) bool {
	if p == nil {
		return false
	}
	return p.Patients == nil || p.Patients.Contains(patientID)
}

// SeesGroup reports whether the caller may see Group groupID: every Group
// for unrestricted callers, only its organization's own for the others.
func (p *Principal) SeesGroup(groupID string) bool {
	if p == nil {
		return false
	}
	if p.Patients == nil {
		return true
	}
	return p.Groups != nil && p.Groups.Contains(groupID)
}

// Restricted reports whether the caller sees only some patients.
func (p *Principal) Restricted() bool { return p != nil && p.Patients != nil }

// Bind restricts a caller bound to an organization to what resolve says
// that organization sees (nothing when resolve is nil); other callers are
// left as they are. Authentication and a bulk job starting later both
// bind the same way, so both see the same.
func (p *Principal) Bind(ctx context.Context, resolve Resolver) error {
	if p.Organization == "" {
		return nil
	}
	var v Visibility
	if resolve != nil {
		var err error
		if v, err = resolve(ctx, p.Organization); err != nil {
			return fmt.Errorf("what %s may see: %w", p.Organization, err)
		}
	}
	p.Restrict(v)
	return nil
}

// Restrict limits p to what v allows (nil sets mean nothing).
func (p *Principal) Restrict(v Visibility) {
	p.Patients, p.Groups = v.Patients, v.Groups
	if p.Patients == nil {
		p.Patients = NoPatients{}
	}
	if p.Groups == nil {
		p.Groups = NoPatients{}
	}
}
