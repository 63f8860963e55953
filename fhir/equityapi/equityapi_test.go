package equityapi_test

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/equityapi"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/equity"
	"github.com/equitas/equitas/measures/measure/measuretest"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

const (
	cms165 = "ControllingHighBloodPressureFHIR"
	cms122 = "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR"
)

// typeAndID stands in for the FHIR validator while loading the generated
// population: the generator's output is valid and loading is not what is
// tested (the real validator would take minutes here).
type typeAndID struct{}

func (typeAndID) Resource(body []byte) (string, string, error) {
	r := gjson.GetManyBytes(body, "resourceType", "id")
	return r[0].String(), r[1].String(), nil
}

// fixture is a real server (badger store, rest.Server, HTTP on
// 127.0.0.1:0) holding a synthetic population and the official measures.
type fixture struct {
	url     string
	st      store.Store
	summary *synth.Summary
}

// The population is generated and loaded once for every test of the
// package; TestMain removes it.
var (
	tempDir string
	cleanup = func() {}
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

const population = 4000

// orgHeader selects, in the test's authenticator, a provider client bound
// to an organization that sees only the patients listed in the header.
const orgHeader = "X-Test-Patients"

func testAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := access.Anonymous()
		if ids := r.Header.Get(orgHeader); ids != "" {
			set := access.Set{}
			for _, id := range strings.Split(ids, ",") {
				set[id] = true
			}
			p.ClientID, p.Organization, p.Patients, p.Groups = "provider", "org-1", set, access.Set{}
		}
		next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), p)))
	})
}

func setup(t *testing.T) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end over a generated population")
	}
	shared := measuretest.SharedDir(t)
	fixOnce.Do(func() {
		ctx := context.Background()
		base := tempDir
		pop := filepath.Join(base, "pop")
		sum, err := synth.GenerateDir(ctx, synth.Options{Patients: population, Seed: 1}, pop)
		if err != nil {
			fixErr = err
			return
		}
		st, err := badgerstore.Open(ctx, filepath.Join(base, "data"), badgerstore.Options{NoSync: true})
		if err != nil {
			fixErr = err
			return
		}
		if _, err := ingest.New(st, typeAndID{}, ingest.Options{}).LoadPaths(ctx, pop); err != nil {
			fixErr = err
			return
		}
		if err := catalog.LoadDir(ctx, st, filepath.Join(shared, "ecqm"), cms165, cms122); err != nil {
			fixErr = err
			return
		}
		// ATR lists for 2025 (hybrid attribution at the period end), so
		// reports can take a list as subject and name attributed providers.
		_, err = attribution.Run(ctx, st, attribution.RunOptions{
			Options:       attribution.Options{Method: attribution.Hybrid, AsOf: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)},
			ContractStart: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), ContractEnd: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			fixErr = err
			return
		}
		srv, err := rest.New(rest.Config{Store: st, Authenticate: testAuth})
		if err != nil {
			fixErr = err
			return
		}
		equityapi.New(st, catalog.New(st, catalog.Options{}), equityapi.Options{}).Mount(srv)
		hs := httptest.NewServer(srv)
		cleanup = func() {
			hs.Close()
			_ = st.Close()
		}
		fix = &fixture{url: hs.URL + rest.BasePath, st: st, summary: sum}
	})
	require.NoError(t, fixErr)
	return fix
}

