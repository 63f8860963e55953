package patientsource

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/equitas/equitas/store"
)

// Store reads patients from a store: each Patient with the resources of its
// compartment (one prefix scan per patient), from one consistent snapshot so
// a population evaluated while data flows in is the population of one moment.
type Store struct {
	st store.Store
	// Patients, when set, limits the population to these ids (e.g. the
	// members of a Group or an attribution list), in the given order.
	Patients []string
	// Shared lists resource types outside the patient compartment that
	// measures retrieve (e.g. Medication referenced by MedicationRequests);
	// they are read once and handed to every patient, so keep them small.
	Shared []string
}

// NewStore returns a source over st.
func NewStore(st store.Store) *Store { return &Store{st: st, Shared: []string{"Medication"}} }

// Each implements Source.
func (s *Store) Each(ctx context.Context, fn func(*Patient) error) error {
	snap, err := s.st.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("patientsource: snapshot: %w", err)
	}
	defer snap.Close()
	shared := map[string][]json.RawMessage{}
	for _, typ := range s.Shared {
		err := snap.Scan(ctx, typ, time.Time{}, func(r *store.Resource) error {
			shared[typ] = append(shared[typ], r.Body)
			return nil
		})
		if err != nil {
			return fmt.Errorf("patientsource: reading %s: %w", typ, err)
		}
	}
	one := func(id string) error {
		p := &Patient{ID: id, Resources: make(map[string][]json.RawMessage, len(shared)+8)}
		for typ, rs := range shared {
			p.Resources[typ] = rs
		}
		err := snap.Compartment(ctx, id, nil, func(r *store.Resource) error {
			p.Add(r.Type, r.Body)
			return nil
		})
		if err != nil {
			return fmt.Errorf("patientsource: compartment of Patient/%s: %w", id, err)
		}
		if len(p.Resources["Patient"]) == 0 {
			return nil // listed but absent or deleted: nobody to evaluate
		}
		return fn(p)
	}
	if s.Patients != nil {
		for _, id := range s.Patients {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := one(id); err != nil {
				return err
			}
		}
		return nil
	}
	// Collect ids first: evaluating inside the Patient scan would hold its
	// iterator open for the whole run. Ids are small (tens of bytes each).
	var ids []string
	err = snap.Scan(ctx, "Patient", time.Time{}, func(r *store.Resource) error {
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("patientsource: listing patients: %w", err)
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := one(id); err != nil {
			return err
		}
	}
	return nil
}
