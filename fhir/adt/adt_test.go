package adt_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/hl7v2"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// env is a Processor on a real badger store that validates every mapped
// resource with fhir/validate and records the events it notifies.
type env struct {
	st     store.Store
	p      *adt.Processor
	mu     sync.Mutex
	events []adt.Event
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	v, err := validate.New()
	require.NoError(t, err)
	e := &env{st: st}
	e.p = adt.New(st, adt.Options{
		Validator: v,
		Notify: func(_ context.Context, ev adt.Event) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		},
	})
	return e
}

// msg builds an ADT message; segments are joined with \r.
func msg(trigger, ctl string, segs ...string) string {
	structure := map[string]string{"A01": "ADT_A01", "A04": "ADT_A01", "A08": "ADT_A01", "A02": "ADT_A02", "A03": "ADT_A03",
		"A11": "ADT_A09", "A13": "ADT_A01", "A40": "ADT_A39"}[trigger]
	all := append([]string{
		"MSH|^~\\&|EPIC|GOODHOSP|EQUITAS|HIE|20260301080000-0500||ADT^" + trigger + "^" + structure + "|" + ctl + "|P|2.5.1",
		"EVN|" + trigger + "|20260301080000-0500",
	}, segs...)
	return strings.Join(all, "\r") + "\r"
}

const (
	pidMary  = "PID|1||MRN123^^^GOODHOSP^MR~123-45-6789^^^SSA^SS||O'Brien^Mary^Ann^^Mrs||19800214|F||2106-3^White^CDCREC|1 Main St^Apt 2^Boston^MA^02110^USA^H||^PRN^PH^^1^617^5551234~^NET^Internet^mary@example.org|^WPN^PH^^1^617^5559999|en^English^ISO639|M||||||2186-5^Not Hispanic or Latino^CDCREC"
	pv1Admit = "PV1|1|I|ICU^101^A^GOODHOSP||||1234567890^Smith^John^^^Dr^^^NPI&2.16.840.1.113883.4.6&ISO|||MED||||7|||||V100^^^GOODHOSP^VN|||||||||||||||||||||||||20260301073000-0500"
)

type ackResult struct {
	code string
	ctl  string
	errs []*hl7v2.Segment
}

func parseACK(t testing.TB, b []byte) ackResult {
	t.Helper()
	m, err := hl7v2.Parse(b)
	require.NoError(t, err, "ACK must parse: %q", b)
	return ackResult{code: m.Segment("MSA").Field(1).String(), ctl: m.Segment("MSA").Field(2).String(), errs: m.All("ERR")}
}

// errLocation reads an ERR segment's location (SEG-n) and 0357 code from
// ERR-2/ERR-3 (2.5+) or ERR-1 (earlier versions).
func errLocation(e *hl7v2.Segment) (loc, code string) {
	erl, code := e.Field(2), e.Field(3).Component(1).String()
	if erl.Empty() {
		erl, code = e.Field(1), e.Field(1).Component(4).Subcomponent(1).String()
	}
	loc = erl.Component(1).String()
	if f := erl.Component(3).String(); f != "" {
		loc += "-" + f
	}
	return loc, code
}

func (e *env) send(t testing.TB, m string) ackResult {
	t.Helper()
	return parseACK(t, e.p.HandleER7(context.Background(), []byte(m)))
}

func (e *env) read(t testing.TB, typ, id string) gjson.Result {
	t.Helper()
	r, err := e.st.Read(context.Background(), typ, id)
	require.NoError(t, err)
	return gjson.ParseBytes(r.Body)
}

func (e *env) count(t testing.TB, typ string) int {
	t.Helper()
	n, err := e.st.Counts(context.Background())
	require.NoError(t, err)
	return int(n[typ])
}

func (e *env) lastEvent(t testing.TB) adt.Event {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.NotEmpty(t, e.events)
	return e.events[len(e.events)-1]
}

