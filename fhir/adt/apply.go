package adt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/hl7v2"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

// KV key prefixes (system records in the store's KV space).
const (
	// kvMessage + hash(MSH-3, MSH-4, MSH-10) → when it was applied (8
	// bytes, Unix seconds, big-endian) followed by the ACK sent for it.
	kvMessage = "adt/msg/"
	// kvPatient + hash(system, value) → Patient id: the identifier index
	// that lets a message find its patient without a search.
	kvPatient = "adt/pid/"
)

// maxAttempts bounds retries when a concurrent writer outside this
// Processor (the REST API) changed a resource between read and commit.
const maxAttempts = 4

// plan is a message mapped as far as possible without the store.
type plan struct {
	msg                 *hl7v2.Message
	trigger, kind       string
	status              string
	sender              string // MSH-3^MSH-4 namespace ids, for logs and events
	dedupKey            string
	m                   *mapper
	patient             *patientPlan
	prior               []identifier // A40 MRG-1
	visit               *visit
	diagnoses           []diagnosis
	coverages           []coverage
	encounterID         string
	at                  time.Time // when the event happened
	eventTime, recorded string    // FHIR dateTime / instant
	occurred            string    // EVN-6, FHIR dateTime
}

// plan maps the message's segments; errors are *hl7v2.Error (AE).
func (p *Processor) plan(msg *hl7v2.Message, trigger string) (*plan, error) {
	msh, evn := msg.Segment("MSH"), msg.Segment("EVN")
	pl := &plan{msg: msg, trigger: trigger, kind: triggers[trigger].kind, status: triggers[trigger].status}
	pl.sender = clean(msh.Field(3).Component(1).String()) + "^" + clean(msh.Field(4).Component(1).String())
	pl.dedupKey = kvMessage + hashID(string(msh.Field(3).Raw()), string(msh.Field(4).Raw()), msh.Field(10).String())
	senderSys := hdField(msh.Field(4), p.opts.Authorities)
	if senderSys == "" {
		senderSys = hdField(msh.Field(3), p.opts.Authorities)
	}
	if senderSys == "" {
		return nil, hl7v2.Errorf(hl7v2.At("MSH", 4), hl7v2.CodeRequiredMissing, "MSH-4 sending facility (or MSH-3) is required to scope identifiers")
	}
	pl.m = &mapper{loc: p.opts.Location, authorities: p.opts.Authorities, sender: senderSys}
	pl.m.org = pl.m.organizationRef(msh.Field(4))

	// Times: EVN-6 (occurred), EVN-2 (recorded), MSH-7 (message).
	now := p.now()
	times := map[string]*hl7v2.Time{}
	for _, f := range []struct {
		seg   *hl7v2.Segment
		name  string
		field int
	}{{msh, "MSH", 7}, {evn, "EVN", 2}, {evn, "EVN", 6}} {
		v := f.seg.Field(f.field).Component(1).String()
		if v == "" {
			continue
		}
		t, err := hl7v2.ParseTime(v, p.opts.Location)
		if err != nil {
			return nil, &hl7v2.Error{Location: loc(f.seg, f.field), Code: hl7v2.CodeDataType,
				Text: fmt.Sprintf("%s-%d is not a valid date/time", f.name, f.field), Err: err}
		}
		times[fmt.Sprintf("%s-%d", f.name, f.field)] = &t
	}
	pl.at, pl.eventTime = now, fhirInstant(now)
	for _, k := range []string{"EVN-6", "EVN-2", "MSH-7"} {
		if t := times[k]; t != nil {
			pl.at, pl.eventTime = t.T, fhirDateTime(*t)
			break
		}
	}
	pl.recorded = fhirInstant(now)
	for _, k := range []string{"EVN-2", "MSH-7"} {
		if t := times[k]; t != nil {
			pl.recorded = fhirInstant(t.T)
			break
		}
	}
	if t := times["EVN-6"]; t != nil {
		pl.occurred = fhirDateTime(*t)
	}

	var err error
	if pl.patient, err = pl.m.patient(msg.Segment("PID")); err != nil {
		return nil, err
	}
	if pl.coverages, err = pl.m.coverages(msg.All("IN1")); err != nil {
		return nil, err
	}
	if c := pl.m.contacts(msg.All("NK1")); len(c) > 0 {
		pl.patient.Elements = append(pl.patient.Elements, element{Name: "contact", Raw: raw(c)})
	}
	if trigger == "A40" {
		mrg := msg.Segment("MRG")
		if mrg == nil {
			return nil, hl7v2.Errorf(hl7v2.Location{Segment: "MRG"}, hl7v2.CodeSegmentSequence, "A40 needs an MRG segment")
		}
		if pl.prior = pl.m.identifiers(mrg.Field(1)); len(pl.prior) > maxIdentifiers {
			return nil, hl7v2.Errorf(loc(mrg, 1), hl7v2.CodeDataType, fmt.Sprintf("MRG-1 has more than %d identifiers", maxIdentifiers))
		} else if len(pl.prior) == 0 {
			return nil, hl7v2.Errorf(loc(mrg, 1), hl7v2.CodeRequiredMissing, "MRG-1 prior patient identifier is required")
		}
		return pl, nil
	}
	pv1 := msg.Segment("PV1")
	switch {
	case pv1 == nil && trigger == "A08":
		return pl, nil // demographics only
	case pv1 == nil:
		return nil, hl7v2.Errorf(hl7v2.Location{Segment: "PV1"}, hl7v2.CodeSegmentSequence, "PV1 segment missing")
	case trigger == "A08" && pv1.Field(19).Empty():
		return pl, nil
	}
	if pl.visit, err = pl.m.visit(pv1, msg.Segment("PV2")); err != nil {
		return nil, err
	}
	if pl.diagnoses, err = pl.m.diagnoses(msg.All("DG1")); err != nil {
		return nil, err
	}
	pl.encounterID = hashID("Encounter", pl.visit.ID.System, pl.visit.ID.Value)
	return pl, nil
}

