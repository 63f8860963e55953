package adt

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/equitas/equitas/fhir/hl7v2"
)

// maxIdentifiers bounds the PID-3 (and MRG-1) repetitions used to match a
// patient.
const maxIdentifiers = 20

// element is one top-level element the mapper sets on a resource: Raw is
// its JSON, or nil when the sender cleared it with "" (delete).
type element struct {
	Name string
	Raw  []byte
}

// patientPlan is what a PID segment says about a patient, independent of
// what the store holds.
type patientPlan struct {
	IDs      []identifier // PID-3 (and PID-19): matching keys, message order
	Elements []element
	// Extensions to replace, by URL (value nil = remove).
	Extensions []urlExt
}

type urlExt struct {
	URL string
	Raw []byte // nil = remove
}

// mapper holds what mapping needs besides the message.
type mapper struct {
	loc         *time.Location
	authorities map[string]string
	sender      string // default assigning authority: the sending facility's system
	refs        []*refResource
	org         *reference // the sending facility (MSH-4) as an Organization
}

// loc locates field n of seg (nil seg: no segment, which only callers
// holding a segment reach in practice).
func loc(seg *hl7v2.Segment, field int) hl7v2.Location {
	l := hl7v2.Location{Field: field}
	if seg != nil {
		l.Segment, l.Seq = seg.Name, seg.Seq()
	}
	return l
}

// identifiers maps a CX list (PID-3, MRG-1, PV1-19). Identifiers without an
// assigning authority belong to the sender (its facility's system).
func (m *mapper) identifiers(f hl7v2.Field) []identifier {
	var out []identifier
	for _, r := range f.Repetitions() {
		id := m.cx(r)
		if id.Value != "" && id.System != "" {
			out = append(out, id)
		}
	}
	return out
}

func (m *mapper) cx(r hl7v2.Repetition) identifier {
	id := identifier{Value: str(r.Component(1))}
	typ := code(r.Component(5).String())
	id.System = hdSub(r.Component(4), m.authorities)
	switch {
	case typ == "SS" && (id.System == "" || strings.HasSuffix(id.System, ":SSA") || id.System == "urn:oid:2.16.840.1.113883.4.1"):
		id.System = sysSSN
	case typ == "NPI" || id.System == "urn:oid:2.16.840.1.113883.4.6":
		id.System = sysNPI
	case id.System == "":
		id.System = m.sender
	}
	if typ != "" {
		id.Type = &codeableConcept{Coding: []coding{{System: sysV2Prefix + "0203", Code: typ}}}
	}
	return id
}