func TestAdmitCreatesPatientEncounterHeaderProvenance(t *testing.T) {
	e := newEnv(t)
	ack := e.send(t, msg("A01", "C1", pidMary, pv1Admit))
	require.Equal(t, "AA", ack.code, "%v", ack.errs)
	assert.Equal(t, "C1", ack.ctl)
	ev := e.lastEvent(t)
	assert.Equal(t, adt.KindAdmit, ev.Kind)
	assert.Equal(t, "A01", ev.Trigger)
	assert.Equal(t, "EPIC^GOODHOSP", ev.Sender)

	p := e.read(t, "Patient", ev.PatientID)
	assert.Equal(t, "MRN123", p.Get(`identifier.#(system=="urn:equitas:hl7v2:authority:GOODHOSP").value`).String())
	assert.Equal(t, "123-45-6789", p.Get(`identifier.#(system=="http://hl7.org/fhir/sid/us-ssn").value`).String())
	assert.Equal(t, "O'Brien", p.Get("name.0.family").String())
	assert.Equal(t, `["Mary","Ann"]`, p.Get("name.0.given").Raw)
	assert.Equal(t, "1980-02-14", p.Get("birthDate").String())
	assert.Equal(t, "female", p.Get("gender").String())
	assert.Equal(t, "Boston", p.Get("address.0.city").String())
	assert.Equal(t, "home", p.Get("address.0.use").String())
	assert.Equal(t, "+1 (617) 5551234", p.Get(`telecom.#(use=="home").value`).String())
	assert.Equal(t, "mary@example.org", p.Get(`telecom.#(system=="email").value`).String())
	assert.Equal(t, "work", p.Get(`telecom.#(value=="+1 (617) 5559999").use`).String())
	assert.Equal(t, "en", p.Get("communication.0.language.coding.0.code").String())
	assert.Equal(t, "M", p.Get("maritalStatus.coding.0.code").String())
	race := p.Get(`extension.#(url=="http://hl7.org/fhir/us/core/StructureDefinition/us-core-race")`)
	assert.Equal(t, "2106-3", race.Get(`extension.#(url=="ombCategory").valueCoding.code`).String())
	assert.Equal(t, "urn:oid:2.16.840.1.113883.6.238", race.Get(`extension.#(url=="ombCategory").valueCoding.system`).String())
	assert.Equal(t, "White", race.Get(`extension.#(url=="text").valueString`).String())
	eth := p.Get(`extension.#(url=="http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity")`)
	assert.Equal(t, "2186-5", eth.Get(`extension.#(url=="ombCategory").valueCoding.code`).String())

	enc := e.read(t, "Encounter", ev.EncounterID)
	assert.Equal(t, "in-progress", enc.Get("status").String())
	assert.Equal(t, "IMP", enc.Get("class.code").String())
	assert.Equal(t, "V100", enc.Get("identifier.0.value").String())
	assert.Equal(t, "VN", enc.Get("identifier.0.type.coding.0.code").String())
	assert.Equal(t, "Patient/"+ev.PatientID, enc.Get("subject.reference").String())
	assert.Equal(t, "2026-03-01T07:30:00-05:00", enc.Get("period.start").String())
	assert.False(t, enc.Get("period.end").Exists())
	assert.Equal(t, "ICU 101 A (GOODHOSP)", enc.Get("location.0.location.display").String())
	assert.Equal(t, "active", enc.Get("location.0.status").String())
	assert.Equal(t, "ATND", enc.Get("participant.0.type.0.coding.0.code").String())
	assert.Equal(t, "http://hl7.org/fhir/sid/us-npi", enc.Get("participant.0.individual.identifier.system").String())
	assert.Equal(t, "1234567890", enc.Get("participant.0.individual.identifier.value").String())
	// Referenced resources exist (Da Vinci Alerts needs literal references).
	for _, ref := range []string{"participant.0.individual.reference", "location.0.location.reference", "serviceProvider.reference"} {
		typ, id, ok := strings.Cut(enc.Get(ref).String(), "/")
		require.True(t, ok, ref)
		e.read(t, typ, id)
	}
	assert.Equal(t, "Smith", e.read(t, "Practitioner", strings.TrimPrefix(enc.Get("participant.0.individual.reference").String(), "Practitioner/")).Get("name.0.family").String())
	assert.Equal(t, "bd", e.read(t, "Location", strings.TrimPrefix(enc.Get("location.0.location.reference").String(), "Location/")).Get("physicalType.coding.0.code").String())

	mh := e.read(t, "MessageHeader", ev.MessageHeaderID)
	assert.Equal(t, "A01", mh.Get("eventCoding.code").String())
	assert.Equal(t, "Encounter/"+ev.EncounterID, mh.Get("focus.0.reference").String())
	assert.Equal(t, 1, e.count(t, "Provenance"))
}