// apply commits the plan: resources, identifier index and dedup key in one
// store.Commit. dup reports a message already applied (ack is the ACK
// sent then).
func (p *Processor) apply(ctx context.Context, pl *plan) (ack []byte, ev Event, dup bool, err error) {
	kv := p.st.KV()
	if prev, err := kv.Get(ctx, pl.dedupKey); err == nil {
		return storedACK(prev), ev, true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, ev, false, fmt.Errorf("adt: read dedup key: %w", err)
	}
	keys := []string{pl.dedupKey}
	if pl.encounterID != "" {
		keys = append(keys, "enc:"+pl.encounterID)
	}
	for _, id := range append(append([]identifier(nil), pl.patient.IDs...), pl.prior...) {
		keys = append(keys, "pid:"+id.System+"|"+id.Value)
	}
	unlock := p.lock(keys)
	defer unlock()
	// A concurrent copy of this message may have committed while we waited.
	if prev, err := kv.Get(ctx, pl.dedupKey); err == nil {
		return storedACK(prev), ev, true, nil
	}
	for attempt := 1; ; attempt++ {
		var tx store.Tx
		tx, ev, err = p.build(ctx, pl)
		if err != nil {
			return nil, ev, false, err
		}
		ack = p.ack.ACK(pl.msg, hl7v2.AA, "")
		tx.KV[pl.dedupKey] = binary.BigEndian.AppendUint64(nil, uint64(p.now().Unix()))
		tx.KV[pl.dedupKey] = append(tx.KV[pl.dedupKey], ack...)
		_, err = p.st.Commit(ctx, tx)
		if errors.Is(err, store.ErrVersionConflict) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return nil, ev, false, fmt.Errorf("adt: commit: %w", err)
		}
		return ack, ev, false, nil
	}
}

func storedACK(v []byte) []byte {
	if len(v) < 8 {
		return nil
	}
	return v[8:]
}

