package message_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/message"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

const base = "http://equitas.test/fhir"

type events struct {
	mu  sync.Mutex
	got []adt.Event
}

func (e *events) notify(_ context.Context, ev adt.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) list() []adt.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]adt.Event(nil), e.got...)
}

func setup(t *testing.T) (*message.Processor, store.Store, *events) {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	v, err := validate.New()
	require.NoError(t, err)
	ev := &events{}
	return message.New(st, v, message.Options{Notify: ev.notify}), st, ev
}

func admit(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/admit.json")
	require.NoError(t, err)
	return b
}

// variant edits a message with sjson (path → value; a nil value deletes).
func variant(t *testing.T, body []byte, edits ...any) []byte {
	t.Helper()
	require.Zero(t, len(edits)%2)
	var err error
	for i := 0; i < len(edits); i += 2 {
		path := edits[i].(string)
		if edits[i+1] == nil {
			body, err = sjson.DeleteBytes(body, path)
		} else if raw, ok := edits[i+1].(rawJSON); ok {
			body, err = sjson.SetRawBytes(body, path, []byte(raw))
		} else {
			body, err = sjson.SetBytes(body, path, edits[i+1])
		}
		require.NoError(t, err, path)
	}
	return body
}

type rawJSON string

// discharge is the admit's follow-up: same patient and visit, a new message.
func discharge(t *testing.T) []byte {
	return variant(t, admit(t),
		"id", "discharge-notification-bundle",
		"identifier.value", "urn:uuid:8ed3f2f6-9b6c-4c2a-a3a7-0f6f3b0f1002",
		"timestamp", "2026-03-04T16:00:00Z",
		"entry.0.resource.id", "discharge-notification",
		"entry.0.resource.eventCoding.code", "notification-discharge",
		"entry.1.resource.status", "finished",
		"entry.1.resource.period.end", "2026-03-04T15:30:00Z",
		"entry.1.resource.hospitalization", rawJSON(`{"dischargeDisposition":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/discharge-disposition","code":"home"}]}}`),
	)
}

func count(t *testing.T, st store.Store) map[string]int64 {
	t.Helper()
	c, err := st.Counts(context.Background())
	require.NoError(t, err)
	return c
}

func search(t *testing.T, st store.Store, typ, param, value string) []*store.Resource {
	t.Helper()
	res, err := st.Search(context.Background(), store.Query{Type: typ, Params: []store.Param{{Name: param, Values: []string{value}}}})
	require.NoError(t, err)
	return res.Resources
}

