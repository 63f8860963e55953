package mllp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/hl7v2"
	"github.com/equitas/equitas/fhir/hl7v2/mllp"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// adtMessage is an HL7 v2.5.1 ADT message with one patient and visit.
func adtMessage(trigger, control, mrn, visit string) []byte {
	structure := map[string]string{"A02": "ADT_A02", "A03": "ADT_A03", "A40": "ADT_A39"}[trigger]
	if structure == "" {
		structure = "ADT_A01"
	}
	pv1 := "PV1|1|I|W1^101^A^HOSP||||1234567893^Smith^John^^^^^^NPI||||||||||||" + visit + "|||||||||||||||||||||||||20260301075500"
	switch trigger {
	case "A02":
		pv1 = "PV1|1|I|W2^202^B^HOSP|||W1^101^A^HOSP|1234567893^Smith^John^^^^^^NPI||||||||||||" + visit + "|||||||||||||||||||||||||20260301075500"
	case "A03":
		pv1 = "PV1|1|I|W1^101^A^HOSP||||1234567893^Smith^John^^^^^^NPI||||||||||||" + visit + "|||||||||||||||||01||||||||20260301075500|20260304153000"
	}
	segs := []string{
		fmt.Sprintf("MSH|^~\\&|HIEAPP|HIEFAC|EQUITAS|EQUITAS|20260301080000||ADT^%s^%s|%s|P|2.5.1", trigger, structure, control),
		"EVN|" + trigger + "|20260301080000",
		"PID|1||" + mrn + "^^^HOSP^MR||Doe^Jane^Q||19800101|F|||1 Main St^^Springfield^MA^01101",
	}
	if trigger == "A40" {
		segs = append(segs, "MRG|"+visit+"^^^HOSP^MR")
	} else {
		segs = append(segs, pv1)
	}
	return []byte(strings.Join(segs, "\r") + "\r")
}

// msa returns MSA-1 and MSA-2 of an ACK.
func msa(ack []byte) (code, control string) {
	for _, seg := range strings.FieldsFunc(string(ack), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if f := strings.Split(seg, "|"); f[0] == "MSA" && len(f) > 2 {
			return f[1], f[2]
		}
	}
	return "", ""
}

type events struct {
	mu  sync.Mutex
	got []adt.Event
}

func (e *events) notify(_ context.Context, ev adt.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got)
}

func openStore(t testing.TB, dir string) store.Store {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), dir, badgerstore.Options{})
	require.NoError(t, err)
	return st
}

// testServer is an MLLP server over the real ADT processor and the real
// badger store, listening on 127.0.0.1:0.
type testServer struct {
	srv  *mllp.Server
	addr string
	ev   *events
	done chan error
	reg  *prometheus.Registry

	stopOnce sync.Once
	stopErr  error
}

