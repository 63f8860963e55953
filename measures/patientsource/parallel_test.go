package patientsource

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listSource hands out n patients named p0, p1, ... and fails after fail
// patients when fail > 0.
type listSource struct{ n, fail int }

func (s listSource) Each(ctx context.Context, fn func(*Patient) error) error {
	for i := 0; i < s.n; i++ {
		if s.fail > 0 && i == s.fail {
			return errors.New("source broke")
		}
		if err := fn(&Patient{ID: fmt.Sprintf("p%d", i)}); err != nil {
			return err
		}
	}
	return nil
}

func TestParallelKeepsSourceOrder(t *testing.T) {
	var got []string
	err := Parallel(context.Background(), listSource{n: 500}, 4, func() func(context.Context, *Patient) string {
		return func(_ context.Context, p *Patient) string {
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // finish out of order
			return p.ID
		}
	}, func(id string) error {
		got = append(got, id)
		return nil
	})
	require.NoError(t, err)
	require.Len(t, got, 500)
	for i, id := range got {
		assert.Equal(t, fmt.Sprintf("p%d", i), id)
	}
}

func TestParallelErrors(t *testing.T) {
	identity := func() func(context.Context, *Patient) string {
		return func(_ context.Context, p *Patient) string { return p.ID }
	}
	stop := errors.New("sink full")
	calls := 0
	err := Parallel(context.Background(), listSource{n: 1000}, 2, identity, func(string) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 10, calls, "no sink call after its error")

	err = Parallel(context.Background(), listSource{n: 100, fail: 30}, 2, identity, func(string) error { return nil })
	assert.EqualError(t, err, "source broke")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Parallel(ctx, listSource{n: 100}, 2, identity, func(string) error { return nil })
	assert.ErrorIs(t, err, context.Canceled)
}
