package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/measures/measure"
)

// TestReportsAreValidR4 runs every report type through the validating R4
// parser, so structural mistakes (wrong cardinality, bad extension shapes,
// contained resources) fail here rather than at a client.
func TestReportsAreValidR4(t *testing.T) {
	v, err := validate.New()
	require.NoError(t, err)
	def := proportionDef(measure.BooleanBasis)
	def.ImprovementNotation = "increase"
	opts := Options{Period: Period{Start: "2025-01-01", End: "2025-12-31"}, Reporter: "Organization/o1"}
	p1 := patient(def, "p1", male, true, true, false, true)
	p2 := patient(def, "p2", female, true, true, true, false)
	summary := NewSummary(def, opts)
	subjects := NewSubjectList(def, opts)
	for _, p := range []*measure.PatientResult{p1, p2} {
		summary.Add(p)
		subjects.Add(p)
	}
	failed := Individual(def, opts, &measure.PatientResult{PatientID: "p3", Err: fmt.Errorf("boom")})
	epDef := proportionDef("Encounter")
	episodes := Individual(epDef, opts, &measure.PatientResult{PatientID: "p4", Groups: []measure.GroupResult{
		measure.ApplyRules(&epDef.Groups[0], []measure.RawPopulation{{Members: []string{"Encounter/1"}}, {Members: []string{"Encounter/1"}}, {}, {}}),
	}})
	for name, rep := range map[string]*MeasureReport{
		"individual": Individual(def, opts, p1), "individual-error": failed, "individual-episodes": episodes,
		"summary": summary.Report(), "subject-list": subjects.Report(),
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(rep)
			require.NoError(t, err)
			rt, _, err := v.Resource(raw)
			require.NoError(t, err, "%s", raw)
			require.Equal(t, "MeasureReport", rt)
		})
	}
}

func TestBundleWriterWritesValidCollection(t *testing.T) {
	v, err := validate.New()
	require.NoError(t, err)
	def := proportionDef(measure.BooleanBasis)
	for _, n := range []int{0, 1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var buf bytes.Buffer
			bw := NewBundleWriter(&buf)
			for i := 0; i < n; i++ {
				require.NoError(t, bw.Add(Individual(def, Options{Period: Period{Start: "2025", End: "2025"}}, patient(def, fmt.Sprintf("p%d", i), male, true, true, false, i%2 == 0))))
			}
			require.NoError(t, bw.Close())
			assert.Equal(t, n, bw.Entries())
			var b Bundle
			require.NoError(t, json.Unmarshal(buf.Bytes(), &b))
			assert.Equal(t, "collection", b.Type)
			assert.Len(t, b.Entry, n)
			rt, _, err := v.Resource(buf.Bytes())
			require.NoError(t, err, buf.String())
			assert.Equal(t, "Bundle", rt)
		})
	}
}