func TestTriggerSequence(t *testing.T) {
	e := newEnv(t)
	require.Equal(t, "AA", e.send(t, msg("A01", "S1", pidMary, pv1Admit)).code)
	admit := e.lastEvent(t)

	// A02: transfer to a new bed; the ICU location is completed.
	tr := e.send(t, msg("A02", "S2", pidMary, strings.Replace(pv1Admit, "ICU^101^A", "WARD^5^B", 1)))
	require.Equal(t, "AA", tr.code, "%v", tr.errs)
	enc := e.read(t, "Encounter", admit.EncounterID)
	assert.Equal(t, "in-progress", enc.Get("status").String())
	assert.Equal(t, "completed", enc.Get(`location.#(location.display=="ICU 101 A (GOODHOSP)").status`).String())
	assert.Equal(t, "active", enc.Get(`location.#(location.display=="WARD 5 B (GOODHOSP)").status`).String())

	// A03 discharge with disposition.
	pv1Dis := pv1Admit + "||||||"
	pv1Dis = strings.Replace(pv1Admit, "|||||||||||||||||||||||||20260301073000-0500",
		"|||||||||||||||||01^Home^HL70112||||||||20260301073000-0500|20260303100000-0500", 1)
	dis := e.send(t, msg("A03", "S3", pidMary, pv1Dis))
	require.Equal(t, "AA", dis.code, "%v", dis.errs)
	assert.Equal(t, admit.EncounterID, e.lastEvent(t).EncounterID, "A03 updates the A01 encounter")
	enc = e.read(t, "Encounter", admit.EncounterID)
	assert.Equal(t, "finished", enc.Get("status").String())
	assert.Equal(t, "2026-03-03T10:00:00-05:00", enc.Get("period.end").String())
	assert.Equal(t, "01", enc.Get("hospitalization.dischargeDisposition.coding.0.code").String())
	assert.Equal(t, "0", enc.Get(`location.#(status=="active")#|#`).String())

	// A08 keeps the finished status and updates demographics.
	upd := e.send(t, msg("A08", "S4", strings.Replace(pidMary, "O'Brien", "Smith", 1), strings.Replace(pv1Admit, "|20260301073000-0500", "|", 1)))
	require.Equal(t, "AA", upd.code, "%v", upd.errs)
	assert.Equal(t, "finished", e.read(t, "Encounter", admit.EncounterID).Get("status").String())
	assert.Equal(t, "Smith", e.read(t, "Patient", admit.PatientID).Get("name.0.family").String())

	// A13 cancels the discharge.
	require.Equal(t, "AA", e.send(t, msg("A13", "S5", pidMary, pv1Admit)).code)
	enc = e.read(t, "Encounter", admit.EncounterID)
	assert.Equal(t, "in-progress", enc.Get("status").String())
	assert.False(t, enc.Get("period.end").Exists())
	assert.False(t, enc.Get("hospitalization.dischargeDisposition").Exists())

	// A11 cancels the admission.
	require.Equal(t, "AA", e.send(t, msg("A11", "S6", pidMary, pv1Admit)).code)
	assert.Equal(t, "cancelled", e.read(t, "Encounter", admit.EncounterID).Get("status").String())

	assert.Equal(t, 1, e.count(t, "Patient"), "one patient, updated, never duplicated")
	assert.Equal(t, 1, e.count(t, "Encounter"))
	assert.Equal(t, 6, e.count(t, "MessageHeader"))
	assert.Equal(t, 6, e.count(t, "Provenance"))
	kinds := []string{}
	for _, ev := range e.events {
		kinds = append(kinds, ev.Kind)
	}
	assert.Equal(t, []string{"admit", "transfer", "discharge", "update", "cancel-discharge", "cancel-admit"}, kinds)
}

func TestRejections(t *testing.T) {
	good := msg("A01", "R1", pidMary, pv1Admit)
	for _, tc := range []struct {
		name, in, code, loc string
		err                 int
	}{
		{"unsupported type", strings.Replace(good, "ADT^A01^ADT_A01", "ORU^R01^ORU_R01", 1), "AR", "MSH-9", 200},
		{"unsupported event", strings.Replace(good, "ADT^A01", "ADT^A17", 1), "AR", "MSH-9", 201},
		{"unsupported version", strings.Replace(good, "|P|2.5.1", "|P|2.9", 1), "AR", "MSH-12", 203},
		{"old version", strings.Replace(good, "|P|2.5.1", "|P|2.2", 1), "AR", "MSH-12", 203},
		{"debug processing id", strings.Replace(good, "|P|2.5.1", "|D|2.5.1", 1), "AR", "MSH-11", 202},
		{"bad birth date", strings.Replace(good, "19800214", "19800231", 1), "AE", "PID-7", 102},
		{"bad sex", strings.Replace(good, "|19800214|F|", "|19800214|Q|", 1), "AE", "PID-8", 103},
		{"no identifier", strings.Replace(good, "MRN123^^^GOODHOSP^MR~123-45-6789^^^SSA^SS", "", 1), "AE", "PID-3", 101},
		{"no visit number", strings.Replace(good, "V100^^^GOODHOSP^VN", "", 1), "AE", "PV1-19", 101},
		{"bad class", strings.Replace(good, "PV1|1|I|", "PV1|1|X|", 1), "AE", "PV1-2", 103},
		{"bad admit time", strings.Replace(good, "20260301073000-0500", "2026030107300", 1), "AE", "PV1-44", 102},
		{"no PV1", msg("A01", "R1", pidMary), "AE", "PV1", 100},
		{"no PID", msg("A01", "R1", pv1Admit), "AE", "PID", 100},
		{"bad EVN time", strings.Replace(good, "EVN|A01|20260301080000-0500", "EVN|A01|yesterday", 1), "AE", "EVN-2", 102},
		{"bad segment", strings.Replace(good, "\rPV1|", "\rpv1|", 1), "AE", "4", 100},
		{"no control id", strings.Replace(good, "|R1|P|", "||P|", 1), "AE", "MSH-10", 101},
		{"cancel unknown visit", msg("A11", "R1", pidMary, pv1Admit), "AE", "PV1-19", 204},
		{"merge unknown patient", msg("A40", "R1", pidMary, "MRG|OLD9^^^GOODHOSP^MR"), "AE", "MRG-1", 204},
		{"merge without MRG", msg("A40", "R1", pidMary), "AE", "MRG", 100},
		{"too many identifiers", strings.Replace(good, "MRN123^^^GOODHOSP^MR", strings.Repeat("X^^^GOODHOSP^MR~", 25)+"MRN123^^^GOODHOSP^MR", 1), "AE", "PID-3", 102},
		{"discharge before admit", strings.Replace(good, "|20260301073000-0500", "|20260301073000-0500|20260201073000-0500", 1), "AE", "PV1-45", 102},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ack := e.send(t, tc.in)
			require.Equal(t, tc.code, ack.code)
			require.Len(t, ack.errs, 1)
			loc, code := errLocation(ack.errs[0])
			assert.Equal(t, tc.loc, loc)
			assert.Equal(t, fmt.Sprint(tc.err), code)
			counts, err := e.st.Counts(context.Background())
			require.NoError(t, err)
			for typ, n := range counts {
				assert.Zero(t, n, "%s written for a rejected message", typ)
			}
			assert.Empty(t, e.events)
		})
	}
}

