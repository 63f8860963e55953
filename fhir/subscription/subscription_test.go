package subscription_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/subscription"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// The population: payer1 contracts with orgA (NPI 1111111111) and orgB
// (NPI 2222222222); p1 is attributed to orgA, p2 to orgB, p3 has no
// coverage and is attributed to nobody.
const (
	npiA   = "1111111111"
	npiB   = "2222222222"
	orgA   = "http://hl7.org/fhir/sid/us-npi|" + npiA
	orgB   = "http://hl7.org/fhir/sid/us-npi|" + npiB
	groupA = "atr-payer1-orgA"
	groupB = "atr-payer1-orgB"
)

var asOf = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func openStore(t testing.TB, dir string) store.Store {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), dir, badgerstore.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return st
}

func put(t testing.TB, st store.Store, typ, id, body string) {
	t.Helper()
	_, err := st.Commit(context.Background(), store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: typ, ID: id, Body: []byte(body)}}})
	require.NoError(t, err)
}

// seed writes the directory, patients and coverages, and runs attribution.
func seed(t testing.TB, st store.Store, extra ...string) {
	t.Helper()
	put(t, st, "Organization", "payer1", `{"resourceType":"Organization","id":"payer1","name":"Payer One"}`)
	put(t, st, "Organization", "orgA", `{"resourceType":"Organization","id":"orgA","name":"Clinic A","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"`+npiA+`"}]}`)
	put(t, st, "Organization", "orgB", `{"resourceType":"Organization","id":"orgB","name":"Clinic B","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"`+npiB+`"}]}`)
	patient := func(id, org string, covered bool) {
		put(t, st, "Patient", id, `{"resourceType":"Patient","id":"`+id+`","identifier":[{"system":"`+adt.AuthorityBase+`GOODHOSP","value":"MRN-`+id+`"}],"name":[{"family":"Fam`+id+`","given":["G"]}],"birthDate":"1960-01-01","generalPractitioner":[{"reference":"Organization/`+org+`"}]}`)
		if covered {
			put(t, st, "Coverage", "cov-"+id, `{"resourceType":"Coverage","id":"cov-`+id+`","status":"active","subscriberId":"m-`+id+`","beneficiary":{"reference":"Patient/`+id+`"},"payor":[{"reference":"Organization/payer1"}],"period":{"start":"2026-01-01","end":"2026-12-31"}}`)
		}
	}
	patient("p1", "orgA", true)
	patient("p2", "orgB", true)
	patient("p3", "orgA", false)
	for _, id := range extra {
		patient(id, "orgA", true)
	}
	_, err := attribution.Run(context.Background(), st, attribution.RunOptions{
		Options: attribution.Options{Method: attribution.Prospective, AsOf: asOf},
		Logger:  slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	as, err := attribution.Assignments(context.Background(), st.KV(), "p1", asOf)
	require.NoError(t, err)
	require.Len(t, as, 1, "fixture: p1 attributed once")
	require.Equal(t, groupA, as[0].GroupID)
}

// withOrg authenticates a test request as a client of the organization
// named in the X-Org header, restricted as the server restricts provider
// clients (its attributed patients and lists); no header: a payer client.
func withOrg(st store.Store) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := &access.Principal{ClientID: "test", Scopes: []string{"system/*.*"}, Organization: r.Header.Get("X-Org")}
			if p.Organization != "" {
				pats, err := attribution.OrganizationPatients(r.Context(), st.KV(), p.Organization, asOf)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				p.Restrict(access.Visibility{Patients: access.Set(pats), Groups: access.Set{}})
			}
			next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), p)))
		})
	}
}

// env is a running server with subscription delivery over a real store.
type env struct {
	st  store.Store
	m   *subscription.Manager
	srv *httptest.Server
}

