package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/store"
)

// newVisibility is what organization-bound clients see: the rule lives
// with the rest of access control (access.NewListCache).
func newVisibility(st store.Store) *access.Cache { return access.NewListCache(st) }

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
