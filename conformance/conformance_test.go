package conformance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/conformance/internal/equitasproc"
)

// TestConformance runs the suite against EQUITAS_URL (the server root, e.g.
// http://127.0.0.1:8080) when set, otherwise against a freshly built
// `equitas serve` on an empty data directory.
func TestConformance(t *testing.T) {
	root := os.Getenv("EQUITAS_URL")
	if root == "" {
		srv := equitasproc.Start(t, equitasBinary(t), t.TempDir())
		defer srv.Stop(t)
		root = srv.Root
	}
	root = strings.TrimRight(root, "/")
	t.Run("operational", func(t *testing.T) { RunOperational(t, root) })
	t.Run("fhir", func(t *testing.T) { Run(t, root+"/fhir") })
	t.Run("after", func(t *testing.T) { RunAfter(t, root) })
}

// TestSMART runs the SMART Backend Services checks against a server started
// with --auth smart, or against EQUITAS_URL when EQUITAS_ADMIN_TOKEN (the
// admin API bearer, needed to register the suite's client) is also set.
func TestSMART(t *testing.T) {
	root, admin := os.Getenv("EQUITAS_URL"), os.Getenv("EQUITAS_ADMIN_TOKEN")
	if root != "" && admin == "" {
		t.Skip("EQUITAS_URL is set without EQUITAS_ADMIN_TOKEN: cannot register a SMART client")
	}
	if root == "" {
		admin = "admin-" + string(newRunID())
		srv := equitasproc.Start(t, equitasBinary(t), t.TempDir(), "--auth", "smart", "--admin-token", admin)
		defer srv.Stop(t)
		root = srv.Root
	}
	RunSMART(t, root, admin)
}

// TestCrashRecovery kills the server with SIGKILL right after acknowledged
// writes (and again while writes are in flight), restarts it on the same
// data directory, and requires every acknowledged write to be there with
// its version, in reads, vreads and search.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv("EQUITAS_URL") != "" {
		t.Skip("crash recovery needs a server this test starts; EQUITAS_URL is set")
	}
	bin := equitasBinary(t)
	data := t.TempDir()
	run := newRunID()
	family := run.family("Crash")
	acked := newAckLog()

	// Cycle 1: sequential creates, updates and deletes, killed right after
	// the last acknowledgement.
	srv := equitasproc.Start(t, bin, data)
	c := newClient(srv.Root + "/fhir")
	var ids []string
	for i := range 30 {
		r := c.create(t, patient(family, fmt.Sprintf("Seq%d", i)))
		ids = append(ids, r.Get("id").String())
		acked.put(r.Get("id").String(), r.Get("meta.versionId").String())
	}
	for i, id := range ids {
		switch i % 5 {
		case 1, 2:
			for range 2 {
				body := patient(family, fmt.Sprintf("Upd%d", i))
				body["id"] = id
				r := c.put(t, body)
				acked.put(id, r.Get("meta.versionId").String())
			}
		case 3:
			dr := c.do(t, http.MethodDelete, "Patient/"+id, nil)
			require.Contains(t, []int{http.StatusOK, http.StatusNoContent}, dr.Status, "%s", dr)
			acked.delete(id)
		}
	}
	srv.Kill(t)

	// Cycle 2: restart, check, then concurrent writers killed mid-flight.
	srv = equitasproc.Start(t, bin, data)
	c = newClient(srv.Root + "/fhir")
	acked.verify(t, c, family, "SIGKILL after the last acknowledgement")
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				r, err := c.try(ctx, http.MethodPost, "Patient", patient(family, fmt.Sprintf("W%dN%d", w, i)))
				if err != nil || r.Status != http.StatusCreated {
					continue // unacknowledged: no promise to check
				}
				res := gjson.ParseBytes(r.Body)
				acked.put(res.Get("id").String(), res.Get("meta.versionId").String())
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for acked.len() < 30+60 {
		require.True(t, time.Now().Before(deadline), "concurrent writers got only %d acknowledgements in 30s", acked.len()-30)
		time.Sleep(5 * time.Millisecond)
	}
	srv.Kill(t) // writes are in flight
	cancel()
	wg.Wait()

	// Cycle 3: everything acknowledged before either kill is there, and
	// the server carries on from it: versions continue, ids stay unique.
	srv = equitasproc.Start(t, bin, data)
	defer srv.Stop(t)
	c = newClient(srv.Root + "/fhir")
	acked.verify(t, c, family, "SIGKILL with writes in flight")
	t.Run("writes after restart continue the version sequence", func(t *testing.T) {
		for _, id := range ids[:5] {
			before, ok := acked.versions[id]
			if !ok {
				continue // deleted in cycle 1
			}
			body := patient(family, "AfterRestart")
			body["id"] = id
			r := c.put(t, body)
			assert.EqualValues(t, gjson.Parse(before).Int()+1, r.Get("meta.versionId").Int(), "Patient/%s", id)
		}
		fresh := c.create(t, patient(family, "Fresh")).Get("id").String()
		_, clash := acked.versions[fresh]
		assert.False(t, clash || acked.deleted[fresh], "new id %s reuses an acknowledged one", fresh)
	})
}

