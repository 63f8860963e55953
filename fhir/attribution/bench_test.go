package attribution

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/bulk/synth"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// benchPatients is the population of BenchmarkRun (5,000 unless
// EQUITAS_ATR_BENCH_PATIENTS says otherwise, e.g. 100000).
func benchPatients() int {
	if n, err := strconv.Atoi(os.Getenv("EQUITAS_ATR_BENCH_PATIENTS")); err == nil && n > 0 {
		return n
	}
	return 5000
}

// typeAndID stands in for the FHIR validator while loading the benchmark
// population: the generator's output is valid and loading is not what is
// measured.
type typeAndID struct{}

func (typeAndID) Resource(body []byte) (string, string, error) {
	r := gjson.GetManyBytes(body, "resourceType", "id")
	return r[0].String(), r[1].String(), nil
}

// peakRSS resets the kernel's high-water mark of this process's resident
// set (Linux clear_refs 5) and returns a function reading it in MiB; ok is
// false where that is not available.
func peakRSS() (read func() float64, ok bool) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return nil, false
	}
	return func() float64 {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
		return 0
	}, true
}

// peakHeap samples the live Go heap (as marked by the latest GC, so
// garbage awaiting collection does not count) every few milliseconds until
// stop is called, and returns the largest value seen in MiB.
func peakHeap() (stop func() float64) {
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			metrics.Read(sample)
			mu.Lock()
			peak = max(peak, sample[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		wg.Wait()
		return float64(peak) / (1 << 20)
	}
}

// settle waits (at most 10 minutes) until badger has no compaction due:
// every level's score is below 1.
func settle(st *badgerstore.Store) {
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		due := false
		for _, l := range st.DB().Levels() {
			due = due || l.Score >= 1
		}
		if !due {
			return
		}
	}
}

