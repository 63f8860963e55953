package patientsource

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
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
	// Readers is the number of patients read in parallel (0: GOMAXPROCS);
	// patients are still handed out in order.
	Readers int
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
	read := func(id string) (*Patient, error) {
		p := &Patient{ID: id, Resources: make(map[string][]json.RawMessage, len(shared)+8)}
		for typ, rs := range shared {
			p.Resources[typ] = rs
		}
		err := snap.Compartment(ctx, id, nil, func(r *store.Resource) error {
			p.Add(r.Type, r.Body)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("patientsource: compartment of Patient/%s: %w", id, err)
		}
		if len(p.Resources["Patient"]) == 0 {
			return nil, nil // listed but absent or deleted: nobody to evaluate
		}
		return p, nil
	}
	ids := s.Patients
	if ids == nil {
		// Collect ids first: evaluating inside the Patient scan would hold its
		// iterator open for the whole run. Ids are small (tens of bytes each).
		err = snap.Scan(ctx, "Patient", time.Time{}, func(r *store.Resource) error {
			ids = append(ids, r.ID)
			return nil
		})
		if err != nil {
			return fmt.Errorf("patientsource: listing patients: %w", err)
		}
	}
	readers := s.Readers
	if readers <= 0 {
		readers = runtime.GOMAXPROCS(0)
	}
	return inOrder(ctx, ids, readers, read, fn)
}

// inOrder reads ids with n parallel readers and calls fn in id order. A
// badger snapshot is a read-only transaction, which badger allows to be
// read from concurrently; reading compartments one at a time left the
// evaluators waiting on the store.
func inOrder(ctx context.Context, ids []string, n int, read func(string) (*Patient, error), fn func(*Patient) error) error {
	if n <= 1 {
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			p, err := read(id)
			if err != nil {
				return err
			}
			if p != nil {
				if err := fn(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	type slot struct {
		id   string
		p    *Patient
		err  error
		done chan struct{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pending := make(chan *slot, n*4) // bounds patients read ahead
	work := make(chan *slot)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sl := range work {
				if ctx.Err() == nil {
					sl.p, sl.err = read(sl.id)
				} else {
					sl.err = ctx.Err()
				}
				close(sl.done)
			}
		}()
	}
	go func() {
		defer close(work)
		defer close(pending)
		for _, id := range ids {
			sl := &slot{id: id, done: make(chan struct{})}
			select {
			case pending <- sl:
			case <-ctx.Done():
				return
			}
			select {
			case work <- sl:
			case <-ctx.Done():
				close(sl.done)
				return
			}
		}
	}()
	defer wg.Wait()
	for sl := range pending {
		<-sl.done
		if sl.err == nil && sl.p == nil && ctx.Err() != nil {
			sl.err = ctx.Err()
		}
		if sl.err != nil {
			cancel()
			return sl.err
		}
		if sl.p != nil {
			if err := fn(sl.p); err != nil {
				cancel()
				return err
			}
		}
	}
	return ctx.Err()
}
