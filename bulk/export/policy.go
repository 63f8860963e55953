package export

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/store"
)

// Denied is a kick-off the caller may not make: NotFound for a Group it
// may not see (answered as if the Group did not exist), else a scope or
// binding that does not cover the request.
type Denied struct {
	NotFound bool
	Reason   string
}

func (d *Denied) Error() string { return d.Reason }

// Authorize applies the export policy to a parsed kick-off: every
// requested type must be readable with the caller's scopes (SMART: a
// request for types outside the scope SHOULD fail at kick-off), and a
// Group must exist and be visible to the caller (an organization-bound
// client exports only its own lists). Store failures are returned as
// they are (the caller answers 503), never as a missing Group.
func Authorize(ctx context.Context, st store.Store, principal *access.Principal, p *Params) error {
	if principal == nil {
		return &Denied{Reason: "authentication required"}
	}
	for _, t := range append(slices.Clone(p.Types), p.Referenced...) {
		if !principal.Allows(t, access.Read) {
			return &Denied{Reason: "scope does not allow reading " + t}
		}
	}
	if len(p.Types) == 0 && p.Level != System && !principal.Allows("Patient", access.Read) {
		return &Denied{Reason: "scope does not allow reading Patient data"}
	}
	if p.Level != Group {
		return nil
	}
	notFound := &Denied{NotFound: true, Reason: "Group/" + p.GroupID + " not found"}
	if !principal.SeesGroup(p.GroupID) {
		return notFound
	}
	_, err := st.Read(ctx, "Group", p.GroupID)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("export: read Group/%s: %w", p.GroupID, err)
	}
	return nil
}

// Da Vinci ATR $davinci-data-export (hl7.fhir.us.davinci-atr 2.1.0).
const (
	// ATRExportType is the exportType every ATR Producer SHALL support.
	ATRExportType = "hl7.fhir.us.davinci-atr"
	// DaVinciDataExportDefinition is the operation's canonical URL.
	DaVinciDataExportDefinition = "http://hl7.org/fhir/us/davinci-atr/OperationDefinition/davinci-data-export"
)

var (
	// atrMinimum are the types a $davinci-data-export SHALL include.
	atrMinimum = []string{"Group", "Patient", "Coverage"}
	// atrCompartment are the other types of the member compartments the
	// Producer SHOULD support.
	atrCompartment = []string{"RelatedPerson"}
	// atrReferenced are exported because the list references them (the
	// attributed providers, the payer, their locations), not per member.
	atrReferenced = []string{"Practitioner", "PractitionerRole", "Organization", "Location"}
)

// ParseDaVinci validates a Group/[id]/$davinci-data-export kick-off:
// exportType hl7.fhir.us.davinci-atr (required; others are rejected),
// _type (resourceTypes is accepted as an alias; type names are matched
// without regard to case, as the IG's own examples misspell them) holding
// at least Group, Patient and Coverage (a request lacking them is
// rejected), and patient references (GET or POST; invalid ones are
// ignored with an OperationOutcome each in the manifest's error file).
// Without _type every supported type is exported.
func ParseDaVinci(k Kickoff) (*Params, error) {
	vals := make(map[string][]string, len(k.Values))
	for n, vs := range k.Values {
		vals[n] = slices.Clone(vs)
	}
	et := vals["exportType"]
	delete(vals, "exportType")
	if len(et) == 0 || strings.TrimSpace(et[len(et)-1]) == "" {
		return nil, &ParamError{Param: "exportType", Reason: "is required; this server supports " + ATRExportType}
	}
	if v := strings.TrimSpace(et[len(et)-1]); v != ATRExportType {
		return nil, &ParamError{Param: "exportType", Reason: fmt.Sprintf("%q is not supported (supported: %s)", v, ATRExportType)}
	}
	var asked []string
	typed := false
	for _, name := range []string{"_type", "resourceTypes"} {
		for _, v := range vals[name] {
			typed = true
			for _, t := range strings.Split(v, ",") {
				if t = strings.TrimSpace(t); t != "" {
					asked = append(asked, canonicalType(t))
				}
			}
		}
		delete(vals, name)
	}
	var referenced, types []string
	if !typed {
		types = append(slices.Clone(atrMinimum), atrCompartment...)
		referenced = slices.Clone(atrReferenced)
	} else {
		var missing []string
		for _, t := range atrMinimum {
			if !slices.Contains(asked, t) {
				missing = append(missing, t)
			}
		}
		if len(missing) > 0 {
			return nil, &ParamError{Param: "_type", Reason: "must include Group, Patient and Coverage (missing " + strings.Join(missing, ", ") + ")"}
		}
		for _, t := range asked {
			if slices.Contains(atrReferenced, t) {
				referenced = appendUnique(referenced, t)
			} else {
				types = appendUnique(types, t)
			}
		}
	}
	refs := vals["patient"]
	delete(vals, "patient")
	vals["_type"] = []string{strings.Join(types, ",")}
	k.Values = vals
	p, err := Parse(k)
	if err != nil {
		return nil, err
	}
	for _, v := range refs {
		for _, ref := range strings.Split(v, ",") {
			ref = strings.TrimSpace(ref)
			id, ok := strings.CutPrefix(ref, "Patient/")
			if !ok || id == "" || strings.Contains(id, "/") {
				p.Ignored = append(p.Ignored, fmt.Sprintf("patient: %q is not a Patient reference", ref))
				continue
			}
			p.Patients = appendUnique(p.Patients, id)
		}
	}
	p.Referenced = referenced
	p.MinimumTypes = slices.Clone(atrMinimum)
	p.ExportType = ATRExportType
	// Files of an ATR export SHALL require a token.
	p.RequiresAccessToken = true
	return p, nil
}

