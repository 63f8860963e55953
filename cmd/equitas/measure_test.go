package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/validate"
)

// ecqmDir locates ../shared/ecqm from the repository root or skips.
func ecqmDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "ecqm")
	if _, err := os.Stat(filepath.Join(d, "measures")); err != nil {
		t.Skipf("eCQM content not found at %s (../shared/ecqm from the repository root)", d)
	}
	return d
}

func runMeasureCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

type cliReport struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Status       string `json:"status"`
	Measure      string `json:"measure"`
	Subject      *struct {
		Reference string `json:"reference"`
	} `json:"subject"`
	Period struct{ Start, End string } `json:"period"`
	Group  []struct {
		Population []struct {
			Code struct {
				Coding []struct{ Code string } `json:"coding"`
			} `json:"code"`
			Count int `json:"count"`
		} `json:"population"`
	} `json:"group"`
}

func (r cliReport) counts() map[string]int {
	out := map[string]int{}
	for _, g := range r.Group {
		for _, p := range g.Population {
			out[p.Code.Coding[0].Code] += p.Count
		}
	}
	return out
}

func TestMeasureEvalIndividualOneCase(t *testing.T) {
	ecqm := ecqmDir(t)
	const name = "CMS71FHIRSTKAnticoagAFFlutter"
	// A case with two episodes: counts above 1 exercise the episode basis.
	caseDir := filepath.Join(ecqm, "measures", name, "tests")
	cases, err := filepath.Glob(filepath.Join(caseDir, "*", "MeasureReport-*.json"))
	require.NoError(t, err)
	var chosen string
	var expected cliReport
	for _, c := range cases {
		raw, err := os.ReadFile(c)
		require.NoError(t, err)
		var r cliReport
		require.NoError(t, json.Unmarshal(raw, &r))
		if r.counts()["initial-population"] == 2 {
			chosen, expected = filepath.Dir(c), r
			break
		}
	}
	require.NotEmpty(t, chosen, "a CMS71 case with two episodes")

	out := filepath.Join(t.TempDir(), "bundle.json")
	_, stderr, err := runMeasureCLI(t, "measure", "eval", "--content", ecqm, "--measure", name, "--patients", chosen, "--report", "individual", "--out", out)
	require.NoError(t, err, stderr)
	assert.Contains(t, stderr, "1 patients evaluated (0 failed)")
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	v, err := validate.New()
	require.NoError(t, err)
	_, _, err = v.Resource(raw)
	require.NoError(t, err, "the Bundle is valid FHIR R4")
	var bundle struct {
		ResourceType, Type string
		Entry              []struct {
			Resource cliReport `json:"resource"`
		} `json:"entry"`
	}
	require.NoError(t, json.Unmarshal(raw, &bundle))
	assert.Equal(t, "Bundle", bundle.ResourceType)
	assert.Equal(t, "collection", bundle.Type)
	require.Len(t, bundle.Entry, 1)
	rep := bundle.Entry[0].Resource
	assert.Equal(t, "individual", rep.Type)
	assert.Equal(t, "complete", rep.Status)
	assert.Contains(t, rep.Measure, "https://madie.cms.gov/Measure/CMS71FHIRSTKAnticoagAFFlutter")
	assert.Equal(t, "Patient/"+filepath.Base(chosen), rep.Subject.Reference)
	assert.Equal(t, expected.Period, rep.Period, "period defaults to the Measure's effectivePeriod")
	assert.Equal(t, expected.counts(), rep.counts())
}

func TestMeasureEvalSummaryToStdout(t *testing.T) {
	ecqm := ecqmDir(t)
	// CMS122 is left out: two of its cases have known data defects.
	for _, c := range []struct{ name, period string }{
		{"ControllingHighBloodPressureFHIR", "2025-01-01/2025-12-31"},
		{"CMS71FHIRSTKAnticoagAFFlutter", ""},
	} {
		t.Run(c.name, func(t *testing.T) { checkSummary(t, ecqm, c.name, c.period) })
	}
}

func checkSummary(t *testing.T, ecqm, name, period string) {
	tests := filepath.Join(ecqm, "measures", name, "tests")
	args := []string{"measure", "eval", "--content", ecqm, "--measure", name, "--patients", tests}
	if period != "" {
		args = append(args, "--period", period)
	}
	stdout, stderr, err := runMeasureCLI(t, args...)
	require.NoError(t, err, stderr)
	v, err := validate.New()
	require.NoError(t, err)
	_, _, err = v.Resource([]byte(stdout))
	require.NoError(t, err, "the summary is valid FHIR R4")
	var rep cliReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.Equal(t, "summary", rep.Type)
	assert.Nil(t, rep.Subject)
	// The summary counts are the sums of the cases' expected counts.
	want := map[string]int{}
	files, err := filepath.Glob(filepath.Join(tests, "*", "MeasureReport-*.json"))
	require.NoError(t, err)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var r cliReport
		require.NoError(t, json.Unmarshal(raw, &r))
		for k, v := range r.counts() {
			want[k] += v
		}
	}
	assert.Equal(t, want, rep.counts())
}