func start(t testing.TB, st store.Store, opts subscription.Options) *env {
	t.Helper()
	rs, err := rest.New(rest.Config{Store: st, Authenticate: withOrg(st), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ts := httptest.NewServer(rs)
	t.Cleanup(ts.Close)
	opts.BaseURL = ts.URL + "/fhir"
	if opts.Backoff == 0 {
		opts.Backoff = 5 * time.Millisecond
	}
	m := subscription.New(st, opts)
	require.NoError(t, m.Start(context.Background()))
	t.Cleanup(m.Stop)
	m.Mount(rs)
	return &env{st: st, m: m, srv: ts}
}

// receiver is a notification endpoint that records what it is sent and
// answers failStatus to the first fail event notifications (handshakes
// always succeed).
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	got        []gjson.Result
	headers    []http.Header
	fail       int
	failStatus int
	attempts   int
}

func newReceiver(t testing.TB, fail, failStatus int) *receiver {
	rc := &receiver{fail: fail, failStatus: failStatus}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n := gjson.ParseBytes(b)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if notificationType(n) == "event-notification" {
			rc.attempts++
			if rc.fail != 0 {
				if rc.fail > 0 {
					rc.fail--
				}
				w.WriteHeader(rc.failStatus)
				return
			}
		}
		rc.got = append(rc.got, n)
		rc.headers = append(rc.headers, r.Header.Clone())
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func notificationType(n gjson.Result) string {
	return param(n.Get("entry.0.resource"), "type").Get("valueCode").String()
}

func param(p gjson.Result, name string) gjson.Result {
	return p.Get(`parameter.#(name=="` + name + `")`)
}

// events are the event notifications received so far.
func (rc *receiver) events() []gjson.Result {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []gjson.Result
	for _, n := range rc.got {
		if notificationType(n) == "event-notification" {
			out = append(out, n)
		}
	}
	return out
}

func (rc *receiver) handshakes() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, g := range rc.got {
		if notificationType(g) == "handshake" {
			n++
		}
	}
	return n
}

func subscriptionJSON(endpoint, content string, filters ...string) string {
	var fs []string
	for _, f := range filters {
		fs = append(fs, `{"url":"`+subscription.ExtFilterCriteria+`","valueString":"`+f+`"}`)
	}
	crit := ""
	if len(fs) > 0 {
		crit = `,"_criteria":{"extension":[` + strings.Join(fs, ",") + `]}`
	}
	return `{"resourceType":"Subscription","status":"requested","reason":"ADT alerts","criteria":"` + subscription.TopicURL + `"` + crit +
		`,"channel":{"type":"rest-hook","endpoint":"` + endpoint + `","payload":"application/fhir+json","header":["Authorization: Bearer s3cret"],` +
		`"_payload":{"extension":[{"url":"` + subscription.ExtPayloadContent + `","valueCode":"` + content + `"}]}}}`
}

func (e *env) do(t testing.TB, method, path, org, body string) (int, gjson.Result) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/fhir/"+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if org != "" {
		req.Header.Set("X-Org", org)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, gjson.ParseBytes(b)
}

// subscribe creates a Subscription as org and waits for its handshake to
// make it active.
func (e *env) subscribe(t testing.TB, org, body string) string {
	t.Helper()
	code, res := e.do(t, http.MethodPost, "Subscription", org, body)
	require.Equal(t, http.StatusCreated, code, res.Raw)
	require.Equal(t, "requested", res.Get("status").String())
	id := res.Get("id").String()
	require.Eventually(t, func() bool { return e.status(t, id, org) == "active" }, 10*time.Second, 5*time.Millisecond,
		"handshake activates the Subscription")
	return id
}

// status reads a Subscription's status through $status as org.
func (e *env) status(t testing.TB, id, org string) string {
	t.Helper()
	code, b := e.do(t, http.MethodGet, "Subscription/"+id+"/$status", org, "")
	require.Equal(t, http.StatusOK, code, b.Raw)
	return param(b.Get("entry.0.resource"), "status").Get("valueCode").String()
}

// admit writes an Encounter for the patient and reports its admission.
func (e *env) admit(t testing.TB, patient, enc string) {
	t.Helper()
	put(t, e.st, "Encounter", enc, `{"resourceType":"Encounter","id":"`+enc+`","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":{"reference":"Patient/`+patient+`"},"period":{"start":"2026-06-01T08:00:00Z"}}`)
	require.NoError(t, e.m.Notify(context.Background(), subscription.Event{Kind: "admit", Trigger: "A01", PatientID: patient, EncounterID: enc, At: asOf}))
}