func TestAdmitThenDischarge(t *testing.T) {
	p, st, ev := setup(t)
	ctx := context.Background()

	r1, err := p.Process(ctx, admit(t), base)
	require.NoError(t, err)
	assert.False(t, r1.Duplicate)
	assert.Equal(t, map[string]int64{"Patient": 1, "Encounter": 1, "Practitioner": 1, "Location": 1, "Organization": 1, "MessageHeader": 1}, count(t, st))

	pats := search(t, st, "Patient", "identifier", "urn:oid:1.2.3.4.5.mrn|MRN-1001")
	require.Len(t, pats, 1)
	encs := search(t, st, "Encounter", "identifier", "urn:oid:1.2.3.4.5.visit|V-1001")
	require.Len(t, encs, 1)
	enc := gjson.ParseBytes(encs[0].Body)
	assert.Equal(t, "in-progress", enc.Get("status").String())
	assert.Equal(t, "Patient/"+pats[0].ID, enc.Get("subject.reference").String(), "references are rewritten to server ids")
	assert.NotEqual(t, "pat-1", pats[0].ID, "ids are the server's, not the sender's")
	orgs := search(t, st, "Organization", "identifier", "http://hl7.org/fhir/sid/us-npi|1144221847")
	require.Len(t, orgs, 1)
	assert.Equal(t, "Organization/"+orgs[0].ID, enc.Get("serviceProvider.reference").String())
	loc, err := st.Read(ctx, "Location", enc.Get("location.0.location.reference").String()[len("Location/"):])
	require.NoError(t, err)
	assert.Equal(t, "Organization/"+orgs[0].ID, gjson.GetBytes(loc.Body, "managingOrganization.reference").String())

	mh, err := st.Read(ctx, "MessageHeader", r1.Event.MessageHeaderID)
	require.NoError(t, err)
	assert.Equal(t, "Encounter/"+encs[0].ID, gjson.GetBytes(mh.Body, "focus.0.reference").String())

	assert.Equal(t, adt.Event{Kind: adt.KindAdmit, Trigger: "A01", PatientID: pats[0].ID, EncounterID: encs[0].ID,
		MessageHeaderID: r1.Event.MessageHeaderID, Sender: "https://hospital.example.org/fhir", At: r1.Event.At}, r1.Event)
	assert.Equal(t, "2026-03-01T07:45:00Z", r1.Event.At.UTC().Format("2006-01-02T15:04:05Z"), "an admit happens at the Encounter's start")

	resp := gjson.ParseBytes(r1.Response)
	assert.Equal(t, "message", resp.Get("type").String())
	assert.Equal(t, "MessageHeader", resp.Get("entry.0.resource.resourceType").String())
	assert.Equal(t, "admit-notification", resp.Get("entry.0.resource.response.identifier").String())
	assert.Equal(t, "ok", resp.Get("entry.0.resource.response.code").String())
	assert.Equal(t, base, resp.Get("entry.0.resource.source.endpoint").String())
	assert.Equal(t, "information", resp.Get("entry.1.resource.issue.0.severity").String())

	r2, err := p.Process(ctx, discharge(t), base)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"Patient": 1, "Encounter": 1, "Practitioner": 1, "Location": 1, "Organization": 1, "MessageHeader": 2}, count(t, st),
		"the discharge updates the admitted patient and visit rather than duplicating them")
	assert.Equal(t, pats[0].ID, r2.Event.PatientID)
	assert.Equal(t, encs[0].ID, r2.Event.EncounterID)
	assert.Equal(t, adt.KindDischarge, r2.Event.Kind)
	assert.Equal(t, "2026-03-04T15:30:00Z", r2.Event.At.UTC().Format("2006-01-02T15:04:05Z"))
	e2, err := st.Read(ctx, "Encounter", encs[0].ID)
	require.NoError(t, err)
	assert.Equal(t, "finished", gjson.GetBytes(e2.Body, "status").String())
	assert.Equal(t, uint64(2), e2.Version)
	doc, err := st.Read(ctx, "Practitioner", gjson.GetBytes(e2.Body, "participant.0.individual.reference").String()[len("Practitioner/"):])
	require.NoError(t, err)
	assert.Equal(t, uint64(1), doc.Version, "an unchanged resource gets no new version")

	assert.Len(t, ev.list(), 2)
}

// TestDuplicateIsIdempotent: a resend (same sender and Bundle.identifier,
// or MessageHeader.id without identifier) answers ok again, writes nothing
// and notifies nobody.
func TestDuplicateIsIdempotent(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit []any
	}{
		{"by Bundle.identifier", nil},
		{"by MessageHeader.id", []any{"identifier", nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, st, ev := setup(t)
			ctx := context.Background()
			msg := variant(t, admit(t), tc.edit...)
			first, err := p.Process(ctx, msg, base)
			require.NoError(t, err)
			before := count(t, st)
			hist, err := st.History(ctx, store.HistoryQuery{Count: -1})
			require.NoError(t, err)

			again, err := p.Process(ctx, msg, base)
			require.NoError(t, err)
			assert.True(t, again.Duplicate)
			assert.Equal(t, first.Event, again.Event, "the resend is answered about the original")
			assert.Equal(t, "ok", gjson.GetBytes(again.Response, "entry.0.resource.response.code").String())
			assert.Equal(t, before, count(t, st))
			hist2, err := st.History(ctx, store.HistoryQuery{Count: -1})
			require.NoError(t, err)
			assert.Len(t, hist2, len(hist), "no new versions")
			assert.Len(t, ev.list(), 1)
		})
	}
}

// TestSameMessageIDFromAnotherSender: dedup is per sender.
func TestSameMessageIDFromAnotherSender(t *testing.T) {
	p, st, _ := setup(t)
	ctx := context.Background()
	_, err := p.Process(ctx, admit(t), base)
	require.NoError(t, err)
	r, err := p.Process(ctx, variant(t, admit(t), "entry.0.resource.source.endpoint", "https://other-hie.example.org/fhir"), base)
	require.NoError(t, err)
	assert.False(t, r.Duplicate)
	assert.Equal(t, int64(2), count(t, st)["MessageHeader"])
	assert.Equal(t, int64(1), count(t, st)["Patient"], "still the same patient (matched by identifier)")
}

func TestParametersWrapper(t *testing.T) {
	p, st, _ := setup(t)
	body := []byte(`{"resourceType":"Parameters","parameter":[{"name":"content","resource":` + string(admit(t)) + `}]}`)
	r, err := p.Process(context.Background(), body, base)
	require.NoError(t, err)
	assert.Equal(t, adt.KindAdmit, r.Event.Kind)
	assert.Equal(t, int64(1), count(t, st)["Patient"])
}

