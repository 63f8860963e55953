package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/measures/patientsource"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// TestAcceptanceThroughStore loads every CMS165 test case into one badger
// store and evaluates the measure over the store's patients, as the server
// does: each patient's data comes from its compartment index. Resource ids
// repeat across cases, so each case's ids get the case folder as prefix and
// references are rewritten to match.
func TestAcceptanceThroughStore(t *testing.T) {
	content := Content{Dir: filepath.Join(measuretest.SharedDir(t), "ecqm")}
	const name = "ControllingHighBloodPressureFHIR"
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()

	dirs, err := filepath.Glob(filepath.Join(content.Dir, "measures", name, "tests", "*"))
	require.NoError(t, err)
	expected := map[string]expectedReport{}
	caseOf := map[string]string{}
	for _, dir := range dirs {
		exp := readExpected(t, dir)
		expected[exp.subject], caseOf[exp.subject] = exp, filepath.Base(dir)
		p, err := patientsource.ReadFolder(dir)
		require.NoError(t, err)
		_, err = st.Commit(ctx, store.Tx{Writes: uniqueIDs(t, filepath.Base(dir)[:8], p)})
		require.NoError(t, err)
	}

	m, period := compileMeasure(t, content, name)
	seen := 0
	_, err = m.Run(ctx, patientsource.NewStore(st), RunOptions{Period: period}, checkCases(t, expected, caseOf, &seen))
	require.NoError(t, err)
	assert.Equal(t, len(dirs), seen, "every case's patient comes out of the store once")

	// A restricted population (a Group's members) evaluates only those.
	src := patientsource.NewStore(st)
	for id := range expected {
		src.Patients = append(src.Patients, id)
		break
	}
	src.Patients = append(src.Patients, "no-such-patient")
	seen = 0
	_, err = m.Run(ctx, src, RunOptions{Period: period}, func(r *PatientResult) error {
		seen++
		assert.Equal(t, src.Patients[0], r.PatientID)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, seen)
}

// uniqueIDs returns the case's resources as store writes with every
// non-Patient id prefixed and the references to them rewritten.
func uniqueIDs(t *testing.T, prefix string, p *patientsource.Patient) []store.Write {
	t.Helper()
	type res struct {
		typ string
		m   map[string]any
	}
	var all []res
	renames := map[string]string{}
	for typ, raws := range p.Resources {
		for _, raw := range raws {
			var m map[string]any
			require.NoError(t, json.Unmarshal(raw, &m))
			if id, _ := m["id"].(string); id != "" && typ != "Patient" {
				m["id"] = prefix + "-" + id
				renames[`"`+typ+"/"+id+`"`] = `"` + typ + "/" + prefix + "-" + id + `"`
			}
			all = append(all, res{typ, m})
		}
	}
	var writes []store.Write
	for _, r := range all {
		b, err := json.Marshal(r.m)
		require.NoError(t, err)
		for from, to := range renames {
			b = bytes.ReplaceAll(b, []byte(from), []byte(to))
		}
		writes = append(writes, store.Write{Op: store.OpPut, Type: r.typ, ID: r.m["id"].(string), Body: b})
	}
	return writes
}