func TestDeliveryPayloads(t *testing.T) {
	tests := []struct {
		content      string
		entries      int  // Bundle entries
		withResource bool // entries after the status carry resources
		focus        bool
	}{
		{subscription.ContentEmpty, 1, false, false},
		{subscription.ContentIDOnly, 3, false, true},
		{subscription.ContentFullResource, 3, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.content, func(t *testing.T) {
			st := openStore(t, t.TempDir())
			defer st.Close()
			seed(t, st)
			e := start(t, st, subscription.Options{})
			rc := newReceiver(t, 0, 0)
			id := e.subscribe(t, orgA, subscriptionJSON(rc.URL, tc.content))
			e.admit(t, "p1", "enc1")
			require.Eventually(t, func() bool { return len(rc.events()) == 1 }, 10*time.Second, 5*time.Millisecond)

			n := rc.events()[0]
			assert.True(t, strings.HasPrefix(n.Raw, `{"resourceType":"Bundle","id":`), "resourceType first")
			v, err := validate.New()
			require.NoError(t, err)
			_, _, err = v.Resource([]byte(n.Raw))
			require.NoError(t, err, "the notification Bundle is valid R4")
			assert.Equal(t, "history", n.Get("type").String())
			assert.Equal(t, subscription.ProfileNotification, n.Get("meta.profile.0").String())
			require.Len(t, n.Get("entry").Array(), tc.entries)
			st0 := n.Get("entry.0.resource")
			assert.Equal(t, "Parameters", st0.Get("resourceType").String())
			assert.Equal(t, e.srv.URL+"/fhir/Subscription/"+id, param(st0, "subscription").Get("valueReference.reference").String())
			assert.Equal(t, subscription.TopicURL, param(st0, "topic").Get("valueCanonical").String())
			assert.Equal(t, "active", param(st0, "status").Get("valueCode").String())
			assert.Equal(t, "1", param(st0, "events-since-subscription-start").Get("valueString").String())
			ev := param(st0, "notification-event")
			assert.Equal(t, "1", ev.Get(`part.#(name=="event-number").valueString`).String())
			focus := ev.Get(`part.#(name=="focus").valueReference.reference`).String()
			if tc.focus {
				assert.Equal(t, e.srv.URL+"/fhir/Encounter/enc1", focus)
				assert.Equal(t, e.srv.URL+"/fhir/Encounter/enc1", n.Get("entry.1.fullUrl").String())
				assert.Equal(t, e.srv.URL+"/fhir/Patient/p1", n.Get("entry.2.fullUrl").String())
			} else {
				assert.Empty(t, focus)
			}
			for _, en := range n.Get("entry").Array()[1:] {
				assert.Equal(t, tc.withResource, en.Get("resource").Exists(), en.Raw)
				assert.True(t, en.Get("request.method").Exists(), "history entries carry request")
			}
			if tc.withResource {
				assert.Equal(t, "Encounter", n.Get("entry.1.resource.resourceType").String())
				assert.Equal(t, "IMP", n.Get("entry.1.resource.class.code").String())
				assert.Equal(t, "p1", n.Get("entry.2.resource.id").String())
			}
			rc.mu.Lock()
			assert.Equal(t, "Bearer s3cret", rc.headers[len(rc.headers)-1].Get("Authorization"), "channel.header sent")
			rc.mu.Unlock()
		})
	}
}

// adtMessage builds an HL7 v2 ADT message for a seeded patient.
func adtMessage(trigger, structure, ctl, patient, pv1 string) []byte {
	return []byte(strings.Join([]string{
		"MSH|^~\\&|EPIC|GOODHOSP|EQUITAS|HIE|20260601080000+0000||ADT^" + trigger + "^" + structure + "|" + ctl + "|P|2.5.1",
		"EVN|" + trigger + "|20260601080000+0000",
		"PID|1||MRN-" + patient + "^^^GOODHOSP^MR||Fam" + patient + "^G||19600101|F",
		pv1,
	}, "\r") + "\r")
}

const (
	admitPV1 = "PV1|1|I|ICU^101^A^GOODHOSP||||||||||||||||V1^^^GOODHOSP^VN|||||||||||||||||||||||||20260601073000+0000"
	dischPV1 = "PV1|1|I|ICU^101^A^GOODHOSP||||||||||||||||V1^^^GOODHOSP^VN|||||||||||||||||01||||||||20260601073000+0000|20260605120000+0000"
)

func adtEvent(ev adt.Event) subscription.Event {
	return subscription.Event{Kind: ev.Kind, Trigger: ev.Trigger, PatientID: ev.PatientID,
		EncounterID: ev.EncounterID, MessageHeaderID: ev.MessageHeaderID, At: ev.At}
}

