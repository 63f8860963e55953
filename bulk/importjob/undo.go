package importjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/store"
)

// submissionDataPrefix keys the resources a submission changed:
// bulk/submission-data/<submission key>/<type>/<id> → priorState.
const submissionDataPrefix = "bulk/submission-data/"

// priorState is what a resource was before a submission first wrote it,
// which is what stopping the submission puts back.
type priorState struct {
	// Created: the resource did not exist (or was deleted) before.
	Created bool `json:"created,omitempty"`
	// Version is the current version before the submission's first
	// write (the one that write followed).
	Version uint64 `json:"version,omitempty"`
}

func dataKey(submission, typ, id string) string {
	return submissionDataPrefix + submission + "/" + typ + "/" + id
}

// record notes, for the resources a submission's job just wrote for the
// first time in that submission, what they were before. Later writes of
// the same resource keep the first record: stopping restores the state
// before the submission, not before its last manifest. The record follows
// the data's commit; a crash between the two loses it for one batch.
func (im *Importer) record(ctx context.Context, submission string, written []ingest.Written) error {
	im.recordMu.Lock()
	defer im.recordMu.Unlock()
	kv := im.st.KV()
	ops := map[string][]byte{}
	for _, w := range written {
		k := dataKey(submission, w.Type, w.ID)
		if _, ok := ops[k]; ok {
			continue
		}
		_, err := kv.Get(ctx, k)
		switch {
		case err == nil:
			continue
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("import: submission record: %w", err)
		}
		ps := priorState{Created: w.Created}
		if !w.Created && w.Version > 1 {
			ps.Version = w.Version - 1
		}
		b, err := json.Marshal(ps)
		if err != nil {
			return fmt.Errorf("import: submission record: %w", err)
		}
		ops[k] = b
	}
	if len(ops) == 0 {
		return nil
	}
	if err := kv.Batch(ctx, ops); err != nil {
		return fmt.Errorf("import: submission record: %w", err)
	}
	return nil
}

// undo returns the writes that put every resource the submission changed
// back to its state before the submission, and the KV deletions of the
// records; the caller commits both in one transaction.
func undo(ctx context.Context, st store.Store, submission string) ([]store.Write, map[string][]byte, error) {
	prefix := submissionDataPrefix + submission + "/"
	var writes []store.Write
	kv := map[string][]byte{}
	err := st.KV().Scan(ctx, prefix, func(k string, v []byte) error {
		kv[k] = nil
		typ, id, ok := strings.Cut(strings.TrimPrefix(k, prefix), "/")
		if !ok {
			return nil
		}
		var ps priorState
		if err := json.Unmarshal(v, &ps); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		cur, err := st.Read(ctx, typ, id)
		live := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrDeleted) {
			return err
		}
		if ps.Created || ps.Version == 0 {
			if live {
				writes = append(writes, store.Write{Op: store.OpDelete, Type: typ, ID: id})
			}
			return nil
		}
		prev, err := st.VRead(ctx, typ, id, ps.Version)
		switch {
		case errors.Is(err, store.ErrDeleted) || (err == nil && prev.Deleted):
			if live {
				writes = append(writes, store.Write{Op: store.OpDelete, Type: typ, ID: id})
			}
		case err != nil:
			return fmt.Errorf("%s/%s/_history/%d: %w", typ, id, ps.Version, err)
		case live && cur.Version == ps.Version:
			// Already the prior version.
		default:
			writes = append(writes, store.Write{Op: store.OpPut, Type: typ, ID: id, Body: prev.Body, SkipUnchanged: true})
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("importjob: undo submission: %w", err)
	}
	return writes, kv, nil
}
