package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/measures/patientsource"
)

// replicated streams copies of template patients with fresh ids, generating
// each copy on demand so the population is never held in memory.
type replicated struct {
	templates []*patientsource.Patient
	n         int
}

func (r replicated) Each(ctx context.Context, fn func(*patientsource.Patient) error) error {
	for i := 0; i < r.n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := r.templates[i%len(r.templates)]
		old := []byte(t.ID)
		id := t.ID + "-" + strconv.Itoa(i)
		p := &patientsource.Patient{ID: id, Resources: make(map[string][]json.RawMessage, len(t.Resources))}
		for rt, rs := range t.Resources {
			out := make([]json.RawMessage, len(rs))
			for j, raw := range rs {
				out[j] = bytes.ReplaceAll(raw, old, []byte(id))
			}
			p.Resources[rt] = out
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

func loadCases(tb testing.TB, content Content, name string) []*patientsource.Patient {
	tb.Helper()
	src, err := patientsource.NewDir(filepath.Join(content.Dir, "measures", name, "tests"))
	require.NoError(tb, err)
	var out []*patientsource.Patient
	require.NoError(tb, src.Each(context.Background(), func(p *patientsource.Patient) error {
		out = append(out, p)
		return nil
	}))
	return out
}

// peakRSS reads the process's peak resident set size (Linux), in MiB.
func peakRSS() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// heapSampler records the peak live heap while a run is in progress.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() float64 {
	close(h.stop)
	<-h.done
	return float64(h.peak.Load()) / (1 << 20)
}

// BenchmarkCMS165 evaluates CMS165 (Controlling High Blood Pressure) over
// populations made of its 60 test patients replicated with fresh ids,
// streamed through Measure.Run on all cores into a summary aggregator.
// Two population sizes show that memory stays flat in population size.
func BenchmarkCMS165(b *testing.B) {
	content := Content{Dir: filepath.Join(measuretest.SharedDir(b), "ecqm")}
	ctx := context.Background()
	m, period := compileMeasure(b, content, cms165)
	templates := loadCases(b, content, cms165)
	runs := []struct {
		n    int
		gogc int // 0: leave the GC as configured
	}{{12_000, 0}, {48_000, 0}, {12_000, 400}}
	for _, run := range runs {
		n := run.n
		name := fmt.Sprintf("patients=%d", n)
		if run.gogc > 0 {
			// `equitas measure eval` runs with GOGC=400: the live heap is
			// small, so trading memory for fewer collections pays.
			name += fmt.Sprintf("/gogc=%d", run.gogc)
		}
		b.Run(name, func(b *testing.B) {
			if run.gogc > 0 {
				defer debug.SetGCPercent(debug.SetGCPercent(run.gogc))
			}
			runtime.GC()
			heap := sampleHeap()
			b.ResetTimer()
			var evaluated, failed int
			start, cpuStart := time.Now(), cpuSeconds()
			for i := 0; i < b.N; i++ {
				counts := map[string]int{}
				st, err := m.Run(ctx, replicated{templates: templates, n: n}, RunOptions{Period: period}, func(r *PatientResult) error {
					for _, g := range r.Groups {
						for _, p := range g.Populations {
							counts[p.Code] += p.Count()
						}
					}
					return nil
				})
				require.NoError(b, err)
				evaluated += st.Patients
				failed += st.Failed
			}
			elapsed, cpu := time.Since(start), cpuSeconds()-cpuStart
			b.StopTimer()
			peakHeap := heap.Stop()
			rate := float64(evaluated) / elapsed.Seconds()
			b.ReportMetric(rate, "patients/s")
			b.ReportMetric(rate/float64(runtime.GOMAXPROCS(0)), "patients/s/core")
			// Wall-clock rates suffer when other processes share the cores;
			// patients per CPU-second (GC included) is the per-core figure
			// that does not.
			b.ReportMetric(float64(evaluated)/cpu, "patients/cpu-s")
			b.ReportMetric(peakHeap, "peak-heap-MiB")
			b.ReportMetric(peakRSS(), "peak-RSS-MiB")
			b.ReportMetric(float64(failed)/float64(max(evaluated, 1)), "failed/patient")
		})
	}
}

// BenchmarkCMS165Session is one core evaluating the 60 test patients in a
// loop: the per-patient cost without scheduling, for profiling the engine.
func BenchmarkCMS165Session(b *testing.B) {
	content := Content{Dir: filepath.Join(measuretest.SharedDir(b), "ecqm")}
	ctx := context.Background()
	m, period := compileMeasure(b, content, cms165)
	templates := loadCases(b, content, cms165)
	sort.Slice(templates, func(i, j int) bool { return templates[i].ID < templates[j].ID })
	sess := m.NewSession(period)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = sess.Evaluate(ctx, templates[i%len(templates)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "patients/s")
}

// writeNDJSON writes a replicated population as Bulk Data NDJSON files, one
// per resource type, compacted.
func writeNDJSON(b *testing.B, dir string, src replicated) {
	b.Helper()
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var buf bytes.Buffer
	require.NoError(b, src.Each(context.Background(), func(p *patientsource.Patient) error {
		for rt, rs := range p.Resources {
			f := files[rt]
			if f == nil {
				var err error
				if f, err = os.Create(filepath.Join(dir, rt+".ndjson")); err != nil {
					return err
				}
				files[rt] = f
			}
			for _, raw := range rs {
				buf.Reset()
				if err := json.Compact(&buf, raw); err != nil {
					return err
				}
				buf.WriteByte('\n')
				if _, err := f.Write(buf.Bytes()); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}

// BenchmarkCMS165NDJSON streams 12k replicated CMS165 patients from Bulk
// NDJSON files through the partitioning source (16 MiB memory budget, so
// the input is spilled to per-patient-hash partitions) and evaluates them
// on all cores: the file-based path end to end.
func BenchmarkCMS165NDJSON(b *testing.B) {
	content := Content{Dir: filepath.Join(measuretest.SharedDir(b), "ecqm")}
	ctx := context.Background()
	m, period := compileMeasure(b, content, cms165)
	const n = 12_000
	dir := b.TempDir()
	writeNDJSON(b, dir, replicated{templates: loadCases(b, content, cms165), n: n})
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	require.NoError(b, err)
	var size int64
	for _, f := range files {
		st, err := os.Stat(f)
		require.NoError(b, err)
		size += st.Size()
	}
	runtime.GC()
	heap := sampleHeap()
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuSeconds()
	evaluated := 0
	for i := 0; i < b.N; i++ {
		src := patientsource.NewNDJSON(files, patientsource.NDJSONOptions{MemoryBudget: 16 << 20, TempDir: b.TempDir()})
		st, err := m.Run(ctx, src, RunOptions{Period: period}, func(*PatientResult) error { return nil })
		require.NoError(b, err)
		require.Equal(b, n, st.Patients)
		evaluated += st.Patients
	}
	elapsed, cpu := time.Since(start), cpuSeconds()-cpuStart
	b.StopTimer()
	b.ReportMetric(float64(evaluated)/elapsed.Seconds(), "patients/s")
	b.ReportMetric(float64(evaluated)/cpu, "patients/cpu-s")
	b.ReportMetric(float64(size)/(1<<20), "input-MiB")
	b.ReportMetric(heap.Stop(), "peak-heap-MiB")
}

// BenchmarkLoadAndCompileCMS165 is the cold start of a measure: reading the
// library closure and value sets, then compiling the ELM.
func BenchmarkLoadAndCompileCMS165(b *testing.B) {
	content := Content{Dir: filepath.Join(measuretest.SharedDir(b), "ecqm")}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		pkg, err := content.Load(ctx, cms165)
		require.NoError(b, err)
		_, err = Compile(ctx, pkg, elm.Options{})
		require.NoError(b, err)
	}
}
