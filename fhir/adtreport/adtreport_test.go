package adtreport_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/adtreport"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

const (
	npiA   = "1111111111"
	npiB   = "2222222222"
	orgA   = "http://hl7.org/fhir/sid/us-npi|" + npiA
	orgB   = "http://hl7.org/fhir/sid/us-npi|" + npiB
	groupA = "atr-payer1-orgA"
	groupB = "atr-payer1-orgB"
	day    = "2026-06-10"
)

var reportDate = time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)

func openStore(t testing.TB, noSync bool) store.Store {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{Logger: slog.New(slog.DiscardHandler), NoSync: noSync})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type batch struct {
	t  testing.TB
	st store.Store
	w  []store.Write
}

func (b *batch) put(typ, id, body string) {
	b.w = append(b.w, store.Write{Op: store.OpPut, Type: typ, ID: id, Body: []byte(body)})
	if len(b.w) >= 1000 {
		b.flush()
	}
}

func (b *batch) flush() {
	if len(b.w) == 0 {
		return
	}
	_, err := b.st.Commit(context.Background(), store.Tx{Writes: b.w})
	require.NoError(b.t, err)
	b.w = nil
}

func (b *batch) directory() {
	b.put("Organization", "payer1", `{"resourceType":"Organization","id":"payer1","name":"Payer One"}`)
	b.put("Organization", "orgA", `{"resourceType":"Organization","id":"orgA","name":"Clinic A","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"`+npiA+`"}]}`)
	b.put("Organization", "orgB", `{"resourceType":"Organization","id":"orgB","name":"Clinic B","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"`+npiB+`"}]}`)
}

// patient writes a patient attributed (prospectively, through its general
// practitioner) to org; covered=false leaves it unattributed.
func (b *batch) patient(id, org string, covered bool) {
	b.put("Patient", id, `{"resourceType":"Patient","id":"`+id+`","name":[{"family":"Fam-`+id+`","given":["G"]}],"birthDate":"1950-02-03","generalPractitioner":[{"reference":"Organization/`+org+`"}]}`)
	if covered {
		b.put("Coverage", "cov-"+id, `{"resourceType":"Coverage","id":"cov-`+id+`","status":"active","subscriberId":"m-`+id+`","beneficiary":{"reference":"Patient/`+id+`"},"payor":[{"reference":"Organization/payer1"}],"period":{"start":"2026-01-01","end":"2026-12-31"}}`)
	}
}

// encounter writes an Encounter; end "" leaves it in progress; locations
// are "display@start" pairs.
func (b *batch) encounter(id, patient, class, start, end, provider string, locations ...string) {
	status := "in-progress"
	period := `"start":"` + start + `"`
	if end != "" {
		status = "finished"
		period += `,"end":"` + end + `"`
	}
	body := `{"resourceType":"Encounter","id":"` + id + `","status":"` + status + `","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"` + class + `"},"subject":{"reference":"Patient/` + patient + `"},"period":{` + period + `}`
	if provider != "" {
		body += `,"serviceProvider":{"reference":"Organization/` + provider + `"}`
	}
	if len(locations) > 0 {
		var ls []string
		for i, l := range locations {
			disp, at, _ := strings.Cut(l, "@")
			st := "completed"
			if i == len(locations)-1 && end == "" {
				st = "active"
			}
			ls = append(ls, `{"location":{"display":"`+disp+`"},"status":"`+st+`","period":{"start":"`+at+`"}}`)
		}
		body += `,"location":[` + strings.Join(ls, ",") + `]`
	}
	if end != "" && class != "AMB" {
		body += `,"hospitalization":{"dischargeDisposition":{"coding":[{"system":"http://www.nubc.org/patient-discharge","code":"01"}]}}`
	}
	b.put("Encounter", id, body+"}")
}