// TestADTIntakeToNotification runs HL7 v2 messages through the ADT
// processor wired to the Manager as serve wires it: Notify alone, or Queue
// (jobs committed with the message) plus Notify.
func TestADTIntakeToNotification(t *testing.T) {
	for _, queued := range []bool{false, true} {
		t.Run(fmt.Sprintf("queued=%v", queued), func(t *testing.T) {
			st := openStore(t, t.TempDir())
			defer st.Close()
			seed(t, st)
			e := start(t, st, subscription.Options{})
			rc := newReceiver(t, 0, 0)
			e.subscribe(t, orgA, subscriptionJSON(rc.URL, subscription.ContentFullResource, "Encounter?event=admit,discharge"))
			var notifyErr error
			opts := adt.Options{Notify: func(ctx context.Context, ev adt.Event) {
				if err := e.m.Notify(ctx, adtEvent(ev)); err != nil {
					notifyErr = err
				}
			}}
			if queued {
				opts.Queue = func(ctx context.Context, ev adt.Event) (map[string][]byte, error) {
					return e.m.Queue(ctx, adtEvent(ev))
				}
			}
			p := adt.New(st, opts)
			for _, m := range [][]byte{
				adtMessage("A01", "ADT_A01", "c1", "p1", admitPV1),
				adtMessage("A01", "ADT_A01", "c2", "p2", strings.Replace(admitPV1, "V1^", "V2^", 1)), // orgB's patient
				adtMessage("A08", "ADT_A01", "c3", "p1", admitPV1),                                   // not an encounter event
				adtMessage("A03", "ADT_A03", "c4", "p1", dischPV1),
				adtMessage("A03", "ADT_A03", "c4", "p1", dischPV1), // a resend: acknowledged, not applied again
			} {
				ack := string(p.HandleER7(context.Background(), m))
				require.Contains(t, ack, "MSA|AA|", ack)
			}
			require.NoError(t, notifyErr)
			require.Eventually(t, func() bool { return len(rc.events()) == 2 && e.m.Pending() == 0 }, 10*time.Second, 5*time.Millisecond)
			got := rc.events()
			assert.Equal(t, "in-progress", got[0].Get("entry.1.resource.status").String(), "the admission carries the Encounter as admitted")
			assert.Equal(t, "finished", got[1].Get("entry.1.resource.status").String())
			assert.Equal(t, got[0].Get("entry.1.resource.id").String(), got[1].Get("entry.1.resource.id").String(), "one visit")
			for i, n := range got {
				assert.Equal(t, "p1", n.Get(`entry.#(resource.resourceType=="Patient").resource.id`).String())
				assert.Equal(t, "MessageHeader", n.Get("entry.3.resource.resourceType").String())
				assert.Equal(t, strconv.Itoa(i+1), param(n.Get("entry.0.resource"), "notification-event").Get(`part.#(name=="event-number").valueString`).String())
			}
		})
	}
}

// TestQueuedWithMessageSurvivesCrash: the jobs Queue adds to the message's
// commit are delivered by the next run even when the process died before
// Notify.
func TestQueuedWithMessageSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	seed(t, st)
	rc := newReceiver(t, 0, 0)
	e := start(t, st, subscription.Options{})
	id := e.subscribe(t, orgA, subscriptionJSON(rc.URL, subscription.ContentIDOnly))
	p := adt.New(st, adt.Options{Queue: func(ctx context.Context, ev adt.Event) (map[string][]byte, error) {
		return e.m.Queue(ctx, adtEvent(ev))
	}}) // no Notify: the process "dies" right after the commit
	ack := string(p.HandleER7(context.Background(), adtMessage("A01", "ADT_A01", "c1", "p1", admitPV1)))
	require.Contains(t, ack, "MSA|AA|", ack)
	e.m.Stop()
	require.Empty(t, rc.events())
	require.NoError(t, st.Close())

	st = openStore(t, dir)
	defer st.Close()
	e2 := start(t, st, subscription.Options{})
	require.Eventually(t, func() bool { return len(rc.events()) == 1 }, 10*time.Second, 5*time.Millisecond)
	ps := rc.events()[0].Get("entry.0.resource")
	assert.Equal(t, e2.srv.URL+"/fhir/Subscription/"+id, param(ps, "subscription").Get("valueReference.reference").String())
	assert.Equal(t, "1", param(ps, "notification-event").Get(`part.#(name=="event-number").valueString`).String())
	assert.Equal(t, "1", param(ps, "events-since-subscription-start").Get("valueString").String())
}