func TestDuplicateIsIdempotent(t *testing.T) {
	e := newEnv(t)
	m := msg("A01", "D1", pidMary, pv1Admit)
	first := e.p.HandleER7(context.Background(), []byte(m))
	require.Equal(t, "AA", parseACK(t, first).code)
	time.Sleep(2 * time.Millisecond)
	again := e.p.HandleER7(context.Background(), []byte(strings.ReplaceAll(m, "\r", "\n")))
	assert.Equal(t, string(first), string(again), "the original ACK is returned")
	assert.Len(t, e.events, 1, "a duplicate is not notified")
	assert.Equal(t, 1, e.count(t, "MessageHeader"))
	hist, err := e.st.History(context.Background(), store.HistoryQuery{Type: "Patient", Count: -1})
	require.NoError(t, err)
	assert.Len(t, hist, 1, "nothing written twice")

	// Same control id from another sender is a different message.
	other := strings.Replace(m, "|GOODHOSP|EQUITAS", "|OTHERHOSP|EQUITAS", 1)
	require.Equal(t, "AA", e.send(t, other).code)
	assert.Equal(t, 2, e.count(t, "MessageHeader"))
}

func TestMergeLinksPatients(t *testing.T) {
	e := newEnv(t)
	require.Equal(t, "AA", e.send(t, msg("A04", "M1", strings.Replace(pidMary, "MRN123^^^GOODHOSP^MR~123-45-6789^^^SSA^SS", "OLD9^^^GOODHOSP^MR", 1), strings.Replace(pv1Admit, "V100", "V1", 1))).code)
	prior := e.lastEvent(t).PatientID
	require.Equal(t, "AA", e.send(t, msg("A01", "M2", pidMary, pv1Admit)).code)
	surviving := e.lastEvent(t).PatientID
	require.NotEqual(t, prior, surviving)

	ack := e.send(t, msg("A40", "M3", pidMary, "MRG|OLD9^^^GOODHOSP^MR"))
	require.Equal(t, "AA", ack.code, "%v", ack.errs)
	ev := e.lastEvent(t)
	assert.Equal(t, adt.KindMerge, ev.Kind)
	assert.Equal(t, surviving, ev.PatientID)
	assert.Empty(t, ev.EncounterID)

	s := e.read(t, "Patient", surviving)
	assert.Equal(t, "Patient/"+prior, s.Get(`link.#(type=="replaces").other.reference`).String())
	p := e.read(t, "Patient", prior)
	assert.Equal(t, "Patient/"+surviving, p.Get(`link.#(type=="replaced-by").other.reference`).String())
	assert.False(t, p.Get("active").Bool())
	assert.Equal(t, "OLD9", p.Get("identifier.0.value").String(), "nothing moved off the prior record")
	assert.Equal(t, 2, e.count(t, "Encounter"), "encounters stay where they were")

	// A later message using the old MRN lands on the surviving patient.
	require.Equal(t, "AA", e.send(t, msg("A08", "M4", "PID|1||OLD9^^^GOODHOSP^MR||O'Brien^Mary")).code)
	assert.Equal(t, surviving, e.lastEvent(t).PatientID)
	// Merging again is harmless (the links are present once).
	require.Equal(t, "AA", e.send(t, msg("A40", "M5", pidMary, "MRG|OLD9^^^GOODHOSP^MR")).code)
	assert.Len(t, e.read(t, "Patient", surviving).Get("link").Array(), 1)
}

func TestEncodingVariants(t *testing.T) {
	base := msg("A01", "E1", pidMary, "ZPI|1|custom^data~more|\\X41\\", pv1Admit, "ZZZ|anything goes|here")
	for _, tc := range []struct {
		name, in string
	}{
		{"CR", base},
		{"LF", strings.ReplaceAll(base, "\r", "\n")},
		{"CRLF", strings.ReplaceAll(base, "\r", "\r\n")},
		{"other delimiters", strings.NewReplacer("|", "#", "^", "!", "~", "*", "\\", "$", "&", "%").Replace(base)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ack := e.send(t, tc.in)
			require.Equal(t, "AA", ack.code, "%v", ack.errs)
			assert.Equal(t, "E1", ack.ctl)
			ev := e.lastEvent(t)
			assert.Equal(t, "O'Brien", e.read(t, "Patient", ev.PatientID).Get("name.0.family").String())
			assert.Equal(t, "IMP", e.read(t, "Encounter", ev.EncounterID).Get("class.code").String())
		})
	}
}

