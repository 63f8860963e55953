package auth

import (
	"math"
	"sync"
	"time"
)

// RateLimit bounds token requests: a token bucket per registered client
// (keyed by the client id the request names, checked before the costly
// signature verification) and, for requests naming no registered client,
// per remote address. Backend clients need a token every few minutes, so
// the defaults only stop guessing and floods.
type RateLimit struct {
	// PerSecond is the sustained rate per key (default 1); a negative
	// value turns limiting off.
	PerSecond float64
	// Burst is how many requests a key may make at once (default 30).
	Burst int
	// MaxKeys bounds the buckets kept (default 10000); idle full buckets
	// are dropped first.
	MaxKeys int
}

func (rl RateLimit) withDefaults() RateLimit {
	if rl.PerSecond == 0 {
		rl.PerSecond = 1
	}
	if rl.Burst <= 0 {
		rl.Burst = 30
	}
	if rl.MaxKeys <= 0 {
		rl.MaxKeys = 10000
	}
	return rl
}

// limiter holds the buckets of one RateLimit.
type limiter struct {
	cfg     RateLimit
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(cfg RateLimit, now func() time.Time) *limiter {
	return &limiter{cfg: cfg.withDefaults(), now: now, buckets: map[string]*bucket{}}
}

// take spends one request of key; when none is left it returns false and
// how long until the next one is available.
func (l *limiter) take(key string) (bool, time.Duration) {
	if l.cfg.PerSecond < 0 {
		return true, 0
	}
	now := l.now()
	burst := float64(l.cfg.Burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.cfg.MaxKeys {
			l.prune(now)
		}
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*l.cfg.PerSecond)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.cfg.PerSecond * float64(time.Second))
	return false, wait
}

// prune drops buckets that have refilled (forgetting them changes
// nothing); if the map is still full, a flood of distinct keys is under
// way and every bucket is dropped rather than letting memory grow.
func (l *limiter) prune(now time.Time) {
	burst := float64(l.cfg.Burst)
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.cfg.PerSecond >= burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.cfg.MaxKeys {
		clear(l.buckets)
	}
}
