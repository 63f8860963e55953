package attribution

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/equitas/equitas/store"
)

// Canonical URLs of the ATR profile and extensions.
const (
	ProfileATRGroup          = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/atr-group"
	ExtContractValidity      = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-contractValidityPeriod"
	ExtAttributionListStatus = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-attributionListStatus"
	ExtChangeType            = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-changeType"
	ExtCoverageReference     = "http://hl7.org/fhir/us/davinci-atr/StructureDefinition/ext-coverageReference"
)

// Counts are a list's members by state.
type Counts struct{ Active, Inactive int }

type jsonObj = map[string]any

// WriteGroup renders list g with its members from the index as an atr-group
// Group (without id-independent meta: the store sets versionId and
// lastUpdated) and returns its member counts. Members are streamed from the
// index to w; nothing but the member being written is held.
func WriteGroup(ctx context.Context, kv store.KV, g *GroupInfo, w io.Writer) (Counts, error) {
	var c Counts
	ids := []jsonObj{}
	if g.NPI != "" {
		ids = append(ids, jsonObj{"use": "official", "system": SystemNPI, "value": g.NPI})
	}
	if g.TIN != "" {
		ids = append(ids, jsonObj{"use": "official", "system": SystemTIN, "value": g.TIN})
	}
	ids = append(ids, jsonObj{"use": "official", "system": g.ContractSystem, "value": g.Contract})
	name := g.PayerName + " – " + g.OrganizationName + " attribution list"
	if g.PayerName == "" || g.OrganizationName == "" {
		name = "Attribution list " + g.ID
	}
	head := jsonObj{
		"resourceType": "Group",
		"id":           g.ID,
		"meta":         jsonObj{"profile": []string{ProfileATRGroup}},
		"extension": []jsonObj{
			{"url": ExtContractValidity, "valuePeriod": period(g.ContractStart, g.ContractEnd)},
			{"url": ExtAttributionListStatus, "valueCode": g.Status},
		},
		"identifier":     ids,
		"active":         true,
		"type":           "person",
		"actual":         true,
		"name":           name,
		"managingEntity": jsonObj{"reference": "Organization/" + g.PayerID},
	}
	b, err := json.Marshal(head)
	if err != nil {
		return c, fmt.Errorf("attribution: %w", err)
	}
	// The head is closed by the member array and quantity, written as they
	// are counted.
	if _, err := w.Write(b[:len(b)-1]); err != nil {
		return c, err
	}
	sep := `,"member":[`
	err = Members(ctx, kv, g.ID, func(e *Entry) error {
		if e.Inactive {
			c.Inactive++
		} else {
			c.Active++
		}
		mb, err := json.Marshal(member(e))
		if err != nil {
			return fmt.Errorf("attribution: %w", err)
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		sep = ","
		_, err = w.Write(mb)
		return err
	})
	if err != nil {
		return c, err
	}
	tail := fmt.Sprintf(`,"quantity":%d}`, c.Active)
	if sep == "," {
		tail = "]" + tail
	}
	_, err = io.WriteString(w, tail)
	return c, err
}

// The member element is encoded through structs rather than maps: lists
// are rendered whole on every change, and this is their inner loop.
type (
	memberJSON struct {
		Extension []extJSON   `json:"extension"`
		Entity    refJSON     `json:"entity"`
		Period    *periodJSON `json:"period,omitempty"`
		Inactive  bool        `json:"inactive"`
	}
	extJSON struct {
		URL            string   `json:"url"`
		ValueCode      string   `json:"valueCode,omitempty"`
		ValueReference *refJSON `json:"valueReference,omitempty"`
	}
	refJSON struct {
		Reference  string     `json:"reference"`
		Identifier *identJSON `json:"identifier,omitempty"`
	}
	identJSON struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	periodJSON struct {
		Start string `json:"start,omitempty"`
		End   string `json:"end,omitempty"`
	}
)

func member(e *Entry) *memberJSON {
	m := &memberJSON{
		Extension: []extJSON{{URL: ExtChangeType, ValueCode: e.ChangeType}},
		Entity:    refJSON{Reference: "Patient/" + e.PatientID},
		Inactive:  e.Inactive,
	}
	if e.CoverageID != "" {
		m.Extension = append(m.Extension, extJSON{URL: ExtCoverageReference, ValueReference: &refJSON{Reference: "Coverage/" + e.CoverageID}})
	}
	if ref := e.Provider.Reference(); ref != "" {
		pr := &refJSON{Reference: ref}
		if e.Provider.NPI != "" {
			pr.Identifier = &identJSON{System: SystemNPI, Value: e.Provider.NPI}
		}
		m.Extension = append(m.Extension, extJSON{URL: ExtAttributedProvider, ValueReference: pr})
	}
	if e.PeriodStart != "" || e.PeriodEnd != "" {
		m.Period = &periodJSON{Start: e.PeriodStart, End: e.PeriodEnd}
	}
	return m
}

func period(start, end string) jsonObj {
	p := jsonObj{}
	if start != "" {
		p["start"] = start
	}
	if end != "" {
		p["end"] = end
	}
	return p
}

// CSVHeader is the column row of WriteCSV.
var csvHeader = []string{"group", "member_id", "patient_id", "name", "birth_date", "provider_npi", "tin", "period_start", "period_end", "change_type"}

// WriteCSV writes the members of the given lists (all lists when none are
// given) as CSV for provider portals: member id, name, date of birth,
// provider NPI, TIN, attribution period and change type.
func WriteCSV(ctx context.Context, kv store.KV, w io.Writer, groupIDs ...string) error {
	if len(groupIDs) == 0 {
		gs, err := Groups(ctx, kv)
		if err != nil {
			return err
		}
		for _, g := range gs {
			groupIDs = append(groupIDs, g.ID)
		}
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, id := range groupIDs {
		err := Members(ctx, kv, id, func(e *Entry) error {
			return cw.Write([]string{id, e.MemberID, e.PatientID, e.Name, e.BirthDate, e.Provider.NPI, e.Provider.TIN, e.PeriodStart, e.PeriodEnd, e.ChangeType})
		})
		if err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