func TestEscapesAndRepetitions(t *testing.T) {
	e := newEnv(t)
	pid := "PID|1||A1^^^GOODHOSP^MR~B2^^^&2.16.840.1.113883.19.5&ISO^PI~C3^^^^MR||Doe\\T\\Roe^Jane\\S\\Q~Janie^^^^^^N||1980|U||2054-5^Black^CDCREC~2028-9^Asian^CDCREC~2108-9^European^CDCREC|Line\\F\\1\\.br\\More^^Town^ST^00001||||SPA|||||||H^Hispanic^HL70189"
	ack := e.send(t, msg("A04", "X1", pid, strings.Replace(pv1Admit, "PV1|1|I|", "PV1|1|O|", 1)))
	require.Equal(t, "AA", ack.code, "%v", ack.errs)
	ev := e.lastEvent(t)
	p := e.read(t, "Patient", ev.PatientID)
	assert.Equal(t, "Doe&Roe", p.Get("name.0.family").String())
	assert.Equal(t, "Jane^Q", p.Get("name.0.given.0").String())
	assert.Equal(t, "nickname", p.Get("name.1.use").String())
	assert.Equal(t, "1980", p.Get("birthDate").String())
	assert.Equal(t, "unknown", p.Get("gender").String())
	assert.Equal(t, "Line|1\nMore", p.Get("address.0.line.0").String())
	assert.Equal(t, "urn:oid:2.16.840.1.113883.19.5", p.Get(`identifier.#(value=="B2").system`).String())
	assert.Equal(t, "urn:equitas:hl7v2:authority:GOODHOSP", p.Get(`identifier.#(value=="C3").system`).String(), "no authority: the sender's")
	race := p.Get(`extension.#(url=="http://hl7.org/fhir/us/core/StructureDefinition/us-core-race")`)
	assert.Len(t, race.Get(`extension.#(url=="ombCategory")#`).Array(), 2)
	assert.Equal(t, "2108-9", race.Get(`extension.#(url=="detailed").valueCoding.code`).String())
	assert.Equal(t, "Black, Asian, European", race.Get(`extension.#(url=="text").valueString`).String())
	eth := p.Get(`extension.#(url=="http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity")`)
	assert.Equal(t, "2135-2", eth.Get(`extension.#(url=="ombCategory").valueCoding.code`).String(), "table 0189 H")
	assert.Equal(t, "es", p.Get("communication.0.language.coding.0.code").String())
	enc := e.read(t, "Encounter", ev.EncounterID)
	assert.Equal(t, "AMB", enc.Get("class.code").String())
	assert.Equal(t, "in-progress", enc.Get("status").String(), "A04 with PV1-44: the visit has begun")

	// Matching by the second identifier updates the same patient; "" clears.
	upd := "PID|1||B2^^^&2.16.840.1.113883.19.5&ISO^PI||Doe^Jane||1980|U|||\"\""
	require.Equal(t, "AA", e.send(t, msg("A08", "X2", upd)).code)
	assert.Equal(t, ev.PatientID, e.lastEvent(t).PatientID)
	p = e.read(t, "Patient", ev.PatientID)
	assert.False(t, p.Get("address").Exists(), `"" deletes`)
	assert.Equal(t, "1980", p.Get("birthDate").String(), "empty keeps")
	assert.Equal(t, 3, len(p.Get("identifier").Array()))
	assert.Equal(t, 1, e.count(t, "Patient"))
}

func TestMatchesPatientCreatedElsewhere(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "rest-1",
		Body: []byte(`{"resourceType":"Patient","id":"rest-1","identifier":[{"system":"urn:equitas:hl7v2:authority:GOODHOSP","value":"MRN123"}],"generalPractitioner":[{"display":"Dr Who"}]}`)}}})
	require.NoError(t, err)
	require.Equal(t, "AA", e.send(t, msg("A01", "F1", pidMary, pv1Admit)).code)
	assert.Equal(t, "rest-1", e.lastEvent(t).PatientID)
	p := e.read(t, "Patient", "rest-1")
	assert.Equal(t, "Dr Who", p.Get("generalPractitioner.0.display").String(), "elements the message does not carry are kept")
	assert.Equal(t, "O'Brien", p.Get("name.0.family").String())
	assert.Equal(t, 1, e.count(t, "Patient"))
}

func TestReferencedResourcesReused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Practitioner", ID: "npi-1",
		Body: []byte(`{"resourceType":"Practitioner","id":"npi-1","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567890"}],"name":[{"family":"Smith","given":["John","Q"]}]}`)}}})
	require.NoError(t, err)
	for i, pid := range []string{pidMary, strings.Replace(pidMary, "MRN123", "MRN456", 1)} {
		pv1 := strings.Replace(pv1Admit, "V100", fmt.Sprintf("V%d", i), 1)
		require.Equal(t, "AA", e.send(t, msg("A01", fmt.Sprintf("P%d", i), strings.Replace(pid, "123-45-6789", fmt.Sprintf("99%d", i), 1), pv1)).code)
		enc := e.read(t, "Encounter", e.lastEvent(t).EncounterID)
		assert.Equal(t, "Practitioner/npi-1", enc.Get("participant.0.individual.reference").String(), "the existing NPI holder")
	}
	assert.Equal(t, 1, e.count(t, "Practitioner"))
	assert.Equal(t, 1, e.count(t, "Location"))
	assert.Equal(t, 1, e.count(t, "Organization"))
	assert.Equal(t, 2, e.count(t, "Patient"))
	assert.Equal(t, "Q", e.read(t, "Practitioner", "npi-1").Get("name.0.given.1").String(), "reference data is not rewritten")
}