// TestInvalidMessagesWriteNothing: every rejected message is a 4xx
// OperationOutcome naming the problem, and the store is untouched.
func TestInvalidMessagesWriteNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   func(t *testing.T) []byte
		status int
		expr   string
	}{
		{"not JSON", func(*testing.T) []byte { return []byte(`{"resourceType":"Bundle",`) }, 400, ""},
		{"not a Bundle", func(*testing.T) []byte { return []byte(`{"resourceType":"Patient","id":"x"}`) }, 400, ""},
		{"a transaction", func(t *testing.T) []byte { return variant(t, admit(t), "type", "transaction") }, 400, "Bundle.type"},
		{"no timestamp", func(t *testing.T) []byte { return variant(t, admit(t), "timestamp", nil) }, 400, "Bundle.timestamp"},
		{"MessageHeader not first", func(t *testing.T) []byte {
			b := admit(t)
			first, second := gjson.GetBytes(b, "entry.0").Raw, gjson.GetBytes(b, "entry.1").Raw
			return variant(t, b, "entry.0", rawJSON(second), "entry.1", rawJSON(first))
		}, 400, "Bundle.entry[0].resource"},
		{"entry with a request", func(t *testing.T) []byte {
			return variant(t, admit(t), "entry.2.request", rawJSON(`{"method":"POST","url":"Patient"}`))
		}, 400, "Bundle.entry[2].request"},
		{"invalid entry resource", func(t *testing.T) []byte { return variant(t, admit(t), "entry.2.resource.gender", "woman") }, 400, "Bundle.entry[2].resource.gender"},
		{"focus outside the Bundle", func(t *testing.T) []byte {
			return variant(t, admit(t), "entry.0.resource.focus.0.reference", "Encounter/elsewhere")
		}, 400, "Bundle.entry[0].resource.focus[0]"},
		{"Encounter subject outside the Bundle", func(t *testing.T) []byte {
			return variant(t, admit(t), "entry.1.resource.subject.reference", "Patient/elsewhere")
		}, 400, "Bundle.entry[1].resource.subject"},
		{"MessageHeader without id", func(t *testing.T) []byte { return variant(t, admit(t), "entry.0.resource.id", nil) }, 400, "Bundle.entry[0].resource.id"},
		{"unsupported event", func(t *testing.T) []byte {
			return variant(t, admit(t), "entry.0.resource.eventCoding.code", "notification-lab-report")
		}, 422, "Bundle.entry[0].resource.eventCoding"},
		{"eventUri", func(t *testing.T) []byte {
			return variant(t, admit(t), "entry.0.resource.eventCoding", nil, "entry.0.resource.eventUri", "http://example.org/event")
		}, 422, "Bundle.entry[0].resource.event"},
		{"Parameters without content", func(*testing.T) []byte {
			return []byte(`{"resourceType":"Parameters","parameter":[{"name":"async","valueBoolean":false}]}`)
		}, 400, "Parameters.parameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, st, ev := setup(t)
			_, err := p.Process(context.Background(), tc.body(t), base)
			var he *outcome.HTTPError
			require.True(t, errors.As(err, &he), "want an *outcome.HTTPError, got %v", err)
			assert.Equal(t, tc.status, he.Status, he.Error())
			if tc.expr != "" {
				var exprs []string
				for _, is := range he.Issues {
					exprs = append(exprs, is.Expression...)
				}
				assert.Contains(t, exprs, tc.expr)
			}
			assert.Empty(t, count(t, st))
			n := 0
			require.NoError(t, st.KV().Scan(context.Background(), "message/", func(string, []byte) error { n++; return nil }))
			assert.Zero(t, n, "no dedup or id-map record either")
			assert.Empty(t, ev.list())
		})
	}
}

