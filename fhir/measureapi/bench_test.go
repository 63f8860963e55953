package measureapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/fhir/measureapi"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// storeSink commits generated resources in batches (the data is the
// generator's own, so the benchmark fixture skips the validator).
type storeSink struct {
	ctx    context.Context
	st     store.Store
	writes []store.Write
}

func (s *storeSink) Write(typ string, line []byte) error {
	s.writes = append(s.writes, store.Write{Op: store.OpPut, Type: typ, ID: gjson.GetBytes(line, "id").String(), Body: append([]byte(nil), line...)})
	if len(s.writes) >= 5000 {
		return s.flush()
	}
	return nil
}

func (s *storeSink) flush() error {
	if len(s.writes) == 0 {
		return nil
	}
	_, err := s.st.Commit(s.ctx, store.Tx{Writes: s.writes})
	s.writes = s.writes[:0]
	return err
}

// benchStore opens (building once) a badger store holding a synthetic
// population of n patients and the CMS165 content. It lives in
// TMPDIR/equitas-bench-measures-<n> across runs because building 100k
// patients (1.6M resources) takes minutes.
func benchStore(b *testing.B, n int) (*badgerstore.Store, *synth.Truth) {
	b.Helper()
	ecqm := filepath.Join(measuretest.SharedDir(b), "ecqm")
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("equitas-bench-measures-%d", n))
	done := filepath.Join(dir, "complete.json")
	ctx := context.Background()
	if _, err := os.Stat(done); err != nil {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		st, err := badgerstore.Open(ctx, filepath.Join(dir, "db"), badgerstore.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		sink := &storeSink{ctx: ctx, st: st}
		sum, err := synth.Generate(ctx, synth.Options{Patients: n, Seed: 1}, sink)
		if err == nil {
			err = sink.flush()
		}
		if err == nil {
			err = catalog.LoadDir(ctx, st, ecqm, cms165)
		}
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := json.Marshal(sum.Truth)
		if err := os.WriteFile(done, raw, 0o644); err != nil {
			b.Fatal(err)
		}
		b.Logf("built the %d-patient store (%d resources) in %s", n, sum.Total(), time.Since(start).Round(time.Second))
	}
	raw, err := os.ReadFile(done)
	if err != nil {
		b.Fatal(err)
	}
	var truth synth.Truth
	if err := json.Unmarshal(raw, &truth); err != nil {
		b.Fatal(err)
	}
	st, err := badgerstore.Open(ctx, filepath.Join(dir, "db"), badgerstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, &truth
}

// peakRSS resets the kernel's peak-RSS mark (Linux clear_refs 5) and
// returns a function reading it in MiB (0 where unsupported).
func peakRSS() func() float64 {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return func() float64 {
		raw, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				return kb / 1024
			}
		}
		return 0
	}
}

// sampleHeap samples the live heap every 50 ms until the returned
// function is called, which returns the largest sample in MiB. (RSS also
// counts the store's memory-mapped tables; the heap is the evaluation's.)
func sampleHeap() func() float64 {
	stop := make(chan struct{})
	done := make(chan float64)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				done <- float64(peak) / (1 << 20)
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(stop)
		return <-done
	}
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEvaluatePopulation is population $evaluate-measure for CMS165
// through the HTTP server over a synthetic population (100,000 patients;
// EQUITAS_BENCH_PATIENTS overrides), the measure compiled beforehand.
// Reports patients/s and the process's peak RSS during the evaluations,
// and checks the counts against the generator's known answer.
func BenchmarkEvaluatePopulation(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("EQUITAS_BENCH_PATIENTS")); err == nil && v > 0 {
		n = v
	}
	st, truth := benchStore(b, n)
	srv, err := rest.New(rest.Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	h, err := measureapi.New(measureapi.Options{Catalog: catalog.New(st, catalog.Options{}), Store: st, Base: srv.Base, TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	h.Mount(srv)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	u := hs.URL + "/fhir/Measure/" + cms165 + "/$evaluate-measure?" + url.Values{"periodStart": {truth.MeasurementPeriod}, "periodEnd": {truth.MeasurementPeriod}}.Encode()
	get := func() gjson.Result {
		res, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		var body json.RawMessage
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("status %d: %v %s", res.StatusCode, err, body)
		}
		return gjson.ParseBytes(body)
	}
	// Warm up: compile the measure, and check the answer.
	rep := get()
	c := counts(rep)[0]
	if c["denominator"] != truth.CMS165.Overall.Denominator || c["numerator"] != truth.CMS165.Overall.Numerator {
		b.Fatalf("CMS165 %d/%d, the generator says %d/%d", c["numerator"], c["denominator"], truth.CMS165.Overall.Numerator, truth.CMS165.Overall.Denominator)
	}
	// Memory left from building the store is returned to the OS, so the
	// peak measured is the evaluations'.
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// The live heap before evaluating: the compiled measure and the
	// store's memtables and caches.
	startHeap := float64(ms.HeapAlloc) / (1 << 20)
	peak := peakRSS()
	heap := sampleHeap()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		get()
	}
	b.StopTimer()
	b.ReportMetric(heap(), "peak-heap-MiB")
	b.ReportMetric(startHeap, "start-heap-MiB")
	// patients/cpu-s is the figure that holds on a shared machine: the
	// server process's CPU time (user+system, all goroutines) per patient.
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "patients/s")
	b.ReportMetric(float64(n*b.N)/(cpuTime()-cpu0).Seconds(), "patients/cpu-s")
	b.ReportMetric(peak(), "peak-RSS-MiB")
	b.ReportMetric(0, "ns/op")
}
