// Package keylock serialises work by key: callers holding any key in
// common run one after the other, callers with disjoint keys never wait
// for each other. The ADT and FHIR message processors use it to keep the
// read-match-commit of two messages about one patient (or one message
// resent) from interleaving, without the convoys a fixed set of stripes
// causes when unrelated keys share a stripe across a whole fsync.
package keylock

import (
	"slices"
	"sync"
)

// Table is a set of per-key mutexes, created on demand and dropped when no
// caller holds or waits for them. The zero value is ready to use; a Table
// must not be copied after first use.
type Table struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	mu   sync.Mutex
	refs int // holders and waiters
}

// Lock takes every key and returns the function that releases them. Keys
// are taken in sorted order, so two callers sharing several keys cannot
// deadlock; repeated keys are taken once.
func (t *Table) Lock(keys []string) (unlock func()) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	held := make([]*entry, len(keys))
	t.mu.Lock()
	if t.m == nil {
		t.m = map[string]*entry{}
	}
	for i, k := range keys {
		e := t.m[k]
		if e == nil {
			e = &entry{}
			t.m[k] = e
		}
		e.refs++
		held[i] = e
	}
	t.mu.Unlock()
	for _, e := range held {
		e.mu.Lock()
	}
	return func() {
		for _, e := range slices.Backward(held) {
			e.mu.Unlock()
		}
		t.mu.Lock()
		for i, k := range keys {
			if held[i].refs--; held[i].refs == 0 {
				delete(t.m, k)
			}
		}
		t.mu.Unlock()
	}
}