// canonicalType spells a resource type as FHIR does when it matches one
// of the ATR types without regard to case ("GRoup" in the IG's examples).
func canonicalType(t string) string {
	for _, list := range [][]string{atrMinimum, atrCompartment, atrReferenced} {
		for _, c := range list {
			if strings.EqualFold(c, t) {
				return c
			}
		}
	}
	return t
}

// refCollector gathers the literal references ("Type/id") of exported
// resources that point at the wanted types.
type refCollector struct {
	want map[string]bool
	mu   sync.Mutex
	refs map[string]bool // reference -> already written
}

func newRefCollector(types []string) *refCollector {
	c := &refCollector{want: map[string]bool{}, refs: map[string]bool{}}
	for _, t := range types {
		c.want[t] = true
	}
	return c
}

// collect records the wanted references anywhere in body.
func (c *refCollector) collect(body []byte) {
	var found []string
	var walk func(v gjson.Result)
	walk = func(v gjson.Result) {
		v.ForEach(func(k, x gjson.Result) bool {
			switch {
			case k.Str == "reference" && x.Type == gjson.String:
				if typ, id, ok := strings.Cut(x.Str, "/"); ok && c.want[typ] && id != "" && !strings.Contains(id, "/") {
					found = append(found, x.Str)
				}
			case x.IsObject() || x.IsArray():
				walk(x)
			}
			return true
		})
	}
	walk(gjson.ParseBytes(body))
	if len(found) == 0 {
		return
	}
	c.mu.Lock()
	for _, f := range found {
		if _, ok := c.refs[f]; !ok {
			c.refs[f] = false
		}
	}
	c.mu.Unlock()
}

// add records one reference to export.
func (c *refCollector) add(ref string) {
	c.mu.Lock()
	if _, ok := c.refs[ref]; !ok {
		c.refs[ref] = false
	}
	c.mu.Unlock()
}

// next returns the references collected and not yet handed out, sorted,
// and marks them handed out.
func (c *refCollector) next() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for ref, done := range c.refs {
		if !done {
			out = append(out, ref)
			c.refs[ref] = true
		}
	}
	sort.Strings(out)
	return out
}

// referenced writes the resources the export referenced among
// p.Referenced types (readable with the client's scopes), following
// references of those resources in turn (a PractitionerRole's
// Practitioner, Organization and Location).
func (r *run) referenced(ctx context.Context) error {
	if r.refs == nil {
		return nil
	}
	for round := 0; round < 4; round++ {
		refs := r.refs.next()
		if len(refs) == 0 {
			return nil
		}
		for _, ref := range refs {
			typ, id, _ := strings.Cut(ref, "/")
			if !r.principal.Allows(typ, access.Read) {
				continue
			}
			res, err := r.snap.Read(ctx, typ, id)
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
				continue
			}
			if err != nil {
				return fmt.Errorf("export: read %s: %w", ref, err)
			}
			if !r.keep(res) {
				continue
			}
			if err := r.write(ctx, res); err != nil {
				return err
			}
			if typ == "Practitioner" && r.refs.want["PractitionerRole"] {
				if err := r.rolesOf(ctx, ref); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// rolesOf queues the PractitionerRoles of an exported Practitioner: they
// say for which organization and where the attributed clinician works,
// and nothing else the export holds points at them.
func (r *run) rolesOf(ctx context.Context, practitioner string) error {
	q := store.Query{Type: "PractitionerRole", Count: 1000, Params: []store.Param{{Name: "practitioner", Values: []string{practitioner}}}}
	for {
		res, err := r.snap.Search(ctx, q)
		if err != nil {
			return fmt.Errorf("export: roles of %s: %w", practitioner, err)
		}
		for _, role := range res.Resources {
			r.refs.add("PractitionerRole/" + role.ID)
		}
		if res.NextCursor == "" {
			return nil
		}
		q.Cursor = res.NextCursor
	}
}
