package attribution

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// ExtAttributedProvider is the ATR attributedProvider extension. On a
// Coverage it carries the plan's PCP assignment, which prospective
// attribution uses when the Patient has no generalPractitioner.
const ExtAttributedProvider = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-attributedProvider"

// Options configure an Attributor.
type Options struct {
	Method Method
	// AsOf is the attribution date: retrospective attribution counts the
	// 12 months before it, and coverage must be in force on it.
	AsOf time.Time
	// MostRecent attributes retrospectively to the provider of the latest
	// visit instead of the plurality of visits.
	MostRecent bool
	// EMCodes is the E&M code set counted retrospectively (default
	// DefaultEMCodes).
	EMCodes map[string]bool
}

// Member is one member's attribution.
type Member struct {
	PatientID  string   `json:"patient"`
	Name       string   `json:"name,omitempty"`
	BirthDate  string   `json:"birthDate,omitempty"`
	MemberID   string   `json:"memberId,omitempty"` // Coverage member identifier
	CoverageID string   `json:"coverage,omitempty"`
	PayerID    string   `json:"payer,omitempty"`
	Provider   Provider `json:"provider"`
	// Basis is the algorithm that decided: prospective or retrospective
	// (a hybrid run yields either).
	Basis Method `json:"basis"`
}

// Attributor attributes one member at a time.
type Attributor struct {
	dir  *Directory
	opts Options
}

// NewAttributor returns an Attributor resolving providers through dir.
func NewAttributor(dir *Directory, opts Options) *Attributor {
	if opts.EMCodes == nil {
		opts.EMCodes = DefaultEMCodes()
	}
	return &Attributor{dir: dir, opts: opts}
}

// Attribute attributes the patient given its Patient JSON and the JSON of
// its Coverages, ExplanationOfBenefits and Claims (other types are
// ignored). ok is false when the member has no coverage in force on the
// as-of date (there is no payer contract to attribute under) or no provider
// could be determined.
func (a *Attributor) Attribute(patient []byte, related [][]byte) (Member, bool) {
	p := gjson.ParseBytes(patient)
	m := Member{PatientID: p.Get("id").String(), BirthDate: p.Get("birthDate").String(), Name: humanName(p)}
	cov, ok := a.coverage(m.PatientID, related)
	if !ok {
		return m, false
	}
	m.CoverageID = cov.Get("id").String()
	m.PayerID = refID(cov.Get("payor.0.reference").String(), "Organization")
	m.MemberID = memberID(cov)
	if a.opts.Method != Retrospective {
		if prov, ok := a.prospective(p, cov); ok {
			m.Provider, m.Basis = prov, Prospective
			return m, true
		}
		if a.opts.Method == Prospective {
			return m, false
		}
	}
	var services []Service
	for _, body := range related {
		services = a.services(gjson.ParseBytes(body), services)
	}
	npi, ok := Choose(services, a.opts.AsOf, a.opts.MostRecent)
	if !ok {
		return m, false
	}
	m.Provider, m.Basis = a.dir.ByNPI(npi), Retrospective
	return m, true
}

func (a *Attributor) prospective(p, cov gjson.Result) (Provider, bool) {
	for _, gp := range p.Get("generalPractitioner").Array() {
		if prov, ok := a.dir.Resolve(gp.Get("reference").String()); ok {
			return prov, true
		}
		if npi := npiOf(gp); npi != "" {
			return a.dir.ByNPI(npi), true
		}
	}
	for _, ext := range cov.Get("extension").Array() {
		if ext.Get("url").String() != ExtAttributedProvider {
			continue
		}
		v := ext.Get("valueReference")
		if prov, ok := a.dir.Resolve(v.Get("reference").String()); ok {
			return prov, true
		}
		if npi := npiOf(v); npi != "" {
			return a.dir.ByNPI(npi), true
		}
	}
	return Provider{}, false
}

