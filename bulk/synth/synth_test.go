package synth_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/fhir/validate"
)

// memSink keeps every line per type (only the types in keep, when set).
type memSink struct {
	lines map[string][][]byte
	order []string
	keep  []string
}

func (m *memSink) Write(typ string, line []byte) error {
	if m.keep != nil && !slices.Contains(m.keep, typ) {
		return nil
	}
	if m.lines == nil {
		m.lines = map[string][][]byte{}
	}
	if _, ok := m.lines[typ]; !ok {
		m.order = append(m.order, typ)
	}
	m.lines[typ] = append(m.lines[typ], bytes.Clone(line))
	return nil
}

func generate(t testing.TB, patients int, seed uint64, keep ...string) (*memSink, *synth.Summary) {
	t.Helper()
	s := &memSink{keep: keep}
	sum, err := synth.Generate(context.Background(), synth.Options{Patients: patients, Seed: seed}, s)
	require.NoError(t, err)
	return s, sum
}

func TestEveryResourceValidates(t *testing.T) {
	v, err := validate.New()
	require.NoError(t, err)
	s, sum := generate(t, 300, 7)
	ids := map[string]bool{}
	for _, typ := range s.order {
		for i, line := range s.lines[typ] {
			rt, id, err := v.Resource(line)
			require.NoError(t, err, "%s line %d: %s", typ, i+1, line)
			assert.Equal(t, typ, rt)
			require.NotEmpty(t, id)
			key := rt + "/" + id
			require.False(t, ids[key], "duplicate id %s", key)
			ids[key] = true
		}
		assert.Equal(t, sum.Resources[typ], int64(len(s.lines[typ])), typ)
	}
	for _, typ := range synth.ResourceTypes() {
		assert.NotEmpty(t, s.lines[typ], "no %s generated", typ)
	}
	// Every reference points at a generated resource.
	for _, typ := range s.order {
		for _, line := range s.lines[typ] {
			for _, ref := range references(gjson.ParseBytes(line)) {
				assert.True(t, ids[ref], "%s: dangling reference %s", gjson.GetBytes(line, "id"), ref)
			}
		}
	}
}

func references(v gjson.Result) []string {
	var out []string
	v.ForEach(func(k, val gjson.Result) bool {
		if k.String() == "reference" && val.Type == gjson.String {
			out = append(out, val.String())
		} else if val.IsObject() || val.IsArray() {
			out = append(out, references(val)...)
		}
		return true
	})
	return out
}

func TestDeterministic(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	for i, seed := range []uint64{42, 42, 43} {
		_, err := synth.GenerateDir(context.Background(), synth.Options{Patients: 200, Seed: seed}, dirs[i])
		require.NoError(t, err)
	}
	a, b, c := digestDir(t, dirs[0]), digestDir(t, dirs[1]), digestDir(t, dirs[2])
	assert.Equal(t, a, b, "same seed must give byte-identical output")
	for typ := range a {
		assert.NotEqual(t, a[typ], c[typ], "%s: different seeds gave identical output", typ)
	}
	assert.Len(t, a, len(synth.ResourceTypes()))
}

func digestDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	return out
}

func TestPatientPrefixIsStable(t *testing.T) {
	// A larger population starts with the same patients as a smaller one:
	// each patient has its own random stream.
	small, _ := generate(t, 20, 9)
	large, _ := generate(t, 60, 9)
	assert.Equal(t, small.lines["Patient"], large.lines["Patient"][:20])
}

// tolerance for a proportion estimated from n draws: four standard errors,
// so a correct generator fails this with negligible probability.
func tolerance(p float64, n int) float64 {
	return 4 * sqrt(p*(1-p)/float64(n))
}

func sqrt(x float64) float64 {
	z := x
	for range 30 {
		if z == 0 {
			return 0
		}
		z = (z + x/z) / 2
	}
	return z
}