// BenchmarkRun attributes a synthetic population loaded into a real badger
// store (hybrid method, one run per iteration after a first run, so the
// measured runs compute changeType against a previous list and write new
// Group versions).
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	n := benchPatients()
	pop := b.TempDir()
	if _, err := synth.GenerateDir(ctx, synth.Options{Patients: n, Seed: 1}, pop); err != nil {
		b.Fatal(err)
	}
	// Small badger buffers and caches: with the defaults (5 x 128 MiB
	// memtables, 384 MiB of caches) the store's own, bounded buffers would
	// hide whether the run's memory grows with the population. The store
	// is reopened after loading so the load's memtable flushes are not
	// counted against the run.
	dir := b.TempDir()
	bopts := badgerstore.Options{NoSync: true, MemTableSize: 16 << 20, NumMemtables: 2, BlockCacheSize: 16 << 20, IndexCacheSize: 16 << 20}
	st, err := badgerstore.Open(ctx, dir, bopts)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ingest.New(st, typeAndID{}, ingest.Options{}).LoadPaths(ctx, pop); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if st, err = badgerstore.Open(ctx, dir, bopts); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	opts := RunOptions{Options: Options{Method: Hybrid, AsOf: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if _, err := Run(ctx, st, opts); err != nil {
		b.Fatal(err)
	}
	// Measure the run, not the setup: let badger finish compacting what
	// the load and the first run left, and hand the setup's freed heap
	// back to the OS, before the high-water mark is reset.
	settle(st)
	debug.FreeOSMemory()
	rss, rssOK := peakRSS()
	stop := peakHeap()
	var patients int
	var elapsed time.Duration
	b.ResetTimer()
	for b.Loop() {
		opts.AsOf = opts.AsOf.AddDate(0, 1, 0)
		res, err := Run(ctx, st, opts)
		if err != nil {
			b.Fatal(err)
		}
		patients += res.Patients
		elapsed += res.Elapsed
	}
	b.StopTimer()
	b.ReportMetric(float64(patients)/elapsed.Seconds(), "members/s")
	b.ReportMetric(stop(), "peak-live-heap-MiB")
	if rssOK {
		b.ReportMetric(rss(), "peak-RSS-MiB")
	}
}

// benchMembers is the list size of BenchmarkMemberAdd and
// BenchmarkRenderGroup (20,000 unless EQUITAS_ATR_BENCH_MEMBERS says
// otherwise, e.g. 100000).
func benchMembers() int {
	if v, err := strconv.Atoi(os.Getenv("EQUITAS_ATR_BENCH_MEMBERS")); err == nil && v > 0 {
		return v
	}
	return 20000
}

// benchList builds a list of n members in a real badger store the way an
// upgraded store has it (members in the index, a Group without members),
// and makes one change so its member history is started.
func benchList(b *testing.B, n int) (*Lists, *GroupInfo, store.Store) {
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, b.TempDir(), badgerstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	prov := Provider{NPI: "1000000001", PractitionerID: "p1", OrganizationID: "clinic1", TIN: "111111111"}
	g := &GroupInfo{ID: GroupID("payer", prov), PayerID: "payer", OrganizationID: "clinic1", TIN: prov.TIN,
		ContractSystem: DefaultContractSystem, Contract: "c1", Status: StatusOpen}
	ops := map[string][]byte{}
	for i := range n {
		id := fmt.Sprintf("pt%07d", i)
		e := Entry{Member: Member{PatientID: id, MemberID: "M" + id, CoverageID: "cov-" + id, PayerID: "payer", Provider: prov, Basis: Prospective},
			GroupID: g.ID, PeriodStart: "2026-01-01", ChangeType: ChangeNew}
		v, err := json.Marshal(&e)
		if err != nil {
			b.Fatal(err)
		}
		ops[memberKey(g.ID, id)] = v
		if len(ops) == 1000 || i == n-1 {
			if err := st.KV().Batch(ctx, ops); err != nil {
				b.Fatal(err)
			}
			ops = map[string][]byte{}
		}
	}
	info, err := json.Marshal(g)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.KV().Put(ctx, kvGroup+g.ID, info); err != nil {
		b.Fatal(err)
	}
	h, err := head(g, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Group", ID: g.ID, Body: h}}}); err != nil {
		b.Fatal(err)
	}
	l := NewLists(st)
	if _, err := l.Add(ctx, g.ID, Member{PatientID: "first", PayerID: "payer", Provider: prov}, "2026-02-01", "", Audit{Who: "bench"}); err != nil {
		b.Fatal(err)
	}
	return l, g, st
}

// BenchmarkMemberAdd measures $member-add on a list of benchMembers
// members: the member's index keys, a new Group version (no members) and
// its Provenance, in one commit.
func BenchmarkMemberAdd(b *testing.B) {
	ctx := context.Background()
	n := benchMembers()
	l, g, _ := benchList(b, n)
	prov := Provider{NPI: "1000000002", PractitionerID: "p2", OrganizationID: "clinic1", TIN: "111111111"}
	i := 0
	for b.Loop() {
		m := Member{PatientID: fmt.Sprintf("new%07d", i), PayerID: "payer", Provider: prov}
		if _, err := l.Add(ctx, g.ID, m, "2026-02-01", "", Audit{Who: "bench"}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/add")
	b.ReportMetric(float64(n), "members")
}

// BenchmarkRenderGroup measures a read of a list of benchMembers members:
// the current Group version rendered with its members from the history.
func BenchmarkRenderGroup(b *testing.B) {
	ctx := context.Background()
	n := benchMembers()
	_, g, st := benchList(b, n)
	cur, err := st.Read(ctx, "Group", g.ID)
	if err != nil {
		b.Fatal(err)
	}
	var size int
	for b.Loop() {
		var w countingWriter
		if err := RenderGroup(ctx, st.KV(), cur, &w, false); err != nil {
			b.Fatal(err)
		}
		size = int(w)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/read")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "members/s")
	b.ReportMetric(float64(size)/(1<<20), "MiB/Group")
}

type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
