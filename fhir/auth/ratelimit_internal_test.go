package auth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestLimiterRefills drives the bucket with a fake clock.
func TestLimiterRefills(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(RateLimit{PerSecond: 0.5, Burst: 2, MaxKeys: 2}, func() time.Time { return now })
	steps := []struct {
		advance time.Duration
		key     string
		ok      bool
		wait    time.Duration
	}{
		{0, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", false, 2 * time.Second},
		{time.Second, "a", false, time.Second},
		{time.Second, "a", true, 0},
		{0, "b", true, 0},
		{time.Hour, "c", true, 0}, // a and b have refilled: pruned to make room
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		ok, wait := l.take(s.key)
		assert.Equal(t, s.ok, ok, "step %d", i)
		assert.Equal(t, s.wait, wait, "step %d", i)
	}
	assert.Len(t, l.buckets, 1, "full buckets were pruned")
	off := newLimiter(RateLimit{PerSecond: -1}, time.Now)
	for range 100 {
		ok, _ := off.take("x")
		assert.True(t, ok, "a negative rate turns limiting off")
	}
}