func TestNextOfKin(t *testing.T) {
	e := newEnv(t)
	nk1 := "NK1|1|O'Brien^Sean|SPO^Spouse^HL70063|1 Main St^^Boston^MA^02110|^PRN^PH^^1^617^5550000||C^Emergency Contact^HL70131"
	require.Equal(t, "AA", e.send(t, msg("A01", "K1", pidMary, nk1, pv1Admit)).code)
	p := e.read(t, "Patient", e.lastEvent(t).PatientID)
	assert.Equal(t, "Sean", p.Get("contact.0.name.given.0").String())
	assert.Equal(t, "C", p.Get(`contact.0.relationship.#(coding.0.system=="http://terminology.hl7.org/CodeSystem/v2-0131").coding.0.code`).String())
	assert.Equal(t, "SPO", p.Get(`contact.0.relationship.#(coding.0.system=="http://terminology.hl7.org/CodeSystem/v2-0063").coding.0.code`).String())
	assert.Equal(t, "+1 (617) 5550000", p.Get("contact.0.telecom.0.value").String())
	assert.Equal(t, "Boston", p.Get("contact.0.address.city").String())
	// Without NK1 the contacts stay.
	require.Equal(t, "AA", e.send(t, msg("A08", "K2", pidMary, pv1Admit)).code)
	assert.Equal(t, "Sean", e.read(t, "Patient", e.lastEvent(t).PatientID).Get("contact.0.name.given.0").String())
}

func TestVersions(t *testing.T) {
	for _, v := range []string{"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.2"} {
		t.Run(v, func(t *testing.T) {
			e := newEnv(t)
			in := strings.Replace(msg("A01", "V"+v, pidMary, pv1Admit), "|P|2.5.1", "|P|"+v, 1)
			b := e.p.HandleER7(context.Background(), []byte(in))
			ack := parseACK(t, b)
			require.Equal(t, "AA", ack.code, "%v", ack.errs)
			m, err := hl7v2.Parse(b)
			require.NoError(t, err)
			assert.Equal(t, v, m.Segment("MSH").Field(12).String(), "the ACK keeps the version")
			assert.Equal(t, "EQUITAS", m.Segment("MSH").Field(3).String())
			assert.Equal(t, "EPIC", m.Segment("MSH").Field(5).String())
		})
	}
}

func TestConcurrentMessagesSamePatient(t *testing.T) {
	e := newEnv(t)
	const n = 24
	var wg sync.WaitGroup
	acks := make([]ackResult, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half are copies of one message (duplicates racing each other).
			ctl := fmt.Sprintf("CC%d", i)
			if i%2 == 1 {
				ctl = "CCDUP"
			}
			visit := strings.Replace(pv1Admit, "V100", fmt.Sprintf("V%d", i%3), 1)
			acks[i] = parseACK(t, e.p.HandleER7(context.Background(), []byte(msg("A01", ctl, pidMary, visit))))
		}()
	}
	wg.Wait()
	for _, a := range acks {
		require.Equal(t, "AA", a.code, "%v", a.errs)
	}
	assert.Equal(t, 1, e.count(t, "Patient"), "one patient however the messages interleave")
	assert.Equal(t, n/2+1, e.count(t, "MessageHeader"))
	assert.Equal(t, n/2+1, e.count(t, "Provenance"))
	assert.Equal(t, 3, e.count(t, "Encounter"))
	assert.Len(t, e.events, n/2+1)
}

func TestUnchangedPatientNotRewritten(t *testing.T) {
	e := newEnv(t)
	require.Equal(t, "AA", e.send(t, msg("A01", "U1", pidMary, pv1Admit)).code)
	id := e.lastEvent(t).PatientID
	require.Equal(t, "AA", e.send(t, msg("A03", "U2", pidMary, pv1Admit)).code)
	r, err := e.st.Read(context.Background(), "Patient", id)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), r.Version, "same demographics: no new Patient version")
	enc, err := e.st.Read(context.Background(), "Encounter", e.lastEvent(t).EncounterID)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), enc.Version)
}

func TestStatusRules(t *testing.T) {
	noAdmitTime := strings.Replace(pv1Admit, "|20260301073000-0500", "|", 1)
	for _, tc := range []struct {
		name     string
		trigger  string
		pv1      string
		status   string
		hasStart bool
	}{
		{"A04 without admit time is planned", "A04", noAdmitTime, "planned", false},
		{"A04 with admit time has begun", "A04", pv1Admit, "in-progress", true},
		{"A08 for a new visit is unknown", "A08", noAdmitTime, "unknown", false},
		{"A08 with discharge time is finished", "A08", strings.Replace(pv1Admit, "|20260301073000-0500", "|20260301073000-0500|20260302073000-0500", 1), "finished", true},
		{"A03 before any A01 creates a finished visit", "A03", noAdmitTime, "finished", false},
		{"A01 without admit time starts at the event", "A01", noAdmitTime, "in-progress", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ack := e.send(t, msg(tc.trigger, "T1", pidMary, tc.pv1))
			require.Equal(t, "AA", ack.code, "%v", ack.errs)
			enc := e.read(t, "Encounter", e.lastEvent(t).EncounterID)
			assert.Equal(t, tc.status, enc.Get("status").String())
			assert.Equal(t, tc.hasStart, enc.Get("period.start").Exists())
			if tc.status == "finished" {
				assert.True(t, enc.Get("period.end").Exists())
				assert.Zero(t, len(enc.Get(`location.#(status=="active")#`).Array()))
			}
			if tc.status == "planned" {
				assert.Equal(t, "planned", enc.Get("location.0.status").String())
			}
		})
	}
}