func startServer(t testing.TB, st store.Store, cfg mllp.Config) *testServer {
	t.Helper()
	ts := &testServer{ev: &events{}, done: make(chan error, 1), reg: prometheus.NewRegistry()}
	if cfg.Handler == nil {
		cfg.Handler = adt.New(st, adt.Options{Notify: ts.ev.notify})
	}
	if cfg.Reject == nil {
		cfg.Reject = hl7v2.RejectHead
	}
	cfg.Registerer = ts.reg
	srv, err := mllp.NewServer(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts.srv, ts.addr = srv, ln.Addr().String()
	go func() { ts.done <- srv.Serve(ln) }()
	t.Cleanup(func() { _ = ts.stop(context.Background()) })
	return ts
}

// stop shuts the server down once (tests stop it, cleanup again).
func (ts *testServer) stop(ctx context.Context) error {
	ts.stopOnce.Do(func() {
		ts.stopErr = ts.srv.Shutdown(ctx)
		select {
		case serr := <-ts.done:
			if !errors.Is(serr, mllp.ErrServerClosed) {
				ts.stopErr = serr
			}
		case <-time.After(10 * time.Second):
			ts.stopErr = errors.New("Serve did not return")
		}
	})
	return ts.stopErr
}

func dial(t testing.TB, addr string) *mllp.Client {
	t.Helper()
	c, err := mllp.Dial(context.Background(), addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func send(t testing.TB, c *mllp.Client, msg []byte) (code, control string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ack, err := c.Send(ctx, msg)
	require.NoError(t, err)
	return msa(ack)
}

func patientByMRN(t testing.TB, st store.Store, mrn string) []*store.Resource {
	t.Helper()
	res, err := st.Search(context.Background(), store.Query{Type: "Patient", Params: []store.Param{{Name: "identifier", Values: []string{mrn}}}})
	require.NoError(t, err)
	return res.Resources
}

func encounterByVisit(t testing.TB, st store.Store, visit string) []*store.Resource {
	t.Helper()
	res, err := st.Search(context.Background(), store.Query{Type: "Encounter", Params: []store.Param{{Name: "identifier", Values: []string{visit}}}})
	require.NoError(t, err)
	return res.Resources
}

func counts(t testing.TB, st store.Store) map[string]int64 {
	t.Helper()
	c, err := st.Counts(context.Background())
	require.NoError(t, err)
	return c
}

// TestEveryTriggerOverMLLP sends one visit's life over one connection:
// every supported trigger is acknowledged AA with MSA-2 = MSH-10 and moves
// the Encounter to the status the v2-to-FHIR ConceptMap gives it.
func TestEveryTriggerOverMLLP(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, st, mllp.Config{})
	c := dial(t, ts.addr)
	for i, tc := range []struct {
		trigger string
		status  string // Encounter.status after the message
	}{
		// A04 maps to planned, but PV1-44 (admit time) says the patient
		// arrived; the digest says to prefer it.
		{"A04", "in-progress"},
		{"A01", "in-progress"},
		{"A08", "in-progress"}, // an update keeps the status
		{"A02", "in-progress"},
		{"A03", "finished"},
		{"A13", "in-progress"}, // cancel discharge
		{"A11", "cancelled"},   // cancel admit
	} {
		t.Run(tc.trigger, func(t *testing.T) {
			control := fmt.Sprintf("TRG-%d-%s", i, tc.trigger)
			code, echoed := send(t, c, adtMessage(tc.trigger, control, "MRN-T1", "V-T1"))
			require.Equal(t, "AA", code)
			assert.Equal(t, control, echoed)
			pats := patientByMRN(t, st, "MRN-T1")
			require.Len(t, pats, 1, "one patient however many messages")
			encs := encounterByVisit(t, st, "V-T1")
			require.Len(t, encs, 1, "one visit however many messages")
			assert.Equal(t, tc.status, gjson.GetBytes(encs[0].Body, "status").String())
			assert.Equal(t, "Patient/"+pats[0].ID, gjson.GetBytes(encs[0].Body, "subject.reference").String())
		})
	}
	assert.Equal(t, int64(7), counts(t, st)["MessageHeader"])
	assert.Equal(t, 7, ts.ev.count())

	t.Run("A40", func(t *testing.T) {
		code, _ := send(t, c, adtMessage("A01", "MRG-0", "MRN-T2", "V-T2"))
		require.Equal(t, "AA", code)
		code, echoed := send(t, c, adtMessage("A40", "MRG-1", "MRN-T1", "MRN-T2"))
		assert.Equal(t, "AA", code)
		assert.Equal(t, "MRG-1", echoed)
		survivor, prior := patientByMRN(t, st, "MRN-T1"), patientByMRN(t, st, "MRN-T2")
		require.Len(t, survivor, 1)
		require.Len(t, prior, 1)
		assert.Equal(t, "Patient/"+survivor[0].ID, gjson.GetBytes(prior[0].Body, `link.#(type=="replaced-by").other.reference`).String(),
			"the prior record points to the survivor")
	})
}

// TestManyConnections: several connections, several messages each,
// concurrently; every message is acknowledged and applied.
func TestManyConnections(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, st, mllp.Config{Workers: 4})
	const conns, perConn = 12, 15
	var wg sync.WaitGroup
	acks := make(chan [2]string, conns*perConn)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, ts.addr)
			for j := range perConn {
				ctl := fmt.Sprintf("C%02d-%02d", i, j)
				code, echoed := send(t, c, adtMessage("A01", ctl, fmt.Sprintf("MRN-%02d-%02d", i, j), "V-"+ctl))
				acks <- [2]string{code, echoed + "/" + ctl}
			}
		}()
	}
	wg.Wait()
	close(acks)
	n := 0
	for a := range acks {
		n++
		assert.Equal(t, "AA", a[0])
		echoed, sent, _ := strings.Cut(a[1], "/")
		assert.Equal(t, sent, echoed)
	}
	assert.Equal(t, conns*perConn, n)
	c := counts(t, st)
	assert.Equal(t, int64(conns*perConn), c["Patient"])
	assert.Equal(t, int64(conns*perConn), c["Encounter"])
	// The metric is counted once the ACK is written: read it after the
	// connections ended.
	require.NoError(t, ts.stop(context.Background()))
	assert.Equal(t, float64(conns*perConn), acked(t, ts.reg, "AA"))
}

