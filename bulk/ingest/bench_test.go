package ingest_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store/badgerstore"
)

// benchPatients is the population of the import benchmarks (10,000 unless
// EQUITAS_BENCH_PATIENTS says otherwise).
func benchPatients() int {
	if n, err := strconv.Atoi(os.Getenv("EQUITAS_BENCH_PATIENTS")); err == nil && n > 0 {
		return n
	}
	return 10000
}

func benchPopulation(b *testing.B) (string, int64) {
	b.Helper()
	dir := b.TempDir()
	sum, err := synth.GenerateDir(context.Background(), synth.Options{Patients: benchPatients(), Seed: 1}, dir)
	if err != nil {
		b.Fatal(err)
	}
	return dir, sum.Total()
}

// gjsonValidator checks only that a line is JSON with a type and id: it
// isolates the store's share of the import cost.
type gjsonValidator struct{}

func (gjsonValidator) Resource(body []byte) (string, string, error) {
	if !gjson.ValidBytes(body) {
		return "", "", ingest.ErrBadEntry
	}
	r := gjson.GetManyBytes(body, "resourceType", "id")
	return r[0].String(), r[1].String(), nil
}

// BenchmarkImport loads a synthetic population (10k patients, ~160k
// resources) into a fresh durable badger store, validating every resource
// (full) or only parsing type and id (store-only).
func BenchmarkImport(b *testing.B) {
	dir, total := benchPopulation(b)
	full, err := validate.New()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		v    ingest.Validator
	}{{"full", full}, {"store-only", gjsonValidator{}}} {
		b.Run(bc.name, func(b *testing.B) {
			var loaded int64
			cpu0 := cpuTime()
			for b.Loop() {
				b.StopTimer()
				st, err := badgerstore.Open(context.Background(), filepath.Join(b.TempDir(), "db"), badgerstore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				sum, err := ingest.New(st, bc.v, ingest.Options{}).LoadPaths(context.Background(), dir)
				if err != nil {
					b.Fatal(err)
				}
				if sum.Failed > 0 || sum.Loaded() != total {
					b.Fatalf("loaded %d of %d, %d failed: %v", sum.Loaded(), total, sum.Failed, sum.Errors[0])
				}
				loaded = sum.Loaded()
				b.StopTimer()
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(loaded)*float64(b.N)/b.Elapsed().Seconds(), "resources/s")
			// CPU time per resource (all goroutines, badger's included) does
			// not depend on what else the machine runs: 2 cores can import
			// at most 2s / cpu-µs/resource.
			b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(loaded*int64(b.N)), "cpu-µs/resource")
			b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
		})
	}
}

// BenchmarkReimport loads the population once, then times loading it again
// into the same store: the idempotent no-op path (no validation, no new
// versions).
func BenchmarkReimport(b *testing.B) {
	dir, total := benchPopulation(b)
	v, err := validate.New()
	if err != nil {
		b.Fatal(err)
	}
	st, err := badgerstore.Open(context.Background(), filepath.Join(b.TempDir(), "db"), badgerstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := ingest.New(st, v, ingest.Options{}).LoadPaths(context.Background(), dir); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		sum, err := ingest.New(st, v, ingest.Options{}).LoadPaths(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		if len(sum.Written) > 0 || sum.Loaded() != total {
			b.Fatalf("re-import wrote %v, loaded %d of %d", sum.Written, sum.Loaded(), total)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(total*int64(b.N)), "cpu-µs/resource")
}

// BenchmarkValidateParallel validates the same population on GOMAXPROCS
// goroutines without storing it: the ceiling validation puts on import.
func BenchmarkValidateParallel(b *testing.B) {
	dir, total := benchPopulation(b)
	v, err := validate.New()
	if err != nil {
		b.Fatal(err)
	}
	var lines [][]byte
	paths, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			lines = append(lines, []byte(strings.Clone(sc.Text())))
		}
		f.Close()
	}
	if int64(len(lines)) != total {
		b.Fatalf("read %d lines, want %d", len(lines), total)
	}
	cpu0 := cpuTime()
	for b.Loop() {
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(lines); i += workers {
					if _, _, err := v.Resource(lines[i]); err != nil {
						panic(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(total*int64(b.N)), "cpu-µs/resource")
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMiB is the process's peak resident set (VmHWM), 0 if unknown.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