func TestRaceEthnicityLanguageMapping(t *testing.T) {
	for _, tc := range []struct {
		name, race, eth, lang string
		omb, detailed, ethOmb string
		text, langCode        string
	}{
		{"legacy letters", "W", "N", "ENG", "2106-3", "", "2186-5", "White", "en"},
		{"CDC code without system", "2054-5", "2135-2", "es", "2054-5", "", "2135-2", "Black or African American", "es"},
		{"detailed only", "2108-9^European^CDCREC", "2148-5^Mexican^CDCREC", "en-US", "", "2108-9", "", "European", "en-US"},
		{"unknown", "U", "U", "Klingon", "UNK", "", "UNK", "Unknown", ""},
		{"alternate code", "X^Other^L^2106-3^White^CDCREC", "", "", "2106-3", "", "", "White", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pid := fmt.Sprintf("PID|1||Z1^^^GOODHOSP^MR||Doe^Jane||1980|F||%s|||||%s|||||||%s", tc.race, tc.lang, tc.eth)
			require.Equal(t, "AA", e.send(t, msg("A08", "R1", pid)).code)
			p := e.read(t, "Patient", e.lastEvent(t).PatientID)
			race := p.Get(`extension.#(url=="http://hl7.org/fhir/us/core/StructureDefinition/us-core-race")`)
			assert.Equal(t, tc.omb, race.Get(`extension.#(url=="ombCategory").valueCoding.code`).String())
			assert.Equal(t, tc.detailed, race.Get(`extension.#(url=="detailed").valueCoding.code`).String())
			assert.Equal(t, tc.text, race.Get(`extension.#(url=="text").valueString`).String())
			eth := p.Get(`extension.#(url=="http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity")`)
			assert.Equal(t, tc.ethOmb, eth.Get(`extension.#(url=="ombCategory").valueCoding.code`).String())
			assert.Equal(t, tc.langCode, p.Get("communication.0.language.coding.0.code").String())
		})
	}
}

func TestOptions(t *testing.T) {
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata")
	}
	p := adt.New(st, adt.Options{
		Location:      ny,
		Authorities:   map[string]string{"GOODHOSP": "https://goodhosp.example/mrn"},
		ProcessingIDs: []string{"D"},
	})
	in := strings.Replace(msg("A01", "O1", pidMary, strings.Replace(pv1Admit, "20260301073000-0500", "202607010730", 1)), "|P|2.5.1", "|D|2.5.1", 1)
	ack := parseACK(t, p.HandleER7(context.Background(), []byte(in)))
	require.Equal(t, "AA", ack.code, "%v", ack.errs)
	res, err := st.Search(context.Background(), store.Query{Type: "Patient", Params: []store.Param{{Name: "identifier", Values: []string{"https://goodhosp.example/mrn|MRN123"}}}})
	require.NoError(t, err)
	require.Len(t, res.Resources, 1)
	encs, err := st.Search(context.Background(), store.Query{Type: "Encounter"})
	require.NoError(t, err)
	require.Len(t, encs.Resources, 1)
	assert.Equal(t, "2026-07-01T07:30:00-04:00", gjson.GetBytes(encs.Resources[0].Body, "period.start").String(), "local time in the configured zone")
	ack = parseACK(t, p.HandleER7(context.Background(), []byte(strings.Replace(in, "|D|2.5.1", "|P|2.5.1", 1))))
	assert.Equal(t, "AR", ack.code)
}