// acked reads equitas_mllp_messages_total{ack=code}.
func acked(t testing.TB, reg *prometheus.Registry, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "equitas_mllp_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "ack" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestRefusedMessagesWriteNothing: malformed content gets AE, unsupported
// messages AR, and neither changes the store; the connection stays usable.
func TestRefusedMessagesWriteNothing(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, st, mllp.Config{})
	c := dial(t, ts.addr)
	good := adtMessage("A01", "OK-1", "MRN-R1", "V-R1")
	for _, tc := range []struct {
		name string
		msg  []byte
		ack  string
	}{
		{"not HL7", []byte("hello, world"), "AE"},
		{"unsupported message type", bytes.Replace(good, []byte("ADT^A01^ADT_A01"), []byte("ORU^R01^ORU_R01"), 1), "AR"},
		{"unsupported version", bytes.Replace(good, []byte("|P|2.5.1"), []byte("|P|2.1"), 1), "AR"},
		{"bad administrative sex", bytes.Replace(good, []byte("|F|"), []byte("|Q|"), 1), "AE"},
		{"no PID", bytes.Replace(good, []byte("PID|"), []byte("ZZZ|"), 1), "AE"},
		{"PID-3 without a value", bytes.Replace(good, []byte("MRN-R1^^^HOSP^MR"), []byte("^^^HOSP^MR"), 1), "AE"},
		{"bad birth date", bytes.Replace(good, []byte("19800101"), []byte("1980-01-01"), 1), "AE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counts(t, st)
			code, _ := send(t, c, tc.msg)
			assert.Equal(t, tc.ack, code)
			assert.Equal(t, before, counts(t, st))
		})
	}
	assert.Zero(t, ts.ev.count())
	code, _ := send(t, c, good)
	assert.Equal(t, "AA", code, "the connection still works")
}

// TestDuplicateOverMLLP: the same MSH-10 from the same sender is
// acknowledged again (on another connection too) but applied once.
func TestDuplicateOverMLLP(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, st, mllp.Config{})
	msg := adtMessage("A01", "DUP-1", "MRN-D1", "V-D1")
	c := dial(t, ts.addr)
	code, _ := send(t, c, msg)
	require.Equal(t, "AA", code)
	before := counts(t, st)
	for _, cl := range []*mllp.Client{c, dial(t, ts.addr)} {
		code, control := send(t, cl, msg)
		assert.Equal(t, "AA", code)
		assert.Equal(t, "DUP-1", control)
	}
	assert.Equal(t, before, counts(t, st))
	assert.Equal(t, 1, ts.ev.count())
	encs := encounterByVisit(t, st, "V-D1")
	require.Len(t, encs, 1)
	assert.Equal(t, uint64(1), encs[0].Version)
}