func TestDeliveryScopedToAttributedProvider(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	seed(t, st)
	e := start(t, st, subscription.Options{})
	rcA, rcB := newReceiver(t, 0, 0), newReceiver(t, 0, 0)
	e.subscribe(t, orgA, subscriptionJSON(rcA.URL, subscription.ContentIDOnly))
	e.subscribe(t, orgB, subscriptionJSON(rcB.URL, subscription.ContentIDOnly))
	// A system client subscribing for orgA, only to discharges.
	rcSys := newReceiver(t, 0, 0)
	e.subscribe(t, "", subscriptionJSON(rcSys.URL, subscription.ContentIDOnly, "Encounter?organization="+npiA, "Encounter?event=discharge"))

	e.admit(t, "p3", "enc3") // attributed to nobody
	assert.Zero(t, e.m.Pending(), "an unattributed patient queues nothing")
	e.admit(t, "p2", "enc2") // orgB only
	e.admit(t, "p1", "enc1") // orgA only
	require.NoError(t, e.m.Notify(context.Background(), subscription.Event{Kind: "discharge", Trigger: "A03", PatientID: "p1", EncounterID: "enc1", At: asOf}))
	require.Eventually(t, func() bool {
		return len(rcA.events()) == 2 && len(rcB.events()) == 1 && len(rcSys.events()) == 1 && e.m.Pending() == 0
	}, 10*time.Second, 5*time.Millisecond)

	focus := func(rc *receiver) []string {
		var out []string
		for _, n := range rc.events() {
			out = append(out, param(n.Get("entry.0.resource"), "notification-event").Get(`part.#(name=="additional-context").valueReference.reference`).String())
		}
		return out
	}
	assert.Equal(t, []string{e.srv.URL + "/fhir/Patient/p1", e.srv.URL + "/fhir/Patient/p1"}, focus(rcA))
	assert.Equal(t, []string{e.srv.URL + "/fhir/Patient/p2"}, focus(rcB))
	assert.Equal(t, []string{e.srv.URL + "/fhir/Patient/p1"}, focus(rcSys))
	// Event numbers count per Subscription.
	assert.Equal(t, "2", param(rcA.events()[1].Get("entry.0.resource"), "events-since-subscription-start").Get("valueString").String())
}

func TestRetryThenDelivered(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			st := openStore(t, t.TempDir())
			defer st.Close()
			seed(t, st)
			reg := prometheus.NewRegistry()
			e := start(t, st, subscription.Options{MaxAttempts: 5, Registry: reg})
			rc := newReceiver(t, 2, status)
			id := e.subscribe(t, orgA, subscriptionJSON(rc.URL, subscription.ContentIDOnly))
			e.admit(t, "p1", "enc1")
			require.Eventually(t, func() bool { return len(rc.events()) == 1 }, 10*time.Second, 5*time.Millisecond)
			rc.mu.Lock()
			assert.Equal(t, 3, rc.attempts, "two failures, then the delivery")
			rc.mu.Unlock()
			dl, err := e.m.DeadLetters(context.Background(), id)
			require.NoError(t, err)
			assert.Empty(t, dl)
			assert.Equal(t, "active", e.status(t, id, orgA))
			// The receiver has the event; the worker's bookkeeping follows.
			require.Eventually(t, func() bool { return e.m.Pending() == 0 }, 10*time.Second, 5*time.Millisecond)
			assert.Equal(t, 2.0, metric(t, reg, "equitas_subscription_deliveries_total", "retried"))
			assert.Equal(t, 2.0, metric(t, reg, "equitas_subscription_deliveries_total", "delivered"), "the handshake and the event")
			assert.Equal(t, 1.0, metric(t, reg, "equitas_subscription_notifications_queued_total", ""))
			assert.Equal(t, 0.0, metric(t, reg, "equitas_subscription_queue_depth", ""))
		})
	}
}