func attribute(t testing.TB, st store.Store) {
	t.Helper()
	_, err := attribution.Run(context.Background(), st, attribution.RunOptions{
		Options: attribution.Options{Method: attribution.Prospective, AsOf: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		Logger:  slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
}

// seed builds the population whose report for 2026-06-10 is known:
//
//	adm   admitted on the day (IMP)                    -> admission
//	dis   discharged on the day, no visit yet          -> discharge, follow-up open (day 0)
//	met7  discharged 05-25, orgA visit 05-29           -> met-7
//	met14 ED discharge 05-22, orgB visit 05-24 (other
//	      provider, ignored), orgA visit 06-02         -> met-14
//	miss  discharged 05-20, no visit                   -> missed
//	late  discharged 06-05, visit 06-12 (after the day)-> open (day 5)
//	xfer  admitted 06-08, moved to ICU on the day      -> transfer
//	old   discharged 04-01 (beyond the lookback)       -> nothing
//	nobody admitted on the day, not attributed         -> nothing
//	b1    admitted on the day, attributed to orgB      -> only in orgB's report
func seed(t testing.TB, st store.Store) {
	b := &batch{t: t, st: st}
	b.directory()
	for _, id := range []string{"adm", "dis", "met7", "met14", "miss", "late", "xfer", "old"} {
		b.patient(id, "orgA", true)
	}
	b.patient("nobody", "orgA", false)
	b.patient("b1", "orgB", true)
	b.encounter("e-adm", "adm", "IMP", day+"T08:00:00Z", "", "")
	b.encounter("e-dis", "dis", "IMP", "2026-06-01T10:00:00Z", day+"T15:00:00Z", "")
	b.encounter("e-met7", "met7", "IMP", "2026-05-20T10:00:00Z", "2026-05-25T12:00:00Z", "")
	b.encounter("v-met7", "met7", "AMB", "2026-05-29T09:00:00Z", "2026-05-29T09:30:00Z", "orgA")
	b.encounter("e-met14", "met14", "EMER", "2026-05-21T22:00:00Z", "2026-05-22T04:00:00Z", "")
	b.encounter("v-met14-other", "met14", "AMB", "2026-05-24T09:00:00Z", "2026-05-24T09:30:00Z", "orgB")
	b.encounter("v-met14", "met14", "AMB", "2026-06-02T09:00:00Z", "2026-06-02T09:30:00Z", "orgA")
	b.encounter("e-miss", "miss", "IMP", "2026-05-15T10:00:00Z", "2026-05-20T12:00:00Z", "")
	b.encounter("e-late", "late", "IMP", "2026-06-01T10:00:00Z", "2026-06-05T12:00:00Z", "")
	b.encounter("v-late", "late", "AMB", "2026-06-12T09:00:00Z", "2026-06-12T09:30:00Z", "orgA")
	b.encounter("e-xfer", "xfer", "IMP", "2026-06-08T10:00:00Z", "", "", "Ward 4@2026-06-08T10:00:00Z", "ICU@"+day+"T03:00:00Z")
	b.encounter("e-old", "old", "IMP", "2026-03-25T10:00:00Z", "2026-04-01T12:00:00Z", "")
	b.encounter("e-nobody", "nobody", "IMP", day+"T09:00:00Z", "", "")
	b.encounter("e-b1", "b1", "IMP", day+"T11:00:00Z", "", "")
	b.flush()
	attribute(t, st)
}

func ids(items []adtreport.Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Patient.ID+"/"+it.Encounter.ID)
	}
	return out
}

func TestBuild(t *testing.T) {
	st := openStore(t, false)
	seed(t, st)
	rep, err := adtreport.Build(context.Background(), st, groupA, reportDate, adtreport.Options{})
	require.NoError(t, err)
	assert.Equal(t, 8, rep.Members, "orgA's eight covered patients; nobody has no coverage, b1 is orgB's")
	assert.Equal(t, []string{"adm/e-adm"}, ids(rep.Admissions))
	assert.Equal(t, []string{"dis/e-dis"}, ids(rep.Discharges))
	assert.Equal(t, []string{"xfer/e-xfer"}, ids(rep.Transfers))

	type want struct {
		status             string
		days               int
		due7, due14, visit string
		w7, w14            bool
	}
	wants := map[string]want{
		"miss":  {adtreport.FollowUpMissed, 21, "2026-05-27", "2026-06-03", "", false, false},
		"met14": {adtreport.FollowUpMet14, 19, "2026-05-29", "2026-06-05", "v-met14", false, true},
		"met7":  {adtreport.FollowUpMet7, 16, "2026-06-01", "2026-06-08", "v-met7", true, true},
		"late":  {adtreport.FollowUpOpen, 5, "2026-06-12", "2026-06-19", "", false, false},
		"dis":   {adtreport.FollowUpOpen, 0, "2026-06-17", "2026-06-24", "", false, false},
	}
	require.Len(t, rep.FollowUps, len(wants))
	var order []string
	for _, f := range rep.FollowUps {
		order = append(order, f.Patient.ID)
		w, ok := wants[f.Patient.ID]
		require.True(t, ok, f.Patient.ID)
		assert.Equal(t, w.status, f.Status, f.Patient.ID)
		assert.Equal(t, w.days, f.DaysSinceDischarge, f.Patient.ID)
		assert.Equal(t, w.due7, f.Due7, f.Patient.ID)
		assert.Equal(t, w.due14, f.Due14, f.Patient.ID)
		assert.Equal(t, w.w7, f.Within7, f.Patient.ID)
		assert.Equal(t, w.w14, f.Within14, f.Patient.ID)
		if w.visit == "" {
			assert.Nil(t, f.Visit, f.Patient.ID)
		} else if assert.NotNil(t, f.Visit, f.Patient.ID) {
			assert.Equal(t, w.visit, f.Visit.ID)
		}
	}
	assert.Equal(t, []string{"miss", "met14", "met7", "late", "dis"}, order, "by discharge date")
	var open []string
	for _, f := range rep.Open() {
		open = append(open, f.Patient.ID)
	}
	assert.Equal(t, []string{"late", "dis"}, open)

	repB, err := adtreport.Build(context.Background(), st, groupB, reportDate, adtreport.Options{})
	require.NoError(t, err)
	assert.Equal(t, []string{"b1/e-b1"}, ids(repB.Admissions))
	assert.Empty(t, repB.FollowUps)

	// As of the 12th the late visit counts (day 7: met-7).
	rep12, err := adtreport.Build(context.Background(), st, groupA, reportDate.AddDate(0, 0, 2), adtreport.Options{})
	require.NoError(t, err)
	for _, f := range rep12.FollowUps {
		if f.Patient.ID == "late" {
			assert.Equal(t, adtreport.FollowUpMet7, f.Status)
		}
	}

	_, err = adtreport.Build(context.Background(), st, "no-such-list", reportDate, adtreport.Options{})
	assert.ErrorIs(t, err, adtreport.ErrNotFound)
}

// withOrg authenticates a request as a client of the organization in the
// X-Org header, restricted the way the server restricts provider clients
// (its attributed patients and its own lists); no header: a payer client.
func withOrg(st store.Store) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := &access.Principal{ClientID: "test", Scopes: []string{"system/*.read"}, Organization: r.Header.Get("X-Org")}
			if p.Organization != "" {
				pats, err := attribution.OrganizationPatients(r.Context(), st.KV(), p.Organization, reportDate)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				gs, err := attribution.OrganizationGroups(r.Context(), st.KV(), p.Organization)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				groups := access.Set{}
				for _, g := range gs {
					groups[g.ID] = true
				}
				p.Restrict(access.Visibility{Patients: access.Set(pats), Groups: groups})
			}
			next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), p)))
		})
	}
}