// rawConn speaks bytes, for framing the Client would not produce.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func readAck(t *testing.T, c net.Conn) []byte {
	t.Helper()
	r := mllp.NewReader(c, 1<<20)
	_, _, err := r.WaitStart()
	require.NoError(t, err)
	ack, err := r.ReadMessage()
	require.NoError(t, err)
	return ack
}

func TestFraming(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, st, mllp.Config{MaxMessageBytes: 4096})

	t.Run("garbage before a frame is skipped", func(t *testing.T) {
		c := rawConn(t, ts.addr)
		_, err := c.Write(append([]byte("\r\nnoise"), mllp.AppendFrame(nil, adtMessage("A01", "F-1", "MRN-F1", "V-F1"))...))
		require.NoError(t, err)
		code, control := msa(readAck(t, c))
		assert.Equal(t, "AA", code)
		assert.Equal(t, "F-1", control)
	})
	t.Run("a frame in many small writes", func(t *testing.T) {
		c := rawConn(t, ts.addr)
		frame := mllp.AppendFrame(nil, adtMessage("A01", "F-2", "MRN-F2", "V-F2"))
		for i := 0; i < len(frame); i += 7 {
			_, err := c.Write(frame[i:min(i+7, len(frame))])
			require.NoError(t, err)
		}
		code, _ := msa(readAck(t, c))
		assert.Equal(t, "AA", code)
	})
	t.Run("oversize message is AR and the connection goes on", func(t *testing.T) {
		c := rawConn(t, ts.addr)
		big := append(adtMessage("A01", "F-3", "MRN-F3", "V-F3"), bytes.Repeat([]byte("NTE|1||padding\r"), 400)...)
		before := counts(t, st)
		_, err := c.Write(mllp.AppendFrame(nil, big))
		require.NoError(t, err)
		code, control := msa(readAck(t, c))
		assert.Equal(t, "AR", code)
		assert.Equal(t, "F-3", control, "the AR names the oversize message")
		assert.Equal(t, before, counts(t, st))
		_, err = c.Write(mllp.AppendFrame(nil, adtMessage("A01", "F-4", "MRN-F4", "V-F4")))
		require.NoError(t, err)
		code, _ = msa(readAck(t, c))
		assert.Equal(t, "AA", code)
	})
	t.Run("truncated frame is not applied", func(t *testing.T) {
		c := rawConn(t, ts.addr)
		msg := adtMessage("A01", "F-5", "MRN-F5", "V-F5")
		_, err := c.Write(append([]byte{mllp.StartBlock}, msg[:len(msg)/2]...))
		require.NoError(t, err)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		_, err = io.ReadAll(c)
		require.NoError(t, err, "the server closes without answering")
		assert.Empty(t, patientByMRN(t, st, "MRN-F5"))
	})
	t.Run("a peer that never frames is disconnected", func(t *testing.T) {
		c := rawConn(t, ts.addr)
		_, err := c.Write(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 400))
		require.NoError(t, err)
		b, err := io.ReadAll(c)
		assert.Empty(t, b)
		assert.NoError(t, err)
	})
}

// TestIdleConnectionsClose: a connection on which nothing starts is closed
// after IdleTimeout.
func TestIdleConnectionsClose(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, st, mllp.Config{IdleTimeout: 50 * time.Millisecond})
	c := rawConn(t, ts.addr)
	b, err := io.ReadAll(c)
	assert.NoError(t, err, "closed by the server, not by the test's deadline")
	assert.Empty(t, b)
}

