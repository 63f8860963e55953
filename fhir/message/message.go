// Package message processes FHIR messages posted to $process-message: Da
// Vinci Unsolicited Notifications (Alerts) 1.1.0 admit, discharge and
// transfer notifications, and ADT messages converted per the HL7
// v2-to-FHIR IG (eventCoding from HL7 table 0003).
//
// A message is validated (FHIR R4 for the Bundle and every entry, then the
// notification profile rules processing relies on) and applied in one
// store.Commit together with its dedup record, so it is applied whole or
// not at all, and a resent message (same sender and Bundle.identifier, or
// MessageHeader.id when the Bundle has no identifier) is answered again
// without being applied twice. Resources are matched to what the store
// already holds by business identifier (a Patient known from an earlier
// notification or HL7 v2 message is updated, never duplicated), else by
// the id the same sender gave it before; others get new server ids, and
// references between entries are rewritten to them. After the commit the
// ADT event goes to Options.Notify, like an HL7 v2 message's does.
package message

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/adt/keylock"
	"github.com/equitas/equitas/fhir/interaction"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
)

// KV key prefixes (in the store's system key-value space).
const (
	// seenPrefix + hash(sender, message id) → the record of an applied message.
	seenPrefix = "message/seen/"
	// refPrefix + hash(sender, type, sender's id) → server id, for
	// resources without an identifier to match on.
	refPrefix = "message/ref/"
)

// Options configure a Processor; every field is optional.
type Options struct {
	// Notify is called after the commit of every applied (not duplicate)
	// message, before Process returns.
	Notify func(ctx context.Context, ev adt.Event)
	// Queue, when set, is called with the Event of a message about to be
	// committed; the KV writes it returns are committed atomically with
	// the message, so work derived from the event (notification jobs) is
	// not lost if the process dies before Notify. It must have no side
	// effects; an error refuses the message with nothing written (500, so
	// the sender retries). Keys under "message/" are refused.
	Queue  func(ctx context.Context, ev adt.Event) (map[string][]byte, error)
	Logger *slog.Logger
	Now    func() time.Time
}

// Processor applies notification messages. It is safe for concurrent use.
type Processor struct {
	st    store.Store
	v     *validate.Validator
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	locks keylock.Table // message and identifier keys
}

