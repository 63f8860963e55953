package mllp_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/hl7v2/mllp"
	"github.com/equitas/equitas/store/badgerstore"
)

// BenchmarkMLLP is the figure: ADT messages per second over MLLP
// from 8 concurrent stop-and-wait connections, each ACK written only after
// the message's durable commit (badger with synchronous writes, the real
// ADT processor). Every message admits a new patient (A01), the costliest
// common case; it also reports the ACK latency percentiles.
//
// With stop-and-wait senders a group commit holds at most one message per
// connection; window>1 has each sender keep that many messages
// unacknowledged (pipelining), which the server handles concurrently.
//
// The nosync case acknowledges before the disk has the data: it is not the
// issue's figure, only the CPU bound of the same path (what throughput
// would be with a free fsync).
func BenchmarkMLLP(b *testing.B) {
	for _, c := range []struct {
		conns, window int
		nosync        bool
	}{{1, 1, false}, {8, 1, false}, {32, 1, false}, {8, 16, false}, {8, 16, true}} {
		name := fmt.Sprintf("conns=%d/window=%d", c.conns, c.window)
		if c.nosync {
			name += "/nosync"
		}
		b.Run(name, func(b *testing.B) { benchMLLP(b, c.conns, c.window, c.nosync) })
	}
}

func benchMLLP(b *testing.B, conns, window int, nosync bool) {
	st, err := badgerstore.Open(context.Background(), b.TempDir(), badgerstore.Options{NoSync: nosync})
	require.NoError(b, err)
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
	var elapsed, cpu time.Duration
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
		start, cpu0 := time.Now(), cpuTime()
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if window > 1 {
					local, err := pipelined(ts.addr, msgs[i], window)
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					lat = append(lat, local...)
					mu.Unlock()
					return
				}
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
		cpu += cpuTime() - cpu0
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
	// CPU of the whole process (server, store, badger's background work and
	// the benchmark's own senders) per message: the figure that does not
	// depend on what else runs on the machine. 2 cores / this = the CPU
	// bound of msgs/s.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
	b.ReportMetric(0, "ns/op")
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pipelined sends msgs over a connection of its own keeping window of
// them unacknowledged, and returns each message's send-to-ACK latency;
// every ACK must be AA.
func pipelined(addr string, msgs [][]byte, window int) ([]time.Duration, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	var mu sync.Mutex
	sent := make([]time.Time, len(msgs))
	slots := make(chan struct{}, window)
	werr := make(chan error, 1)
	go func() {
		var out []byte
		for i, m := range msgs {
			slots <- struct{}{}
			mu.Lock()
			sent[i] = time.Now()
			mu.Unlock()
			out = mllp.AppendFrame(out[:0], m)
			if _, err := nc.Write(out); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	r := mllp.NewReader(nc, 1<<20)
	lat := make([]time.Duration, 0, len(msgs))
	for i := range msgs {
		if _, _, err := r.WaitStart(); err != nil {
			return nil, err
		}
		ack, err := r.ReadMessage()
		if err != nil {
			return nil, err
		}
		mu.Lock()
		lat = append(lat, time.Since(sent[i]))
		mu.Unlock()
		if code, _ := msa(ack); code != "AA" {
			return nil, fmt.Errorf("ack %s: %q", code, ack)
		}
		<-slots
	}
	return lat, <-werr
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
