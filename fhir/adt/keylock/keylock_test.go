package keylock

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSharedKeyExcludes: while one caller holds a key, another asking for
// it (among other keys) waits, and gets it once the first releases.
func TestSharedKeyExcludes(t *testing.T) {
	var tb Table
	unlock := tb.Lock([]string{"b", "a"})
	got := make(chan struct{})
	go func() {
		u := tb.Lock([]string{"c", "a", "a"})
		close(got)
		u()
	}()
	select {
	case <-got:
		t.Fatal("a second caller took key a while it was held")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting caller never got key a after it was released")
	}
}

// TestDisjointKeysDoNotWait: a caller whose keys are all free is not held
// up by one holding other keys.
func TestDisjointKeysDoNotWait(t *testing.T) {
	var tb Table
	unlock := tb.Lock([]string{"a"})
	defer unlock()
	done := make(chan struct{})
	go func() {
		tb.Lock([]string{"b", "c"})()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a caller with disjoint keys waited")
	}
}

// TestConcurrentCallersAndCleanup: many callers over overlapping key sets
// (in every order) neither deadlock nor overlap on a key, and the table is
// empty once all have released.
func TestConcurrentCallersAndCleanup(t *testing.T) {
	var tb Table
	sets := [][]string{{"a", "b"}, {"b", "a"}, {"c", "a"}, {"b", "c"}, {"d"}}
	var inA atomic.Int32
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			keys := sets[i%len(sets)]
			unlock := tb.Lock(keys)
			defer unlock()
			for _, k := range keys {
				if k == "a" {
					assert.Equal(t, int32(1), inA.Add(1), "two callers held key a at once")
					inA.Add(-1)
				}
			}
		})
	}
	wg.Wait()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	require.Empty(t, tb.m, "released keys must leave the table")
}