func TestMeasureEvalBadInput(t *testing.T) {
	ecqm := ecqmDir(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown measure", []string{"--measure", "NoSuchMeasure", "--patients", ecqm}, `measure "NoSuchMeasure" not found`},
		{"bad report type", []string{"--measure", "ControllingHighBloodPressureFHIR", "--patients", ecqm, "--report", "nope"}, "--report"},
		{"bad period", []string{"--measure", "ControllingHighBloodPressureFHIR", "--patients", ecqm, "--period", "2025"}, "START/END"},
		{"missing patients", []string{"--measure", "ControllingHighBloodPressureFHIR", "--patients", filepath.Join(t.TempDir(), "none")}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.json")
			args := append([]string{"measure", "eval", "--content", ecqm, "--out", out}, tt.args...)
			_, _, err := runMeasureCLI(t, args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			_, statErr := os.Stat(out)
			assert.True(t, os.IsNotExist(statErr), "nothing written on failure")
		})
	}
}

func TestMeasureEvalSubjectList(t *testing.T) {
	ecqm := ecqmDir(t)
	const name = "ControllingHighBloodPressureFHIR"
	stdout, stderr, err := runMeasureCLI(t, "measure", "eval", "--content", ecqm, "--measure", name,
		"--patients", filepath.Join(ecqm, "measures", name, "tests"), "--report", "subject-list")
	require.NoError(t, err, stderr)
	var rep struct {
		Type      string `json:"type"`
		Contained []struct {
			ResourceType string            `json:"resourceType"`
			ID           string            `json:"id"`
			Entry        []json.RawMessage `json:"entry"`
		} `json:"contained"`
		Group []struct {
			Population []struct {
				Count          int `json:"count"`
				SubjectResults struct {
					Reference string `json:"reference"`
				} `json:"subjectResults"`
			} `json:"population"`
		} `json:"group"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.Equal(t, "subject-list", rep.Type)
	lists := map[string]int{}
	for _, c := range rep.Contained {
		if c.ResourceType == "List" {
			lists["#"+c.ID] = len(c.Entry)
		}
	}
	require.NotEmpty(t, rep.Group)
	for _, p := range rep.Group[0].Population {
		// Patient-based: one subject per counted patient.
		assert.Equal(t, p.Count, lists[p.SubjectResults.Reference])
	}
}

func TestMeasureList(t *testing.T) {
	ecqm := ecqmDir(t)
	stdout, _, err := runMeasureCLI(t, "measure", "list", "--content", ecqm)
	require.NoError(t, err)
	assert.Contains(t, stdout, "CMS71FHIRSTKAnticoagAFFlutter\thttps://madie.cms.gov/Measure/CMS71FHIRSTKAnticoagAFFlutter|0.3.001\tgroup 1\tproportion\tEncounter\tincrease")
	assert.Contains(t, stdout, "ControllingHighBloodPressureFHIR\t")
	_, _, err = runMeasureCLI(t, "measure", "list", "--content", t.TempDir())
	require.Error(t, err)
}

// TestMeasureEvalOverStore evaluates the same synthetic population from
// NDJSON files and from the store they were imported into: the summaries
// must agree, and the store run must find a real population.
func TestMeasureEvalOverStore(t *testing.T) {
	ecqm := ecqmDir(t)
	pop, data := t.TempDir(), filepath.Join(t.TempDir(), "data")
	_, stderr, err := runMeasureCLI(t, "synth", "--patients", "150", "--seed", "7", "--out", pop)
	require.NoError(t, err, stderr)
	_, stderr, err = runMeasureCLI(t, "import", "--data", data, pop)
	require.NoError(t, err, stderr)

	summary := func(from ...string) map[string]int {
		args := append([]string{"measure", "eval", "--content", ecqm, "--measure", "ControllingHighBloodPressureFHIR", "--report", "summary"}, from...)
		out, stderr, err := runMeasureCLI(t, args...)
		require.NoError(t, err, stderr)
		var r cliReport
		require.NoError(t, json.Unmarshal([]byte(out), &r))
		return r.counts()
	}
	fromStore := summary("--data", data)
	assert.Equal(t, summary("--patients", pop), fromStore)
	assert.Positive(t, fromStore["denominator"])
	assert.Positive(t, fromStore["numerator"])

	_, _, err = runMeasureCLI(t, "measure", "eval", "--content", ecqm, "--measure", "ControllingHighBloodPressureFHIR", "--data", data, "--patients", pop)
	assert.Error(t, err, "--data and --patients are exclusive")
}

// TestWriteWhole checks that output appears only when the writer succeeds:
// a failure leaves no file, no temporary file and no bytes on stdout.
func TestWriteWhole(t *testing.T) {
	failing := func(w io.Writer) error {
		_, _ = io.WriteString(w, "half")
		return errors.New("boom")
	}
	ok := func(w io.Writer) error {
		_, err := io.WriteString(w, "whole")
		return err
	}
	t.Run("failure to file", func(t *testing.T) {
		dir := t.TempDir()
		var stdout bytes.Buffer
		require.ErrorContains(t, writeWhole(filepath.Join(dir, "out"), &stdout, failing), "boom")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, entries, "no file and no temporary file left")
		assert.Empty(t, stdout.String())
	})
	t.Run("failure to stdout", func(t *testing.T) {
		var stdout bytes.Buffer
		require.Error(t, writeWhole("", &stdout, failing))
		assert.Empty(t, stdout.String())
	})
	t.Run("success to file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "out")
		var stdout bytes.Buffer
		require.NoError(t, writeWhole(path, &stdout, ok))
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "whole", string(got))
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, entries, 1, "the temporary file became the output")
		assert.Empty(t, stdout.String())
	})
	t.Run("success to stdout", func(t *testing.T) {
		var stdout bytes.Buffer
		require.NoError(t, writeWhole("", &stdout, ok))
		assert.Equal(t, "whole", stdout.String())
	})
}