// TestRestartLosesNoAcknowledgedMessage: senders (stop-and-wait and
// pipelining) keep sending while the server shuts down; every message acknowledged AA is in the store once
// it is closed and opened again, and messages in flight at shutdown were
// finished and acknowledged rather than cut off.
func TestRestartLosesNoAcknowledgedMessage(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	ts := startServer(t, st, mllp.Config{})

	const senders = 6
	var (
		mu    sync.Mutex
		acked []string // MRNs of AA messages
	)
	var wg sync.WaitGroup
	started := make(chan struct{}, senders)
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := mllp.Dial(context.Background(), ts.addr)
			if err != nil {
				return
			}
			defer c.Close()
			if i%2 == 1 {
				// Pipelining senders: batches of 8 unacknowledged messages.
				for j := 0; ; j += 8 {
					var batch [][]byte
					var mrns []string
					for k := range 8 {
						mrn := fmt.Sprintf("RS-%d-%d", i, j+k)
						batch = append(batch, adtMessage("A01", "CTL-"+mrn, mrn, "V-"+mrn))
						mrns = append(mrns, mrn)
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					acks, err := c.SendAll(ctx, batch, 8)
					cancel()
					mu.Lock()
					for k, ack := range acks {
						if code, _ := msa(ack); code == "AA" {
							acked = append(acked, mrns[k])
						}
					}
					mu.Unlock()
					if err != nil {
						return
					}
					if j == 8 {
						started <- struct{}{}
					}
				}
			}
			for j := 0; ; j++ {
				mrn := fmt.Sprintf("RS-%d-%d", i, j)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				ack, err := c.Send(ctx, adtMessage("A01", "CTL-"+mrn, mrn, "V-"+mrn))
				cancel()
				if err != nil {
					return // the server closed the connection
				}
				if code, _ := msa(ack); code == "AA" {
					mu.Lock()
					acked = append(acked, mrn)
					mu.Unlock()
				}
				if j == 5 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range senders {
		<-started
	}
	require.NoError(t, ts.stop(context.Background()), "a graceful stop: every message in flight is finished")
	wg.Wait()
	require.NoError(t, st.Close())

	st = openStore(t, dir)
	defer st.Close()
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(acked), senders*6)
	for _, mrn := range acked {
		assert.Len(t, patientByMRN(t, st, mrn), 1, "acknowledged message %s survives the restart", mrn)
	}
	assert.Equal(t, int64(len(acked)), counts(t, st)["MessageHeader"], "nothing unacknowledged was applied either")
}

// TestShutdownClosesIdleConnections: Shutdown does not wait for idle
// peers, and Serve refuses to start again.
func TestShutdownClosesIdleConnections(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, st, mllp.Config{IdleTimeout: time.Hour})
	c := rawConn(t, ts.addr)
	cl := dial(t, ts.addr)
	code, _ := send(t, cl, adtMessage("A01", "SD-1", "MRN-SD", "V-SD"))
	require.Equal(t, "AA", code)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, ts.stop(ctx))
	b, err := io.ReadAll(c)
	assert.NoError(t, err)
	assert.Empty(t, b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	assert.ErrorIs(t, ts.srv.Serve(ln), mllp.ErrServerClosed)
}