// ForgetBefore removes the duplicate-detection records of messages
// applied before t and returns how many it removed. Senders resend within
// minutes or hours; a daily ForgetBefore(now − 30 days) keeps the KV space
// bounded. A message resent after its record is gone is applied again
// (idempotently: the same Patient, Encounter, MessageHeader and
// Provenance get new versions).
func (p *Processor) ForgetBefore(ctx context.Context, t time.Time) (int, error) {
	const batch = 1000
	kv := p.st.KV()
	ops := map[string][]byte{}
	n := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if err := kv.Batch(ctx, ops); err != nil {
			return fmt.Errorf("adt: forget dedup records: %w", err)
		}
		n += len(ops)
		clear(ops)
		return nil
	}
	var keys []string
	err := kv.Scan(ctx, kvMessage, func(key string, v []byte) error {
		if len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) < t.Unix() {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("adt: scan dedup records: %w", err)
	}
	for _, k := range keys {
		ops[k] = nil
		if len(ops) == batch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}

// build reads what the message touches and prepares the transaction.
func (p *Processor) build(ctx context.Context, pl *plan) (store.Tx, Event, error) {
	tx := store.Tx{KV: map[string][]byte{}}
	ev := Event{Kind: pl.kind, Trigger: pl.trigger, Sender: pl.sender, At: pl.at}
	if err := p.resolveRefs(ctx, pl.m.refs, &tx); err != nil {
		return tx, ev, err
	}

	patientID, existing, merged, err := p.findPatient(ctx, pl.patient.IDs, true)
	if err != nil {
		return tx, ev, err
	}
	if patientID == "" {
		if patientID, err = p.newPatientID(ctx, pl.patient.IDs[0]); err != nil {
			return tx, ev, err
		}
	}
	ev.PatientID = patientID
	po := newObject("Patient", patientID)
	if existing != nil {
		if po, err = parseObject(existing.Body); err != nil {
			return tx, ev, err
		}
	}
	pp := pl.patient
	if merged {
		// The message names a record merged into this one (A40): update
		// the survivor but leave the prior record's identifiers with it.
		cp := *pp
		cp.IDs = nil
		pp = &cp
	}
	applyPatient(po, pp)
	var prior *store.Resource
	var priorObj *object
	if pl.trigger == "A40" {
		var priorID string
		priorID, prior, _, err = p.findPatient(ctx, pl.prior, false)
		switch {
		case err != nil:
			return tx, ev, err
		case priorID == "":
			return tx, ev, hl7v2.Errorf(hl7v2.At("MRG", 1), hl7v2.CodeUnknownKey, "MRG-1 names no known patient")
		case priorID == patientID:
			return tx, ev, hl7v2.Errorf(hl7v2.At("MRG", 1), hl7v2.CodeDuplicateKey, "MRG-1 names the surviving patient itself")
		}
		// Merge without moving anything: both records stay, linked, and
		// the prior one is marked inactive (reversible by an unmerge).
		addLink(po, priorID, "replaces")
		if priorObj, err = parseObject(prior.Body); err != nil {
			return tx, ev, err
		}
		addLink(priorObj, patientID, "replaced-by")
		priorObj.set("active", []byte("false"))
	}
	tx.Writes = appendPut(tx.Writes, "Patient", patientID, po.bytes(), existing)
	if prior != nil {
		tx.Writes = appendPut(tx.Writes, "Patient", prior.ID, priorObj.bytes(), prior)
	}

	focus := reference{Reference: "Patient/" + patientID}
	targets := []reference{focus}
	if pl.visit != nil {
		enc, err := p.st.Read(ctx, "Encounter", pl.encounterID)
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrDeleted) {
			return tx, ev, fmt.Errorf("adt: read encounter: %w", err)
		}
		var old []byte
		if err == nil {
			old = enc.Body
		} else {
			enc = nil
		}
		if old == nil && (pl.trigger == "A11" || pl.trigger == "A13") {
			return tx, ev, hl7v2.Errorf(hl7v2.At("PV1", 19), hl7v2.CodeUnknownKey, "PV1-19 names no known visit to cancel")
		}
		var diag []encounterDiagnosis
		for _, d := range pl.diagnoses {
			id := hashID("Condition", pl.encounterID, d.key)
			cur, err := p.readCurrent(ctx, "Condition", id)
			if err != nil {
				return tx, ev, err
			}
			var curBody []byte
			if cur != nil {
				curBody = cur.Body
			}
			b, err := condition(curBody, id, patientID, pl.encounterID, d)
			if err != nil {
				return tx, ev, err
			}
			tx.Writes = appendPut(tx.Writes, "Condition", id, b, cur)
			ed := encounterDiagnosis{Condition: reference{Reference: "Condition/" + id}, Rank: d.Rank}
			if d.Use != nil {
				ed.Use = &codeableConcept{Coding: []coding{*d.Use}}
			}
			diag = append(diag, ed)
		}
		b, err := pl.m.encounter(encounterInput{
			ID: pl.encounterID, PatientID: patientID, Trigger: pl.trigger, Status: pl.status, V: pl.visit,
			Existing: old, At: pl.at, EventTime: pl.eventTime, Provider: pl.m.org, Diagnoses: diag,
		})
		if err != nil {
			return tx, ev, err
		}
		tx.Writes = appendPut(tx.Writes, "Encounter", pl.encounterID, b, enc)
		ev.EncounterID = pl.encounterID
		focus = reference{Reference: "Encounter/" + pl.encounterID}
		targets = append(targets, focus)
	}
	if prior != nil {
		targets = append(targets, reference{Reference: "Patient/" + prior.ID})
	}
	for _, c := range pl.coverages {
		id := hashID("Coverage", patientID, c.key)
		cur, err := p.readCurrent(ctx, "Coverage", id)
		if err != nil {
			return tx, ev, err
		}
		var curBody []byte
		if cur != nil {
			curBody = cur.Body
		}
		b, err := coverageBody(curBody, id, patientID, c)
		if err != nil {
			return tx, ev, err
		}
		tx.Writes = appendPut(tx.Writes, "Coverage", id, b, cur)
	}

	msh, evn := pl.msg.Segment("MSH"), pl.msg.Segment("EVN")
	mhID := hashID("MessageHeader", pl.dedupKey)
	ev.MessageHeaderID = mhID
	targets = append(targets, reference{Reference: "MessageHeader/" + mhID})
	tx.Writes = append(tx.Writes,
		// Ids derive from sender + MSH-10: a message applied again after
		// ForgetBefore makes new versions, not new resources.
		store.Write{Op: store.OpPut, Type: "MessageHeader", ID: mhID,
			Body: pl.m.messageHeader(mhID, msh, pl.trigger, []reference{focus})},
		store.Write{Op: store.OpPut, Type: "Provenance", ID: hashID("Provenance", pl.dedupKey),
			Body: pl.m.provenance(hashID("Provenance", pl.dedupKey), msh, evn, pl.trigger, pl.recorded, pl.occurred, targets)},
	)
	for _, id := range pp.IDs {
		tx.KV[kvPatient+hashID(id.System, id.Value)] = []byte(patientID)
	}
	if p.opts.Queue != nil {
		kv, err := p.opts.Queue(ctx, ev)
		if err != nil {
			return tx, ev, fmt.Errorf("adt: queue: %w", err)
		}
		for k, v := range kv {
			if strings.HasPrefix(k, "adt/") {
				return tx, ev, fmt.Errorf("adt: queue wrote into the adt/ KV namespace (%q)", k)
			}
			tx.KV[k] = v
		}
	}
	if v := p.opts.Validator; v != nil {
		for _, w := range tx.Writes {
			if _, _, err := v.Resource(w.Body); err != nil {
				return tx, ev, fmt.Errorf("adt: mapped %s fails validation at %s", w.Type, invalidAt(err))
			}
		}
	}
	return tx, ev, nil
}

