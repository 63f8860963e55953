package bulkapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/bulk/importjob"
	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/fhir/bulkapi"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store/badgerstore"
)

var quiet = slog.New(slog.DiscardHandler)

// benchPatients is the population of the bulk benchmarks (10,000 unless
// EQUITAS_BENCH_PATIENTS says otherwise).
func benchPatients() int {
	if n, err := strconv.Atoi(os.Getenv("EQUITAS_BENCH_PATIENTS")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// population is a synthetic population as NDJSON files, generated once
// per benchmark binary run.
var population = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "equitas-bulk-bench-*")
	if err != nil {
		return "", err
	}
	_, err = synth.GenerateDir(context.Background(), synth.Options{Patients: benchPatients(), Seed: 1}, dir)
	return dir, err
})

// typeOnly checks only that a line has a type and id: seeding the
// export benchmark's store is not what is measured.
type typeOnly struct{}

func (typeOnly) Resource(body []byte) (string, string, error) {
	r := gjson.GetManyBytes(body, "resourceType", "id")
	return r[0].String(), r[1].String(), nil
}

func loadedStore(b *testing.B) (*badgerstore.Store, int64) {
	b.Helper()
	dir, err := population()
	if err != nil {
		b.Fatal(err)
	}
	st, err := badgerstore.Open(context.Background(), b.TempDir(), badgerstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	sum, err := ingest.New(st, typeOnly{}, ingest.Options{}).LoadPaths(context.Background(), dir)
	if err != nil {
		b.Fatal(err)
	}
	return st, sum.Loaded()
}

// BenchmarkExportRun measures the export job alone (snapshot, scan,
// NDJSON files on disk) for a system-level and a Patient-level export.
func BenchmarkExportRun(b *testing.B) {
	st, total := loadedStore(b)
	ex := export.New(st, export.Options{})
	for _, level := range []export.Level{export.System, export.Patient} {
		b.Run(string(level), func(b *testing.B) {
			var n int64
			cpu0 := cpuTime()
			for b.Loop() {
				dir := b.TempDir()
				params := fmt.Appendf(nil, `{"level":%q,"clientId":"bench","scopes":["system/*.read"],"fileBase":"http://x/fhir/bulkfiles"}`, level)
				out, err := ex.Run(context.Background(), &job.Record{ID: "bench", Params: params}, dir, func(string) {})
				if err != nil {
					b.Fatal(err)
				}
				for _, f := range gjson.GetBytes(out, "output").Array() {
					n += f.Get("count").Int()
				}
			}
			if level == export.System && n != total*int64(b.N) {
				b.Fatalf("exported %d resources, store holds %d", n/int64(b.N), total)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/resource")
		})
	}
}

// BenchmarkExportHTTP measures a whole system-level export over HTTP on a
// loopback server: kick-off, polling, and downloading every file. It
// reports resources/s end to end and the time from kick-off to the first
// byte of the first file.
func BenchmarkExportHTTP(b *testing.B) {
	st, total := loadedStore(b)
	jobs, err := job.NewManager(st.KV(), job.Options{Dir: b.TempDir(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{b: b}
	e.start(st, jobs)
	for _, gz := range []bool{false, true} {
		b.Run(map[bool]string{false: "identity", true: "gzip"}[gz], func(b *testing.B) {
			var n, bytes int64
			var firstByte time.Duration
			for b.Loop() {
				start := time.Now()
				res := e.get(e.base+"/$export", "Prefer", "respond-async")
				status := res.Header.Get("Content-Location")
				res.Body.Close()
				var manifest gjson.Result
				for {
					res := e.get(status)
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode == http.StatusOK {
						manifest = gjson.ParseBytes(body)
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				// Files are downloaded 4 at a time, as bulk-data-client
				// does (its default is 5).
				var mu sync.Mutex
				var wg sync.WaitGroup
				sem := make(chan struct{}, 4)
				for i, f := range manifest.Get("output").Array() {
					hdr := []string{}
					if gz {
						hdr = []string{"Accept-Encoding", "gzip"}
					}
					sem <- struct{}{}
					wg.Add(1)
					go func() {
						defer func() { <-sem; wg.Done() }()
						res := e.get(f.Get("url").String(), hdr...)
						defer res.Body.Close()
						br := bufio.NewReaderSize(res.Body, 256<<10)
						if i == 0 {
							if _, err := br.Peek(1); err == nil {
								mu.Lock()
								firstByte += time.Since(start)
								mu.Unlock()
							}
						}
						m, _ := io.Copy(io.Discard, br)
						mu.Lock()
						bytes += m
						n += f.Get("count").Int()
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
			if n != total*int64(b.N) {
				b.Fatalf("exported %d resources, store holds %d", n/int64(b.N), total)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
			b.ReportMetric(float64(firstByte.Milliseconds())/float64(b.N), "first-byte-ms")
			b.ReportMetric(float64(bytes)/float64(b.N)/(1<<20), "MiB/export")
		})
	}
}

type benchEnv struct {
	b    *testing.B
	base string
}

func (e *benchEnv) start(st *badgerstore.Store, jobs *job.Manager) {
	srv, err := newBenchServer(st, jobs)
	if err != nil {
		e.b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := jobs.Start(ctx); err != nil {
		e.b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	e.b.Cleanup(func() {
		hs.Close()
		cancel()
		jobs.Wait()
	})
	e.base = hs.URL + "/fhir"
}

func (e *benchEnv) get(url string, headers ...string) *http.Response {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		e.b.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		e.b.Fatal(err)
	}
	return res
}

// BenchmarkIngest compares loading the synthetic population offline
// (bulk/ingest straight from the files, what `equitas import` does) with
// loading it through the server's $import (ping and pull from a static
// manifest over loopback HTTP). Both validate every resource and write
// to a fresh durable store.
func BenchmarkIngest(b *testing.B) {
	dir, err := population()
	if err != nil {
		b.Fatal(err)
	}
	v, err := validate.New()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("offline", func(b *testing.B) {
		var n int64
		cpu0 := cpuTime()
		for b.Loop() {
			b.StopTimer()
			st, err := badgerstore.Open(context.Background(), b.TempDir(), badgerstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			sum, err := ingest.New(st, v, ingest.Options{}).LoadPaths(context.Background(), dir)
			if err != nil {
				b.Fatal(err)
			}
			n += sum.Loaded()
			b.StopTimer()
			_ = st.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/resource")
	})
	b.Run("via-$import", func(b *testing.B) {
		files := staticFiles(b, dir)
		var n int64
		cpu0 := cpuTime()
		for b.Loop() {
			b.StopTimer()
			st, err := badgerstore.Open(context.Background(), b.TempDir(), badgerstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			jobs, err := job.NewManager(st.KV(), job.Options{Dir: b.TempDir(), Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			e := &benchEnv{b: b}
			e.start(st, jobs)
			b.StartTimer()
			body := fmt.Sprintf(`{"resourceType":"Parameters","parameter":[{"name":"exportUrl","valueUrl":%q},{"name":"exportType","valueCode":"static"}]}`, files+"/manifest.json")
			req, _ := http.NewRequest("POST", e.base+"/$import", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/fhir+json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			res.Body.Close()
			status := res.Header.Get("Content-Location")
			for {
				res := e.get(status)
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					ext := gjson.GetBytes(body, "extension")
					for _, k := range []string{"written", "unchanged"} {
						ext.Get(k).ForEach(func(_, c gjson.Result) bool { n += c.Int(); return true })
					}
					break
				}
				if res.StatusCode != http.StatusAccepted {
					b.Fatalf("import: %d %s", res.StatusCode, body)
				}
				time.Sleep(20 * time.Millisecond)
			}
			b.StopTimer()
			_ = st.Close()
			b.StartTimer()
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/resource")
	})
}

// cpuTime is the user+system CPU time of this process; on a shared
// machine CPU per resource is steadier than wall-clock rates.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// staticFiles serves dir's NDJSON files as a finished Bulk Data manifest.
func staticFiles(b *testing.B, dir string) string {
	names, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil {
		b.Fatal(err)
	}
	sort.Strings(names)
	var hs *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/manifest.json", func(w http.ResponseWriter, r *http.Request) {
		var out []string
		for _, n := range names {
			base := filepath.Base(n)
			out = append(out, fmt.Sprintf(`{"type":%q,"url":%q}`, strings.TrimSuffix(base, ".ndjson"), hs.URL+"/files/"+base))
		}
		fmt.Fprintf(w, `{"transactionTime":"2026-01-01T00:00:00Z","request":"x","requiresAccessToken":false,"output":[%s],"error":[]}`, strings.Join(out, ","))
	})
	mux.Handle("/files/", http.StripPrefix("/files/", http.FileServer(http.Dir(dir))))
	hs = httptest.NewServer(mux)
	b.Cleanup(hs.Close)
	return hs.URL
}

// newBenchServer is the FHIR server with the bulk endpoints, as serve
// wires it with --auth none.
func newBenchServer(st *badgerstore.Store, jobs *job.Manager) (http.Handler, error) {
	srv, err := rest.New(rest.Config{Store: st})
	if err != nil {
		return nil, err
	}
	v, err := validate.New()
	if err != nil {
		return nil, err
	}
	jobs.Register(export.Kind, export.New(st, export.Options{}).Run)
	jobs.Register(importjob.Kind, importjob.New(st, v, importjob.Options{}).Run)
	bulkapi.New(st, jobs, srv.Base, false).Mount(srv, nil)
	bulkapi.NewIngest(jobs, importjob.NewSubmissions(st, jobs), srv.Base, false).Mount(srv)
	return srv, nil
}