// TestPipelinedSender: a sender that does not wait for each ACK gets every
// ACK in message order, and each patient's messages apply in the order
// sent although different patients' messages are handled concurrently: a
// discharge sent right after its admit leaves the visit finished.
func TestPipelinedSender(t *testing.T) {
	for _, pipeline := range []int{1, 16} {
		t.Run(fmt.Sprintf("pipeline=%d", pipeline), func(t *testing.T) {
			st := openStore(t, t.TempDir())
			t.Cleanup(func() { _ = st.Close() })
			// The real processor behind a random delay, so concurrently
			// handled messages finish in any order unless sequenced.
			proc := adt.New(st, adt.Options{})
			jitter := mllp.HandlerFunc(func(ctx context.Context, msg []byte) []byte {
				time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
				return proc.HandleER7(ctx, msg)
			})
			ts := startServer(t, st, mllp.Config{Pipeline: pipeline, Handler: jitter})
			const patients = 6
			var msgs [][]byte
			var controls []string
			add := func(trigger string, p int) {
				ctl := fmt.Sprintf("P%d-%s-%d", p, trigger, len(msgs))
				msgs = append(msgs, adtMessage(trigger, ctl, fmt.Sprintf("MRN-P%d", p), fmt.Sprintf("V-P%d", p)))
				controls = append(controls, ctl)
			}
			for _, trigger := range []string{"A01", "A08", "A02", "A03"} {
				for p := range patients {
					add(trigger, p)
				}
			}
			msgs = append(msgs, msgs[0]) // a resend inside the window
			controls = append(controls, controls[0])

			c := dial(t, ts.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			acks, err := c.SendAll(ctx, msgs, 16)
			require.NoError(t, err)
			require.Len(t, acks, len(msgs))
			for i, ack := range acks {
				code, control := msa(ack)
				assert.Equal(t, "AA", code)
				assert.Equal(t, controls[i], control, "ACK %d answers message %d", i, i)
			}
			for p := range patients {
				encs := encounterByVisit(t, st, fmt.Sprintf("V-P%d", p))
				require.Len(t, encs, 1)
				assert.Equal(t, "finished", gjson.GetBytes(encs[0].Body, "status").String(), "patient %d's discharge applied last", p)
			}
			assert.Equal(t, int64(4*patients), counts(t, st)["MessageHeader"], "the resend was not applied again")
		})
	}
}

// TestShutdownFinishesMessagesInFlight: a message being handled when
// Shutdown starts is still acknowledged, and Shutdown returns only after.
func TestShutdownFinishesMessagesInFlight(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	proc := adt.New(st, adt.Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	slow := mllp.HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		close(entered)
		<-release
		return proc.HandleER7(ctx, msg)
	})
	ts := startServer(t, st, mllp.Config{Handler: slow})
	c := dial(t, ts.addr)
	acked := make(chan string, 1)
	go func() {
		ack, err := c.Send(context.Background(), adtMessage("A01", "INFLIGHT-1", "MRN-IF", "V-IF"))
		if err != nil {
			acked <- "error: " + err.Error()
			return
		}
		code, _ := msa(ack)
		acked <- code
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop(context.Background()) }()
	// Shutdown has begun once the listener refuses connections.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			break
		}
		_ = nc.Close()
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while a message was being handled", err)
	case code := <-acked:
		t.Fatalf("acknowledged (%s) before the handler finished", code)
	default:
	}
	close(release)
	assert.Equal(t, "AA", <-acked)
	require.NoError(t, <-stopped)
	assert.Len(t, patientByMRN(t, st, "MRN-IF"), 1)
}

// TestHandlerPanic: a Handler that panics gets its connection closed with
// nothing acknowledged; the server goes on serving.
func TestHandlerPanic(t *testing.T) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	proc := adt.New(st, adt.Options{})
	h := mllp.HandlerFunc(func(ctx context.Context, msg []byte) []byte {
		if bytes.Contains(msg, []byte("|BOOM|")) {
			panic("handler bug")
		}
		return proc.HandleER7(ctx, msg)
	})
	ts := startServer(t, st, mllp.Config{Handler: h})
	c := dial(t, ts.addr)
	_, err := c.Send(context.Background(), bytes.Replace(adtMessage("A01", "X", "MRN-X", "V-X"), []byte("|X|"), []byte("|BOOM|"), 1))
	assert.Error(t, err, "no ACK for a message whose handling failed")
	code, _ := send(t, dial(t, ts.addr), adtMessage("A01", "AFTER", "MRN-AFTER", "V-AFTER"))
	assert.Equal(t, "AA", code)
}