// invalidAt names where a mapped resource fails validation (issue codes and
// element paths) without the validator's diagnostics, which may quote the
// patient data at fault: the error is logged, and logs carry identifiers
// only.
func invalidAt(err error) string {
	var he *outcome.HTTPError
	if !errors.As(err, &he) || len(he.Issues) == 0 {
		return "an unlocated element"
	}
	var parts []string
	for _, is := range he.Issues {
		parts = append(parts, is.Code+" "+strings.Join(is.Expression, ","))
	}
	return strings.Join(parts, "; ")
}

// readCurrent reads typ/id; nil (no error) when absent or deleted.
func (p *Processor) readCurrent(ctx context.Context, typ, id string) (*store.Resource, error) {
	r, err := p.st.Read(ctx, typ, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adt: read %s: %w", typ, err)
	}
	return r, nil
}

// appendPut adds a write of typ/id guarded against concurrent changes:
// IfMatch the version read, or IfNoneExist when there was none. A body
// equal to the stored one is not written at all (an A03 repeating the
// demographics of the A01 leaves the Patient alone without costing the
// store an index extraction).
func appendPut(ws []store.Write, typ, id string, body []byte, existing *store.Resource) []store.Write {
	w := store.Write{Op: store.OpPut, Type: typ, ID: id, Body: body, SkipUnchanged: true}
	if existing != nil {
		if bytes.Equal(existing.Body, body) {
			return ws
		}
		w.IfMatch = existing.Version
	} else {
		w.IfNoneExist = true
	}
	return append(ws, w)
}

// findPatient returns the current Patient holding one of ids: first
// through the identifier index, then by search (patients created through
// the REST API or bulk import are not in the index). With follow, a
// patient merged into another (link replaced-by) resolves to the survivor.
func (p *Processor) findPatient(ctx context.Context, ids []identifier, follow bool) (id string, r *store.Resource, merged bool, err error) {
	kv := p.st.KV()
	for _, id := range ids {
		v, err := kv.Get(ctx, kvPatient+hashID(id.System, id.Value))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", nil, false, fmt.Errorf("adt: read identifier index: %w", err)
		}
		r, err := p.st.Read(ctx, "Patient", string(v))
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
			continue
		}
		if err != nil {
			return "", nil, false, fmt.Errorf("adt: read patient: %w", err)
		}
		if hasIdentifier(r.Body, id) {
			return p.survivor(ctx, r, follow)
		}
	}
	// One search for all identifiers (values of one parameter are OR-ed);
	// several matches prefer the one holding the earliest identifier.
	vals := make([]string, len(ids))
	for i, id := range ids {
		vals[i] = id.System + "|" + id.Value
	}
	res, err := p.st.Search(ctx, store.Query{Type: "Patient", Count: 10,
		Params: []store.Param{{Name: "identifier", Values: vals}}})
	if err != nil {
		return "", nil, false, fmt.Errorf("adt: search patient by identifier: %w", err)
	}
	for _, id := range ids {
		for _, r := range res.Resources {
			if hasIdentifier(r.Body, id) {
				if len(res.Resources) > 1 {
					p.log.LogAttrs(ctx, slog.LevelWarn, "adt: identifiers match several patients; using the first",
						slog.String("system", id.System), slog.String("patient", r.ID))
				}
				return p.survivor(ctx, r, follow)
			}
		}
	}
	return "", nil, false, nil
}

