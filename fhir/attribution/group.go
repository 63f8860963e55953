package attribution

import (
	"context"
	"encoding/csv"
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

// WriteGroup renders list g with its current members from the index as
// an atr-group Group (without versionId and lastUpdated, which the store
// sets) and returns its member counts. Members are streamed from the index
// to w; nothing but the member being written is held.
func WriteGroup(ctx context.Context, kv store.KV, g *GroupInfo, w io.Writer) (Counts, error) {
	var c Counts
	counted := *g
	counted.Active, counted.Inactive = 0, 0
	if err := Members(ctx, kv, g.ID, func(e *Entry) error {
		if e.Inactive {
			counted.Inactive++
		} else {
			counted.Active++
		}
		return nil
	}); err != nil {
		return c, err
	}
	h, err := head(&counted, nil)
	if err != nil {
		return c, err
	}
	err = writeMembers(ctx, w, h, func(fn func(*Entry) error) error { return Members(ctx, kv, g.ID, fn) })
	return Counts{Active: counted.Active, Inactive: counted.Inactive}, err
}

// The member element is encoded through structs rather than maps: it is
// the inner loop of rendering a list.
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
