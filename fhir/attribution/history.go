package attribution

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

// tombstone is the history value of a member removed from the list.
var tombstone = []byte("-")

// histKey orders a member's history records by version (zero-padded, so
// key order is version order).
func histKey(groupID, patientID string, version uint64) string {
	return fmt.Sprintf("%s%s/%s/%020d", kvHist, groupID, patientID, version)
}

// membersAt calls fn, in patient-id order, for every member the list had
// at Group version v: for each patient, the latest history record at or
// before v, unless it is a removal. Only the current patient's records are
// held, so memory does not grow with the list.
func membersAt(ctx context.Context, kv store.KV, groupID string, v uint64, fn func(*Entry) error) error {
	prefix := kvHist + groupID + "/"
	var (
		cur  string // patient whose records are being read
		best []byte // its latest record at or before v
	)
	emit := func() error {
		if best == nil || string(best) == string(tombstone) {
			return nil
		}
		var e Entry
		if err := decodeEntry(best, &e); err != nil {
			return fmt.Errorf("attribution: corrupt member history of %s/%s: %w", groupID, cur, err)
		}
		return fn(&e)
	}
	err := kv.Scan(ctx, prefix, func(key string, val []byte) error {
		rest := key[len(prefix):]
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			return fmt.Errorf("attribution: corrupt member history key %s", key)
		}
		ver, err := strconv.ParseUint(rest[i+1:], 10, 64)
		if err != nil {
			return fmt.Errorf("attribution: corrupt member history key %s: %w", key, err)
		}
		if pid := rest[:i]; pid != cur {
			if err := emit(); err != nil {
				return err
			}
			cur, best = pid, nil
		}
		if ver <= v {
			best = val
		}
		return nil
	})
	if err != nil {
		return err
	}
	return emit()
}

// change collects the index writes of one new Group version: each member
// written goes to its current key and to its history at that version.
type change struct {
	g    *GroupInfo
	next uint64 // the Group version being written
	kv   map[string][]byte
}

func newChange(g *GroupInfo, next uint64) *change {
	return &change{g: g, next: next, kv: map[string][]byte{}}
}

// put writes a member's entry.
func (c *change) put(e *Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("attribution: %w", err)
	}
	c.kv[memberKey(c.g.ID, e.PatientID)] = b
	c.kv[histKey(c.g.ID, e.PatientID, c.next)] = b
	return nil
}

// drop removes a member from the list.
func (c *change) drop(patientID string) {
	c.kv[memberKey(c.g.ID, patientID)] = nil
	c.kv[histKey(c.g.ID, patientID, c.next)] = tombstone
}

// backfill starts the member history of a list written before it was
// kept: every current member is recorded at the next version. It also
// counts the members, which such lists did not keep.
func backfill(ctx context.Context, kv store.KV, g *GroupInfo, next uint64, flush func(map[string][]byte) error) error {
	if g.Layout >= layoutHistory {
		return nil
	}
	ops := map[string][]byte{}
	g.Active, g.Inactive = 0, 0
	err := kv.Scan(ctx, kvMember+g.ID+"/", func(key string, v []byte) error {
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("attribution: corrupt member record %s: %w", key, err)
		}
		if e.Inactive {
			g.Inactive++
		} else {
			g.Active++
		}
		ops[histKey(g.ID, e.PatientID, next)] = v
		if len(ops) >= 1024 {
			if err := flush(ops); err != nil {
				return err
			}
			ops = map[string][]byte{}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(ops) > 0 {
		if err := flush(ops); err != nil {
			return err
		}
	}
	g.Layout = layoutHistory
	return nil
}

// decodeEntry decodes a member record. It is json.Unmarshal for Entry
// without reflection: rendering a large list decodes one per member
// (TestDecodeEntryMatchesJSON keeps the two in step).
func decodeEntry(b []byte, e *Entry) error {
	if !gjson.ValidBytes(b) {
		return fmt.Errorf("invalid JSON")
	}
	*e = Entry{}
	gjson.ParseBytes(b).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "patient":
			e.PatientID = v.String()
		case "name":
			e.Name = v.String()
		case "birthDate":
			e.BirthDate = v.String()
		case "memberId":
			e.MemberID = v.String()
		case "coverage":
			e.CoverageID = v.String()
		case "payer":
			e.PayerID = v.String()
		case "basis":
			e.Basis = Method(v.String())
		case "group":
			e.GroupID = v.String()
		case "periodStart":
			e.PeriodStart = v.String()
		case "periodEnd":
			e.PeriodEnd = v.String()
		case "inactive":
			e.Inactive = v.Bool()
		case "changeType":
			e.ChangeType = v.String()
		case "provider":
			v.ForEach(func(pk, pv gjson.Result) bool {
				switch pk.Str {
				case "npi":
					e.Provider.NPI = pv.String()
				case "practitioner":
					e.Provider.PractitionerID = pv.String()
				case "organization":
					e.Provider.OrganizationID = pv.String()
				case "tin":
					e.Provider.TIN = pv.String()
				}
				return true
			})
		}
		return true
	})
	return nil
}