// survivor follows one replaced-by link (A40 merges) when asked.
func (p *Processor) survivor(ctx context.Context, r *store.Resource, follow bool) (string, *store.Resource, bool, error) {
	if !follow {
		return r.ID, r, false, nil
	}
	to := ReplacedBy(r.Body)
	if to == "" || to == r.ID {
		return r.ID, r, false, nil
	}
	s, err := p.st.Read(ctx, "Patient", to)
	if err != nil {
		return r.ID, r, false, nil // a dangling link: stay with the patient found
	}
	return s.ID, s, true, nil
}

// ReplacedBy returns the id of the Patient a merged Patient body points
// at through its replaced-by link (written by an A40 merge), or "" when it
// has none. The FHIR message processor follows the same links, so both
// intake paths agree on which record stands for a merged person.
func ReplacedBy(body []byte) string {
	var to string
	gjson.GetBytes(body, "link").ForEach(func(_, l gjson.Result) bool {
		if l.Get("type").String() == "replaced-by" {
			to = strings.TrimPrefix(l.Get("other.reference").String(), "Patient/")
			return false
		}
		return true
	})
	return to
}

// newPatientID derives the id of a new patient from its first identifier,
// so concurrent first messages for one patient collide on IfNoneExist
// rather than create two; a random id is used if that id is taken.
func (p *Processor) newPatientID(ctx context.Context, id identifier) (string, error) {
	pid := hashID("Patient", id.System, id.Value)
	_, err := p.st.Read(ctx, "Patient", pid)
	if errors.Is(err, store.ErrNotFound) {
		return pid, nil
	}
	if err != nil && !errors.Is(err, store.ErrDeleted) {
		return "", fmt.Errorf("adt: read patient: %w", err)
	}
	return hashID("Patient", id.System, id.Value, time.Now().String()), nil
}

func hasIdentifier(body []byte, id identifier) bool {
	found := false
	gjson.GetBytes(body, "identifier").ForEach(func(_, i gjson.Result) bool {
		found = i.Get("system").String() == id.System && i.Get("value").String() == id.Value
		return !found
	})
	return found
}

// applyPatient applies a PID plan to a Patient body (new or stored):
// identifiers are merged, elements sent replace the stored ones, elements
// sent as "" are removed, and everything else is kept.
func applyPatient(o *object, pp *patientPlan) {
	if ids := mergeIdentifiers(o.get("identifier"), pp.IDs); len(ids) > 0 {
		o.setValue("identifier", ids)
	}
	for _, e := range pp.Elements {
		o.set(e.Name, e.Raw)
	}
	if len(pp.Extensions) > 0 {
		replace := map[string]bool{}
		for _, e := range pp.Extensions {
			replace[e.URL] = true
		}
		var exts []json.RawMessage
		o.get("extension").ForEach(func(_, e gjson.Result) bool {
			if !replace[e.Get("url").String()] {
				exts = append(exts, json.RawMessage(e.Raw))
			}
			return true
		})
		for _, e := range pp.Extensions {
			if e.Raw != nil {
				exts = append(exts, e.Raw)
			}
		}
		if len(exts) > 0 {
			o.setValue("extension", exts)
		} else {
			o.del("extension")
		}
	}
}

// addLink adds Patient.link to Patient/other of typ unless present.
func addLink(o *object, other, typ string) {
	ref := "Patient/" + other
	var links []json.RawMessage
	present := false
	o.get("link").ForEach(func(_, l gjson.Result) bool {
		if l.Get("other.reference").String() == ref && l.Get("type").String() == typ {
			present = true
		}
		links = append(links, json.RawMessage(l.Raw))
		return true
	})
	if !present {
		links = append(links, raw(link{Other: reference{Reference: ref}, Type: typ}))
		o.setValue("link", links)
	}
}