// coverage picks the coverage in force on the as-of date with the latest
// start (the lowest id among equals, so the choice is stable).
func (a *Attributor) coverage(patientID string, related [][]byte) (gjson.Result, bool) {
	var best gjson.Result
	var bestStart string
	asOf := a.opts.AsOf.Format(time.DateOnly)
	for _, body := range related {
		r := gjson.ParseBytes(body)
		if r.Get("resourceType").String() != "Coverage" || r.Get("status").String() != "active" ||
			refID(r.Get("beneficiary.reference").String(), "Patient") != patientID {
			continue
		}
		start, end := dateOnly(r.Get("period.start").String()), dateOnly(r.Get("period.end").String())
		if (start != "" && start > asOf) || (end != "" && end < asOf) {
			continue
		}
		id := r.Get("id").String()
		if !best.Exists() || start > bestStart || (start == bestStart && id < best.Get("id").String()) {
			best, bestStart = r, start
		}
	}
	return best, best.Exists()
}

// services appends the counted E&M lines of one ExplanationOfBenefit or
// Claim.
func (a *Attributor) services(c gjson.Result, out []Service) []Service {
	typ := c.Get("resourceType").String()
	if (typ != "ExplanationOfBenefit" && typ != "Claim") || c.Get("status").String() != "active" {
		return out
	}
	careTeam := map[int64]gjson.Result{}
	for _, ct := range c.Get("careTeam").Array() {
		careTeam[ct.Get("sequence").Int()] = ct.Get("provider")
	}
	for _, item := range c.Get("item").Array() {
		if !a.isEM(item.Get("productOrService.coding")) {
			continue
		}
		day := firstOf(item, "servicedDate", "servicedPeriod.start")
		if day == "" {
			day = c.Get("billablePeriod.start").String()
		}
		date, err := time.Parse(time.DateOnly, dateOnly(day))
		if err != nil {
			continue
		}
		prov := c.Get("provider")
		if seq := item.Get("careTeamSequence.0"); seq.Exists() {
			if p, ok := careTeam[seq.Int()]; ok {
				prov = p
			}
		}
		npi := npiOf(prov)
		if npi == "" {
			if p, ok := a.dir.Resolve(prov.Get("reference").String()); ok {
				npi = p.NPI
			}
		}
		out = append(out, Service{NPI: npi, Date: date, Allowed: allowed(typ, item)})
	}
	return out
}

func (a *Attributor) isEM(codings gjson.Result) bool {
	for _, c := range codings.Array() {
		sys := c.Get("system").String()
		if (sys == "http://www.ama-assn.org/go/cpt" || strings.Contains(strings.ToLower(sys), "hcpcs")) &&
			a.opts.EMCodes[c.Get("code").String()] {
			return true
		}
	}
	return false
}

// allowed is the line's allowed amount: the "eligible" adjudication of an
// ExplanationOfBenefit, the net amount of a Claim (not yet adjudicated).
func allowed(typ string, item gjson.Result) float64 {
	if typ == "ExplanationOfBenefit" {
		for _, adj := range item.Get("adjudication").Array() {
			for _, c := range adj.Get("category.coding").Array() {
				if c.Get("code").String() == "eligible" {
					return adj.Get("amount.value").Float()
				}
			}
		}
	}
	return item.Get("net.value").Float()
}

func npiOf(ref gjson.Result) string {
	if ref.Get("identifier.system").String() == SystemNPI {
		return ref.Get("identifier.value").String()
	}
	return ""
}

func memberID(cov gjson.Result) string {
	for _, id := range cov.Get("identifier").Array() {
		for _, c := range id.Get("type.coding").Array() {
			if c.Get("code").String() == "MB" {
				return id.Get("value").String()
			}
		}
	}
	if v := cov.Get("identifier.0.value").String(); v != "" {
		return v
	}
	return cov.Get("subscriberId").String()
}

func humanName(p gjson.Result) string {
	n := p.Get("name.0")
	if t := n.Get("text").String(); t != "" {
		return t
	}
	var parts []string
	for _, g := range n.Get("given").Array() {
		parts = append(parts, g.String())
	}
	if f := n.Get("family").String(); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, " ")
}

func firstOf(r gjson.Result, paths ...string) string {
	for _, p := range paths {
		if v := r.Get(p).String(); v != "" {
			return v
		}
	}
	return ""
}

// dateOnly truncates a FHIR date or dateTime to its date (a partial date
// is kept as is and compares correctly as a string prefix).
func dateOnly(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}