// metric reads a counter or gauge (with the given result label, if any).
func metric(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if result != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != result) {
				continue
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func TestDeadLetterAfterExhaustion(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		attempts int
	}{
		{"server error retried to the limit", http.StatusInternalServerError, 3},
		{"client error not retried", http.StatusNotFound, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, t.TempDir())
			defer st.Close()
			seed(t, st)
			e := start(t, st, subscription.Options{MaxAttempts: 3})
			rc := newReceiver(t, -1, tc.status)
			id := e.subscribe(t, orgA, subscriptionJSON(rc.URL, subscription.ContentIDOnly))
			e.admit(t, "p1", "enc1")
			require.Eventually(t, func() bool { return e.status(t, id, orgA) == "error" }, 10*time.Second, 5*time.Millisecond,
				"repeated failures put the Subscription in error")
			_, stored := e.do(t, http.MethodGet, "Subscription/"+id, "", "")
			assert.Equal(t, "error", stored.Get("status").String())
			assert.Contains(t, stored.Get("error").String(), "delivery failed")
			rc.mu.Lock()
			assert.Equal(t, tc.attempts, rc.attempts)
			rc.mu.Unlock()

			code, dl := e.do(t, http.MethodGet, "Subscription/"+id+"/$dead-letters", orgA, "")
			require.Equal(t, http.StatusOK, code, dl.Raw)
			letters := dl.Get(`parameter.#(name=="dead-letter")#`).Array()
			require.Len(t, letters, 1)
			assert.Equal(t, int64(tc.attempts), letters[0].Get(`part.#(name=="attempts").valueInteger`).Int())
			assert.Equal(t, int64(tc.status), letters[0].Get(`part.#(name=="http-status").valueInteger`).Int())
			assert.Equal(t, e.srv.URL+"/fhir/Encounter/enc1", letters[0].Get(`part.#(name=="focus").valueReference.reference`).String())

			code, sb := e.do(t, http.MethodGet, "Subscription/"+id+"/$status", orgA, "")
			require.Equal(t, http.StatusOK, code, sb.Raw)
			v, err := validate.New()
			require.NoError(t, err)
			for _, b := range []gjson.Result{sb, dl} {
				_, _, err = v.Resource([]byte(b.Raw))
				require.NoError(t, err, "valid R4: %s", b.Raw)
			}
			ps := sb.Get("entry.0.resource")
			assert.Equal(t, "error", param(ps, "status").Get("valueCode").String())
			assert.Equal(t, "query-status", param(ps, "type").Get("valueCode").String())
			assert.Equal(t, "1", param(ps, "events-since-subscription-start").Get("valueString").String())
			assert.NotEmpty(t, param(ps, "error").Get("valueCodeableConcept.text").String())

			// An errored Subscription gets no more notifications queued.
			e.admit(t, "p1", "enc1b")
			assert.Zero(t, e.m.Pending())
			// Another organization cannot see it.
			code, _ = e.do(t, http.MethodGet, "Subscription/"+id+"/$dead-letters", orgB, "")
			assert.Equal(t, http.StatusNotFound, code)

			// Type level: the caller's own Subscriptions, or the ids asked for among them.
			for _, tl := range []struct {
				org, query string
				want       int
			}{{orgA, "", 1}, {orgA, "?id=" + id, 1}, {orgB, "", 0}, {orgB, "?id=" + id, 0}, {"", "?id=nope," + id, 1}} {
				code, b := e.do(t, http.MethodGet, "Subscription/$status"+tl.query, tl.org, "")
				require.Equal(t, http.StatusOK, code, b.Raw)
				assert.Equal(t, int64(tl.want), b.Get("total").Int(), "%s %s", tl.org, tl.query)
				code, b = e.do(t, http.MethodGet, "Subscription/$dead-letters"+tl.query, tl.org, "")
				require.Equal(t, http.StatusOK, code, b.Raw)
				assert.Len(t, b.Get(`parameter.#(name=="dead-letter")#`).Array(), tl.want)
			}
			code, _ = e.do(t, http.MethodGet, "Subscription/$status?patient=x", orgA, "")
			assert.Equal(t, http.StatusBadRequest, code)
		})
	}
}

