package equity

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/measures/patientsource"
	"github.com/equitas/equitas/store/badgerstore"
)

// typeAndID stands in for the FHIR validator while loading the benchmark
// population: loading is not what is measured.
type typeAndID struct{}

func (typeAndID) Resource(body []byte) (string, string, error) {
	r := gjson.GetManyBytes(body, "resourceType", "id")
	return r[0].String(), r[1].String(), nil
}

// peakRSS resets the kernel's high-water mark of this process's resident
// set (Linux clear_refs 5) and returns a function reading it in MiB; ok is
// false where that is not available.
func peakRSS() (read func() float64, ok bool) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return nil, false
	}
	return func() float64 {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
		return 0
	}, true
}

// cpuSeconds is the user and system CPU time this process has used.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkRunStore3x6 is the equity-report figure: Run over a
// synthetic population loaded into a real badger store, 3 official
// measures (CMS165, CMS122, CMS71) × the 6 default stratifiers, with a
// prior year (so every patient is evaluated 6 times), one pass per
// patient. EQUITAS_BENCH_PATIENTS sets the population (default 2000).
func BenchmarkRunStore3x6(b *testing.B) {
	n := 2000
	if s := os.Getenv("EQUITAS_BENCH_PATIENTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	shared := measuretest.SharedDir(b)
	ctx := context.Background()
	dir := b.TempDir()
	pop := filepath.Join(dir, "pop")
	if _, err := synth.GenerateDir(ctx, synth.Options{Patients: n, Seed: 1}, pop); err != nil {
		b.Fatal(err)
	}
	st, err := badgerstore.Open(ctx, filepath.Join(dir, "data"), badgerstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := ingest.New(st, typeAndID{}, ingest.Options{}).LoadPaths(ctx, pop); err != nil {
		b.Fatal(err)
	}
	cache := measure.NewCache(elm.Options{})
	content := measure.Content{Dir: filepath.Join(shared, "ecqm")}
	var ms []*measure.Measure
	for _, name := range []string{"ControllingHighBloodPressureFHIR", "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR", "CMS71FHIRSTKAnticoagAFFlutter"} {
		m, err := cache.Load(ctx, content, name)
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, m)
	}
	opts := RunOptions{PeriodStart: "2025-01-01", PeriodEnd: "2025-12-31", PriorStart: "2024-01-01", PriorEnd: "2024-12-31"}
	// Return what loading left behind so the high-water mark measures the
	// report, not the load.
	debug.FreeOSMemory()
	rss, rssOK := peakRSS()
	cpu0 := cpuSeconds()
	b.ResetTimer()
	var patients int
	for i := 0; i < b.N; i++ {
		res, err := Run(ctx, patientsource.NewStore(st), ms, opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := res.ParametersJSON(); err != nil {
			b.Fatal(err)
		}
		if _, err := res.DashboardJSON(); err != nil {
			b.Fatal(err)
		}
		patients += res.Patients
	}
	b.StopTimer()
	// CPU time as well as wall time: on a shared machine the wall time
	// says more about the neighbours than about the report.
	cpu := cpuSeconds() - cpu0
	b.ReportMetric(cpu/float64(b.N), "cpu-s/report")
	if cpu > 0 {
		b.ReportMetric(float64(patients)/cpu, "patients/cpu-s")
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(patients)/sec, "patients/s")
	b.ReportMetric(1000*sec/float64(b.N), "ms/report")
	if rssOK {
		b.ReportMetric(rss(), "peak-RSS-MiB")
	}
}
