package elm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/elm/cql"
)

// sharedDir finds ../shared relative to the module root.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("module root not found")
		}
		dir = parent
	}
	s := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(filepath.Join(s, "ecqm")); err != nil {
		t.Skipf("shared eCQM content not found at %s", s)
	}
	return s
}

func loadLibraries(t testing.TB, shared string) *elm.LibrarySet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(shared, "ecqm", "libraries", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	set := elm.NewLibrarySet()
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		lib, err := elm.ParseLibrary(data)
		require.NoError(t, err, f)
		set.Add(lib)
	}
	return set
}

func loadTerminology(t testing.TB, shared string) *elm.MemoryTerminology {
	t.Helper()
	terms := elm.NewMemoryTerminology()
	files, err := filepath.Glob(filepath.Join(shared, "ecqm", "measures", "*", "valuesets.json"))
	require.NoError(t, err)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var b struct {
			Entry []struct {
				Resource struct {
					URL       string `json:"url"`
					Expansion struct {
						Contains []struct {
							System, Code, Version, Display string
						} `json:"contains"`
					} `json:"expansion"`
				} `json:"resource"`
			} `json:"entry"`
		}
		require.NoError(t, json.Unmarshal(data, &b))
		for _, e := range b.Entry {
			var codes []cql.Code
			for _, c := range e.Resource.Expansion.Contains {
				codes = append(codes, cql.Code{Code: c.Code, System: c.System, Version: c.Version, Display: c.Display})
			}
			terms.Add(e.Resource.URL, "", codes...)
		}
	}
	return terms
}

// dirSource serves a test case folder's resources by type.
type dirSource map[string][]json.RawMessage

func (d dirSource) Retrieve(_ context.Context, t string) ([]json.RawMessage, error) { return d[t], nil }

func loadCase(t testing.TB, dir string) (dirSource, json.RawMessage) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	src := dirSource{}
	var report json.RawMessage
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		require.NoError(t, json.Unmarshal(data, &head))
		if head.ResourceType == "MeasureReport" {
			report = data
			continue
		}
		src[head.ResourceType] = append(src[head.ResourceType], data)
	}
	return src, report
}