// TestCrashDuringTransaction kills the server while a large transaction is
// in flight, at several delays, and requires the transaction to be either
// entirely present after restart or entirely absent (and present when it
// was acknowledged).
func TestCrashDuringTransaction(t *testing.T) {
	if os.Getenv("EQUITAS_URL") != "" {
		t.Skip("crash recovery needs a server this test starts; EQUITAS_URL is set")
	}
	const n = 2000
	bin := equitasBinary(t)
	data := t.TempDir()
	run := newRunID()
	transaction := func(family string) map[string]any {
		entries := make([]map[string]any, n)
		for j := range entries {
			entries[j] = entry("urn:uuid:"+newUUID(), patient(family, fmt.Sprintf("N%d", j)), "POST", "Patient")
		}
		return bundle("transaction", entries...)
	}

	// Calibrate: how long one such transaction takes here, so the kills
	// land before, around and just after the commit.
	srv := equitasproc.Start(t, bin, data)
	start := time.Now()
	r := newClient(srv.Root+"/fhir").do(t, http.MethodPost, "", transaction(run.family("Calib")))
	took := time.Since(start)
	require.Equal(t, http.StatusOK, r.Status, "%.500s", r)
	srv.Stop(t)

	for i, frac := range []float64{0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0} {
		delay := time.Duration(float64(took) * frac)
		t.Run(fmt.Sprintf("killed at %.0f%% of the transaction time", frac*100), func(t *testing.T) {
			family := run.family(fmt.Sprintf("Kill%d", i))
			tx := transaction(family)
			srv := equitasproc.Start(t, bin, data)
			c := newClient(srv.Root + "/fhir")
			acked := make(chan bool, 1)
			go func() {
				r, err := c.try(context.Background(), http.MethodPost, "", tx)
				acked <- err == nil && r.Status == http.StatusOK
			}()
			time.Sleep(delay)
			srv.Kill(t)
			wasAcked := <-acked

			srv = equitasproc.Start(t, bin, data)
			defer srv.Stop(t)
			c = newClient(srv.Root + "/fhir")
			r := c.do(t, http.MethodGet, "Patient?family="+family+"&_summary=count", nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r)
			total := r.get("total").Int()
			if wasAcked {
				assert.EqualValues(t, n, total, "acknowledged transaction incomplete after restart")
			} else {
				assert.Contains(t, []int64{0, n}, total, "transaction partly applied after SIGKILL")
			}
			t.Logf("killed after %s: acknowledged=%v, resources after restart=%d", delay, wasAcked, total)
		})
	}
}