// patient maps PID.
func (m *mapper) patient(pid *hl7v2.Segment) (*patientPlan, error) {
	if pid == nil {
		return nil, hl7v2.Errorf(hl7v2.Location{Segment: "PID"}, hl7v2.CodeSegmentSequence, "PID segment missing")
	}
	p := &patientPlan{IDs: m.identifiers(pid.Field(3))}
	if len(p.IDs) > maxIdentifiers {
		// Each identifier costs an index read and maybe a search.
		return nil, hl7v2.Errorf(loc(pid, 3), hl7v2.CodeDataType, fmt.Sprintf("PID-3 has more than %d identifiers", maxIdentifiers))
	}
	if len(p.IDs) == 0 {
		return nil, hl7v2.Errorf(loc(pid, 3), hl7v2.CodeRequiredMissing, "PID-3 has no identifier with a value")
	}
	if ssn := str(pid.Field(19).Component(1)); ssn != "" {
		p.IDs = append(p.IDs, identifier{System: sysSSN, Value: ssn,
			Type: &codeableConcept{Coding: []coding{{System: sysV2Prefix + "0203", Code: "SS"}}}})
	}
	set := func(name string, f hl7v2.Field, v any, present bool) {
		switch {
		case f.Null():
			p.Elements = append(p.Elements, element{Name: name})
		case present:
			p.Elements = append(p.Elements, element{Name: name, Raw: raw(v)})
		}
	}

	if names := m.names(pid.Field(5)); len(names) > 0 || pid.Field(5).Null() {
		set("name", pid.Field(5), names, len(names) > 0)
	}
	if f := pid.Field(7); !f.Empty() && !f.Null() {
		t, err := hl7v2.ParseTime(f.Component(1).String(), m.loc)
		if err != nil {
			return nil, &hl7v2.Error{Location: loc(pid, 7), Code: hl7v2.CodeDataType, Text: "PID-7 birth date is not a valid date", Err: err}
		}
		set("birthDate", f, fhirDate(t), true)
		if t.Precision >= hl7v2.PrecisionMinute {
			set("_birthDate", f, map[string]any{"extension": []map[string]string{{"url": extBirthTime, "valueDateTime": fhirDateTime(t)}}}, true)
		} else {
			p.Elements = append(p.Elements, element{Name: "_birthDate"})
		}
	} else if f.Null() {
		set("birthDate", f, nil, false)
		p.Elements = append(p.Elements, element{Name: "_birthDate"})
	}
	if f := pid.Field(8); !f.Empty() && !f.Null() {
		g, ok := gender[strings.ToUpper(f.String())]
		if !ok {
			return nil, hl7v2.Errorf(loc(pid, 8), hl7v2.CodeTableValue, "PID-8 administrative sex is not in table 0001 (F, M, O, U, A, N)")
		}
		set("gender", f, g, true)
	} else {
		set("gender", f, nil, false)
	}
	addrs := m.addresses(pid.Field(11), pid.Field(12))
	set("address", pid.Field(11), addrs, len(addrs) > 0)
	tel := append(m.telecoms(pid.Field(13), "home"), m.telecoms(pid.Field(14), "work")...)
	if pid.Field(13).Null() && pid.Field(14).Null() {
		p.Elements = append(p.Elements, element{Name: "telecom"})
	} else if len(tel) > 0 {
		p.Elements = append(p.Elements, element{Name: "telecom", Raw: raw(tel)})
	}
	if lang := language(pid.Field(15)); lang != nil {
		set("communication", pid.Field(15), []communication{{Language: *lang, Preferred: true}}, true)
	} else {
		set("communication", pid.Field(15), nil, false)
	}
	if ms, ok := maritalStatus[strings.ToUpper(pid.Field(16).String())]; ok {
		set("maritalStatus", pid.Field(16), codeableConcept{Coding: []coding{ms}}, true)
	} else {
		set("maritalStatus", pid.Field(16), nil, false)
	}
	if err := m.deceased(p, pid); err != nil {
		return nil, err
	}
	p.Extensions = append(p.Extensions, raceExt(pid.Field(10), extRace, ombRace, legacyRace)...)
	p.Extensions = append(p.Extensions, raceExt(pid.Field(22), extEthnicity, ombEthnicity, legacyEthnicity)...)
	return p, nil
}

func (m *mapper) deceased(p *patientPlan, pid *hl7v2.Segment) error {
	f29, f30 := pid.Field(29), pid.Field(30)
	if !f29.Empty() && !f29.Null() {
		t, err := hl7v2.ParseTime(f29.Component(1).String(), m.loc)
		if err != nil {
			return &hl7v2.Error{Location: loc(pid, 29), Code: hl7v2.CodeDataType, Text: "PID-29 death date/time is not a valid date/time", Err: err}
		}
		p.Elements = append(p.Elements, element{Name: "deceasedBoolean"}, element{Name: "deceasedDateTime", Raw: raw(fhirDateTime(t))})
		return nil
	}
	switch strings.ToUpper(f30.String()) {
	case "Y":
		p.Elements = append(p.Elements, element{Name: "deceasedDateTime"}, element{Name: "deceasedBoolean", Raw: []byte("true")})
	case "N":
		p.Elements = append(p.Elements, element{Name: "deceasedDateTime"}, element{Name: "deceasedBoolean", Raw: []byte("false")})
	case "":
		if f29.Null() || f30.Null() {
			p.Elements = append(p.Elements, element{Name: "deceasedDateTime"}, element{Name: "deceasedBoolean"})
		}
	default:
		return hl7v2.Errorf(loc(pid, 30), hl7v2.CodeTableValue, "PID-30 death indicator must be Y or N")
	}
	return nil
}

