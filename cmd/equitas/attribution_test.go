package main

import (
	"bufio"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// ndjson reads one synthetic NDJSON file.
func ndjson(t *testing.T, path string) []gjson.Result {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []gjson.Result
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		out = append(out, gjson.Parse(sc.Text()))
	}
	require.NoError(t, sc.Err())
	return out
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	return rows
}

func TestAttributionRunOnSyntheticPopulation(t *testing.T) {
	dir := t.TempDir()
	pop, data := filepath.Join(dir, "pop"), filepath.Join(dir, "data")
	code, _, errOut := runCLI(t, "synth", "--patients", "200", "--seed", "5", "--out", pop)
	require.Equal(t, 0, code, errOut)
	code, _, errOut = runCLI(t, "import", "--data", data, pop)
	require.Equal(t, 0, code, errOut)

	// The known answer, from the generated files: a patient with a
	// generalPractitioner and coverage in force on the as-of date is
	// attributed prospectively to that practitioner's NPI.
	npi := map[string]string{}
	for _, p := range ndjson(t, filepath.Join(pop, "Practitioner.ndjson")) {
		npi["Practitioner/"+p.Get("id").String()] = p.Get(`identifier.#(system=="http://hl7.org/fhir/sid/us-npi").value`).String()
	}
	covered := map[string]bool{}
	for _, c := range ndjson(t, filepath.Join(pop, "Coverage.ndjson")) {
		if c.Get("period.start").String() <= "2026-01-01" && c.Get("status").String() == "active" {
			covered[strings.TrimPrefix(c.Get("beneficiary.reference").String(), "Patient/")] = true
		}
	}
	want := map[string]string{}
	for _, p := range ndjson(t, filepath.Join(pop, "Patient.ndjson")) {
		id := p.Get("id").String()
		if gp := p.Get("generalPractitioner.0.reference").String(); gp != "" && covered[id] {
			want[id] = npi[gp]
		}
	}
	require.NotEmpty(t, want)
	// Clinicians each patient saw for an outpatient visit in the 12 months
	// before the as-of date.
	seen := map[string]map[string]bool{}
	for _, e := range ndjson(t, filepath.Join(pop, "ExplanationOfBenefit.ndjson")) {
		for _, it := range e.Get("item").Array() {
			code, day := it.Get("productOrService.coding.0.code").String(), it.Get("servicedDate").String()
			// Everything the generator bills but ED and inpatient care is
			// outpatient E&M.
			if strings.HasPrefix(code, "9928") || code == "99223" || day < "2025-01-01" || day >= "2026-01-01" {
				continue
			}
			id := strings.TrimPrefix(e.Get("patient.reference").String(), "Patient/")
			if seen[id] == nil {
				seen[id] = map[string]bool{}
			}
			seen[id][e.Get("provider.identifier.value").String()] = true
		}
	}

	for _, tc := range []struct {
		method string
		extra  []string
	}{
		{"prospective", nil},
		{"hybrid", nil},
		{"retrospective", nil},
		{"retrospective", []string{"--most-recent"}},
	} {
		t.Run(tc.method+strings.Join(tc.extra, ""), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "list.csv")
			args := append([]string{"attribution", "run", "--data", data, "--method", tc.method, "--as-of", "2026-01-01", "--csv", out}, tc.extra...)
			code, stdout, errOut := runCLI(t, args...)
			require.Equal(t, 0, code, errOut)
			assert.Contains(t, stdout, "of 200 patients ("+tc.method+")")
			rows := readCSV(t, out)
			require.Greater(t, len(rows), 1)
			got := map[string]string{}
			for _, r := range rows[1:] {
				require.Len(t, r, 10)
				if r[9] == "dropped" {
					continue
				}
				assert.True(t, covered[r[2]], "attributed patient %s has coverage", r[2])
				assert.NotEmpty(t, r[6], "provider rolled up to a TIN")
				got[r[2]] = r[5]
			}
			switch tc.method {
			case "prospective":
				assert.Equal(t, want, got)
			case "hybrid":
				for id, n := range want {
					assert.Equal(t, n, got[id], "selected PCP wins for %s", id)
				}
				assert.GreaterOrEqual(t, len(got), len(want))
			default:
				assert.NotEmpty(t, got)
				for id, n := range got {
					assert.True(t, seen[id][n], "%s attributed to %s, a clinician it saw", id, n)
				}
			}
		})
	}

	code, _, errOut = runCLI(t, "attribution", "run", "--data", data, "--method", "hybrid", "--as-of", "01/01/2026")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "YYYY-MM-DD")

	// show renders a list version with the members it had: version 1 (the
	// prospective run) against the latest (a later run with other rules).
	code, stdout, errOut := runCLI(t, "attribution", "run", "--data", data, "--method", "prospective", "--as-of", "2026-01-01")
	require.Equal(t, 0, code, errOut)
	var group string
	for _, line := range strings.Split(stdout, "\n") {
		if id, ok := strings.CutPrefix(line, "Group/"); ok {
			group, _, _ = strings.Cut(id, " ")
			break
		}
	}
	require.NotEmpty(t, group, stdout)
	code, v1, errOut := runCLI(t, "attribution", "show", group, "--data", data, "--version", "1")
	require.Equal(t, 0, code, errOut)
	first := gjson.Parse(v1)
	assert.Equal(t, "1", first.Get("meta.versionId").String())
	assert.NotEmpty(t, first.Get("member").Array())
	code, cur, errOut := runCLI(t, "attribution", "show", group, "--data", data, "--summary")
	require.Equal(t, 0, code, errOut)
	last := gjson.Parse(cur)
	assert.False(t, last.Get("member").Exists())
	assert.Equal(t, "SUBSETTED", last.Get("meta.tag.0.code").String())
	assert.Greater(t, last.Get("meta.versionId").Int(), int64(1))
	code, _, errOut = runCLI(t, "attribution", "show", "no-such-list", "--data", data)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "not found")
}