// TestConcurrentMessagesOneNewPatient: messages about one new patient
// arriving at once create it once.
func TestConcurrentMessagesOneNewPatient(t *testing.T) {
	p, st, ev := setup(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := variant(t, admit(t),
				"identifier.value", "msg-"+string(rune('a'+i)),
				"entry.0.resource.id", "mh-"+string(rune('a'+i)),
				"entry.1.resource.identifier.0.value", "V-"+string(rune('a'+i)),
				"entry.1.resource.id", "enc-"+string(rune('a'+i)),
				"entry.1.fullUrl", "http://example.org/fhir/Encounter/enc-"+string(rune('a'+i)),
				"entry.0.resource.focus.0.reference", "Encounter/enc-"+string(rune('a'+i)))
			_, err := p.Process(context.Background(), msg, base)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	c := count(t, st)
	assert.Equal(t, int64(1), c["Patient"])
	assert.Equal(t, int64(n), c["Encounter"])
	assert.Equal(t, int64(n), c["MessageHeader"])
	patients := map[string]bool{}
	for _, e := range ev.list() {
		patients[e.PatientID] = true
	}
	assert.Len(t, patients, 1)
}

// TestKnownPatientIsUpdated: a patient the store already holds (from an
// HL7 v2 feed, say) is matched by identifier and keeps the identifiers the
// notification does not carry.
func TestKnownPatientIsUpdated(t *testing.T) {
	p, st, _ := setup(t)
	ctx := context.Background()
	_, err := st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "known", Body: []byte(
		`{"resourceType":"Patient","id":"known","identifier":[{"system":"http://hl7.org/fhir/sid/us-ssn","value":"123-45-6789"},{"system":"urn:oid:1.2.3.4.5.mrn","value":"MRN-1001"}],"name":[{"family":"Shaw"}]}`)}}})
	require.NoError(t, err)
	r, err := p.Process(ctx, admit(t), base)
	require.NoError(t, err)
	assert.Equal(t, "known", r.Event.PatientID)
	assert.Equal(t, int64(1), count(t, st)["Patient"])
	pat, err := st.Read(ctx, "Patient", "known")
	require.NoError(t, err)
	var systems []string
	for _, i := range gjson.GetBytes(pat.Body, "identifier").Array() {
		systems = append(systems, i.Get("system").String())
	}
	assert.ElementsMatch(t, []string{"urn:oid:1.2.3.4.5.mrn", "http://hl7.org/fhir/sid/us-ssn"}, systems)
	assert.Equal(t, "Amy", gjson.GetBytes(pat.Body, "name.0.given.0").String(), "demographics come from the notification")
}

// TestMergedPatientFollowsReplacedBy: a notification about a patient an
// HL7 v2 A40 merged away updates the surviving record.
func TestMergedPatientFollowsReplacedBy(t *testing.T) {
	p, st, _ := setup(t)
	ctx := context.Background()
	_, err := st.Commit(ctx, store.Tx{Writes: []store.Write{
		{Op: store.OpPut, Type: "Patient", ID: "old", Body: []byte(`{"resourceType":"Patient","active":false,"identifier":[{"system":"urn:oid:1.2.3.4.5.mrn","value":"MRN-1001"}],"link":[{"other":{"reference":"Patient/survivor"},"type":"replaced-by"}]}`)},
		{Op: store.OpPut, Type: "Patient", ID: "survivor", Body: []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3.4.5.mrn","value":"MRN-2002"}],"link":[{"other":{"reference":"Patient/old"},"type":"replaces"}]}`)},
	}})
	require.NoError(t, err)
	r, err := p.Process(ctx, admit(t), base)
	require.NoError(t, err)
	assert.Equal(t, "survivor", r.Event.PatientID)
	old, err := st.Read(ctx, "Patient", "old")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), old.Version, "the merged-away record is left alone")
	enc, err := st.Read(ctx, "Encounter", r.Event.EncounterID)
	require.NoError(t, err)
	assert.Equal(t, "Patient/survivor", gjson.GetBytes(enc.Body, "subject.reference").String())
	surv, err := st.Read(ctx, "Patient", "survivor")
	require.NoError(t, err)
	assert.Equal(t, "Patient/old", gjson.GetBytes(surv.Body, "link.0.other.reference").String(), "the merge link stays")
}

// TestQueueCommitsWithTheMessage: Queue's KV writes are committed with
// the message (and not for a duplicate); a failing Queue writes nothing.
func TestQueueCommitsWithTheMessage(t *testing.T) {
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	v, err := validate.New()
	require.NoError(t, err)
	ctx := context.Background()
	fail := false
	calls := 0
	p := message.New(st, v, message.Options{Queue: func(_ context.Context, ev adt.Event) (map[string][]byte, error) {
		calls++
		if fail {
			return nil, errors.New("queue down")
		}
		return map[string][]byte{"jobs/" + ev.MessageHeaderID: []byte(ev.Kind)}, nil
	}})

	fail = true
	_, err = p.Process(ctx, admit(t), base)
	require.Error(t, err)
	assert.Empty(t, count(t, st), "a failing Queue writes nothing")

	fail = false
	r, err := p.Process(ctx, admit(t), base)
	require.NoError(t, err)
	job, err := st.KV().Get(ctx, "jobs/"+r.Event.MessageHeaderID)
	require.NoError(t, err)
	assert.Equal(t, "admit", string(job))

	_, err = p.Process(ctx, admit(t), base)
	require.NoError(t, err)
	assert.Equal(t, 2, calls, "a duplicate is not queued again")
}