func TestDistributions(t *testing.T) {
	const n = 6000
	s, sum := generate(t, n, 11, "Patient")
	tr := sum.Truth

	share := func(m map[string]int, k string) float64 { return float64(m[k]) / n }
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"White", share(tr.Race, synth.RaceWhite), 0.58},
		{"Black", share(tr.Race, synth.RaceBlack), 0.125},
		{"Asian", share(tr.Race, synth.RaceAsian), 0.06},
		{"race unknown", share(tr.Race, synth.Unknown), 0.06},
		{"race declined", share(tr.Race, synth.Declined), 0.04},
		{"Hispanic", share(tr.Ethnicity, synth.EthHispanic), 0.18},
		{"English", share(tr.Language, "en"), 0.90},
		{"Spanish", share(tr.Language, "es"), 0.075},
	} {
		assert.InDelta(t, tc.want, tc.got, tolerance(tc.want, n)+0.02, tc.name)
	}

	// Language shows up in Patient.communication with preferred=true, race
	// and ethnicity as US Core extensions on every patient.
	var spanish, withPCP int
	for _, line := range s.lines["Patient"] {
		p := gjson.ParseBytes(line)
		require.True(t, p.Get("communication.0.preferred").Bool())
		if p.Get("communication.0.language.coding.0.code").String() == "es" {
			spanish++
		}
		require.True(t, p.Get(`extension.#(url=="http://hl7.org/fhir/us/core/StructureDefinition/us-core-race")`).Exists())
		require.True(t, p.Get(`extension.#(url=="http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity")`).Exists())
		if p.Get("generalPractitioner").Exists() {
			withPCP++
		}
	}
	assert.Equal(t, tr.Language["es"], spanish)
	assert.InDelta(t, 0.82, float64(withPCP)/n, 0.03)

	// Measure populations: big enough to be useful, rates near the plan.
	require.Greater(t, tr.CMS165.Overall.Denominator, n/8)
	require.Greater(t, tr.CMS122.Overall.Denominator, n/25)
	assert.InDelta(t, 0.63, tr.CMS165.Overall.Value(), 0.05)
	assert.InDelta(t, 0.30, tr.CMS122.Overall.Value(), 0.06)

	// The planted gap: Black vs White BP control.
	w, b := tr.CMS165.ByRace[synth.RaceWhite], tr.CMS165.ByRace[synth.RaceBlack]
	gap := w.Value() - b.Value()
	assert.Greater(t, gap, 0.05, "White %v Black %v", w, b)
	// Non-English speakers have worse HbA1c results.
	en := tr.CMS122.ByLanguage["en"]
	var other synth.Rate
	for k, r := range tr.CMS122.ByLanguage {
		if k != "en" {
			other.Denominator += r.Denominator
			other.Numerator += r.Numerator
		}
	}
	assert.Greater(t, other.Value(), en.Value())

	// Readmissions within 30 days happen, at a plausible rate.
	require.Positive(t, tr.InpatientStays)
	rate := float64(tr.Readmissions30) / float64(tr.InpatientStays)
	assert.InDelta(t, 0.15, rate, 0.08)
}

// TestPlantedRatesConditional checks the planted per-patient probabilities
// where the other factors are held fixed (non-Hispanic English speakers),
// on a population large enough for the strata.
func TestPlantedRatesConditional(t *testing.T) {
	if testing.Short() {
		t.Skip("large population")
	}
	_, sum := generate(t, 30000, 5, "none")
	tr := sum.Truth
	planGap := synth.PlantedBPControl(synth.RaceWhite, synth.EthNonHispanic, "en") - synth.PlantedBPControl(synth.RaceBlack, synth.EthNonHispanic, "en")
	require.InDelta(t, 0.16, planGap, 1e-9)
	// Marginal rates mix in ethnicity, language and the few patients whose
	// only visits were virtual (no reading: not controlled), so they sit a
	// few points under the plan; the gaps survive.
	w, b := tr.CMS165.ByRace[synth.RaceWhite], tr.CMS165.ByRace[synth.RaceBlack]
	seGap := sqrt(0.25/float64(w.Denominator) + 0.25/float64(b.Denominator))
	assert.InDelta(t, planGap, w.Value()-b.Value(), 4*seGap+0.02, "White %+v Black %+v", w, b)
	assert.InDelta(t, 0.70-0.03, w.Value(), 0.04, "White %+v", w)

	h, nh := tr.CMS165.ByEthnicity[synth.EthHispanic], tr.CMS165.ByEthnicity[synth.EthNonHispanic]
	assert.Greater(t, nh.Value()-h.Value(), 0.06, "Hispanic %+v non-Hispanic %+v", h, nh)

	// CMS122 (inverse): Black and Spanish-speaking diabetics fare worse.
	wa, ba := tr.CMS122.ByRace[synth.RaceWhite], tr.CMS122.ByRace[synth.RaceBlack]
	assert.Greater(t, ba.Value()-wa.Value(), 0.05, "White %+v Black %+v", wa, ba)
	en, es := tr.CMS122.ByLanguage["en"], tr.CMS122.ByLanguage["es"]
	assert.Greater(t, es.Value()-en.Value(), 0.05, "en %+v es %+v", en, es)
}