func server(t *testing.T, st store.Store) *httptest.Server {
	auth := withOrg(st)
	rs, err := rest.New(rest.Config{Store: st, Authenticate: auth, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	adtreport.NewHandler(st, rs.Base, adtreport.Options{}, nil).Mount(rs)
	ts := httptest.NewServer(rs)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url, org, accept string) (int, string, []byte) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if org != "" {
		req.Header.Set("X-Org", org)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func TestReportHTTP(t *testing.T) {
	st := openStore(t, false)
	seed(t, st)
	ts := server(t, st)
	base := ts.URL + "/fhir/Group/" + groupA + "/$adt-report"

	t.Run("bundle", func(t *testing.T) {
		code, ct, body := get(t, base+"?date="+day, orgA, "")
		require.Equal(t, http.StatusOK, code, string(body))
		assert.Contains(t, ct, "application/fhir+json")
		b := gjson.ParseBytes(body)
		assert.Equal(t, "collection", b.Get("type").String())
		assert.True(t, strings.HasPrefix(string(body), `{"resourceType":"Bundle","id":`), "resourceType first")
		v, err := validate.New()
		require.NoError(t, err)
		_, _, err = v.Resource(body)
		require.NoError(t, err, "the report Bundle is valid R4")
		lists := b.Get(`entry.#(resource.resourceType=="List")#.resource`).Array()
		require.Len(t, lists, 3)
		assert.Equal(t, "Encounter/e-adm", lists[0].Get("entry.0.item.reference").String())
		assert.Equal(t, "Encounter/e-dis", lists[1].Get("entry.0.item.reference").String())
		assert.Equal(t, "Encounter/e-xfer", lists[2].Get("entry.0.item.reference").String())
		tasks := b.Get(`entry.#(resource.resourceType=="Task")#.resource`).Array()
		require.Len(t, tasks, 5)
		got := map[string]string{}
		for _, tk := range tasks {
			got[tk.Get("for.reference").String()] = tk.Get("status").String() + "/" + tk.Get("businessStatus.coding.0.code").String() + "/" + tk.Get("output.0.valueReference.reference").String()
		}
		assert.Equal(t, map[string]string{
			"Patient/miss":  "failed/missed/",
			"Patient/met14": "completed/met-14/Encounter/v-met14",
			"Patient/met7":  "completed/met-7/Encounter/v-met7",
			"Patient/late":  "requested/open/",
			"Patient/dis":   "requested/open/",
		}, got)
		var patients []string
		for _, p := range b.Get(`entry.#(resource.resourceType=="Patient")#.resource.id`).Array() {
			patients = append(patients, p.String())
		}
		assert.ElementsMatch(t, []string{"adm", "dis", "met7", "met14", "miss", "late", "xfer"}, patients)
		assert.NotContains(t, string(body), "Patient/nobody")
		assert.NotContains(t, string(body), "Patient/b1")
		// Every reference resolves inside the Bundle.
		full := map[string]bool{}
		for _, e := range b.Get("entry").Array() {
			full[e.Get("fullUrl").String()] = true
		}
		for _, ref := range []string{"Encounter/e-adm", "Encounter/v-met14", "Encounter/e-miss", "Patient/dis"} {
			assert.True(t, full[ts.URL+"/fhir/"+ref], ref)
		}
	})

	for _, how := range []struct{ name, query, accept string }{
		{"_format=text/csv", "&_format=text/csv", ""},
		{"_format=csv", "&_format=csv", ""},
		{"Accept", "", "text/csv"},
	} {
		t.Run("csv via "+how.name, func(t *testing.T) {
			code, ct, body := get(t, base+"?date="+day+how.query, orgA, how.accept)
			require.Equal(t, http.StatusOK, code, string(body))
			assert.Contains(t, ct, "text/csv")
			rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
			require.NoError(t, err)
			require.Equal(t, adtreport.CSVHeader, rows[0])
			var lines []string
			for _, r := range rows[1:] {
				lines = append(lines, strings.Join([]string{r[0], r[1], r[5], r[12], r[13], r[14], r[15], r[16], r[17], r[18], r[19]}, ","))
			}
			assert.Equal(t, []string{
				"admission,adm,e-adm,,,,,,,,",
				"discharge,dis,e-dis,,,,,,,,",
				"transfer,xfer,e-xfer,,,,,,,,",
				"follow-up,miss,e-miss,missed,21,2026-05-27,2026-06-03,false,false,,",
				"follow-up,met14,e-met14,met-14,19,2026-05-29,2026-06-05,false,true,v-met14,2026-06-02",
				"follow-up,met7,e-met7,met-7,16,2026-06-01,2026-06-08,true,true,v-met7,2026-05-29",
				"follow-up,late,e-late,open,5,2026-06-12,2026-06-19,false,false,,",
				"follow-up,dis,e-dis,open,0,2026-06-17,2026-06-24,false,false,,",
			}, lines)
		})
	}

	errs := []struct {
		name, url, org, accept string
		want                   int
	}{
		{"no date", base, orgA, "", http.StatusBadRequest},
		{"empty date", base + "?date=", orgA, "", http.StatusBadRequest},
		{"bad date", base + "?date=2026-13-01", orgA, "", http.StatusBadRequest},
		{"datetime", base + "?date=2026-06-10T00:00:00Z", orgA, "", http.StatusBadRequest},
		{"two dates", base + "?date=" + day + "&date=" + day, orgA, "", http.StatusBadRequest},
		{"unknown parameter", base + "?date=" + day + "&provider=x", orgA, "", http.StatusBadRequest},
		{"xml", base + "?date=" + day + "&_format=xml", orgA, "", http.StatusNotAcceptable},
		{"accept xml", base + "?date=" + day, orgA, "application/fhir+xml", http.StatusNotAcceptable},
		{"another provider's list", base + "?date=" + day, orgB, "", http.StatusNotFound},
		{"unknown list", ts.URL + "/fhir/Group/nope/$adt-report?date=" + day, "", "", http.StatusNotFound},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := get(t, tc.url, tc.org, tc.accept)
			require.Equal(t, tc.want, code, string(body))
			assert.Equal(t, "OperationOutcome", gjson.GetBytes(body, "resourceType").String())
		})
	}
	t.Run("system client sees every list", func(t *testing.T) {
		code, _, body := get(t, ts.URL+"/fhir/Group/"+groupB+"/$adt-report?date="+day, "", "")
		require.Equal(t, http.StatusOK, code, string(body))
		assert.Contains(t, string(body), "Encounter/e-b1")
	})
}

// BenchmarkReport10k builds the report of a 10,000-member list whose
// members have three encounters each (an admission, a discharge 1–20 days
// before the report date, a follow-up visit for every third).
func BenchmarkReport10k(b *testing.B) {
	const members = 10000
	st := openStore(b, true)
	bt := &batch{t: b, st: st}
	bt.directory()
	for i := range members {
		id := fmt.Sprintf("m%05d", i)
		bt.patient(id, "orgA", true)
		dd := reportDate.AddDate(0, 0, -(i%20 + 1))
		bt.encounter("d-"+id, id, "IMP", dd.AddDate(0, 0, -3).Format(time.RFC3339), dd.Format(time.RFC3339), "")
		if i%3 == 0 {
			bt.encounter("v-"+id, id, "AMB", dd.AddDate(0, 0, 5).Format(time.RFC3339), "", "orgA")
		}
		if i%50 == 0 {
			bt.encounter("a-"+id, id, "IMP", day+"T08:00:00Z", "", "")
		}
	}
	bt.flush()
	attribute(b, st)
	ctx := context.Background()
	var rep *adtreport.Report
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		var err error
		rep, err = adtreport.Build(ctx, st, groupA, reportDate, adtreport.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := rep.WriteBundle(io.Discard, "http://localhost/fhir"); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	if rep.Members != members {
		b.Fatalf("members %d", rep.Members)
	}
	b.ReportMetric(float64(b.N*members)/el, "members/s")
	b.ReportMetric(float64(len(rep.FollowUps)), "follow-ups")
}

// TestFollowUpWindows pins the window rules: a visit counts when it is an
// outpatient encounter that took place with the attributed provider, after
// the discharge, on or before discharge date + 7 (met-7) or + 14 (met-14),
// and on or before the report date.
func TestFollowUpWindows(t *testing.T) {
	const discharged = "2026-06-01T12:00:00Z"
	visit := func(start, status, provider string) string {
		body := `{"resourceType":"Encounter","id":"VID","status":"` + status + `","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/PID"},"period":{"start":"` + start + `"}`
		if provider == "npi" {
			body += `,"participant":[{"individual":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"` + npiA + `"}}}]`
		} else if provider != "" {
			body += `,"serviceProvider":{"reference":"Organization/` + provider + `"}`
		}
		return body + "}"
	}
	tests := []struct {
		name   string
		visit  string // "" for none
		report string
		want   string
	}{
		{"same day after discharge", visit("2026-06-01T16:00:00Z", "finished", "orgA"), "2026-06-20", adtreport.FollowUpMet7},
		{"same day before discharge", visit("2026-06-01T08:00:00Z", "finished", "orgA"), "2026-06-20", adtreport.FollowUpMissed},
		{"day 7", visit("2026-06-08T09:00:00Z", "finished", "orgA"), "2026-06-20", adtreport.FollowUpMet7},
		{"day 8", visit("2026-06-09T09:00:00Z", "finished", "orgA"), "2026-06-20", adtreport.FollowUpMet14},
		{"day 14", visit("2026-06-15T09:00:00Z", "finished", "orgA"), "2026-06-20", adtreport.FollowUpMet14},
		{"day 15", visit("2026-06-16T09:00:00Z", "finished", "orgA"), "2026-06-20", adtreport.FollowUpMissed},
		{"no visit, window open", "", "2026-06-15", adtreport.FollowUpOpen},
		{"no visit, window closed", "", "2026-06-16", adtreport.FollowUpMissed},
		{"visit after the report date", visit("2026-06-05T09:00:00Z", "finished", "orgA"), "2026-06-04", adtreport.FollowUpOpen},
		{"another provider", visit("2026-06-03T09:00:00Z", "finished", "orgB"), "2026-06-20", adtreport.FollowUpMissed},
		{"planned, not happened", visit("2026-06-03T09:00:00Z", "planned", "orgA"), "2026-06-20", adtreport.FollowUpMissed},
		{"attributed clinician by NPI", visit("2026-06-03T09:00:00Z", "in-progress", "npi"), "2026-06-20", adtreport.FollowUpMet7},
	}
	st := openStore(t, false)
	b := &batch{t: t, st: st}
	b.directory()
	for i, tc := range tests {
		pid := fmt.Sprintf("w%02d", i)
		b.patient(pid, "orgA", true)
		b.encounter("d-"+pid, pid, "IMP", "2026-05-28T10:00:00Z", discharged, "")
		if tc.visit != "" {
			b.put("Encounter", "v-"+pid, strings.NewReplacer("VID", "v-"+pid, "PID", pid).Replace(tc.visit))
		}
	}
	b.flush()
	attribute(t, st)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := time.Parse(time.DateOnly, tc.report)
			require.NoError(t, err)
			rep, err := adtreport.Build(context.Background(), st, groupA, d, adtreport.Options{})
			require.NoError(t, err)
			pid := fmt.Sprintf("w%02d", i)
			var got []string
			for _, f := range rep.FollowUps {
				if f.Patient.ID == pid {
					got = append(got, f.Status)
				}
			}
			assert.Equal(t, []string{tc.want}, got)
		})
	}
}