func TestMain(m *testing.M) {
	var err error
	if tempDir, err = os.MkdirTemp("", "equityapi-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	cleanup()
	_ = os.RemoveAll(tempDir)
	os.Exit(code)
}

// cohortSize patients form Group/equity-cohort, the smaller population the
// format tests report on (the whole population is for recovering the
// planted gaps).
const cohortSize = 1500

var cohortOnce sync.Once

// cohort stores Group/equity-cohort (the first cohortSize patients) once
// and returns its reference.
func cohort(t *testing.T, f *fixture) string {
	t.Helper()
	cohortOnce.Do(func() {
		var members []string
		err := f.st.Scan(context.Background(), "Patient", time.Time{}, func(r *store.Resource) error {
			if len(members) < cohortSize {
				members = append(members, `{"entity":{"reference":"Patient/`+r.ID+`"}}`)
			}
			return nil
		})
		require.NoError(t, err)
		group := `{"resourceType":"Group","id":"equity-cohort","type":"person","actual":true,"member":[` + strings.Join(members, ",") + `]}`
		req, err := http.NewRequest(http.MethodPut, f.url+"/Group/equity-cohort", strings.NewReader(group))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Contains(t, []int{200, 201}, resp.StatusCode, string(b))
	})
	return "Group/equity-cohort"
}

func get(t *testing.T, u string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func reportURL(f *fixture, q url.Values) string { return f.url + "/$equity-report?" + q.Encode() }

// TestEquityReportRecoversPlantedDisparities asks the server for the
// dashboard JSON of CMS165 and CMS122 and checks it
// against the generator: overall counts equal the truth table; the
// CMS165 direction is corrected to increase; the planted Black–White
// gaps (bulk/synth/DISPARITIES.md) lie inside their Newcombe intervals
// with the right sign; Spanish speakers are worse than English ones.
func TestEquityReportRecoversPlantedDisparities(t *testing.T) {
	f := setup(t)
	q := url.Values{"measure": {cms165 + "," + cms122}, "periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"},
		"stratifier": {"race", "ethnicity", "language", "race+language"},
		"reference":  {"largest"}, "output": {"dashboard"}}
	code, h, body := get(t, reportURL(f, q))
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	var d equity.Dashboard
	require.NoError(t, json.Unmarshal(body, &d))
	doc := gjson.ParseBytes(body)
	assert.Equal(t, population, d.Patients)
	assert.Zero(t, d.Failed)
	require.Len(t, d.Measures, 2)
	var elapsed []int64

	for mi, tc := range []struct {
		id      string
		dir     string
		truth   synth.MeasureTruth
		planted func(race string) float64
	}{
		{cms165, "increase", f.summary.Truth.CMS165, func(race string) float64 {
			return synth.PlantedBPControl(race, synth.EthNonHispanic, "en")
		}},
		{cms122, "decrease", f.summary.Truth.CMS122, func(race string) float64 {
			miss := synth.PlantedA1cMissing("en")
			return miss + (1-miss)*synth.PlantedA1cPoor(race, synth.EthNonHispanic, "en")
		}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			m := doc.Get("measures." + strconv.Itoa(mi))
			assert.Equal(t, tc.id, m.Get("id").String())
			assert.Equal(t, tc.dir, m.Get("improvementNotation").String())
			if tc.id == cms165 {
				assert.Contains(t, m.Get("directionNote").String(), "CMS165")
			}
			assert.Equal(t, tc.truth.Overall.Denominator, int(m.Get("overall.denominator").Int()))
			assert.Equal(t, tc.truth.Overall.Numerator, int(m.Get("overall.numerator").Int()))

			race := m.Get(`stratifiers.#(code=="race-omb1997")`)
			require.True(t, race.Exists())
			assert.Equal(t, synth.RaceWhite, race.Get("reference.stratum").String(), "White is the largest group")
			for _, s := range race.Get("strata").Array() {
				want, ok := tc.truth.ByRace[strings.Replace(s.Get("code").String(), equity.TwoOrMore, synth.RaceMultiple, 1)]
				if !ok || s.Get("denominator").Type == gjson.Null {
					continue
				}
				assert.Equal(t, want.Denominator, int(s.Get("denominator").Int()), "denominator of %s", s.Get("code"))
				assert.Equal(t, want.Numerator, int(s.Get("numerator").Int()), "numerator of %s", s.Get("code"))
			}
			black := race.Get(`strata.#(code=="` + synth.RaceBlack + `").disparity`)
			require.True(t, black.Exists(), "Black is compared")
			sign := 1.0
			if tc.dir == "decrease" {
				sign = -1
			}
			planted := sign * (tc.planted(synth.RaceWhite) - tc.planted(synth.RaceBlack))
			t.Logf("%s Black vs White gap %.4f CI (%.4f, %.4f), planted %.4f", tc.id, black.Get("absGap").Float(),
				black.Get("absGapCiLow").Float(), black.Get("absGapCiHigh").Float(), planted)
			assert.Positive(t, black.Get("absGap").Float(), "the planted worse group is worse")
			assert.LessOrEqual(t, black.Get("absGapCiLow").Float(), planted)
			assert.GreaterOrEqual(t, black.Get("absGapCiHigh").Float(), planted)
			assert.NotEmpty(t, race.Get("indices.values").Array())

			lang := m.Get(`stratifiers.#(code=="language-preferred")`)
			// Spanish speakers are planted worse at every race. Where the
			// stratum is releasable the gap shows; where it is not (CMS122's
			// Spanish group is small enough here to be suppressed to protect
			// the tiny language groups) nothing is released.
			es := lang.Get(`strata.#(code=="es")`)
			require.True(t, es.Exists())
			if sup := es.Get("suppression").String(); sup == "none" {
				t.Logf("%s es vs en gap %.4f CI (%.4f, %.4f)", tc.id, es.Get("disparity.absGap").Float(),
					es.Get("disparity.absGapCiLow").Float(), es.Get("disparity.absGapCiHigh").Float())
				assert.Positive(t, es.Get("disparity.absGap").Float())
			} else {
				t.Logf("%s es suppressed: %s", tc.id, sup)
				assert.Equal(t, gjson.Null, es.Get("denominator").Type)
				assert.Equal(t, gjson.Null, es.Get("disparity").Type)
			}
			elapsed = append(elapsed, doc.Get("elapsedMs").Int())

			cross := m.Get(`stratifiers.#(code=="race-omb1997+language-preferred")`)
			require.True(t, cross.Exists())
			assert.Equal(t, synth.RaceWhite+"|en", cross.Get("reference.stratum").String())
			for _, s := range cross.Get("strata").Array() {
				if s.Get("suppression").String() == "privacy-primary" || s.Get("suppression").String() == "privacy-complementary" {
					assert.Equal(t, gjson.Null, s.Get("denominator").Type, "suppressed counts are not released")
				}
			}
		})
	}
	t.Logf("report computed in %d ms (%d patients, 2 measures)", elapsed[0], d.Patients)
	cms165Black := doc.Get(`measures.0.stratifiers.#(code=="race-omb1997").strata.#(code=="` + synth.RaceBlack + `").disparity`)
	assert.True(t, cms165Black.Get("significant").Bool(), "the 16-point CMS165 gap is detected at this size")
	cms165Es := doc.Get(`measures.0.stratifiers.#(code=="language-preferred").strata.#(code=="es")`)
	assert.Equal(t, "none", cms165Es.Get("suppression").String(), "CMS165's Spanish group is large enough to compare")
	assert.True(t, doc.Get("composite.score").Exists())
	assert.InDelta(t, 0.2, doc.Get("composite.equityWeight").Float(), 1e-9)
}