func TestForgetBefore(t *testing.T) {
	e := newEnv(t)
	m := msg("A01", "G1", pidMary, pv1Admit)
	require.Equal(t, "AA", e.send(t, m).code)
	n, err := e.p.ForgetBefore(context.Background(), time.Now().Add(-time.Hour))
	require.NoError(t, err)
	assert.Zero(t, n, "recent records are kept")
	require.Equal(t, "AA", e.send(t, m).code)
	assert.Len(t, e.events, 1, "still a duplicate")

	n, err = e.p.ForgetBefore(context.Background(), time.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	require.Equal(t, "AA", e.send(t, m).code)
	assert.Len(t, e.events, 2, "forgotten: applied again")
	assert.Equal(t, 1, e.count(t, "Patient"))
	assert.Equal(t, 1, e.count(t, "Encounter"))
	assert.Equal(t, 1, e.count(t, "MessageHeader"))
}

func TestDiagnosesAndCoverage(t *testing.T) {
	e := newEnv(t)
	dg1 := []string{
		"DG1|1||I10^Essential hypertension^I10||20260301|A|||||||||1",
		"DG1|2||E11.9^Type 2 diabetes^I10||20260301|F",
		"DG1|3||^^",
	}
	in1 := segment("IN1", map[int]string{1: "1", 2: "HMO1^Gold HMO", 3: "PAYER9^^^GOODHOSP", 4: "Acme Health", 12: "20260101", 13: "20261231", 17: "SEL", 36: "MEM777"})
	segs := append([]string{pidMary, pv1Admit}, append(dg1, in1)...)
	ack := e.send(t, msg("A01", "DX1", segs...))
	require.Equal(t, "AA", ack.code, "%v", ack.errs)
	ev := e.lastEvent(t)
	enc := e.read(t, "Encounter", ev.EncounterID)
	require.Len(t, enc.Get("diagnosis").Array(), 2, "the DG1 without a code is skipped")
	assert.Equal(t, "AD", enc.Get("diagnosis.0.use.coding.0.code").String())
	assert.Equal(t, int64(1), enc.Get("diagnosis.0.rank").Int())
	cond := e.read(t, "Condition", strings.TrimPrefix(enc.Get("diagnosis.0.condition.reference").String(), "Condition/"))
	assert.Equal(t, "http://hl7.org/fhir/sid/icd-10-cm", cond.Get("code.coding.0.system").String())
	assert.Equal(t, "I10", cond.Get("code.coding.0.code").String())
	assert.Equal(t, "encounter-diagnosis", cond.Get("category.0.coding.0.code").String())
	assert.Equal(t, "Encounter/"+ev.EncounterID, cond.Get("encounter.reference").String())
	assert.Equal(t, "Patient/"+ev.PatientID, cond.Get("subject.reference").String())

	res, err := e.st.Search(context.Background(), store.Query{Type: "Coverage"})
	require.NoError(t, err)
	require.Len(t, res.Resources, 1)
	cov := gjson.ParseBytes(res.Resources[0].Body)
	assert.Equal(t, "MEM777", cov.Get("subscriberId").String())
	assert.Equal(t, "Acme Health", cov.Get("payor.0.display").String())
	assert.Equal(t, "PAYER9", cov.Get("payor.0.identifier.value").String())
	assert.Equal(t, "self", cov.Get("relationship.coding.0.code").String())
	assert.Equal(t, "2026-12-31", cov.Get("period.end").String())
	assert.Equal(t, "HMO1", cov.Get("class.0.value").String())
	assert.Equal(t, "Patient/"+ev.PatientID, cov.Get("beneficiary.reference").String())

	// The same lists again: nothing new.
	require.Equal(t, "AA", e.send(t, msg("A08", "DX2", segs...)).code)
	assert.Equal(t, 2, e.count(t, "Condition"))
	assert.Equal(t, 1, e.count(t, "Coverage"))
	hist, err := e.st.History(context.Background(), store.HistoryQuery{Type: "Condition", Count: -1})
	require.NoError(t, err)
	assert.Len(t, hist, 2, "unchanged diagnoses are not rewritten")

	for _, tc := range []struct{ seg, loc string }{
		{"DG1|1||I10^HTN^I10||2026-03-01", "DG1-5"},
		{segment("IN1", map[int]string{2: "HMO1", 3: "PAYER9", 4: "Acme", 12: "20260101", 13: "20251231"}), "IN1-13"},
	} {
		ack := e.send(t, msg("A01", "DXB"+tc.loc, pidMary, pv1Admit, tc.seg))
		require.Equal(t, "AE", ack.code)
		loc, _ := errLocation(ack.errs[0])
		assert.Equal(t, tc.loc, loc)
	}
}

// segment renders a segment from its numbered fields.
func segment(name string, fields map[int]string) string {
	n := 0
	for k := range fields {
		n = max(n, k)
	}
	parts := make([]string, n+1)
	parts[0] = name
	for k, v := range fields {
		parts[k] = v
	}
	return strings.Join(parts, "|")
}

func TestQueueCommitsWithTheMessage(t *testing.T) {
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	fail := false
	p := adt.New(st, adt.Options{Queue: func(_ context.Context, ev adt.Event) (map[string][]byte, error) {
		if fail {
			return nil, fmt.Errorf("queue unavailable")
		}
		return map[string][]byte{"alerts/job/" + ev.MessageHeaderID: []byte(ev.Kind + " " + ev.PatientID)}, nil
	}})
	ack := parseACK(t, p.HandleER7(context.Background(), []byte(msg("A01", "Q1", pidMary, pv1Admit))))
	require.Equal(t, "AA", ack.code)
	var jobs []string
	require.NoError(t, st.KV().Scan(context.Background(), "alerts/job/", func(_ string, v []byte) error {
		jobs = append(jobs, string(v))
		return nil
	}))
	require.Len(t, jobs, 1)
	assert.True(t, strings.HasPrefix(jobs[0], "admit "))

	// A failing queue rejects the message (AR, retry later) and writes nothing.
	fail = true
	ack = parseACK(t, p.HandleER7(context.Background(), []byte(msg("A03", "Q2", pidMary, pv1Admit))))
	require.Equal(t, "AR", ack.code)
	counts, err := st.Counts(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(1), counts["MessageHeader"])
}