func TestRestartResumesPendingDeliveries(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	seed(t, st)
	rc := newReceiver(t, 0, 0)
	e := start(t, st, subscription.Options{})
	id := e.subscribe(t, orgA, subscriptionJSON(rc.URL, subscription.ContentFullResource))
	// Stop delivering, then take events: they are only queued.
	e.m.Stop()
	e.admit(t, "p1", "enc1")
	e.admit(t, "p1", "enc2")
	require.Equal(t, 2, e.m.Pending())
	require.Empty(t, rc.events())
	require.NoError(t, st.Close())

	st = openStore(t, dir)
	defer st.Close()
	e2 := start(t, st, subscription.Options{})
	require.Eventually(t, func() bool { return len(rc.events()) == 2 }, 10*time.Second, 5*time.Millisecond)
	got := rc.events()
	for i, enc := range []string{"enc1", "enc2"} {
		ps := got[i].Get("entry.0.resource")
		assert.Equal(t, e2.srv.URL+"/fhir/Subscription/"+id, param(ps, "subscription").Get("valueReference.reference").String())
		assert.Equal(t, enc, got[i].Get("entry.1.resource.id").String(), "delivered in event order")
	}
	n, err := e2.m.EventsSinceStart(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
}

func TestSubscriptionValidation(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	seed(t, st)
	e := start(t, st, subscription.Options{AllowEndpoint: func(u *url.URL) error {
		if u.Hostname() != "127.0.0.1" {
			return errors.New("not on the allow-list")
		}
		return nil
	}})
	valid := subscriptionJSON("http://127.0.0.1:9/hook", subscription.ContentIDOnly)
	tests := []struct {
		name string
		org  string
		body string
		want int
	}{
		{"not JSON", orgA, `{"resourceType":`, http.StatusBadRequest},
		{"other criteria", orgA, strings.Replace(valid, subscription.TopicURL, "Encounter?status=finished", 1), http.StatusBadRequest},
		{"websocket channel", orgA, strings.Replace(valid, "rest-hook", "websocket", 1), http.StatusBadRequest},
		{"endpoint not allowed", orgA, strings.Replace(valid, "127.0.0.1:9", "10.0.0.1", 1), http.StatusBadRequest},
		{"relative endpoint", orgA, strings.Replace(valid, "http://127.0.0.1:9/hook", "/hook", 1), http.StatusBadRequest},
		{"bad content", orgA, strings.Replace(valid, `"valueCode":"id-only"`, `"valueCode":"everything"`, 1), http.StatusBadRequest},
		{"unknown filter", orgA, subscriptionJSON("http://127.0.0.1:9/hook", "id-only", "Encounter?status=finished"), http.StatusBadRequest},
		{"unknown event", orgA, subscriptionJSON("http://127.0.0.1:9/hook", "id-only", "Encounter?event=birth"), http.StatusBadRequest},
		{"header injection", orgA, strings.Replace(valid, "Authorization: Bearer s3cret", `X: a\r\nY: b`, 1), http.StatusBadRequest},
		{"system client without organization", "", valid, http.StatusBadRequest},
		{"provider subscribing for another", orgA, subscriptionJSON("http://127.0.0.1:9/hook", "id-only", "Encounter?organization="+npiB), http.StatusForbidden},
		{"another provider's list", orgA, subscriptionJSON("http://127.0.0.1:9/hook", "id-only", "Encounter?group=Group/"+groupB), http.StatusForbidden},
		{"unknown list", orgA, subscriptionJSON("http://127.0.0.1:9/hook", "id-only", "Encounter?group=nope"), http.StatusBadRequest},
		{"own list", orgA, subscriptionJSON("http://127.0.0.1:9/hook", "id-only", "Encounter?group=Group/"+groupA), http.StatusCreated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, res := e.do(t, http.MethodPost, "Subscription", tc.org, tc.body)
			require.Equal(t, tc.want, code, res.Raw)
			if code >= 400 {
				assert.Equal(t, "OperationOutcome", res.Get("resourceType").String())
			}
		})
	}

	t.Run("owner is the server's to set", func(t *testing.T) {
		body := strings.Replace(valid, `"reason"`, `"extension":[{"url":"`+subscription.ExtOwner+`","valueString":"`+npiB+`"}],"reason"`, 1)
		code, res := e.do(t, http.MethodPost, "Subscription", orgA, body)
		require.Equal(t, http.StatusCreated, code, res.Raw)
		owners := res.Get(`extension.#(url=="` + subscription.ExtOwner + `")#.valueString`).Array()
		require.Len(t, owners, 1)
		assert.Equal(t, orgA, owners[0].String())
		// orgB may not take it over by update.
		id := res.Get("id").String()
		upd := strings.Replace(valid, `{"resourceType":"Subscription",`, `{"resourceType":"Subscription","id":"`+id+`",`, 1)
		code, _ = e.do(t, http.MethodPut, "Subscription/"+id, orgB, upd)
		assert.Equal(t, http.StatusForbidden, code)
		code, res = e.do(t, http.MethodPut, "Subscription/"+id, orgA, strings.Replace(upd, `"status":"requested"`, `"status":"off"`, 1))
		require.Equal(t, http.StatusOK, code, res.Raw)
		assert.Equal(t, "off", res.Get("status").String())
	})
}

func BenchmarkFanOut(b *testing.B) {
	const subs = 4
	st := openStore(b, b.TempDir())
	defer st.Close()
	seed(b, st)
	e := start(b, st, subscription.Options{Workers: subs})
	var mu sync.Mutex
	got := 0
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got++
		mu.Unlock()
	}))
	defer rc.Close()
	for range subs {
		e.subscribe(b, orgA, subscriptionJSON(rc.URL, subscription.ContentIDOnly))
	}
	put(b, st, "Encounter", "enc1", `{"resourceType":"Encounter","id":"enc1","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":{"reference":"Patient/p1"}}`)
	mu.Lock()
	got = 0
	mu.Unlock()
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var notifyNanos atomic.Int64 // time the intake waits in Notify (before its ACK)
	next := make(chan int)
	for range 8 { // concurrent ADT intake connections
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				t0 := time.Now()
				if err := e.m.Notify(ctx, subscription.Event{Kind: "admit", Trigger: "A01", PatientID: "p1", EncounterID: "enc1", At: asOf}); err != nil {
					b.Error(err)
				}
				notifyNanos.Add(int64(time.Since(t0)))
			}
		}()
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	for {
		mu.Lock()
		n := got
		mu.Unlock()
		if n >= b.N*subs {
			break
		}
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el, "events/s")
	b.ReportMetric(float64(b.N*subs)/el, "deliveries/s")
	b.ReportMetric(float64(notifyNanos.Load())/float64(b.N)/1e3, "notify-µs/event")
}

