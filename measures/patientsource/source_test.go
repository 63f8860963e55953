package patientsource

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func collect(t *testing.T, s Source) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	require.NoError(t, s.Each(context.Background(), func(p *Patient) error {
		m := map[string]int{}
		for rt, rs := range p.Resources {
			m[rt] = len(rs)
			for _, r := range rs {
				require.True(t, json.Valid(r))
			}
		}
		out[p.ID] = m
		return nil
	}))
	return out
}

func TestDirFolderPerPatient(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "case1", "Patient-a.json"), `{"resourceType":"Patient","id":"a"}`)
	writeFile(t, filepath.Join(root, "case1", "Encounter-1.json"), `{"resourceType":"Encounter","id":"1","subject":{"reference":"Patient/a"}}`)
	writeFile(t, filepath.Join(root, "case1", "MeasureReport-x.json"), `{"resourceType":"MeasureReport","id":"x"}`)
	writeFile(t, filepath.Join(root, "case2", "bundle.json"), `{"resourceType":"Bundle","type":"collection","entry":[
		{"resource":{"resourceType":"Patient","id":"b"}},{"resource":{"resourceType":"Condition","id":"c1"}},{"resource":{"resourceType":"Condition","id":"c2"}}]}`)

	s, err := Open(root)
	require.NoError(t, err)
	assert.Equal(t, map[string]map[string]int{
		"a": {"Patient": 1, "Encounter": 1},
		"b": {"Patient": 1, "Condition": 2},
	}, collect(t, s))

	// A single case folder is one patient.
	s, err = Open(filepath.Join(root, "case1"))
	require.NoError(t, err)
	assert.Equal(t, map[string]map[string]int{"a": {"Patient": 1, "Encounter": 1}}, collect(t, s))
}

func TestDirErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no patient", map[string]string{"c/Encounter-1.json": `{"resourceType":"Encounter","id":"1"}`}, "exactly one Patient"},
		{"two patients", map[string]string{"c/P1.json": `{"resourceType":"Patient","id":"1"}`, "c/P2.json": `{"resourceType":"Patient","id":"2"}`}, "found 2"},
		{"bad JSON", map[string]string{"c/P1.json": `{"resourceType":`}, "malformed JSON"},
		{"not a resource", map[string]string{"c/P1.json": `{"id":"x"}`}, "no resourceType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for p, c := range tt.files {
				writeFile(t, filepath.Join(root, p), c)
			}
			s, err := Open(root)
			require.NoError(t, err)
			err = s.Each(context.Background(), func(*Patient) error { return nil })
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := Open(t.TempDir())
	assert.ErrorIs(t, err, ErrNoPatients)
}

// writeNDJSON writes n patients with resources spread over type files.
func writeNDJSON(t *testing.T, dir string, n int) {
	var pats, encs, obs, orgs strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&pats, `{"resourceType":"Patient","id":"p%03d"}`+"\n", i)
		for j := 0; j < i%3+1; j++ {
			fmt.Fprintf(&encs, `{"resourceType":"Encounter","id":"e%d-%d","subject":{"reference":"Patient/p%03d"}}`+"\n", i, j, i)
		}
		fmt.Fprintf(&obs, `{"resourceType":"Coverage","id":"c%d","beneficiary":{"reference":"https://x.org/fhir/Patient/p%03d/_history/2"}}`+"\n\n", i, i)
	}
	orgs.WriteString(`{"resourceType":"Organization","id":"o1"}` + "\n")
	writeFile(t, filepath.Join(dir, "Patient.ndjson"), pats.String())
	writeFile(t, filepath.Join(dir, "Encounter.ndjson"), encs.String())
	writeFile(t, filepath.Join(dir, "Coverage.ndjson"), obs.String())
	writeFile(t, filepath.Join(dir, "Organization.ndjson"), orgs.String())
	// Resources of a patient that is not in the export are skipped.
	writeFile(t, filepath.Join(dir, "Condition.ndjson"), `{"resourceType":"Condition","id":"x","subject":{"reference":"Patient/ghost"}}`)
}

