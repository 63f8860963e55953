package attribution

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/store"
)

// CharacteristicSystem is the code system of the Da Vinci patient-list
// Group characteristics (ValueSet davinci-group-characteristic).
const CharacteristicSystem = "http://hl7.org/fhir/us/davinci-atr/CodeSystem/davinci-group-characteristic"

// subsetted is the meta.tag of a Group served without its members.
var subsetted = map[string]string{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED", "display": "subsetted"}

// head renders the stored part of a list's Group: everything but the
// members, with quantity the number of active members. A list created
// over REST (Adopted) keeps the client's Group and gets only its ATR
// extensions and quantity updated; a computed list is rendered from its
// description.
func head(g *GroupInfo, base []byte) ([]byte, error) {
	if g.Adopted && len(base) > 0 {
		return adoptedHead(g, base)
	}
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
	h := jsonObj{
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
		"quantity":       g.Active,
		"managingEntity": jsonObj{"reference": "Organization/" + g.PayerID},
	}
	if g.OrganizationID != "" {
		h["characteristic"] = []jsonObj{{
			"code":           jsonObj{"coding": []jsonObj{{"system": CharacteristicSystem, "code": "organization"}}},
			"valueReference": jsonObj{"reference": "Organization/" + g.OrganizationID},
			"exclude":        false,
		}}
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	return b, nil
}

// adoptedHead updates a client-written Group: members out (they live in
// the index), quantity and the list status extension set.
func adoptedHead(g *GroupInfo, base []byte) ([]byte, error) {
	b := base
	var err error
	for _, p := range []string{"member", "meta.versionId", "meta.lastUpdated"} {
		if b, err = sjson.DeleteBytes(b, p); err != nil {
			return nil, fmt.Errorf("attribution: %w", err)
		}
	}
	if b, err = sjson.SetBytes(b, "quantity", g.Active); err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	i, found := 0, false
	for _, ext := range gjson.GetBytes(b, "extension").Array() {
		if ext.Get("url").String() == ExtAttributionListStatus {
			found = true
			break
		}
		i++
	}
	path := fmt.Sprintf("extension.%d", i)
	if !found {
		path = "extension.-1"
	}
	b, err = sjson.SetBytes(b, path, jsonObj{"url": ExtAttributionListStatus, "valueCode": g.Status})
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	return b, nil
}

// RenderGroup writes a stored Group version as served (read, vread,
// history, search, export): an ATR list's members are rendered from the
// member index as of that version. With summary the members are left out
// and the Group is tagged SUBSETTED. Other Groups, and list versions
// written before render-on-read (which carry their members), are written
// as stored. Nothing but the member being written is held, so a list of
// any size streams.
func RenderGroup(ctx context.Context, kv store.KV, stored *store.Resource, w io.Writer, summary bool) error {
	body := stored.Body
	if stored.Type != "Group" || stored.Deleted || len(body) == 0 {
		_, err := w.Write(body)
		return err
	}
	if summary {
		b, err := summarize(body)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	g, err := Group(ctx, kv, stored.ID)
	if notFound(err) {
		_, err = w.Write(body)
		return err
	}
	if err != nil {
		return err
	}
	if g.Layout < layoutHistory || gjson.GetBytes(body, "member").Exists() {
		_, err = w.Write(body)
		return err
	}
	return writeMembers(ctx, w, body, func(fn func(*Entry) error) error {
		return membersAt(ctx, kv, g.ID, stored.Version, fn)
	})
}

// summarize drops the members and tags the Group SUBSETTED.
func summarize(body []byte) ([]byte, error) {
	b, err := sjson.DeleteBytes(body, "member")
	if err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	for _, t := range gjson.GetBytes(b, "meta.tag").Array() {
		if t.Get("code").String() == "SUBSETTED" {
			return b, nil
		}
	}
	if b, err = sjson.SetBytes(b, "meta.tag.-1", subsetted); err != nil {
		return nil, fmt.Errorf("attribution: %w", err)
	}
	return b, nil
}

// writeMembers writes head with the member array from each.
func writeMembers(ctx context.Context, w io.Writer, head []byte, each func(func(*Entry) error) error) error {
	head = bytes.TrimRight(head, " \n\r\t")
	if len(head) < 2 || head[len(head)-1] != '}' {
		return fmt.Errorf("attribution: stored Group is not a JSON object")
	}
	if _, err := w.Write(head[:len(head)-1]); err != nil {
		return err
	}
	sep := `,"member":[`
	if len(bytes.TrimSpace(head[:len(head)-1])) == 1 { // "{}" has no element to follow
		sep = `"member":[`
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := each(func(e *Entry) error {
		buf.Reset()
		buf.WriteString(sep)
		if err := enc.Encode(member(e)); err != nil {
			return fmt.Errorf("attribution: %w", err)
		}
		sep = ","
		_, err := w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
		return err
	})
	if err != nil {
		return err
	}
	tail := "}"
	if sep == "," {
		tail = "]}"
	}
	_, err = io.WriteString(w, tail)
	return err
}
