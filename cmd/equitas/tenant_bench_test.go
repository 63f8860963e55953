package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// benchMembers is the size of clinic A's list in BenchmarkTenantFilter
// (100,000 unless EQUITAS_TENANT_BENCH_MEMBERS says otherwise); clinic B
// gets a fifth of that, so a provider's filter always drops something.
func benchMembers() int {
	if n, err := strconv.Atoi(os.Getenv("EQUITAS_TENANT_BENCH_MEMBERS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// tenantBenchStore writes a directory (a payer, two clinics with an NPI
// and a TIN, one practitioner each), n+n/5 patients with their PCP and a
// Coverage, and attributes them prospectively: clinic A's lists hold n
// members.
func tenantBenchStore(b *testing.B, n int) store.Store {
	b.Helper()
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, b.TempDir(), badgerstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	put := func(typ, id, body string) store.Write {
		return store.Write{Op: store.OpPut, Type: typ, ID: id, Body: []byte(body)}
	}
	dir := []store.Write{put("Organization", "payer", `{"resourceType":"Organization","id":"payer","name":"Payer"}`)}
	for i, c := range []string{"a", "b"} {
		dir = append(dir,
			put("Organization", "clinic-"+c, fmt.Sprintf(`{"resourceType":"Organization","id":"clinic-%s","name":"Clinic %s","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"19999999%d2"},{"system":"urn:oid:2.16.840.1.113883.4.4","value":"99000000%d"}]}`, c, c, i, i)),
			put("Practitioner", "pr-"+c, fmt.Sprintf(`{"resourceType":"Practitioner","id":"pr-%s","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"18888888%d1"}]}`, c, i)),
			put("PractitionerRole", "role-"+c, fmt.Sprintf(`{"resourceType":"PractitionerRole","id":"role-%s","active":true,"practitioner":{"reference":"Practitioner/pr-%s"},"organization":{"reference":"Organization/clinic-%s"}}`, c, c, c)))
	}
	if _, err := st.Commit(ctx, store.Tx{Writes: dir}); err != nil {
		b.Fatal(err)
	}
	total := n + n/5
	const batch = 2000
	for lo := 0; lo < total; lo += batch {
		var ws []store.Write
		for i := lo; i < min(lo+batch, total); i++ {
			pcp := "pr-a"
			if i >= n {
				pcp = "pr-b"
			}
			id := fmt.Sprintf("p%07d", i)
			ws = append(ws,
				put("Patient", id, fmt.Sprintf(`{"resourceType":"Patient","id":"%s","name":[{"family":"F%d"}],"birthDate":"1960-01-01","generalPractitioner":[{"reference":"Practitioner/%s"}]}`, id, i%97, pcp)),
				put("Coverage", "c"+id, fmt.Sprintf(`{"resourceType":"Coverage","id":"c%s","status":"active","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MB"}]},"value":"M%s"}],"subscriberId":"M%s","beneficiary":{"reference":"Patient/%s"},"payor":[{"reference":"Organization/payer"}],"period":{"start":"2020-01-01"}}`, id, id, id, id)))
		}
		if _, err := st.Commit(ctx, store.Tx{Writes: ws}); err != nil {
			b.Fatal(err)
		}
	}
	res, err := attribution.Run(ctx, st, attribution.RunOptions{Options: attribution.Options{Method: attribution.Prospective, AsOf: time.Now().UTC()}})
	if err != nil {
		b.Fatal(err)
	}
	if res.Attributed != total {
		b.Fatalf("attributed %d of %d", res.Attributed, total)
	}
	return st
}

// processCPU is the CPU time this process used so far: on a shared box
// it is steadier than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per iteration since cpu0.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkTenantFilter measures the cost of provider-scoped access on a
// list of 100k members: resolving the organization's patient set (cold,
// and through the per-organization cache every request goes through), a
// search page and a _summary=count over every Coverage as provider and as
// payer, and a Patient-level export as provider and as payer.
func BenchmarkTenantFilter(b *testing.B) {
	n := benchMembers()
	st := tenantBenchStore(b, n)
	ctx := context.Background()
	vis := newVisibility(st)
	const org = "clinic-a"
	listA := attribution.GroupID("payer", attribution.Provider{OrganizationID: "clinic-a"})

	b.Run("resolve/cold", func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			c := newVisibility(st)
			v, err := c.Resolve(ctx, org)
			if err != nil {
				b.Fatal(err)
			}
			if !v.Patients.Contains("p0000000") {
				b.Fatal("member missing")
			}
		}
		reportCPU(b, cpu0)
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "members/s")
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/resolve")
	})
	b.Run("resolve/cached", func(b *testing.B) {
		if _, err := vis.Resolve(ctx, org); err != nil {
			b.Fatal(err)
		}
		cpu0 := processCPU()
		for b.Loop() {
			if _, err := vis.Resolve(ctx, org); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu0)
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/request")
	})

	principal := func(restricted bool) *access.Principal {
		p := &access.Principal{ClientID: "bench", Scopes: []string{"system/*.read"}}
		if restricted {
			p.Organization = org
			v, err := vis.Resolve(ctx, org)
			if err != nil {
				b.Fatal(err)
			}
			p.Restrict(v)
		}
		return p
	}
	for _, who := range []string{"payer", "provider"} {
		srv, err := rest.New(rest.Config{Store: st, Authenticate: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), principal(who == "provider"))))
			})
		}})
		if err != nil {
			b.Fatal(err)
		}
		srv.Render("Group", func(ctx context.Context, res *store.Resource, w io.Writer, summary bool) error {
			return attribution.RenderGroup(ctx, st.KV(), res, w, summary)
		})
		for _, q := range []struct{ name, path string }{
			{"search-page", "/fhir/Coverage?_count=100"},
			{"search-count", "/fhir/Coverage?_summary=count"},
			{"read-list", "/fhir/Group/" + listA},
			{"read-list-summary", "/fhir/Group/" + listA + "?_summary=true"},
		} {
			b.Run(q.name+"/"+who, func(b *testing.B) {
				var total int64
				cpu0 := processCPU()
				for b.Loop() {
					rec := httptest.NewRecorder()
					srv.ServeHTTP(rec, httptest.NewRequest("GET", q.path, nil))
					if rec.Code != http.StatusOK {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
					total = gjson.GetBytes(rec.Body.Bytes(), "total").Int()
					if q.name == "read-list" {
						total = int64(len(gjson.GetBytes(rec.Body.Bytes(), "member").Array()))
					}
				}
				reportCPU(b, cpu0)
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/request")
				b.ReportMetric(float64(total), "total")
			})
		}
	}

	ex := export.New(st, export.Options{Visibility: vis.Resolve,
		Members: func(ctx context.Context, snap store.Snapshot, groupID string) ([]string, error) {
			return groupMembers(ctx, st.KV(), snap, groupID)
		},
		Render: map[string]export.Renderer{"Group": func(ctx context.Context, res *store.Resource) ([]byte, error) {
			return renderGroup(ctx, st.KV(), res, false)
		}}})
	b.Run("davinci-data-export/provider", func(b *testing.B) {
		vals := url.Values{"exportType": {export.ATRExportType}}
		var written int64
		cpu0 := processCPU()
		for b.Loop() {
			p, err := export.ParseDaVinci(export.Kickoff{Level: export.Group, GroupID: listA, Values: vals})
			if err != nil {
				b.Fatal(err)
			}
			p.ClientID, p.Scopes, p.Organization, p.FileBase = "bench", []string{"system/*.read"}, org, "http://x/fhir/bulkfiles"
			params, err := json.Marshal(p)
			if err != nil {
				b.Fatal(err)
			}
			out, err := ex.Run(ctx, &job.Record{ID: "bench", Params: params}, b.TempDir(), func(string) {})
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range gjson.GetBytes(out, "output").Array() {
				written += f.Get("count").Int()
			}
		}
		reportCPU(b, cpu0)
		b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "resources/s")
		b.ReportMetric(float64(written)/float64(b.N), "resources")
	})
	for _, who := range []string{"payer", "provider"} {
		b.Run("export-patient/"+who, func(b *testing.B) {
			organization := ""
			if who == "provider" {
				organization = org
			}
			var written int64
			cpu0 := processCPU()
			for b.Loop() {
				params := fmt.Appendf(nil, `{"level":"patient","types":["Patient","Coverage"],"clientId":"bench","scopes":["system/*.read"],"organization":%q,"fileBase":"http://x/fhir/bulkfiles"}`, organization)
				out, err := ex.Run(ctx, &job.Record{ID: "bench", Params: params}, b.TempDir(), func(string) {})
				if err != nil {
					b.Fatal(err)
				}
				for _, f := range gjson.GetBytes(out, "output").Array() {
					written += f.Get("count").Int()
				}
			}
			reportCPU(b, cpu0)
			b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "resources/s")
			b.ReportMetric(float64(written)/float64(b.N), "resources")
		})
	}
}