// TestEquityReportFormats checks the default FHIR Parameters (valid R4,
// MeasureReports, CSV Binaries), the tidy CSV via _format and Accept, the
// indices CSV, a POSTed Parameters body, and a provider client's scope.
func TestEquityReportFormats(t *testing.T) {
	f := setup(t)
	q := url.Values{"measure": {cms165}, "periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"},
		"stratifier": {"race,sex,payer,age-band"}, "subject": {cohort(t, f)}}

	code, h, body := get(t, reportURL(f, q))
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Contains(t, h.Get("Content-Type"), "application/fhir+json")
	v, err := validate.New()
	require.NoError(t, err)
	typ, _, err := v.Resource(body)
	require.NoError(t, err, "the Parameters resource is valid R4")
	assert.Equal(t, "Parameters", typ)
	doc := gjson.ParseBytes(body)
	mr := doc.Get(`parameter.#(name=="measureReport").resource`)
	assert.Equal(t, "summary", mr.Get("type").String())
	assert.Equal(t, "increase", mr.Get("improvementNotation.coding.0.code").String())
	assert.Len(t, mr.Get("group.0.stratifier").Array(), 4)
	tidy := doc.Get(`parameter.#(name=="tidy").resource`)
	assert.Equal(t, "text/csv", tidy.Get("contentType").String())
	csvBytes, err := base64.StdEncoding.DecodeString(tidy.Get("data").String())
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(csvBytes), strings.Join(equity.TidyColumns(), ",")))
	assert.True(t, doc.Get(`parameter.#(name=="note").valueString`).Exists(), "the CMS165 correction is reported")
	assert.Equal(t, cohortSize, int(doc.Get(`parameter.#(name=="patients").valueInteger`).Int()))
	denominator := mr.Get(`group.0.population.#(code.coding.0.code=="denominator").count`).String()
	require.NotEmpty(t, denominator)

	for _, hdr := range [][]string{nil, {"Accept", "text/csv"}} {
		qq := url.Values{}
		for k, vs := range q {
			qq[k] = vs
		}
		if hdr == nil {
			qq.Set("_format", "text/csv")
		}
		code, h, body := get(t, reportURL(f, qq), hdr...)
		require.Equal(t, http.StatusOK, code, string(body))
		assert.Contains(t, h.Get("Content-Type"), "text/csv")
		rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		require.NoError(t, err)
		assert.Equal(t, equity.TidyColumns(), rows[0])
		overall := 0
		for _, r := range rows[1:] {
			if r[8] == "overall" {
				overall++
				assert.Equal(t, denominator, r[12], "the CSV and the MeasureReport agree")
			}
		}
		assert.Equal(t, 4, overall, "one overall row per stratifier")
	}

	q.Set("output", "indices-csv")
	code, _, body = get(t, reportURL(f, q))
	require.Equal(t, http.StatusOK, code, string(body))
	assert.True(t, strings.HasPrefix(string(body), strings.Join(equity.IndexColumns(), ",")))

	// POST with a Parameters body, including an inline SVI table.
	params := `{"resourceType":"Parameters","parameter":[{"name":"measure","valueString":"` + cms165 + `"},
	 {"name":"periodStart","valueDate":"2025-01-01"},{"name":"periodEnd","valueDate":"2025-12-31"},
	 {"name":"stratifier","valueString":"svi"},{"name":"subject","valueReference":{"reference":"Group/equity-cohort"}},{"name":"equityWeight","valueDecimal":0.25},{"name":"equityPool","valueDecimal":100000},
	 {"name":"output","valueCode":"dashboard"},
	 {"name":"sviTable","valueAttachment":{"contentType":"text/csv","data":"` +
		base64.StdEncoding.EncodeToString([]byte("key,rpl_themes\nCook County, IL,0.9\nWayne County, MI,0.95\nKing County, WA,0.2\n")) + `"}}]}`
	resp, err := http.Post(f.url+"/$equity-report", "application/fhir+json", strings.NewReader(params))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	pd := gjson.ParseBytes(b)
	assert.InDelta(t, 0.25, pd.Get("composite.equityWeight").Float(), 1e-9)
	assert.True(t, pd.Get(`measures.0.stratifiers.0.strata.#(code=="svi-q4")`).Exists(), "high-SVI counties form the top quartile")
	var share, amount float64
	high := 0
	for _, p := range pd.Get("equityPool.providers").Array() {
		share += p.Get("share").Float()
		amount += p.Get("amount").Float()
		high += int(p.Get("highSvi").Int())
	}
	assert.Positive(t, high, "some attributed members live in high-SVI counties")
	assert.InDelta(t, 1, share, 1e-5)
	assert.InDelta(t, 100000, amount, 0.01)

	// A provider client sees only its attributed patients.
	var ids []string
	err = f.st.Scan(context.Background(), "Patient", time.Time{}, func(r *store.Resource) error {
		if len(ids) < 500 {
			ids = append(ids, r.ID)
		}
		return nil
	})
	require.NoError(t, err)
	q = url.Values{"measure": {cms165}, "periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"}, "stratifier": {"race"}, "output": {"dashboard"}}
	code, _, body = get(t, reportURL(f, q), orgHeader, strings.Join(ids, ","))
	require.Equal(t, http.StatusOK, code, string(body))
	sd := gjson.ParseBytes(body)
	assert.Equal(t, 500, int(sd.Get("patients").Int()))
	assert.Equal(t, "Organization", sd.Get("entity.type").String())
	assert.Less(t, sd.Get("measures.0.overall.denominator").Int(), int64(f.summary.Truth.CMS165.Overall.Denominator))
}