func TestTopicPublished(t *testing.T) {
	v, err := validate.New()
	require.NoError(t, err)
	typ, id, err := v.Resource(subscription.TopicResource())
	require.NoError(t, err, "the topic description is valid R4")
	assert.Equal(t, "Basic", typ)
	assert.Equal(t, "encounter-adt", id)

	st := openStore(t, t.TempDir())
	defer st.Close()
	m := subscription.New(st, subscription.Options{})
	for range 2 {
		require.NoError(t, m.PublishTopic(context.Background()))
	}
	res, err := st.Read(context.Background(), "Basic", "encounter-adt")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.Version, "republishing an unchanged topic writes nothing")
	assert.Equal(t, subscription.TopicURL, gjson.GetBytes(res.Body, `extension.#(url%"*SubscriptionTopic.url").valueUri`).String())
}

func TestFilterCriteria(t *testing.T) {
	tests := []struct {
		name    string
		filters []string
		kind    string
		patient string
		want    bool
	}{
		{"no filter takes every topic event", nil, "transfer", "p1", true},
		{"event list", []string{"Encounter?event=admit,discharge"}, "discharge", "p1", true},
		{"event not listed", []string{"Encounter?event=admit,discharge"}, "transfer", "p1", false},
		{"repeated criteria narrow", []string{"Encounter?event=admit,discharge", "Encounter?event=discharge"}, "admit", "p1", false},
		{"patient reference", []string{"Encounter?patient=Patient/p1"}, "admit", "p1", true},
		{"bare patient id", []string{"Encounter?patient=p2"}, "admit", "p1", false},
		{"both in one criterion", []string{"Encounter?event=admit&patient=p1,p2"}, "admit", "p2", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := subscription.Parse([]byte(subscriptionJSON("http://h/", "id-only", tc.filters...)))
			require.NoError(t, err)
			assert.Equal(t, tc.want, s.Filter.Matches(tc.kind, tc.patient))
		})
	}
}

// A Subscription reaches only the patients its owner may see: an owner
// whose binding names another organization's id under the NPI system is
// granted nothing by the visibility rule, so it is notified of nothing.
func TestDeliveryFollowsVisibilityRule(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	seed(t, st)
	e := start(t, st, subscription.Options{})
	lookalike := "http://hl7.org/fhir/sid/us-npi|orgA" // orgA's id, not its NPI
	pats, err := attribution.OrganizationPatients(context.Background(), st.KV(), lookalike, asOf)
	require.NoError(t, err)
	require.Empty(t, pats, "fixture: the visibility rule grants the look-alike binding nothing")
	rcA, rcX := newReceiver(t, 0, 0), newReceiver(t, 0, 0)
	e.subscribe(t, orgA, subscriptionJSON(rcA.URL, subscription.ContentFullResource))
	e.subscribe(t, lookalike, subscriptionJSON(rcX.URL, subscription.ContentFullResource))

	e.admit(t, "p1", "enc1")
	require.Eventually(t, func() bool { return len(rcA.events()) == 1 && e.m.Pending() == 0 }, 10*time.Second, 5*time.Millisecond)
	assert.Empty(t, rcX.events(), "no notification about a patient the owner does not see")
}

// A list whose Group was deleted over REST grants its organization nothing
// (access.NewListCache), so its members' events reach it no more.
func TestDeletedListSendsNothing(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	seed(t, st)
	e := start(t, st, subscription.Options{})
	rcA := newReceiver(t, 0, 0)
	e.subscribe(t, orgA, subscriptionJSON(rcA.URL, subscription.ContentFullResource))
	e.admit(t, "p1", "enc1")
	require.Eventually(t, func() bool { return len(rcA.events()) == 1 && e.m.Pending() == 0 }, 10*time.Second, 5*time.Millisecond)

	_, err := st.Commit(context.Background(), store.Tx{Writes: []store.Write{{Op: store.OpDelete, Type: "Group", ID: groupA}}})
	require.NoError(t, err)
	v, err := access.NewListCache(st).Resolve(context.Background(), orgA)
	require.NoError(t, err)
	require.False(t, v.Patients.Contains("p1"), "fixture: the deleted list grants no visibility")
	e.admit(t, "p1", "enc1b")
	assert.Zero(t, e.m.Pending(), "no notification queued for a patient the owner no longer sees")
	assert.Len(t, rcA.events(), 1)
}
