package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/store"
)

// newVisibility resolves what a client bound to an organization sees: the
// patients attributed to it through a list active today, and its own
// lists. Results are cached per organization until one of its lists
// changes (every change makes a new Group version) or the day turns.
func newVisibility(st store.Store) *access.Cache {
	kv := st.KV()
	resolve := func(ctx context.Context, org string) (access.Visibility, error) {
		groups, err := attribution.OrganizationGroups(ctx, kv, org)
		if err != nil {
			return access.Visibility{}, fmt.Errorf("lists of %s: %w", org, err)
		}
		day := time.Now().UTC().Format(time.DateOnly)
		ids := make(access.Set, len(groups))
		patients := access.Set{}
		for _, g := range groups {
			// A list whose Group was deleted over REST keeps its index; it
			// grants nothing any more.
			if _, err := st.Read(ctx, "Group", g.ID); errors.Is(err, store.ErrDeleted) {
				continue
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return access.Visibility{}, fmt.Errorf("list %s: %w", g.ID, err)
			}
			ids[g.ID] = true
			if !g.ActiveOn(day) {
				continue
			}
			err := attribution.Members(ctx, kv, g.ID, func(e *attribution.Entry) error {
				if e.ActiveOn(day) {
					patients[e.PatientID] = true
				}
				return nil
			})
			if err != nil {
				return access.Visibility{}, fmt.Errorf("members of %s: %w", g.ID, err)
			}
		}
		return access.Visibility{Patients: patients, Groups: ids}, nil
	}
	stamp := func(ctx context.Context, org string) (string, error) {
		groups, err := attribution.OrganizationGroups(ctx, kv, org)
		if err != nil {
			return "", fmt.Errorf("lists of %s: %w", org, err)
		}
		var b strings.Builder
		b.WriteString(time.Now().UTC().Format(time.DateOnly))
		for _, g := range groups {
			// The stored Group's version also moves when the list is
			// deleted or replaced over REST, which the index does not see.
			var stored uint64
			if res, err := st.Read(ctx, "Group", g.ID); res != nil && (err == nil || errors.Is(err, store.ErrDeleted)) {
				stored = res.Version
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return "", err
			}
			fmt.Fprintf(&b, "|%s:%d:%d:%s:%s:%s:%s:%d:%d", g.ID, g.Version, stored, g.Status, g.ContractStart, g.ContractEnd, g.AsOf, g.Active, g.Inactive)
		}
		return b.String(), nil
	}
	return access.NewCache(resolve, stamp, 0)
}

// renderGroup serves a stored Group version with its members rendered
// from the attribution index (ATR lists keep no member array).
func renderGroup(ctx context.Context, kv store.KV, res *store.Resource, summary bool) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(res.Body) + 256)
	if err := attribution.RenderGroup(ctx, kv, res, &buf, summary); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// groupMembers lists the members exported at Group level: an ATR list's
// active members from the index (member not inactive, period covering
// the export's day), any other Group's from its member array.
func groupMembers(ctx context.Context, kv store.KV, snap store.Snapshot, groupID string) ([]string, error) {
	g, err := attribution.Group(ctx, kv, groupID)
	if errors.Is(err, store.ErrNotFound) {
		return export.ResourceMembers(ctx, snap, groupID)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", groupID, err)
	}
	day := snap.Time().UTC().Format(time.DateOnly)
	var ids []string
	err = attribution.Members(ctx, kv, g.ID, func(e *attribution.Entry) error {
		if e.ActiveOn(day) {
			ids = append(ids, e.PatientID)
		}
		return nil
	})
	return ids, err
}
