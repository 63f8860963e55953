package adt

import (
	"github.com/equitas/equitas/fhir/hl7v2"
)

// sysURI is the identifier system for a value that is itself a URI.
const sysURI = "urn:ietf:rfc:3986"

// The MessageHeader and Provenance bodies. They are package-level so that
// encode can write them without reflection.

type endpointNamed struct {
	Name     string `json:"name,omitempty"`
	Endpoint string `json:"endpoint"`
}
type header struct {
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id"`
	EventCoding  coding          `json:"eventCoding"`
	Destination  []endpointNamed `json:"destination,omitempty"`
	Sender       *reference      `json:"sender,omitempty"`
	Source       endpointNamed   `json:"source"`
	Focus        []reference     `json:"focus,omitempty"`
}

type agent struct {
	Type *codeableConcept `json:"type,omitempty"`
	Who  reference        `json:"who"`
}
type entity struct {
	Role string    `json:"role"`
	What reference `json:"what"`
}
type prov struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Target       []reference       `json:"target"`
	Occurred     string            `json:"occurredDateTime,omitempty"`
	Recorded     string            `json:"recorded"`
	Activity     *codeableConcept  `json:"activity,omitempty"`
	Reason       []codeableConcept `json:"reason,omitempty"`
	Agent        []agent           `json:"agent"`
	Entity       []entity          `json:"entity,omitempty"`
}

// messageHeader maps MSH (MSH-3 source, MSH-4 sender, MSH-5/6 destination,
// MSH-9 event) after the v2-to-FHIR IG.
func (m *mapper) messageHeader(id string, msh *hl7v2.Segment, trigger string, focus []reference) []byte {
	h := header{
		ResourceType: "MessageHeader", ID: id,
		EventCoding: coding{System: sysV2Prefix + "0003", Code: trigger},
		Sender:      m.org,
		Source:      endpointNamed{Name: str(msh.Field(3).Component(1)), Endpoint: m.endpoint(msh.Field(3), msh.Field(4))},
		Focus:       focus,
	}
	if !msh.Field(5).Empty() || !msh.Field(6).Empty() {
		h.Destination = []endpointNamed{{Name: str(msh.Field(5).Component(1)), Endpoint: m.endpoint(msh.Field(5), msh.Field(6))}}
	}
	return raw(h)
}

// endpoint names an application (MSH-3/5) at a facility (MSH-4/6) as a URI.
func (m *mapper) endpoint(app, facility hl7v2.Field) string {
	a := hdField(app, m.authorities)
	if a == "" {
		a = AuthorityBase + "unknown"
	}
	if f := hdField(facility, m.authorities); f != "" && f != a {
		return a + "@" + f
	}
	return a
}

// provenance maps EVN (EVN-2 recorded, EVN-4 reason, EVN-5 operator, EVN-6
// occurred) and records the message (sender + MSH-10) as the source entity.
func (m *mapper) provenance(id string, msh, evn *hl7v2.Segment, trigger, recorded, occurred string, targets []reference) []byte {
	p := prov{
		ResourceType: "Provenance", ID: id, Target: targets, Occurred: occurred, Recorded: recorded,
		Activity: &codeableConcept{Coding: []coding{{System: sysV2Prefix + "0003", Code: trigger}}},
	}
	if r := cwe(evn.Field(4).Repetition(1), "0062"); r != nil {
		p.Reason = []codeableConcept{*r}
	}
	author := m.org
	if author == nil {
		author = &reference{Display: "unknown sending facility"}
	}
	p.Agent = append(p.Agent, agent{
		Type: &codeableConcept{Coding: []coding{{System: sysProvAgent, Code: "author", Display: "Author"}}},
		Who:  *author,
	})
	if op := evn.Field(5).Repetition(1); !op.Empty() {
		if who := m.xcn(op, false); who != nil {
			p.Agent = append(p.Agent, agent{
				Type: &codeableConcept{Coding: []coding{{System: sysProvAgent, Code: "enterer", Display: "Enterer"}}},
				Who:  *who,
			})
		}
	}
	if ctl := str(msh.Field(10).Component(1)); ctl != "" {
		p.Entity = []entity{{Role: "source", What: reference{
			Identifier: &identifier{System: m.endpoint(msh.Field(3), msh.Field(4)), Value: ctl},
			Display:    "HL7 v2 message ADT^" + trigger,
		}}}
	}
	return raw(p)
}