// New returns a Processor writing to st and validating with v.
func New(st store.Store, v *validate.Validator, opts Options) *Processor {
	p := &Processor{st: st, v: v, opts: opts, log: opts.Logger, now: opts.Now}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Result is the outcome of one processed message.
type Result struct {
	// Duplicate reports a message applied before; nothing was written.
	Duplicate bool
	// Event is the ADT event of the message (the original one for a
	// duplicate).
	Event adt.Event
	// Response is the response message Bundle (FHIR messaging: a
	// MessageHeader whose response.code is ok, and an OperationOutcome).
	Response []byte
}

// record is what the dedup key stores: enough to answer a resend the same.
type record struct {
	Event adt.Event `json:"event"`
}

// Process validates and applies one message Bundle. base is this server's
// FHIR base URL (the response's MessageHeader.source.endpoint). Errors are
// *outcome.HTTPError for bad messages (400, or 422 for unsupported events)
// and wrapped store errors otherwise.
func (p *Processor) Process(ctx context.Context, body []byte, base string) (*Result, error) {
	m, err := parse(p.v, body)
	if err != nil {
		return nil, err
	}
	msgID := m.identifier.token()
	if m.identifier.value == "" {
		msgID = "MessageHeader/" + m.headerID
	}
	seenKey := seenPrefix + digest(m.source, msgID)

	keys := []string{seenKey}
	for _, e := range m.entries {
		for _, idf := range e.identifiers {
			keys = append(keys, e.typ+"|"+idf.token())
		}
	}
	unlock := p.lock(keys)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()

	kv := p.st.KV()
	if prev, err := kv.Get(ctx, seenKey); err == nil {
		var r record
		if err := json.Unmarshal(prev, &r); err != nil {
			return nil, fmt.Errorf("message: dedup record %s: %w", seenKey, err)
		}
		p.log.Info("duplicate message not applied again", "message_id", msgID, "sender", m.source, "message_header", r.Event.MessageHeaderID)
		resp, err := p.response(m, base, true)
		if err != nil {
			return nil, err
		}
		return &Result{Duplicate: true, Event: r.Event, Response: resp}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("message: dedup lookup: %w", err)
	}

	tx, ids, err := p.plan(ctx, m)
	if err != nil {
		return nil, err
	}
	now := p.now()
	ev := adt.Event{
		Kind:            m.kind,
		Trigger:         m.trigger,
		PatientID:       ids[m.patient],
		EncounterID:     ids[m.encounter],
		MessageHeaderID: ids[nil],
		Sender:          m.source,
		At:              eventTime(m, now),
	}
	rec, err := json.Marshal(record{Event: ev})
	if err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	tx.KV[seenKey] = rec
	if p.opts.Queue != nil {
		extra, err := p.opts.Queue(ctx, ev)
		if err != nil {
			return nil, fmt.Errorf("message: queue: %w", err)
		}
		for k, v := range extra {
			if strings.HasPrefix(k, "message/") {
				return nil, fmt.Errorf("message: queue wrote %q: the message/ key space is the processor's", k)
			}
			tx.KV[k] = v
		}
	}
	// Built before the commit: once the message is applied nothing may fail.
	resp, err := p.response(m, base, false)
	if err != nil {
		return nil, err
	}
	if _, err := p.st.Commit(ctx, tx); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "the message could not be stored: %v", err)
		}
		return nil, fmt.Errorf("message: commit: %w", err)
	}
	p.log.Info("message applied", "message_id", msgID, "sender", m.source, "event", m.kind,
		"patient", ev.PatientID, "encounter", ev.EncounterID, "message_header", ev.MessageHeaderID)
	// Notifying may take a while (alert routing writes too); other
	// messages about these patients need not wait for it.
	unlock()
	locked = false
	if p.opts.Notify != nil {
		p.opts.Notify(ctx, ev)
	}
	return &Result{Event: ev, Response: resp}, nil
}

// eventTime is when the notified event happened: the Encounter's start
// for an admit, its end for a discharge, else the message's timestamp.
func eventTime(m *parsed, now time.Time) time.Time {
	var cand []string
	switch m.kind {
	case adt.KindAdmit, adt.KindRegister:
		cand = append(cand, gjson.GetBytes(m.encounter.body, "period.start").String())
	case adt.KindDischarge:
		cand = append(cand, gjson.GetBytes(m.encounter.body, "period.end").String())
	}
	cand = append(cand, m.timestamp)
	for _, c := range cand {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, c); err == nil {
				return t
			}
		}
	}
	return now
}

// plan decides the server id of every entry and builds the transaction:
// the rewritten resources, the MessageHeader, and the sender id mappings.
// ids[nil] is the MessageHeader's new id.
func (p *Processor) plan(ctx context.Context, m *parsed) (store.Tx, map[*entry]string, error) {
	tx := store.Tx{KV: map[string][]byte{}}
	ids := map[*entry]string{}
	existing := map[*entry][]byte{}
	kv := p.st.KV()
	for _, e := range m.entries {
		id, body, err := p.match(ctx, e)
		if err != nil {
			return tx, nil, err
		}
		var refKey string
		if e.id != "" {
			refKey = refPrefix + digest(m.source, e.typ+"/"+e.id)
		}
		if id == "" && refKey != "" {
			switch v, err := kv.Get(ctx, refKey); {
			case err == nil:
				id = string(v)
			case !errors.Is(err, store.ErrNotFound):
				return tx, nil, fmt.Errorf("message: id map: %w", err)
			}
		}
		if id == "" {
			id = interaction.NewID()
		}
		if refKey != "" {
			tx.KV[refKey] = []byte(id)
		}
		ids[e], existing[e] = id, body
	}
	ids[nil] = interaction.NewID()

	to := func(ref string) (string, bool) {
		if e := m.resolve(ref); e != nil {
			return e.typ + "/" + ids[e], true
		}
		return "", false
	}
	rewrite := func(body []byte) ([]byte, error) { return rewriteRefs(body, to) }
	for _, e := range m.entries {
		body, err := rewrite(e.body)
		if err != nil {
			return tx, nil, err
		}
		if e.typ == "Patient" && existing[e] != nil {
			if body, err = mergeIdentifiers(body, existing[e]); err != nil {
				return tx, nil, err
			}
		}
		if body, err = sjson.SetBytes(body, "id", ids[e]); err != nil {
			return tx, nil, fmt.Errorf("message: %w", err)
		}
		tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: e.typ, ID: ids[e], Body: body, SkipUnchanged: true})
	}
	h, err := rewrite(m.header)
	if err == nil {
		h, err = sjson.SetBytes(h, "id", ids[nil])
	}
	if err != nil {
		return tx, nil, fmt.Errorf("message: %w", err)
	}
	tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: "MessageHeader", ID: ids[nil], Body: h})
	return tx, ids, nil
}

