package mllp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/hl7v2/mllp"
)

// BenchmarkMLLP is the figure: ADT messages per second over MLLP
// from 8 concurrent stop-and-wait connections, each ACK written only after
// the message's durable commit (badger with synchronous writes, the real
// ADT processor). Every message admits a new patient (A01), the costliest
// common case; it also reports the ACK latency percentiles.
func BenchmarkMLLP(b *testing.B) {
	for _, conns := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) { benchMLLP(b, conns) })
	}
}

func benchMLLP(b *testing.B, conns int) {
	st := openStore(b, b.TempDir())
	b.Cleanup(func() { _ = st.Close() })
	ts := startServer(b, st, mllp.Config{})
	clients := make([]*mllp.Client, conns)
	for i := range clients {
		clients[i] = dial(b, ts.addr)
	}
	const perConnTotal = 4000
	perConn := max(perConnTotal/conns, 50)
	msgs := make([][][]byte, conns)
	var lat []time.Duration
	var mu sync.Mutex
	var elapsed time.Duration
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		for i := range msgs {
			msgs[i] = make([][]byte, perConn)
			for j := range perConn {
				id := fmt.Sprintf("B%d-%d-%d", it, i, j)
				msgs[i][j] = adtMessage("A01", id, "MRN-"+id, "V-"+id)
			}
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := make([]time.Duration, 0, perConn)
				for _, m := range msgs[i] {
					t0 := time.Now()
					ack, err := c.Send(context.Background(), m)
					if err != nil {
						b.Error(err)
						return
					}
					local = append(local, time.Since(t0))
					if code, _ := msa(ack); code != "AA" {
						b.Errorf("ack %s: %q", code, ack)
						return
					}
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
	}
	b.StopTimer()
	n := len(lat)
	if n == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFsync measures what bounds a durable commit on this disk: one
// 4 KiB append plus fsync, as a store's write-ahead log does per group
// commit. With stop-and-wait senders a group holds at most one message
// per connection, so conns / fsync latency caps the throughput.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "wal"))
	require.NoError(b, err)
	defer f.Close()
	buf := make([]byte, 4096)
	const inner = 500
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for range inner {
			if _, err := f.Write(buf); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	d := time.Since(start)
	b.ReportMetric(float64(d.Microseconds())/float64(b.N*inner), "µs/fsync")
	b.ReportMetric(0, "ns/op")
}