func TestMeasureCodesComeFromValueSets(t *testing.T) {
	shared := sharedDir(t)
	vs := map[string]map[string]bool{} // value set name -> system|code
	for _, m := range []string{"ControllingHighBloodPressureFHIR", "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR"} {
		b, err := os.ReadFile(filepath.Join(shared, "ecqm", "measures", m, "valuesets.json"))
		require.NoError(t, err)
		gjson.GetBytes(b, "entry.#.resource").ForEach(func(_, r gjson.Result) bool {
			name := r.Get("name").String()
			if vs[name] == nil {
				vs[name] = map[string]bool{}
			}
			r.Get("expansion.contains").ForEach(func(_, c gjson.Result) bool {
				vs[name][c.Get("system").String()+"|"+c.Get("code").String()] = true
				return true
			})
			return true
		})
	}
	in := func(c gjson.Result, sets ...string) bool {
		k := c.Get("system").String() + "|" + c.Get("code").String()
		for _, s := range sets {
			if vs[s][k] {
				return true
			}
		}
		return false
	}
	s, _ := generate(t, 500, 3)
	qualifying := []string{"OfficeVisit", "AnnualWellnessVisit", "PreventiveCareServicesEstablishedOfficeVisit,18andUp",
		"PreventiveCareServicesInitialOfficeVisit,18andUp", "HomeHealthcareServices", "VirtualEncounter", "TelephoneVisits"}
	for _, line := range s.lines["Encounter"] {
		e := gjson.ParseBytes(line)
		c := e.Get("type.0.coding.0")
		switch e.Get("class.code").String() {
		case "AMB", "VR":
			if !strings.HasPrefix(c.Get("code").String(), "9939") || in(c, qualifying...) {
				assert.True(t, in(c, qualifying...), "outpatient encounter type %s not in a qualifying value set", c)
			}
		case "EMER":
			assert.True(t, in(c, "EmergencyDepartmentEvaluationandManagementVisit"), c.Raw)
		case "IMP":
			assert.True(t, in(c, "EncounterInpatient"), c.Raw)
		}
	}
	for _, line := range s.lines["Condition"] {
		codings := gjson.GetBytes(line, "code.coding").Array()
		for _, c := range codings {
			assert.True(t, in(c, "EssentialHypertension", "Diabetes"), c.Raw)
		}
	}
	for _, line := range s.lines["Observation"] {
		o := gjson.ParseBytes(line)
		if o.Get("category.0.coding.0.code").String() == "laboratory" {
			assert.True(t, in(o.Get("code.coding.0"), "HbA1cLaboratoryTest"), o.Get("code").Raw)
		}
	}
	// No generated code may fall into an exclusion value set: the truth
	// assumes there are no denominator exclusions.
	exclusions := []string{"AdvancedIllness", "FrailtyDiagnosis", "FrailtySymptom", "FrailtyEncounter", "FrailtyDevice",
		"HospiceDiagnosis", "HospiceEncounter", "HospiceCareAmbulatory", "PalliativeCareDiagnosis", "PalliativeCareEncounter",
		"PalliativeCareIntervention", "Pregnancy", "EndStageRenalDisease", "ChronicKidneyDisease,Stage5", "KidneyTransplantRecipient",
		"DialysisServices", "ESRDMonthlyOutpatientServices", "KidneyTransplant"}
	for _, typ := range []string{"Condition", "Encounter", "Observation"} {
		for _, line := range s.lines[typ] {
			for _, c := range codings(gjson.ParseBytes(line)) {
				for _, ex := range exclusions {
					assert.False(t, in(c, ex), "%s code %s is in exclusion value set %s", typ, c.Raw, ex)
				}
			}
		}
	}
}

func codings(v gjson.Result) []gjson.Result {
	var out []gjson.Result
	v.ForEach(func(k, val gjson.Result) bool {
		switch {
		case val.IsObject() && val.Get("system").Exists() && val.Get("code").Exists():
			out = append(out, val)
		case val.IsObject() || val.IsArray():
			out = append(out, codings(val)...)
		}
		return true
	})
	return out
}

// sharedDir finds ../shared next to the repository root, or skips.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("go.mod not found")
		}
		dir = parent
	}
	shared := filepath.Join(filepath.Dir(dir), "shared")
	if _, err := os.Stat(filepath.Join(shared, "ecqm", "measures")); err != nil {
		t.Skipf("shared data not found at %s (needed for the value sets)", shared)
	}
	return shared
}

func TestTruthJSON(t *testing.T) {
	_, sum := generate(t, 100, 1)
	b, err := json.Marshal(sum.Truth)
	require.NoError(t, err)
	var back synth.Truth
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, sum.Truth.CMS165.Overall, back.CMS165.Overall)
	keys := make([]string, 0, len(back.Race))
	for k := range back.Race {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	assert.Contains(t, keys, synth.RaceWhite)
}

func TestDirSinkLayout(t *testing.T) {
	dir := t.TempDir()
	sum, err := synth.GenerateDir(context.Background(), synth.Options{Patients: 30, Seed: 2}, dir)
	require.NoError(t, err)
	for _, typ := range synth.ResourceTypes() {
		f, err := os.Open(filepath.Join(dir, typ+".ndjson"))
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		var n int64
		for sc.Scan() {
			require.Equal(t, typ, gjson.GetBytes(sc.Bytes(), "resourceType").String())
			n++
		}
		require.NoError(t, sc.Err())
		f.Close()
		assert.Equal(t, sum.Resources[typ], n, typ)
	}
}

func BenchmarkGenerate(b *testing.B) {
	const patients = 2000
	var resources int64
	for b.Loop() {
		sum, err := synth.Generate(context.Background(), synth.Options{Patients: patients, Seed: 1}, discard{})
		if err != nil {
			b.Fatal(err)
		}
		resources = sum.Total()
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(patients/sec, "patients/s")
	b.ReportMetric(float64(resources)/sec, "resources/s")
}

type discard struct{}

func (discard) Write(string, []byte) error { return nil }
