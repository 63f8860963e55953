package measure

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const cms165 = "ControllingHighBloodPressureFHIR"

// copyContent copies the libraries and one measure (without its test
// cases) of the shared eCQM content into a temporary directory.
func copyContent(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join(measuretest.SharedDir(t), "ecqm")
	dst := t.TempDir()
	libs, err := filepath.Glob(filepath.Join(src, "libraries", "*.json"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "libraries"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dst, "measures", name), 0o755))
	cp := func(from, to string) {
		raw, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, raw, 0o644))
	}
	for _, l := range libs {
		cp(l, filepath.Join(dst, "libraries", filepath.Base(l)))
	}
	for _, f := range []string{"Measure.json", "valuesets.json"} {
		cp(filepath.Join(src, "measures", name, f), filepath.Join(dst, "measures", name, f))
	}
	return dst
}

func TestContentLoadResolvesClosure(t *testing.T) {
	content := Content{Dir: filepath.Join(measuretest.SharedDir(t), "ecqm")}
	names, err := content.Measures()
	require.NoError(t, err)
	assert.Len(t, names, 3)
	pkg, err := content.Load(context.Background(), cms165)
	require.NoError(t, err)
	assert.Equal(t, cms165, pkg.Root.ID.Name)
	var libs []string
	for _, l := range pkg.Libraries {
		libs = append(libs, l.ID.Name)
	}
	// The closure follows ELM includes transitively, each library once.
	for _, want := range []string{"FHIRHelpers", "QICoreCommon", "SupplementalDataElements", "Status", "AdvancedIllnessandFrailty",
		"AdultOutpatientEncounters", "Hospice", "PalliativeCare", "CumulativeMedicationDuration"} {
		assert.Contains(t, libs, want)
	}
	assert.NotContains(t, libs, "TJCOverall", "libraries outside the closure are not loaded")
	seen := map[string]bool{}
	for _, l := range libs {
		assert.False(t, seen[l], "library %s loaded twice", l)
		seen[l] = true
	}
	assert.Greater(t, pkg.Terminology.Len(), 10)
}

func TestContentLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		breakf func(t *testing.T, dir string)
		want   []string
	}{
		{"missing included library", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "libraries", "FHIRHelpers.json")))
		}, []string{"library FHIRHelpers version 4.4.000", "included by"}},
		{"missing primary library", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "libraries", cms165+".json")))
		}, []string{"Measure.library", "not found"}},
		{"unknown value set", func(t *testing.T, dir string) {
			f := filepath.Join(dir, "measures", cms165, "valuesets.json")
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			var b map[string]any
			require.NoError(t, json.Unmarshal(raw, &b))
			entries := b["entry"].([]any)
			var kept []any
			for _, e := range entries {
				if !strings.HasSuffix(e.(map[string]any)["resource"].(map[string]any)["url"].(string), "2.16.840.1.113883.3.526.3.1002") {
					kept = append(kept, e)
				}
			}
			require.Len(t, kept, len(entries)-1)
			b["entry"] = kept
			raw, err = json.Marshal(b)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(f, raw, 0o644))
		}, []string{"Chronic Kidney Disease, Stage 5", "2.16.840.1.113883.3.526.3.1002", "valuesets.json"}},
		{"malformed ELM", func(t *testing.T, dir string) {
			f := filepath.Join(dir, "libraries", "Status.json")
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			var lib map[string]any
			require.NoError(t, json.Unmarshal(raw, &lib))
			for _, c := range lib["content"].([]any) {
				cm := c.(map[string]any)
				if cm["contentType"] == "application/elm+json" {
					cm["data"] = "bm90IEVMTQ==" // "not ELM"
				}
			}
			raw, err = json.Marshal(lib)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(f, raw, 0o644))
		}, []string{"Status.json"}},
		{"malformed Measure", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "measures", cms165, "Measure.json"), []byte(`{"resourceType":"Measure"`), 0o644))
		}, []string{"Measure.json", "malformed JSON"}},
		{"not a Library", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "libraries", "x.json"), []byte(`{"resourceType":"Patient"}`), 0o644))
		}, []string{"x.json", "want Library"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyContent(t, cms165)
			tt.breakf(t, dir)
			_, err := Content{Dir: dir}.Load(context.Background(), cms165)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrBadContent)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := Content{Dir: t.TempDir()}.Load(context.Background(), "Nope")
	require.ErrorIs(t, err, ErrBadContent)
	assert.Contains(t, err.Error(), `measure "Nope" not found`)
	_, err = Content{Dir: t.TempDir()}.Load(context.Background(), "../etc")
	require.ErrorIs(t, err, ErrBadContent)
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in, start, end string
		err            bool
	}{
		{in: "2025-01-01/2025-12-31", start: "2025-01-01T00:00:00.000Z", end: "2025-12-31T23:59:59.999Z"},
		{in: "2025/2025", start: "2025-01-01T00:00:00.000Z", end: "2025-12-31T23:59:59.999Z"},
		{in: "2024-02/2024-02", start: "2024-02-01T00:00:00.000Z", end: "2024-02-29T23:59:59.999Z"},
		{in: "2025-01-01T08:00:00-05:00/2025-06-30T17:00:00-05:00", start: "2025-01-01T08:00:00.000-05:00", end: "2025-06-30T17:00:00.999-05:00"},
		{in: "2025-12-31/2025-01-01", err: true},
		{in: "2025-01-01", err: true},
		{in: "x/y", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePeriod(tt.in)
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.start, p.Start.String())
			assert.Equal(t, tt.end, p.End.String())
		})
	}
}