func TestCompileAllLibraries(t *testing.T) {
	shared := sharedDir(t)
	libs := loadLibraries(t, shared)
	terms := loadTerminology(t, shared)
	files, _ := filepath.Glob(filepath.Join(shared, "ecqm", "libraries", "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		lib, err := elm.ParseLibrary(data)
		require.NoError(t, err)
		t.Run(lib.ID.Name, func(t *testing.T) {
			p, err := elm.Compile(context.Background(), lib.ID, libs, terms, elm.Options{})
			require.NoError(t, err)
			assert.Equal(t, lib.ID, p.Library())
		})
	}
}

type expected struct {
	Group []struct {
		Population []struct {
			Code struct {
				Coding []struct{ Code string } `json:"coding"`
			} `json:"code"`
			Count int `json:"count"`
		} `json:"population"`
	} `json:"group"`
}

// populationCounts applies proportion-measure population semantics to the
// definition results (booleans or lists of resources).
func populationCounts(t testing.TB, ectx *elm.Context, criteria map[string]string) map[string]int {
	t.Helper()
	members := func(code string) map[string]bool {
		name, ok := criteria[code]
		if !ok {
			return nil
		}
		v, err := ectx.Eval(name)
		require.NoError(t, err, name)
		out := map[string]bool{}
		switch x := v.(type) {
		case cql.Boolean:
			if x {
				out["patient"] = true
			}
		case cql.List:
			for _, e := range x {
				if f, ok := e.(*cql.FHIR); ok {
					out[f.ID()] = true
				}
			}
		}
		return out
	}
	and := func(a, b map[string]bool) map[string]bool {
		out := map[string]bool{}
		for k := range a {
			if b[k] {
				out[k] = true
			}
		}
		return out
	}
	minus := func(a, b map[string]bool) map[string]bool {
		out := map[string]bool{}
		for k := range a {
			if !b[k] {
				out[k] = true
			}
		}
		return out
	}
	ip := members("initial-population")
	den := and(ip, members("denominator"))
	counts := map[string]int{"initial-population": len(ip), "denominator": len(den)}
	excl := map[string]bool{}
	if _, ok := criteria["denominator-exclusion"]; ok {
		excl = and(den, members("denominator-exclusion"))
		counts["denominator-exclusion"] = len(excl)
	}
	num := and(minus(den, excl), members("numerator"))
	counts["numerator"] = len(num)
	if _, ok := criteria["denominator-exception"]; ok {
		exc := and(minus(minus(den, excl), num), members("denominator-exception"))
		counts["denominator-exception"] = len(exc)
	}
	return counts
}

// knownDefects lists test cases whose expected report is wrong (see
// shared/reference/measure-engine.md).
var knownDefects = map[string]string{
	"HbA1c level is 9.1%":                             "Observation value is a CodeableConcept, not a Quantity",
	"Glucose management indicator is greater than 9%": "Observation value is a CodeableConcept, not a Quantity (the GMI > 9% case)",
}

func TestMeasureTestCases(t *testing.T) {
	shared := sharedDir(t)
	libs := loadLibraries(t, shared)
	terms := loadTerminology(t, shared)
	measures := []string{"ControllingHighBloodPressureFHIR", "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR", "CMS71FHIRSTKAnticoagAFFlutter"}
	for _, m := range measures {
		t.Run(m, func(t *testing.T) {
			mdir := filepath.Join(shared, "ecqm", "measures", m)
			var measure struct {
				Group []struct {
					Population []struct {
						Code struct {
							Coding []struct{ Code string } `json:"coding"`
						} `json:"code"`
						Criteria struct{ Expression string } `json:"criteria"`
					} `json:"population"`
				} `json:"group"`
			}
			data, err := os.ReadFile(filepath.Join(mdir, "Measure.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(data, &measure))
			criteria := map[string]string{}
			for _, p := range measure.Group[0].Population {
				criteria[p.Code.Coding[0].Code] = p.Criteria.Expression
			}
			lib, err := libs.Library(context.Background(), elm.LibraryIdentifier{Name: m})
			require.NoError(t, err)
			prog, err := elm.Compile(context.Background(), lib.ID, libs, terms, elm.Options{})
			require.NoError(t, err)
			ectx := prog.NewContext()
			cases, err := os.ReadDir(filepath.Join(mdir, "tests"))
			require.NoError(t, err)
			require.NotEmpty(t, cases, "no test patients for %s", m)
			sort.Slice(cases, func(i, j int) bool { return cases[i].Name() < cases[j].Name() })
			pass := 0
			for _, cs := range cases {
				src, report := loadCase(t, filepath.Join(mdir, "tests", cs.Name()))
				var exp expected
				require.NoError(t, json.Unmarshal(report, &exp))
				desc := caseDescription(report)
				require.NoError(t, ectx.Reset(context.Background(), src, nil))
				got := populationCounts(t, ectx, criteria)
				want := map[string]int{}
				for _, p := range exp.Group[0].Population {
					want[p.Code.Coding[0].Code] = p.Count
				}
				if reason, ok := knownDefects[desc]; ok && m == "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR" {
					t.Logf("known data defect in %q (%s): expected %v, got %v", desc, reason, want, got)
					continue
				}
				if assert.Equal(t, want, got, "case %s (%s)", cs.Name(), desc) {
					pass++
				}
			}
			t.Logf("%s: %d/%d cases match", m, pass, len(cases))
		})
	}
}

// loadPatients loads the test patients of shipped measure m.
func loadPatients(tb testing.TB, shared, m string) []dirSource {
	mdir := filepath.Join(shared, "ecqm", "measures", m, "tests")
	cases, err := os.ReadDir(mdir)
	require.NoError(tb, err)
	require.NotEmpty(tb, cases, "no test patients for %s", m)
	srcs := make([]dirSource, 0, len(cases))
	for _, c := range cases {
		src, _ := loadCase(tb, filepath.Join(mdir, c.Name()))
		srcs = append(srcs, src)
	}
	return srcs
}

func caseDescription(report json.RawMessage) string {
	var r struct {
		Extension []struct {
			URL           string `json:"url"`
			ValueMarkdown string `json:"valueMarkdown"`
		} `json:"extension"`
	}
	_ = json.Unmarshal(report, &r)
	for _, e := range r.Extension {
		if strings.HasSuffix(e.URL, "cqfm-testCaseDescription") {
			return e.ValueMarkdown
		}
	}
	return ""
}

// BenchmarkCMS165 evaluates every CMS165 test patient (parsing its JSON
// each time, as a fresh patient would be) and reports patient-measure
// evaluations per second on one goroutine.
func BenchmarkCMS165(b *testing.B) {
	shared := sharedDir(b)
	libs := loadLibraries(b, shared)
	terms := loadTerminology(b, shared)
	m := "ControllingHighBloodPressureFHIR"
	lib, err := libs.Library(context.Background(), elm.LibraryIdentifier{Name: m})
	require.NoError(b, err)
	prog, err := elm.Compile(context.Background(), lib.ID, libs, terms, elm.Options{})
	require.NoError(b, err)
	srcs := loadPatients(b, shared, m)
	names := []string{"Initial Population", "Denominator", "Denominator Exclusions", "Numerator", "SDE Ethnicity", "SDE Payer", "SDE Race", "SDE Sex"}
	var refs []elm.DefRef
	for _, n := range names {
		r, ok := prog.Ref(n)
		require.True(b, ok, n)
		refs = append(refs, r)
	}
	ectx := prog.NewContext()
	ctx := context.Background()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		src := srcs[i%len(srcs)]
		if err := ectx.Reset(ctx, src, nil); err != nil {
			b.Fatal(err)
		}
		for _, r := range refs {
			if _, err := ectx.EvalRef(r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "patients/s")
	// The build machine is shared; CPU time is the stable figure.
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "patients/cpu-s")
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestConcurrentEvaluation shares one Program between goroutines (one
// Context each) and checks every patient's results equal a sequential run.
func TestConcurrentEvaluation(t *testing.T) {
	shared := sharedDir(t)
	libs := loadLibraries(t, shared)
	terms := loadTerminology(t, shared)
	m := "CMS71FHIRSTKAnticoagAFFlutter"
	lib, err := libs.Library(context.Background(), elm.LibraryIdentifier{Name: m})
	require.NoError(t, err)
	prog, err := elm.Compile(context.Background(), lib.ID, libs, terms, elm.Options{})
	require.NoError(t, err)
	srcs := loadPatients(t, shared, m)
	summary := func(ectx *elm.Context, src dirSource) string {
		res, err := ectx.Evaluate(context.Background(), src, nil)
		require.NoError(t, err)
		var b strings.Builder
		for _, n := range res.Names() {
			v, _ := res.Get(n)
			fmt.Fprintf(&b, "%s=%s;", n, describe(v))
		}
		return b.String()
	}
	want := make([]string, len(srcs))
	seq := prog.NewContext()
	for i, s := range srcs {
		want[i] = summary(seq, s)
	}
	const workers = 4
	got := make([][]string, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ectx := prog.NewContext()
			for i := range srcs {
				// Each worker walks the patients in a different order.
				j := (i*(w+1) + w) % len(srcs)
				if got[w] == nil {
					got[w] = make([]string, len(srcs))
				}
				got[w][j] = summary(ectx, srcs[j])
			}
		}(w)
	}
	wg.Wait()
	for w := range got {
		for i := range srcs {
			if got[w][i] != "" {
				assert.Equal(t, want[i], got[w][i], "worker %d patient %d", w, i)
			}
		}
	}
}

// describe renders a value deterministically (resources by type/id).
func describe(v cql.Value) string {
	switch x := v.(type) {
	case cql.List:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = describe(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case *cql.FHIR:
		if rt := x.ResourceType(); rt != "" {
			return rt + "/" + x.ID()
		}
		return fmt.Sprint(cql.ToCQLValue(x))
	case *cql.Tuple:
		parts := make([]string, len(x.Names))
		for i, n := range x.Names {
			parts[i] = n + ":" + describe(x.Values[i])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case *cql.Interval:
		return fmt.Sprintf("Interval(%s,%s,%v,%v)", describe(x.Low), describe(x.High), x.LowClosed, x.HighClosed)
	case *cql.Concept:
		return fmt.Sprint(*x)
	}
	return fmt.Sprint(v)
}

// BenchmarkCompileCMS165 measures compiling the CMS165 library closure
// (libraries already parsed), the one-off cost per measure.
func BenchmarkCompileCMS165(b *testing.B) {
	shared := sharedDir(b)
	libs := loadLibraries(b, shared)
	terms := loadTerminology(b, shared)
	id := elm.LibraryIdentifier{Name: "ControllingHighBloodPressureFHIR"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := elm.Compile(context.Background(), id, libs, terms, elm.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNoCompileWarningsOnShippedLibraries(t *testing.T) {
	shared := sharedDir(t)
	libs := loadLibraries(t, shared)
	terms := loadTerminology(t, shared)
	for _, m := range []string{"ControllingHighBloodPressureFHIR", "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR", "CMS71FHIRSTKAnticoagAFFlutter"} {
		prog, err := elm.Compile(context.Background(), elm.LibraryIdentifier{Name: m}, libs, terms, elm.Options{})
		require.NoError(t, err)
		assert.Empty(t, prog.Warnings(), m)
	}
}

// BenchmarkMeasureCases evaluates every definition of each shipped
// measure's root library for each of its test patients.
func BenchmarkMeasureCases(b *testing.B) {
	shared := sharedDir(b)
	libs := loadLibraries(b, shared)
	terms := loadTerminology(b, shared)
	for _, m := range []string{"ControllingHighBloodPressureFHIR", "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR", "CMS71FHIRSTKAnticoagAFFlutter"} {
		b.Run(m, func(b *testing.B) {
			prog, err := elm.Compile(context.Background(), elm.LibraryIdentifier{Name: m}, libs, terms, elm.Options{})
			require.NoError(b, err)
			srcs := loadPatients(b, shared, m)
			ectx := prog.NewContext()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := ectx.Evaluate(context.Background(), srcs[i%len(srcs)], nil); err != nil {
					b.Fatal(err)
				}
			}
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(b.N)/cpu.Seconds(), "patients/cpu-s")
			}
		})
	}
}
