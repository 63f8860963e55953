package job

import "time"

// WithClock returns opts with the clock the Manager reads, so expiry tests
// move time instead of sleeping past a short TTL.
func WithClock(opts Options, now func() time.Time) Options {
	opts.now = now
	return opts
}