// TestEquityReportBadParameters: every malformed request is a 4xx with an
// OperationOutcome, and nothing is evaluated.
func TestEquityReportBadParameters(t *testing.T) {
	f := setup(t)
	base := func(kv ...string) url.Values {
		q := url.Values{"measure": {cms165}, "periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				q.Del(kv[i])
			} else {
				q.Set(kv[i], kv[i+1])
			}
		}
		return q
	}
	for _, tc := range []struct {
		name string
		q    url.Values
		want int
	}{
		{"unknown parameter", base("color", "red"), 400},
		{"no measure", base("measure", ""), 400},
		{"unknown measure", base("measure", "NoSuchMeasure"), 400},
		{"bad reference", base("reference", "worst"), 400},
		{"bad stratifier", base("stratifier", "race,shoe-size"), 400},
		{"repeated dimension", base("stratifier", "race+race"), 400},
		{"bad period", base("periodEnd", "2025-13-45"), 400},
		{"start after end", base("periodStart", "2026-01-01"), 400},
		{"half a period", base("periodEnd", ""), 400},
		{"prior end without start", base("priorPeriodEnd", "2024-12-31"), 400},
		{"prior after current", base("priorPeriodStart", "2025-06-01"), 400},
		{"equity weight below 20%", base("equityWeight", "0.1"), 400},
		{"equity weight not a number", base("equityWeight", "lots"), 400},
		{"benchmark out of range", base("benchmark", "70"), 400},
		{"benchmark reference without one", base("reference", "benchmark"), 400},
		{"subject not a Group", base("subject", "Patient/1"), 400},
		{"subject without an id", base("subject", "Group/"), 400},
		{"unknown Group", base("subject", "Group/nope"), 404},
		{"bad output", base("output", "pdf"), 400},
		{"bad svi table", base("sviTable", "a,b\nc,notanumber"), 400},
		{"bad min denominator", base("minDenominator", "2.5"), 400},
		{"unsupported _format", base("_format", "application/xml"), 406},
		{"prior report not JSON", base("priorReport", "last year"), 400},
		{"prior report not a dashboard", base("priorReport", `{"resourceType":"Parameters"}`), 400},
		{"prior report and prior period", base("priorReport", `{"version":1,"period":{"start":"2024-01-01","end":"2024-12-31"}}`, "priorPeriodStart", "2024-01-01"), 400},
		{"prior report not before", base("priorReport", `{"version":1,"period":{"start":"2025-01-01","end":"2025-12-31"}}`), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := get(t, reportURL(f, tc.q))
			assert.Equal(t, tc.want, code, string(body))
			assert.Contains(t, h.Get("Content-Type"), "json")
			assert.Equal(t, "OperationOutcome", gjson.GetBytes(body, "resourceType").String(), string(body))
		})
	}
	for _, tc := range []struct {
		name, ct, body string
		want           int
	}{
		{"not Parameters", "application/fhir+json", `{"resourceType":"Patient"}`, 400},
		{"malformed", "application/fhir+json", `{"resourceType":`, 400},
		{"parameter without value", "application/fhir+json", `{"resourceType":"Parameters","parameter":[{"name":"measure"}]}`, 400},
		{"unknown parameter in body", "application/fhir+json", `{"resourceType":"Parameters","parameter":[{"name":"x","valueString":"y"}]}`, 400},
		{"wrong content type", "text/plain", `measure=x`, 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(f.url+"/$equity-report", tc.ct, strings.NewReader(tc.body))
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode, string(b))
			assert.Equal(t, "OperationOutcome", gjson.GetBytes(b, "resourceType").String())
		})
	}
}