func TestNDJSONInMemoryAndPartitionedAgree(t *testing.T) {
	dir := t.TempDir()
	writeNDJSON(t, dir, 50)
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	require.NoError(t, err)
	sort.Strings(files)

	inMem := collect(t, NewNDJSON(files, NDJSONOptions{}))
	// A tiny budget forces many partitions on disk.
	parted := collect(t, NewNDJSON(files, NDJSONOptions{MemoryBudget: 512, TempDir: t.TempDir()}))
	assert.Equal(t, inMem, parted)
	require.Len(t, inMem, 50)
	assert.Equal(t, map[string]int{"Patient": 1, "Encounter": 3, "Coverage": 1, "Organization": 1}, inMem["p002"])
	assert.NotContains(t, inMem, "ghost")

	s, err := Open(dir)
	require.NoError(t, err)
	assert.IsType(t, &NDJSON{}, s)
}

func TestNDJSONMalformedLine(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Patient.ndjson"), `{"resourceType":"Patient","id":"a"}`+"\n"+`{"resourceType":`+"\n")
	err := NewNDJSON([]string{filepath.Join(dir, "Patient.ndjson")}, NDJSONOptions{}).Each(context.Background(), func(*Patient) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2: malformed JSON")
}

func TestPatientFromRef(t *testing.T) {
	tests := map[string]string{
		"Patient/1":                 "1",
		"http://x/fhir/Patient/abc": "abc",
		"Patient/1/_history/3":      "1",
		"Group/1":                   "",
		"RelatedPatient/1":          "",
		"urn:uuid:0f1e":             "",
		"":                          "",
	}
	for in, want := range tests {
		assert.Equal(t, want, patientFromRef(in), in)
	}
}

func FuzzLineOwner(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Encounter","subject":{"reference":"Patient/1"}}`))
	f.Add([]byte(`{"resourceType":"Patient","id":"x"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rt, pid := lineOwner(line)
		if rt == "Patient" {
			return
		}
		if pid != "" {
			assert.NotContains(t, pid, "/")
		}
	})
}

// FuzzParseRecord checks that any record parseRecord accepts is one that
// writeRecord would write, so that it reads back unchanged.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte("9 EncounterP1\t{}"))
	f.Add([]byte("x"))
	f.Add([]byte("-1 \t"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		rt, pid, line, err := parseRecord(rec)
		if err != nil {
			return
		}
		assert.NotContains(t, pid, "\t")
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		require.NoError(t, writeRecord(w, rt, pid, line))
		require.NoError(t, w.Flush())
		rt2, pid2, line2, err := parseRecord(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		require.NoError(t, err)
		assert.Equal(t, []string{rt, pid, string(line)}, []string{rt2, pid2, string(line2)})
	})
}

// TestRecordRoundTrip writes partition records and parses them back.
func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct{ rt, pid, line string }{
		{"Encounter", "P1", `{"resourceType":"Encounter"}`},
		{"Observation", "", `{}`},
		{"", "p", ""},
		{"A B", "x y", "a\tb"},
	} {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		require.NoError(t, writeRecord(w, tc.rt, tc.pid, []byte(tc.line)))
		require.NoError(t, w.Flush())
		rec, ok := bytes.CutSuffix(buf.Bytes(), []byte("\n"))
		require.True(t, ok, "a record ends in a newline")
		rt, pid, line, err := parseRecord(rec)
		require.NoError(t, err)
		assert.Equal(t, tc, struct{ rt, pid, line string }{rt, pid, string(line)})
	}
	for _, bad := range []string{"x", "9 Enc\t{}", "-1 \t", "3\tabc def"} {
		_, _, _, err := parseRecord([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

// TestNDJSONRejectsControlCharactersInOwner checks that a patient reference
// no FHIR id can be (here with a tab or newline, which would break the
// partition records) fails the run with a clear error, in memory and
// partitioned alike, before any patient is delivered.
func TestNDJSONRejectsControlCharactersInOwner(t *testing.T) {
	for _, ref := range []string{`Patient/a\tb`, `Patient/a\nb`} {
		dir := t.TempDir()
		f := filepath.Join(dir, "Encounter.ndjson")
		data := `{"resourceType":"Patient","id":"a"}` + "\n" +
			`{"resourceType":"Encounter","id":"e1","subject":{"reference":"` + ref + `"}}` + "\n"
		require.NoError(t, os.WriteFile(f, []byte(data), 0o644))
		for _, budget := range []int64{1 << 20, 1} {
			src := NewNDJSON([]string{f}, NDJSONOptions{MemoryBudget: budget, TempDir: t.TempDir()})
			delivered := 0
			err := src.Each(context.Background(), func(*Patient) error { delivered++; return nil })
			require.Error(t, err, "%s, budget %d", ref, budget)
			assert.Contains(t, err.Error(), "control character")
			assert.Zero(t, delivered)
		}
	}
}