// names maps XPN repetitions: family^given^second given^suffix^prefix^degree^type.
func (m *mapper) names(f hl7v2.Field) []humanName {
	var out []humanName
	for _, r := range f.Repetitions() {
		n := humanName{Family: str(r.Component(1).Subcomponent(1)), Use: nameUse[r.Component(7).String()]}
		for _, g := range []string{str(r.Component(2)), str(r.Component(3))} {
			if g != "" {
				n.Given = append(n.Given, g)
			}
		}
		if s := str(r.Component(5)); s != "" {
			n.Prefix = []string{s}
		}
		for _, s := range []string{str(r.Component(4)), str(r.Component(6))} {
			if s != "" {
				n.Suffix = append(n.Suffix, s)
			}
		}
		if n.Family != "" || len(n.Given) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// addresses maps XAD repetitions: street^other^city^state^zip^country^type^^county.
func (m *mapper) addresses(f, county hl7v2.Field) []address {
	var out []address
	for _, r := range f.Repetitions() {
		a := address{
			City: str(r.Component(3)), State: str(r.Component(4)), PostalCode: str(r.Component(5)),
			Country: str(r.Component(6)), District: str(r.Component(9)),
		}
		for _, l := range []string{str(r.Component(1).Subcomponent(1)), str(r.Component(2))} {
			if l != "" {
				a.Line = append(a.Line, l)
			}
		}
		t := strings.ToUpper(r.Component(7).String())
		a.Use = addressUse[t]
		if t == "M" {
			a.Type = "postal"
		}
		if a.District == "" && len(out) == 0 {
			a.District = str(county.Component(1))
		}
		if len(a.Line) > 0 || a.City != "" || a.State != "" || a.PostalCode != "" || a.Country != "" {
			out = append(out, a)
		}
	}
	return out
}

// telecoms maps XTN repetitions: [legacy number]^use^equipment^email^country^area^local^extension.
func (m *mapper) telecoms(f hl7v2.Field, defUse string) []contactPoint {
	var out []contactPoint
	for _, r := range f.Repetitions() {
		equip := r.Component(3).String()
		cp := contactPoint{System: telecomSystem[equip], Use: telecomUse[r.Component(2).String()]}
		if equip == "CP" {
			cp.Use = "mobile"
		}
		if email := str(r.Component(4)); email != "" || r.Component(2).String() == "NET" {
			cp.System, cp.Value = "email", email
		}
		if cp.Value == "" {
			if local := str(r.Component(7)); local != "" {
				v := local
				if area := str(r.Component(6)); area != "" {
					v = "(" + area + ") " + v
				}
				if cc := str(r.Component(5)); cc != "" {
					v = "+" + strings.TrimPrefix(cc, "+") + " " + v
				}
				if ext := str(r.Component(8)); ext != "" {
					v += " x" + ext
				}
				cp.Value = v
			} else {
				cp.Value = str(r.Component(1))
			}
		}
		if cp.Value == "" {
			continue
		}
		if cp.System == "" {
			cp.System = "phone"
		}
		if cp.Use == "" && cp.System != "email" {
			cp.Use = defUse
		}
		out = append(out, cp)
	}
	return out
}

var bcp47Re = regexp.MustCompile(`^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$`)

// language maps PID-15 (CWE) to a BCP-47 coded concept; an unknown code
// keeps only its text (the binding is preferred, not required).
func language(f hl7v2.Field) *codeableConcept {
	if f.Empty() || f.Null() {
		return nil
	}
	c, text := clean(f.Component(1).String()), str(f.Component(2))
	cc := &codeableConcept{Text: text}
	if t, ok := iso639[strings.ToLower(c)]; ok {
		cc.Coding = []coding{{System: sysBCP47, Code: t}}
	} else if len(c) == 2 || (strings.Contains(c, "-") && bcp47Re.MatchString(c)) {
		if bcp47Re.MatchString(c) {
			cc.Coding = []coding{{System: sysBCP47, Code: strings.ToLower(c[:2]) + c[2:]}}
		}
	}
	if cc.empty() {
		if c = code(c); c == "" {
			return nil
		}
		cc.Text = c
	}
	return cc
}

// raceExt maps PID-10 or PID-22 (CWE, repeating) to the US Core race or
// ethnicity extension: OMB categories to ombCategory, other CDC codes to
// detailed, legacy table letters translated, unknown/declined to
// v3-NullFlavor, and text (required by US Core) from the texts sent.
func raceExt(f hl7v2.Field, url string, omb, legacy map[string]string) []urlExt {
	if f.Null() {
		return []urlExt{{URL: url}}
	}
	if f.Empty() {
		return nil
	}
	e := extension{URL: url}
	var texts []string
	seen := map[string]bool{}
	addText := func(t string) {
		if t != "" && !seen["t:"+t] {
			seen["t:"+t] = true
			texts = append(texts, t)
		}
	}
	for _, r := range f.Repetitions() {
		// The primary code (CWE.1-2) or else the alternate (CWE.4-5);
		// a repetition with neither usable keeps only its text.
		used := false
		for _, alt := range [][2]int{{1, 2}, {4, 5}} {
			c := strings.ToUpper(code(r.Component(alt[0]).String()))
			t := str(r.Component(alt[1]))
			if l, ok := legacy[c]; ok {
				c = l
			}
			var sub extension
			switch {
			case c == "":
				continue
			case omb[c] != "":
				sub = extension{URL: "ombCategory", ValueCoding: &coding{System: sysCDCREC, Code: c, Display: omb[c]}}
				if t == "" {
					t = omb[c]
				}
			case cdcCodeRe.MatchString(c):
				sub = extension{URL: "detailed", ValueCoding: &coding{System: sysCDCREC, Code: c}}
			case nullFlavor[c].Code != "":
				nf := nullFlavor[c]
				sub = extension{URL: "ombCategory", ValueCoding: &nf}
				if t == "" {
					t = nf.Display
				}
			default:
				continue
			}
			if !seen[sub.URL+c] {
				seen[sub.URL+c] = true
				e.Extension = append(e.Extension, sub)
			}
			addText(t)
			used = true
			break
		}
		if !used {
			addText(str(r.Component(2)))
		}
	}
	if len(texts) == 0 {
		if len(e.Extension) == 0 {
			return nil
		}
		texts = []string{"Unknown"}
	}
	e.Extension = append(e.Extension, extension{URL: "text", ValueString: strings.Join(texts, ", ")})
	return []urlExt{{URL: url, Raw: raw(e)}}
}

var cdcCodeRe = regexp.MustCompile(`^[0-9]{4}-[0-9]$`)

type contact struct {
	Relationship []codeableConcept `json:"relationship,omitempty"`
	Name         *humanName        `json:"name,omitempty"`
	Telecom      []contactPoint    `json:"telecom,omitempty"`
	Address      *address          `json:"address,omitempty"`
}

// contacts maps NK1 segments to Patient.contact: NK1-2 name, NK1-3
// relationship (v2-0063), NK1-7 contact role (v2-0131), NK1-4 address,
// NK1-5/6 home and business phone. A message carrying NK1 replaces the
// stored contacts; one without leaves them alone.
func (m *mapper) contacts(segs []*hl7v2.Segment) []contact {
	var out []contact
	for _, nk := range segs {
		var c contact
		if names := m.names(nk.Field(2)); len(names) > 0 {
			c.Name = &names[0]
		}
		for _, rel := range []struct {
			f     hl7v2.Field
			table string
		}{{nk.Field(7), "0131"}, {nk.Field(3), "0063"}} {
			if cc := cwe(rel.f.Repetition(1), rel.table); cc != nil {
				c.Relationship = append(c.Relationship, *cc)
			}
		}
		if addrs := m.addresses(nk.Field(4), hl7v2.Field{}); len(addrs) > 0 {
			c.Address = &addrs[0]
		}
		c.Telecom = append(m.telecoms(nk.Field(5), "home"), m.telecoms(nk.Field(6), "work")...)
		if c.Name != nil || len(c.Telecom) > 0 || c.Address != nil {
			out = append(out, c)
		}
	}
	return out
}
