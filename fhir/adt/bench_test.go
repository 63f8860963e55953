package adt_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/hl7v2"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store/badgerstore"
)

// BenchmarkHandleER7 sends ADT messages from 8 goroutines into a durable
// badger store: per patient an A01 (new patient, new encounter) then an
// A03 (update both), each acknowledged after its group commit.
func BenchmarkHandleER7(b *testing.B) {
	b.Run("durable", func(b *testing.B) { benchHandle(b, 8, false, false) })
	b.Run("durable-validate-all", func(b *testing.B) { benchHandle(b, 8, true, false) })
	// With 8 callers each waiting for its ACK, throughput is bound by the
	// commit latency (8 messages per fsync at most); 64 in flight (MLLP
	// senders pipelining) shows how group commit amortises it.
	b.Run("durable-64", func(b *testing.B) { benchHandle(b, 64, false, false) })
	// Without fsync: the CPU cost of mapping and applying alone, to tell
	// it apart from the disk's commit latency.
	b.Run("nosync", func(b *testing.B) { benchHandle(b, 8, false, true) })
}

func benchHandle(b *testing.B, workers int, validateAll, noSync bool) {
	st, err := badgerstore.Open(context.Background(), b.TempDir(), badgerstore.Options{NoSync: noSync})
	require.NoError(b, err)
	defer st.Close()
	opts := adt.Options{}
	if validateAll {
		opts.Validator, err = validate.New()
		require.NoError(b, err)
	}
	p := adt.New(st, opts)
	pv1Dis := strings.Replace(pv1Admit, "|||||||||||||||||||||||||20260301073000-0500",
		"|||||||||||||||||01^Home^HL70112||||||||20260301073000-0500|20260303100000-0500", 1)
	message := func(i int) []byte {
		n := i / 2
		pid := strings.Replace(pidMary, "MRN123", fmt.Sprintf("MRN%d", n), 1)
		pid = strings.Replace(pid, "123-45-6789", fmt.Sprintf("9%08d", n), 1)
		if i%2 == 0 {
			return []byte(msg("A01", fmt.Sprintf("B%d", i), pid, strings.Replace(pv1Admit, "V100", fmt.Sprintf("V%d", n), 1)))
		}
		return []byte(msg("A03", fmt.Sprintf("B%d", i), pid, strings.Replace(pv1Dis, "V100", fmt.Sprintf("V%d", n), 1)))
	}
	var next atomic.Int64
	var failed atomic.Value
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A worker takes a patient and sends its A01 then its A03.
			for {
				i := int(next.Add(2)) - 2
				if i >= b.N {
					return
				}
				for j := i; j < i+2 && j < b.N; j++ {
					m, err := hl7v2.Parse(p.HandleER7(context.Background(), message(j)))
					if err != nil || m.Segment("MSA").Field(1).String() != "AA" {
						failed.Store(fmt.Sprintf("message %d: %v %q", j, err, m.Encode()))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if f := failed.Load(); f != nil {
		b.Fatal(f)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	// CPU per message (process user+system time, store included) does not
	// depend on what else the machine runs; 2 cores / it is the ceiling.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
