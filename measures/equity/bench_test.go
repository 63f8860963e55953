package equity

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchRecords builds n patient results with attribute mixes like the
// synthetic population's.
func benchRecords(n int) []Record {
	r := rand.New(rand.NewPCG(1, 2))
	races := []string{"2106-3", "2106-3", "2106-3", "2106-3", "2054-5", "2028-9", "2131-1", TwoOrMore, Unknown, AskedDeclined, "1002-5"}
	eths := []string{"2186-5", "2186-5", "2186-5", "2135-2", Unknown, AskedDeclined}
	langs := []string{"en", "en", "en", "en", "en", "en", "es", "zh", "vi"}
	sexes := []string{"female", "male"}
	payers := []string{"1", "2", "5", "6", Unknown}
	attrs := make([]Attributes, n)
	recs := make([]Record, n)
	for i := range attrs {
		attrs[i] = Attributes{
			PatientID: strconv.Itoa(i),
			Race:      races[r.IntN(len(races))], Ethnicity: eths[r.IntN(len(eths))], Language: langs[r.IntN(len(langs))],
			Sex: sexes[r.IntN(2)], Payer: payers[r.IntN(len(payers))],
			BirthDate: strconv.Itoa(1940+r.IntN(70)) + "-06-15", ZIP: "021" + strconv.Itoa(10+r.IntN(90)),
			Provider: "Practitioner/" + strconv.Itoa(r.IntN(200)),
		}
		den := r.Float64() < 0.3
		recs[i] = Record{Attributes: &attrs[i], InitialPopulation: den, Denominator: den, Numerator: den && r.Float64() < 0.6}
	}
	return recs
}

// BenchmarkStratify100k stratifies 100k patient results by each of six
// dimensions and one cross-classification, then analyses each stratifier
// (suppression, reference, disparities, indices) and renders FHIR.
func BenchmarkStratify100k(b *testing.B) {
	const n = 100_000
	recs := benchRecords(n)
	svi := SVITable{}
	for z := 10; z < 100; z++ {
		svi["021"+strconv.Itoa(z)] = float64(z-10) / 90
	}
	opts := Options{AgeAt: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), SVI: svi}
	stratifiers := [][]Dimension{{DimRace}, {DimEthnicity}, {DimLanguage}, {DimSex}, {DimPayer}, {DimAgeBand}, {DimSVI}, {DimProvider}, {DimRace, DimLanguage}}
	for _, tc := range []struct {
		name    string
		analyze bool
	}{{"stratify", false}, {"stratify+analyze+fhir", true}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				for _, dims := range stratifiers {
					s := Stratify(recs, dims, opts)
					if !tc.analyze {
						continue
					}
					a, err := Analyze(s, Increase, AnalysisOptions{})
					require.NoError(b, err)
					_, err = StratifierJSON(a, FHIROptions{})
					require.NoError(b, err)
				}
			}
			b.ReportMetric(float64(n*b.N*len(stratifiers))/b.Elapsed().Seconds(), "patient-strata/s")
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "patients/s")
		})
	}
}

// BenchmarkPatientAttributes extracts equity attributes from synthetic
// US Core Patient resources.
func BenchmarkPatientAttributes(b *testing.B) {
	dir, _, _ := synthPopulation(b, 2000)
	f, err := os.Open(filepath.Join(dir, "Patient.ndjson"))
	require.NoError(b, err)
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var size int
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
		size += len(sc.Bytes())
	}
	require.NoError(b, sc.Err())
	b.SetBytes(int64(size / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := PatientAttributes(lines[i%len(lines)], nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "patients/s")
}

// BenchmarkEquityReport3x6 is the equity-report benchmark: 3
// measures × 6 stratifiers over 100k patients each, with a prior year,
// CSV and MeasureReports rendered.
func BenchmarkEquityReport3x6(b *testing.B) {
	const n = 100_000
	recs := benchRecords(n)
	inputs := []MeasureInput{
		{ID: "M1", Direction: Increase, Records: recs, Prior: recs, Benchmark: 0.6},
		{ID: "M2", Direction: Decrease, Records: recs, Benchmark: 0.3},
		{ID: "M3", Direction: Increase, Records: recs, Prior: recs, Benchmark: 0.7},
	}
	opts := ReportOptions{
		Stratifiers: [][]Dimension{{DimRace}, {DimEthnicity}, {DimLanguage}, {DimSex}, {DimPayer}, {DimAgeBand}},
		Stratify:    Options{AgeAt: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)},
	}
	opts.PriorStratify = opts.Stratify
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r, err := BuildReport(ctx, inputs, opts)
		require.NoError(b, err)
		require.NoError(b, r.WriteCSV(io.Discard, io.Discard))
		_, err = r.MeasureReports()
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
	b.ReportMetric(float64(3*n*b.N)/b.Elapsed().Seconds(), "patient-measures/s")
}
