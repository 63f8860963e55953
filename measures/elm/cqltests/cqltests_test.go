package cqltests

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm"
)

var (
	updateBaseline = flag.Bool("update-baseline", false, "record the tests passing now in testdata/baseline.txt")
	reportPath     = flag.String("report", "", "write every non-passing test with CQL, expected and actual values to this file (JSON lines)")
)

const (
	testdataDir  = "testdata"
	baselineFile = "baseline.txt"
	// perTestTimeout bounds one test's compile and evaluation; a hung
	// operator fails its test instead of the whole package.
	perTestTimeout = 10 * time.Second
)

// status is the outcome of one suite test.
type status string

const (
	statusPass        status = "pass"
	statusFail        status = "fail"          // evaluated, wrong value (or no error where one was due)
	statusCompile     status = "compile-error" // the engine could not compile the ELM
	statusEval        status = "eval-error"    // evaluation raised an error, none expected
	statusPanic       status = "panic"         // the engine panicked or hung
	statusUntranslate status = "untranslatable"
	// statusRejected: the suite expects an error and the translator already
	// rejected the CQL, so the engine never sees it. Counted apart from
	// engine passes.
	statusRejected status = "rejected-by-translator"
)

type outcome struct {
	Family     string   `json:"family"`
	Test       string   `json:"test"`
	Status     status   `json:"status"`
	Expression string   `json:"expression"`
	Expected   string   `json:"expected"`
	Got        string   `json:"got,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Caps       []string `json:"capabilities,omitempty"`
	// Reference is what the reference engine (testdata/reference.json) did
	// with a test this engine does not pass: a hint to tell engine bugs from
	// suite or translator problems.
	Reference string `json:"reference,omitempty"`
	// Elapsed is the test's compile and evaluation time.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// TestSpecSuite runs every test of the HL7 CQL specification suite through
// the ELM engine and reports pass counts per family. It fails when a test in
// testdata/baseline.txt no longer passes; tests not yet passing are reported,
// not failed, so operator coverage can grow test by test.
func TestSpecSuite(t *testing.T) {
	m, err := loadManifest(testdataDir)
	require.NoError(t, err)
	require.NotEmpty(t, m.Families)

	all, err := runSuite(m)
	require.NoError(t, err)
	require.NotEmpty(t, all)
	ref, err := loadReference(filepath.Join(testdataDir, "reference.json"))
	require.NoError(t, err)
	for i := range all {
		all[i].Reference = ref.describe(all[i])
	}

	summarise(t, m, all)

	passing := make(map[string]bool)
	for _, o := range all {
		if o.Status == statusPass {
			passing[o.Family+"/"+o.Test] = true
		}
	}
	if *reportPath != "" {
		require.NoError(t, writeReport(*reportPath, all))
	}
	basePath := filepath.Join(testdataDir, baselineFile)
	if *updateBaseline {
		keys := make([]string, 0, len(passing))
		for k := range passing {
			keys = append(keys, k)
		}
		require.NoError(t, writeBaseline(basePath, keys))
		t.Logf("baseline updated: %d passing tests recorded in %s", len(keys), basePath)
		return
	}
	baseline, err := readBaseline(basePath)
	if errors.Is(err, os.ErrNotExist) {
		t.Logf("no %s yet: run with -update-baseline to record the %d passing tests", basePath, len(passing))
		return
	}
	require.NoError(t, err)
	var regressed, gained []string
	for k := range baseline {
		if !passing[k] {
			regressed = append(regressed, k)
		}
	}
	for k := range passing {
		if !baseline[k] {
			gained = append(gained, k)
		}
	}
	sort.Strings(regressed)
	sort.Strings(gained)
	if len(gained) > 0 {
		t.Logf("%d tests pass that are not in the baseline (record them with -update-baseline)", len(gained))
	}
	byKey := make(map[string]outcome, len(all))
	for _, o := range all {
		byKey[o.Family+"/"+o.Test] = o
	}
	for _, k := range regressed {
		o := byKey[k]
		t.Errorf("regression: %s now %s: %s\n  expression: %s\n  expected:   %s\n  got:        %s\n  %s",
			k, o.Status, o.Reason, o.Expression, o.Expected, o.Got, o.Reference)
	}
	require.GreaterOrEqual(t, len(passing), len(baseline), "pass count fell below the baseline")
}

// runSuite runs every test of the manifest.
func runSuite(m *manifest) ([]outcome, error) {
	var all []outcome
	for _, fam := range m.Families {
		lib, err := loadFamilyLibrary(filepath.Join(testdataDir, filepath.FromSlash(fam.ELM)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fam.Family, err)
		}
		for i, st := range fam.Tests {
			start := time.Now()
			o := runTest(lib, fam.Family, fmt.Sprintf("T%d", i), st)
			o.Elapsed = time.Since(start)
			all = append(all, o)
		}
	}
	return all, nil
}

// BenchmarkSpecSuite measures compiling and evaluating the whole suite, one
// library per test, as a rough figure of the engine's compile cost.
func BenchmarkSpecSuite(b *testing.B) {
	m, err := loadManifest(testdataDir)
	require.NoError(b, err)
	n := 0
	for b.Loop() {
		all, err := runSuite(m)
		require.NoError(b, err)
		n = len(all)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tests/s")
}

// runTest compiles the test's defines as their own library and compares the
// expression's value with the expected output's value.
func runTest(lib *familyLibrary, fam, libName string, st suiteTest) (o outcome) {
	o = outcome{Family: fam, Test: st.ID, Expression: st.Expression, Caps: st.Capabilities}
	switch {
	case st.expectsError():
		o.Expected = "error (invalid=" + st.Invalid + ")"
	case len(st.Outputs) > 0:
		o.Expected = st.Outputs[0]
	}
	if st.Define == "" {
		if st.expectsError() {
			o.Status, o.Reason = statusRejected, strings.Join(st.TranslationErrors, "; ")
			return o
		}
		o.Status, o.Reason = statusUntranslate, "expression: "+strings.Join(st.TranslationErrors, "; ")
		return o
	}
	if !st.expectsError() && st.ExpectedDefine == "" {
		o.Status = statusUntranslate
		o.Reason = "expected output: " + strings.Join(st.ExpectedTranslationErrors, "; ")
		if len(st.Outputs) == 0 {
			o.Reason = "the suite gives no expected output"
		}
		return o
	}

	done := make(chan outcome, 1)
	go func() {
		r := o
		defer func() {
			if p := recover(); p != nil {
				r.Status = statusPanic
				r.Reason = fmt.Sprintf("panic: %v\n%s", p, firstFrames(debug.Stack()))
				done <- r
			}
		}()
		done <- evaluate(lib, libName, st, r)
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(perTestTimeout):
		o.Status, o.Reason = statusPanic, fmt.Sprintf("no result within %s", perTestTimeout)
		return o
	}
}

func evaluate(lib *familyLibrary, libName string, st suiteTest, o outcome) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), perTestTimeout)
	defer cancel()
	expected := st.ExpectedDefine
	if st.expectsError() {
		expected = "" // the suite's output for invalid tests is not a value to compare
	}
	raw, err := lib.testLibrary(libName, st.Define, expected)
	if err != nil {
		o.Status, o.Reason = statusCompile, err.Error()
		return o
	}
	parsed, err := elm.ParseLibrary(raw)
	if err != nil {
		return compileFailure(st, o, err)
	}
	prog, err := elm.Compile(ctx, parsed.ID, elm.NewLibrarySet(parsed), noTerminology{}, elm.Options{Now: fixedNow})
	if err != nil {
		return compileFailure(st, o, err)
	}
	ectx := prog.NewContext()
	if err := ectx.Reset(ctx, noData{}, nil); err != nil {
		o.Status, o.Reason = statusEval, err.Error()
		return o
	}
	got, err := ectx.Eval(st.Define)
	if st.expectsError() {
		if err != nil {
			o.Status, o.Got, o.Reason = statusPass, "error", err.Error()
			return o
		}
		o.Status, o.Got, o.Reason = statusFail, formatValue(got), "expected an error, got a value"
		return o
	}
	if err != nil {
		o.Status, o.Reason = statusEval, err.Error()
		return o
	}
	o.Got = formatValue(got)
	want, err := ectx.Eval(st.ExpectedDefine)
	if err != nil {
		o.Status, o.Reason = statusEval, "evaluating the expected output: "+err.Error()
		return o
	}
	if lit, ok := parseLiteral(o.Expected); ok {
		if same, why := sameValue(want, lit); !same {
			o.Status = statusFail
			o.Reason = fmt.Sprintf("the engine reads the expected literal %s as %s (%s)", o.Expected, formatValue(want), why)
			return o
		}
	}
	if ok, why := sameValue(got, want); !ok {
		o.Status, o.Reason = statusFail, why
		if promotedEqual(got, want) {
			o.Reason += "; values equal after Integer-to-Decimal promotion"
		}
		if squeeze(formatValue(want)) != squeeze(o.Expected) {
			o.Reason += " (expected value " + formatValue(want) + ")"
		}
		return o
	}
	o.Status = statusPass
	return o
}

// compileFailure: a compile error is a pass when the suite expects the
// expression to be rejected (the engine refuses what the translator let by),
// unless the engine merely lacks the operator.
func compileFailure(st suiteTest, o outcome, err error) outcome {
	if st.expectsError() && !errors.Is(err, elm.ErrUnsupported) {
		o.Status, o.Got, o.Reason = statusPass, "compile error", err.Error()
		return o
	}
	o.Status, o.Reason = statusCompile, err.Error()
	return o
}

// fixedNow pins Now() so that a test and its expected output agree (the suite
// has Now() as an expected output) and runs are reproducible.
func fixedNow() time.Time { return time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC) }

// noTerminology: the suite uses no value sets.
type noTerminology struct{}

func (noTerminology) ValueSet(_ context.Context, url, version string) (elm.CodeSet, error) {
	return nil, fmt.Errorf("%w: %s|%s", elm.ErrValueSetNotFound, url, version)
}

// noData: the suite retrieves no patient data.
type noData struct{}

func (noData) Retrieve(context.Context, string) ([]json.RawMessage, error) { return nil, nil }

// squeeze drops white space, which the suite's outputs use freely.
func squeeze(s string) string {
	return strings.Join(strings.Fields(s), "")
}

func firstFrames(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	var keep []string
	for _, l := range lines {
		if strings.Contains(l, "measures/elm/") && !strings.Contains(l, "cqltests") {
			keep = append(keep, strings.TrimSpace(l))
		}
		if len(keep) == 4 {
			break
		}
	}
	return strings.Join(keep, "\n")
}