// match finds the stored resource an entry describes by its business
// identifiers, returning its id and current body ("" when none matches).
func (p *Processor) match(ctx context.Context, e *entry) (string, []byte, error) {
	for _, idf := range e.identifiers {
		res, err := p.st.Search(ctx, store.Query{
			Type:   e.typ,
			Params: []store.Param{{Name: "identifier", Values: []string{idf.token()}}},
			Count:  2,
		})
		var pe *store.ParamError
		if errors.As(err, &pe) {
			return "", nil, nil // the type has no identifier search parameter
		}
		if err != nil {
			return "", nil, fmt.Errorf("message: match %s by identifier: %w", e.typ, err)
		}
		if len(res.Resources) > 0 {
			if len(res.Resources) > 1 {
				p.log.Warn("identifier matches several resources; updating the first", "type", e.typ, "system", idf.system)
			}
			r := res.Resources[0]
			if e.typ == "Patient" {
				r = p.survivor(ctx, r)
			}
			return r.ID, r.Body, nil
		}
	}
	return "", nil, nil
}

// survivor follows a merged patient's replaced-by link (set by an HL7 v2
// A40 merge) to the record that now stands for the person, so a
// notification about the old record updates the surviving one.
func (p *Processor) survivor(ctx context.Context, r *store.Resource) *store.Resource {
	for range 4 { // a short chain at most; a loop is cut off
		to := adt.ReplacedBy(r.Body)
		if to == "" || to == r.ID {
			return r
		}
		next, err := p.st.Read(ctx, "Patient", to)
		if err != nil {
			return r // a dangling link: stay with the patient found
		}
		r = next
	}
	return r
}

// mergeIdentifiers keeps the identifiers the stored Patient has that the
// incoming one lacks (another sender's MRN, an SSN from an HL7 v2 feed), so
// an update from one source never erases another's match keys, and keeps
// its merge links.
func mergeIdentifiers(incoming, stored []byte) ([]byte, error) {
	have := map[string]bool{}
	for _, i := range gjson.GetBytes(incoming, "identifier").Array() {
		have[i.Get("system").String()+"|"+i.Get("value").String()] = true
	}
	out := incoming
	var err error
	for _, i := range gjson.GetBytes(stored, "identifier").Array() {
		if have[i.Get("system").String()+"|"+i.Get("value").String()] {
			continue
		}
		if out, err = sjson.SetRawBytes(out, "identifier.-1", []byte(i.Raw)); err != nil {
			return nil, fmt.Errorf("message: merge identifiers: %w", err)
		}
	}
	// Merge links (replaces / replaced-by) are the store's record of an
	// A40; a notification that says nothing about links keeps them.
	if l := gjson.GetBytes(stored, "link"); l.Exists() && !gjson.GetBytes(out, "link").Exists() {
		if out, err = sjson.SetRawBytes(out, "link", []byte(l.Raw)); err != nil {
			return nil, fmt.Errorf("message: keep links: %w", err)
		}
	}
	return out, nil
}

// lock serialises messages sharing a key (the message, or an entry's
// identifier): two messages about the same patient (or the same message
// twice) are matched and committed one after the other, so neither creates
// a duplicate the other missed.
func (p *Processor) lock(keys []string) (unlock func()) { return p.locks.Lock(keys) }

// digest keys KV records by sender and identifier without putting
// sender-controlled text (of any length) into keys.
func digest(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		_, _ = h.Write([]byte(s))
		_, _ = h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
