package badgerstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// Benchmarks report per-operation metrics from an inner loop, so the
// default `make bench` (-benchtime 1x) still gives stable figures.

const (
	benchPatients   = 1000
	benchPerPatient = 50
)

func loadedStore(b *testing.B) *badgerstore.Store {
	b.Helper()
	st, err := badgerstore.Open(context.Background(), b.TempDir(), badgerstore.Options{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = st.Close() })
	ws := population(2, benchPatients, benchPerPatient)
	for i := 0; i < len(ws); i += 2000 {
		_, err := st.Commit(context.Background(), store.Tx{Writes: ws[i:min(i+2000, len(ws))]})
		require.NoError(b, err)
	}
	return st
}

func perOp(b *testing.B, n int, elapsed time.Duration, unit string) {
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(n), "ns/"+unit)
	b.ReportMetric(float64(n)/elapsed.Seconds(), unit+"s/s")
}

func BenchmarkRead(b *testing.B) {
	st := loadedStore(b)
	ctx := context.Background()
	b.ResetTimer()
	const inner = 20000
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for j := range inner {
			if _, err := st.Read(ctx, "Observation", fmt.Sprintf("pat%05d-%d", j%benchPatients, 2+j%3)); err != nil {
				b.Fatal(err)
			}
		}
	}
	perOp(b, b.N*inner, time.Since(start), "read")
}

func BenchmarkCompartment(b *testing.B) {
	st := loadedStore(b)
	ctx := context.Background()
	b.ResetTimer()
	const inner = 500
	start := time.Now()
	total := 0
	for i := 0; i < b.N; i++ {
		for j := range inner {
			err := st.Compartment(ctx, fmt.Sprintf("pat%05d", j%benchPatients), nil, func(*store.Resource) error { total++; return nil })
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	perOp(b, b.N*inner, time.Since(start), "compartment")
	b.ReportMetric(float64(total)/float64(b.N*inner), "resources/compartment")
}

func benchSearch(b *testing.B, params func(j int) []store.Param) {
	st := loadedStore(b)
	ctx := context.Background()
	b.ResetTimer()
	const inner = 300
	start := time.Now()
	found := 0
	for i := 0; i < b.N; i++ {
		for j := range inner {
			res, err := st.Search(ctx, store.Query{Type: "Observation", Params: params(j), Count: 50})
			if err != nil {
				b.Fatal(err)
			}
			found += len(res.Resources)
		}
	}
	perOp(b, b.N*inner, time.Since(start), "search")
	b.ReportMetric(float64(found)/float64(b.N*inner), "results/search")
}

// BenchmarkSearchToken: patient + code, the measure engine's access path.
func BenchmarkSearchToken(b *testing.B) {
	benchSearch(b, func(j int) []store.Param {
		return []store.Param{
			{Name: "patient", Values: []string{fmt.Sprintf("pat%05d", j%benchPatients)}},
			{Name: "code", Values: []string{"http://loinc.org|" + loinc[j%len(loinc)]}},
		}
	})
}

// BenchmarkSearchCodeFirst: the same search with the broad parameter
// first; candidate probing must still start from the patient.
func BenchmarkSearchCodeFirst(b *testing.B) {
	benchSearch(b, func(j int) []store.Param {
		return []store.Param{
			{Name: "code", Values: []string{"http://loinc.org|" + loinc[j%len(loinc)]}},
			{Name: "patient", Values: []string{fmt.Sprintf("pat%05d", j%benchPatients)}},
		}
	})
}

// BenchmarkSearchTokenBroad: a code alone (about 1/8 of 35k Observations), first page.
func BenchmarkSearchTokenBroad(b *testing.B) {
	benchSearch(b, func(j int) []store.Param {
		return []store.Param{{Name: "code", Values: []string{"http://loinc.org|" + loinc[j%len(loinc)]}}}
	})
}

// BenchmarkSearchDate: one month of effective dates, first page.
func BenchmarkSearchDate(b *testing.B) {
	benchSearch(b, func(j int) []store.Param {
		return []store.Param{{Name: "date", Values: []string{fmt.Sprintf("%d-%02d", 2015+j%8, 1+j%12)}}}
	})
}

// BenchmarkCommitBulk: one transaction of 20k resources (the staged path).
func BenchmarkCommitBulk(b *testing.B) {
	ws := population(3, 400, 49)
	benchCommit(b, func(st store.Store) error {
		_, err := st.Commit(context.Background(), store.Tx{Writes: ws})
		return err
	}, len(ws))
}

// BenchmarkCommitChunks: 20k resources as 500-resource transactions from 4
// goroutines (the importer's path), durable.
func BenchmarkCommitChunks(b *testing.B) {
	ws := population(3, 400, 49)
	benchCommit(b, func(st store.Store) error {
		return parallelCommits(st, ws, 500, 4)
	}, len(ws))
}

// BenchmarkCommitSingle: 4k one-resource durable transactions from 32
// goroutines; group commit shares each fsync.
func BenchmarkCommitSingle(b *testing.B) {
	ws := population(4, 4000, 0)
	benchCommit(b, func(st store.Store) error {
		return parallelCommits(st, ws, 1, 32)
	}, len(ws))
}

func parallelCommits(st store.Store, ws []store.Write, size, workers int) error {
	ch := make(chan []store.Write)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chunk := range ch {
				if _, err := st.Commit(context.Background(), store.Tx{Writes: chunk}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < len(ws); i += size {
		ch <- ws[i:min(i+size, len(ws))]
	}
	close(ch)
	wg.Wait()
	close(errs)
	return <-errs
}

func benchCommit(b *testing.B, run func(store.Store) error, n int) {
	var total, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := badgerstore.Open(context.Background(), b.TempDir(), badgerstore.Options{})
		require.NoError(b, err)
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		require.NoError(b, run(st))
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		require.NoError(b, st.Close())
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "resources/s")
	// Process CPU (user+system, badger's goroutines included) does not
	// depend on the machine's other load as wall time does.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "cpu-µs/resource")
}
