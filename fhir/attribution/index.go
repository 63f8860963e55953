package attribution

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/equitas/equitas/store"
)

// The member index lives in the store's KV space:
//
//	atr/group/<group id>                 GroupInfo (the contract and list status)
//	atr/member/<group id>/<patient id>   Entry (one member of one list)
//	atr/patient/<patient id>             patientLists (the lists the patient is in)
//	atr/hist/<group id>/<patient id>/<v> the member's Entry as of Group version v
//	                                     (written when it changes; "-" = removed)
//
// One key per member keeps a membership change a small write whatever the
// list size. The stored Group resource carries no member array: members
// are rendered from the index on read (RenderGroup), and the history keys
// let an old version render exactly the members it had.
const (
	kvGroup   = "atr/group/"
	kvMember  = "atr/member/"
	kvPatient = "atr/patient/"
	kvHist    = "atr/hist/"
)

// layoutHistory marks a list whose member history is kept under kvHist;
// lists written before it carry their members in the stored Group.
const layoutHistory = 2

// ChangeType codes of the ATR changeType extension.
const (
	ChangeNew      = "new"
	ChangeDropped  = "dropped"
	ChangeChanged  = "changed"
	ChangeNoChange = "nochange"
)

// List status codes of the ATR attributionListStatus extension.
const (
	StatusDraft = "draft"
	StatusOpen  = "open"
	StatusFinal = "final"
)

// GroupInfo describes one ATR list: a payer–provider contract.
type GroupInfo struct {
	ID               string `json:"id"`
	PayerID          string `json:"payer"`
	PayerName        string `json:"payerName,omitempty"`
	OrganizationID   string `json:"organization,omitempty"`
	OrganizationName string `json:"organizationName,omitempty"`
	NPI              string `json:"npi,omitempty"` // the provider organization's NPI
	TIN              string `json:"tin,omitempty"`
	ContractSystem   string `json:"contractSystem"`
	Contract         string `json:"contract"`
	ContractStart    string `json:"contractStart,omitempty"`
	ContractEnd      string `json:"contractEnd,omitempty"`
	Status           string `json:"status"`
	AsOf             string `json:"asOf,omitempty"` // last run
	Method           Method `json:"method,omitempty"`
	// Version is the Group version rendering the index's current state;
	// Layout is layoutHistory once member history is kept.
	Version uint64 `json:"version,omitempty"`
	// Adopted lists were created over REST: their Group is the client's,
	// kept apart from its members.
	Adopted bool `json:"adopted,omitempty"`
	Layout  int  `json:"layout,omitempty"`
	// Active and Inactive count the current members.
	Active   int `json:"active,omitempty"`
	Inactive int `json:"inactive,omitempty"`
}

// Entry is one member of one list as kept in the index.
type Entry struct {
	Member
	GroupID     string `json:"group"`
	PeriodStart string `json:"periodStart,omitempty"`
	PeriodEnd   string `json:"periodEnd,omitempty"`
	Inactive    bool   `json:"inactive,omitempty"`
	ChangeType  string `json:"changeType"`
}

// patientLists is the per-patient pointer into the index, so a run finds a
// member's previous lists without scanning them. Run is only in records
// written before runs stopped stamping every patient.
type patientLists struct {
	Run    string   `json:"run,omitempty"`
	Groups []string `json:"groups"`
}

var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// GroupID is the id of the list for a payer and a provider organization
// (or a lone provider NPI when the directory knows no organization).
func GroupID(payerID string, p Provider) string {
	prov := p.OrganizationID
	if prov == "" {
		prov = "npi" + p.NPI
	}
	id := "atr-" + payerID + "-" + prov
	if !fhirID.MatchString(id) {
		sum := sha256.Sum256([]byte(payerID + "|" + prov))
		id = "atr-" + hex.EncodeToString(sum[:12])
	}
	return id
}

// Group reads the description of one list.
func Group(ctx context.Context, kv store.KV, id string) (*GroupInfo, error) {
	var g GroupInfo
	if err := getJSON(ctx, kv, kvGroup+id, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// Groups lists every list of the index in id order.
func Groups(ctx context.Context, kv store.KV) ([]*GroupInfo, error) {
	var out []*GroupInfo
	err := kv.Scan(ctx, kvGroup, func(_ string, v []byte) error {
		var g GroupInfo
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("attribution: corrupt group record: %w", err)
		}
		out = append(out, &g)
		return nil
	})
	return out, err
}

func memberKey(groupID, patientID string) string { return kvMember + groupID + "/" + patientID }

// Members calls fn for every current entry of a list in patient-id order.
func Members(ctx context.Context, kv store.KV, groupID string, fn func(*Entry) error) error {
	return kv.Scan(ctx, kvMember+groupID+"/", func(key string, v []byte) error {
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("attribution: corrupt member record %s: %w", key, err)
		}
		return fn(&e)
	})
}

// getJSON decodes a KV value; a missing key is store.ErrNotFound.
func getJSON(ctx context.Context, kv store.KV, key string, v any) error {
	b, err := kv.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("attribution: corrupt record %s: %w", key, err)
	}
	return nil
}

func notFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