// TestGracefulShutdown sends SIGTERM while writers are busy: the server
// must exit cleanly, and every write it acknowledged must be there after a
// restart.
func TestGracefulShutdown(t *testing.T) {
	if os.Getenv("EQUITAS_URL") != "" {
		t.Skip("shutdown needs a server this test starts; EQUITAS_URL is set")
	}
	bin := equitasBinary(t)
	data := t.TempDir()
	family := newRunID().family("Term")
	acked := newAckLog()
	srv := equitasproc.Start(t, bin, data)
	c := newClient(srv.Root + "/fhir")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				r, err := c.try(ctx, http.MethodPost, "Patient", patient(family, fmt.Sprintf("W%dN%d", w, i)))
				if err != nil || r.Status != http.StatusCreated {
					continue
				}
				res := gjson.ParseBytes(r.Body)
				acked.put(res.Get("id").String(), res.Get("meta.versionId").String())
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for acked.len() < 50 {
		require.True(t, time.Now().Before(deadline), "writers got only %d acknowledgements in 30s", acked.len())
		time.Sleep(5 * time.Millisecond)
	}
	srv.Stop(t) // asserts a clean exit within 15s
	cancel()
	wg.Wait()

	srv = equitasproc.Start(t, bin, data)
	defer srv.Stop(t)
	acked.verify(t, newClient(srv.Root+"/fhir"), family, "SIGTERM with writes in flight")
}

// ackLog records what the server acknowledged: the version per id, or that
// the id was deleted.
type ackLog struct {
	mu       sync.Mutex
	versions map[string]string
	deleted  map[string]bool
}

func newAckLog() *ackLog {
	return &ackLog{versions: map[string]string{}, deleted: map[string]bool{}}
}

func (a *ackLog) put(id, version string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.versions[id] = version
	delete(a.deleted, id)
}

func (a *ackLog) delete(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.versions, id)
	a.deleted[id] = true
}

func (a *ackLog) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.versions) + len(a.deleted)
}

func (a *ackLog) verify(t *testing.T, c *client, family, when string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	t.Run("after "+when+" every acknowledged write is durable", func(t *testing.T) {
		t.Logf("%d acknowledged writes, %d of them deletes", len(a.versions)+len(a.deleted), len(a.deleted))
		for id, v := range a.versions {
			r := c.do(t, http.MethodGet, "Patient/"+id, nil)
			if !assert.Equal(t, http.StatusOK, r.Status, "acknowledged Patient/%s lost: %s", id, r) {
				continue
			}
			assert.Equal(t, v, r.get("meta.versionId").String(), "Patient/%s version", id)
			vr := c.do(t, http.MethodGet, "Patient/"+id+"/_history/"+v, nil)
			assert.Equal(t, http.StatusOK, vr.Status, "vread: %s", vr)
		}
		for id := range a.deleted {
			r := c.do(t, http.MethodGet, "Patient/"+id, nil)
			assert.Equal(t, http.StatusGone, r.Status, "acknowledged delete of Patient/%s lost: %s", id, r)
		}
		found, _ := c.searchAll(t, "Patient?family="+family+"&_count=200")
		inSearch := map[string]bool{}
		for _, id := range found {
			inSearch[id] = true
		}
		for id := range a.versions {
			assert.True(t, inSearch[id], "Patient/%s readable but missing from search after restart", id)
		}
		for id := range a.deleted {
			assert.False(t, inSearch[id], "deleted Patient/%s still found by search after restart", id)
		}
	})
}

// binDir holds the binary built for this test process; TestMain creates
// and removes it.
var binDir string

// buildEquitas builds the binary once per test process, on first use.
var buildEquitas = sync.OnceValues(func() (string, error) { return equitasproc.Build(binDir) })

// equitasBinary returns the built binary, skipping the test when it cannot
// be built (a broken build is reported by the packages' own tests).
func equitasBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildEquitas()
	if err != nil {
		t.Skipf("cannot build the equitas binary, conformance not run: %v", err)
	}
	return bin
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "equitas-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance: temp dir:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
