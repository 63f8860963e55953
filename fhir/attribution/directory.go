package attribution

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

// Identifier systems the ATR profiles fix.
const (
	SystemNPI = "http://hl7.org/fhir/sid/us-npi"
	SystemTIN = "urn:oid:2.16.840.1.113883.4.4"
)

// Provider is an attribution target: a clinician (NPI) rolled up to the
// organization that bills for it (its TIN). For an attribution made directly
// to an organization PractitionerID is empty and NPI is the organization's.
type Provider struct {
	NPI            string `json:"npi,omitempty"`
	PractitionerID string `json:"practitioner,omitempty"`
	OrganizationID string `json:"organization,omitempty"`
	TIN            string `json:"tin,omitempty"`
}

// Reference is the FHIR reference of the attributed provider.
func (p Provider) Reference() string {
	switch {
	case p.PractitionerID != "":
		return "Practitioner/" + p.PractitionerID
	case p.OrganizationID != "":
		return "Organization/" + p.OrganizationID
	}
	return ""
}

// Organization is a provider or payer organization of the directory.
type Organization struct {
	ID, Name, NPI, TIN string
}

// Directory resolves provider references and NPIs to Providers. It holds
// the provider directory (Organizations, Practitioners, PractitionerRoles),
// whose size is that of the network, not of the member population.
type Directory struct {
	orgs   map[string]Organization
	practs map[string]string // practitioner id -> NPI
	npis   map[string]string // practitioner NPI -> practitioner id
	roleOf map[string]string // practitioner id -> organization id (first active role)
	roles  map[string][2]string
}

// NewDirectory returns an empty Directory; fill it with Add.
func NewDirectory() *Directory {
	return &Directory{
		orgs: map[string]Organization{}, practs: map[string]string{}, npis: map[string]string{},
		roleOf: map[string]string{}, roles: map[string][2]string{},
	}
}

// Scanner streams the current resources of a type: a store.Store or a
// store.Snapshot.
type Scanner interface {
	Scan(ctx context.Context, typ string, since time.Time, fn func(*store.Resource) error) error
}

// LoadDirectory reads the current Organizations, Practitioners and
// PractitionerRoles of st.
func LoadDirectory(ctx context.Context, st Scanner) (*Directory, error) {
	d := NewDirectory()
	for _, typ := range []string{"Organization", "Practitioner", "PractitionerRole"} {
		if err := st.Scan(ctx, typ, time.Time{}, func(r *store.Resource) error { d.Add(typ, r.Body); return nil }); err != nil {
			return nil, fmt.Errorf("attribution: load %s directory: %w", typ, err)
		}
	}
	return d, nil
}

// Add records one Organization, Practitioner or PractitionerRole; other
// types are ignored. A practitioner is rolled up to the organization of its
// first active role added.
func (d *Directory) Add(typ string, body []byte) {
	r := gjson.ParseBytes(body)
	id := r.Get("id").String()
	switch typ {
	case "Organization":
		d.orgs[id] = Organization{ID: id, Name: r.Get("name").String(),
			NPI: identifier(r, SystemNPI), TIN: identifier(r, SystemTIN)}
	case "Practitioner":
		npi := identifier(r, SystemNPI)
		d.practs[id] = npi
		if npi != "" {
			d.npis[npi] = id
		}
	case "PractitionerRole":
		if a := r.Get("active"); a.Exists() && !a.Bool() {
			return
		}
		pract := refID(r.Get("practitioner.reference").String(), "Practitioner")
		org := refID(r.Get("organization.reference").String(), "Organization")
		d.roles[id] = [2]string{pract, org}
		if _, ok := d.roleOf[pract]; !ok && pract != "" && org != "" {
			d.roleOf[pract] = org
		}
	}
}

// Organization returns a directory organization.
func (d *Directory) Organization(id string) (Organization, bool) {
	o, ok := d.orgs[id]
	return o, ok
}

// ByNPI resolves a clinician or organization NPI. An NPI not in the
// directory still yields a Provider carrying just the NPI.
func (d *Directory) ByNPI(npi string) Provider {
	if id, ok := d.npis[npi]; ok {
		return d.practitioner(id)
	}
	for _, o := range d.orgs {
		if o.NPI == npi {
			return Provider{NPI: npi, OrganizationID: o.ID, TIN: o.TIN}
		}
	}
	return Provider{NPI: npi}
}

// Resolve turns a Practitioner, PractitionerRole or Organization reference
// into a Provider; ok is false for anything it cannot place.
func (d *Directory) Resolve(ref string) (Provider, bool) {
	typ, id, _ := strings.Cut(ref, "/")
	switch typ {
	case "Practitioner":
		if _, ok := d.practs[id]; ok {
			return d.practitioner(id), true
		}
	case "PractitionerRole":
		if r, ok := d.roles[id]; ok {
			p := d.practitioner(r[0])
			if o, ok := d.orgs[r[1]]; ok {
				p.OrganizationID, p.TIN = o.ID, o.TIN
			}
			return p, p.NPI != "" || p.OrganizationID != ""
		}
	case "Organization":
		if o, ok := d.orgs[id]; ok {
			return Provider{NPI: o.NPI, OrganizationID: o.ID, TIN: o.TIN}, true
		}
	}
	return Provider{}, false
}

func (d *Directory) practitioner(id string) Provider {
	p := Provider{NPI: d.practs[id], PractitionerID: id}
	if o, ok := d.orgs[d.roleOf[id]]; ok {
		p.OrganizationID, p.TIN = o.ID, o.TIN
	}
	return p
}

func identifier(r gjson.Result, system string) string {
	for _, id := range r.Get("identifier").Array() {
		if id.Get("system").String() == system {
			return id.Get("value").String()
		}
	}
	return ""
}

// refID returns the id of a relative reference of the given type.
func refID(ref, typ string) string {
	t, id, ok := strings.Cut(ref, "/")
	if !ok || t != typ {
		return ""
	}
	return id
}