// TestEquityReportGroupSubject reports over a Group's members only.
func TestEquityReportGroupSubject(t *testing.T) {
	f := setup(t)
	cohort(t, f)
	q := url.Values{"measure": {cms165}, "periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"}, "stratifier": {"sex"},
		"subject": {"Group/equity-cohort"}, "output": {"dashboard"}}
	code, _, body := get(t, reportURL(f, q))
	require.Equal(t, http.StatusOK, code, string(body))
	d := gjson.ParseBytes(body)
	assert.Equal(t, cohortSize, int(d.Get("patients").Int()))
	assert.Equal(t, "Group/equity-cohort", d.Get("entity.id").String())
	assert.Equal(t, "Group", d.Get("entity.type").String())

	// A provider client that does not own the Group does not learn it exists.
	code, _, body = get(t, reportURL(f, q), orgHeader, "nobody")
	assert.Equal(t, http.StatusNotFound, code, string(body))
}

// TestEquityReportSuppliedPriorReport: last year's dashboard document
// supplied as priorReport yields the same year-over-year figures as
// evaluating the prior period again, for every released stratum.
func TestEquityReportSuppliedPriorReport(t *testing.T) {
	f := setup(t)
	q := func(start, end string, kv ...string) url.Values {
		v := url.Values{"measure": {cms165}, "periodStart": {start}, "periodEnd": {end}, "stratifier": {"race,payer"},
			"reference": {"largest"}, "output": {"dashboard"}, "subject": {cohort(t, f)}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	code, _, last := get(t, reportURL(f, q("2024-01-01", "2024-12-31")))
	require.Equal(t, http.StatusOK, code, string(last))
	code, _, evaluated := get(t, reportURL(f, q("2025-01-01", "2025-12-31", "priorPeriodStart", "2024-01-01")))
	require.Equal(t, http.StatusOK, code, string(evaluated))

	params := `{"resourceType":"Parameters","parameter":[{"name":"measure","valueString":"` + cms165 + `"},
	 {"name":"periodStart","valueDate":"2025-01-01"},{"name":"periodEnd","valueDate":"2025-12-31"},
	 {"name":"stratifier","valueString":"race,payer"},{"name":"reference","valueCode":"largest"},
	 {"name":"subject","valueReference":{"reference":"Group/equity-cohort"}},{"name":"output","valueCode":"dashboard"},
	 {"name":"priorReport","valueAttachment":{"contentType":"application/json","data":"` + base64.StdEncoding.EncodeToString(last) + `"}}]}`
	resp, err := http.Post(f.url+"/$equity-report", "application/fhir+json", strings.NewReader(params))
	require.NoError(t, err)
	supplied, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(supplied))

	ev, sp := gjson.ParseBytes(evaluated), gjson.ParseBytes(supplied)
	assert.Equal(t, "2024-12-31", sp.Get("priorPeriod.end").String())
	assert.Positive(t, ev.Get("measures.0.priorOverall.denominator").Int(), "the prior period was evaluated")
	assert.Equal(t, ev.Get("measures.0.priorOverall").Raw, sp.Get("measures.0.priorOverall").Raw)
	compared, gaps := 0, 0
	for si, st := range ev.Get("measures.0.stratifiers").Array() {
		for ki, s := range st.Get("strata").Array() {
			other := sp.Get("measures.0.stratifiers." + strconv.Itoa(si) + ".strata." + strconv.Itoa(ki))
			require.Equal(t, s.Get("code").String(), other.Get("code").String())
			if s.Get("prior").Type == gjson.Null {
				continue
			}
			compared++
			if s.Get("prior.gapChange").Type == gjson.Number {
				gaps++
			}
			for _, k := range []string{"rate", "rateChange", "rateChangeP", "priorAbsGap", "gapChange", "gapChangeP", "trend"} {
				assert.Equal(t, s.Get("prior."+k).Raw, other.Get("prior."+k).Raw, "%s %s", s.Get("code"), k)
			}
		}
	}
	assert.Positive(t, compared, "some strata have year-over-year figures")
	assert.Positive(t, gaps, "some strata have gap changes")
	assert.Equal(t, "2024-12-31", ev.Get("priorPeriod.end").String(), "the prior period ends where the current one starts")
}

// TestEquityReportATRList reports over an ATR list (members from the
// attribution index, not the stored Group) with providers named by the
// attribution at the period end.
func TestEquityReportATRList(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	groups, err := attribution.Groups(ctx, f.st.KV())
	require.NoError(t, err)
	require.NotEmpty(t, groups, "the fixture's attribution run wrote lists")
	g := groups[0]
	members, npis := 0, map[string]bool{}
	require.NoError(t, attribution.Members(ctx, f.st.KV(), g.ID, func(e *attribution.Entry) error {
		if !e.Inactive {
			members++
			npis["NPI/"+e.Provider.NPI] = true
		}
		return nil
	}))
	require.Positive(t, members)

	q := url.Values{"measure": {cms165}, "periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"}, "stratifier": {"provider"},
		"subject": {"Group/" + g.ID}, "output": {"dashboard"}, "minDenominator": {"1"}}
	code, _, body := get(t, reportURL(f, q))
	require.Equal(t, http.StatusOK, code, string(body))
	d := gjson.ParseBytes(body)
	assert.Equal(t, members, int(d.Get("patients").Int()))
	strata := d.Get("measures.0.stratifiers.0.strata").Array()
	require.NotEmpty(t, strata)
	for _, s := range strata {
		assert.True(t, npis[s.Get("code").String()], "stratum %s is a provider of the list", s.Get("code"))
	}
}
