package synth

import (
	"fmt"
	"math/rand/v2"
)

type payerKind int

const (
	payerMedicare payerKind = iota + 1
	payerMedicaid
	payerCommercial
)

type payer struct {
	key, name string
	kind      payerKind
}

// Payer organizations are fictional; the first two stand for the public
// programs.
var payers = []payer{
	{"medicare", "Medicare (CMS)", payerMedicare},
	{"medicaid", "State Medicaid Program", payerMedicaid},
	{"summit", "Summit Health Plan", payerCommercial},
	{"blueharbor", "Blue Harbor Health", payerCommercial},
	{"keystone", "Keystone Mutual Insurance", payerCommercial},
	{"prairie", "Prairie Care Insurance", payerCommercial},
}

const (
	payerIdxMedicare  = 0
	payerIdxMedicaid  = 1
	payerIdxCommFirst = 2
)

var (
	taxFamily     = code{sysNUCC, "207Q00000X", "Family Medicine Physician"}
	taxInternal   = code{sysNUCC, "207R00000X", "Internal Medicine Physician"}
	taxNP         = code{sysNUCC, "363LF0000X", "Family Nurse Practitioner"}
	taxEmergency  = code{sysNUCC, "207P00000X", "Emergency Medicine Physician"}
	taxHospitalst = code{sysNUCC, "208M00000X", "Hospitalist"}
)

// Hospital staff: each hospital has an emergency physician and two
// hospitalists, numbered after the primary care practitioners.
const staffPerHospital = 3

func (g *gen) nPractitioners() int { return g.nPCP + g.nHospitals*staffPerHospital }

func (g *gen) clinicOf(pract int) int { return pract % g.nClinics }

func (g *gen) edDoc(h int) int          { return g.nPCP + h*staffPerHospital }
func (g *gen) hospitalist(h, k int) int { return g.nPCP + h*staffPerHospital + 1 + k%2 }

// directory writes the provider and payer directory: payers, clinics,
// hospitals, practitioners and their roles.
func (g *gen) directory() error {
	r := g.rngFor(1 << 62)
	for k, p := range payers {
		o := obj{
			{"resourceType", "Organization"}, {"id", g.payerID(k)}, {"meta", meta(profOrganization)},
			{"identifier", arr{ident(sysTIN, g.tin(1000+k))}},
			{"active", true},
			{"type", arr{code{sysOrgType, "pay", "Payer"}.concept()}},
			{"name", p.name},
			{"telecom", arr{obj{{"system", "phone"}, {"value", phone(r)}, {"use", "work"}}}},
		}
		if err := g.emit("Organization", o); err != nil {
			return err
		}
	}
	for k := 0; k < g.nClinics; k++ {
		pl := places[k%len(places)]
		name := fmt.Sprintf("%s Community Health Center", pl.city)
		if k >= len(places) {
			name = fmt.Sprintf("%s Family Medicine %d", pl.city, k/len(places)+1)
		}
		if err := g.emit("Organization", g.providerOrg(r, g.clinicID(k), name, k, pl)); err != nil {
			return err
		}
	}
	for h := 0; h < g.nHospitals; h++ {
		pl := places[(h*7)%len(places)]
		name := fmt.Sprintf("%s General Hospital", pl.city)
		if h >= len(places) {
			name = fmt.Sprintf("%s Regional Medical Center %d", pl.city, h/len(places)+1)
		}
		if err := g.emit("Organization", g.providerOrg(r, g.hospitalID(h), name, 500+h, pl)); err != nil {
			return err
		}
	}
	for k := 0; k < g.nPractitioners(); k++ {
		if err := g.practitioner(k); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) providerOrg(r *rand.Rand, id, name string, k int, pl place) obj {
	return obj{
		{"resourceType", "Organization"}, {"id", id}, {"meta", meta(profOrganization)},
		{"identifier", arr{ident(sysNPI, g.orgNPI(k)), ident(sysTIN, g.tin(k))}},
		{"active", true},
		{"type", arr{code{sysOrgType, "prov", "Healthcare Provider"}.concept()}},
		{"name", name},
		{"telecom", arr{obj{{"system", "phone"}, {"value", phone(r)}, {"use", "work"}}}},
		{"address", arr{address(r, pl, "work")}},
	}
}

func (g *gen) practitioner(k int) error {
	r := g.rngFor(1<<62 + 1 + uint64(k))
	female := r.IntN(2) == 0
	bg := pick(r, []string{"general", "general", "general", "hispanic", "zh", "vi", "ko", "asian"})
	family, given := personName(r, bg, female)
	gender := "male"
	if female {
		gender = "female"
	}
	var org string
	var role code
	switch {
	case k < g.nPCP:
		org = g.clinicID(g.clinicOf(k))
		role = pickWeighted(r, []weighted[code]{{45, taxFamily}, {40, taxInternal}, {15, taxNP}})
	case (k-g.nPCP)%staffPerHospital == 0:
		org, role = g.hospitalID((k-g.nPCP)/staffPerHospital), taxEmergency
	default:
		org, role = g.hospitalID((k-g.nPCP)/staffPerHospital), taxHospitalst
	}
	prefix := arr{"Dr."}
	if role == taxNP {
		prefix = nil
	}
	p := obj{
		{"resourceType", "Practitioner"}, {"id", g.practID(k)}, {"meta", meta(profPractitioner)},
		{"identifier", arr{ident(sysNPI, g.practNPI(k))}},
		{"active", true},
		{"name", arr{obj{{"family", family}, {"given", arr{given}}}.add("prefix", prefix)}},
		{"gender", gender},
	}
	if err := g.emit("Practitioner", p); err != nil {
		return err
	}
	roleCode := code{sysPractRole, "doctor", "Doctor"}
	if role == taxNP {
		roleCode = code{sysPractRole, "nurse", "Nurse"}
	}
	pr := obj{
		{"resourceType", "PractitionerRole"}, {"id", g.roleID(k)}, {"meta", meta(profPractRole)},
		{"active", true},
		{"practitioner", ref("Practitioner", g.practID(k))},
		{"organization", ref("Organization", org)},
		{"code", arr{roleCode.concept()}},
		{"specialty", arr{role.concept()}},
	}
	return g.emit("PractitionerRole", pr)
}

func phone(r *rand.Rand) string {
	return fmt.Sprintf("555-%03d-%04d", 100+r.IntN(900), r.IntN(10000))
}

func address(r *rand.Rand, pl place, use string) obj {
	return obj{
		{"use", use},
		{"line", arr{fmt.Sprintf("%d %s", 10+r.IntN(9900), pick(r, streets))}},
		{"city", pl.city}, {"district", pl.county}, {"state", pl.state},
		{"postalCode", fmt.Sprintf("%s%02d", pl.zip3, r.IntN(100))}, {"country", "US"},
	}
}

func personName(r *rand.Rand, bg string, female bool) (family, given string) {
	fams, ok := familyNames[bg]
	if !ok || r.IntN(5) == 0 {
		fams = familyNames["general"]
	}
	gn, ok := givenNames[bg]
	if !ok || r.IntN(4) == 0 {
		gn = givenNames["general"]
	}
	g := gn[1]
	if female {
		g = gn[0]
	}
	return pick(r, fams), pick(r, g)
}
