// Package adt applies HL7 v2 ADT messages (A01 admit, A02 transfer, A03
// discharge, A04 register, A08 update, A11 cancel admit, A13 cancel
// discharge, A40 merge) to the FHIR store, mapped after the HL7 v2-to-FHIR
// IG: PID to Patient, PV1 to Encounter, MSH and EVN to MessageHeader and
// Provenance.
//
// HandleER7 answers every message with an ER7 ACK, and answers AA only
// after the store.Commit carrying the message's resources and its dedup
// key (sender + MSH-10) has returned, so an acknowledged message is
// durable and a resent one is recognised and not applied twice. Content
// errors get AE and rejected messages (unsupported type, version or
// processing id) AR; neither writes anything.
package adt

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/equitas/equitas/fhir/adt/keylock"
	"github.com/equitas/equitas/fhir/hl7v2"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
)

// Event kinds, one per supported trigger.
const (
	KindAdmit           = "admit"            // A01
	KindTransfer        = "transfer"         // A02
	KindDischarge       = "discharge"        // A03
	KindRegister        = "register"         // A04
	KindUpdate          = "update"           // A08
	KindCancelAdmit     = "cancel-admit"     // A11
	KindCancelDischarge = "cancel-discharge" // A13
	KindMerge           = "merge"            // A40
)

// Event tells listeners (ADT alert routing) that a message was applied.
type Event struct {
	Kind            string // one of the Kind constants
	Trigger         string // A01, A02, ...
	PatientID       string
	EncounterID     string // empty for A40 and for an A08 without PV1
	MessageHeaderID string
	Sender          string // MSH-3^MSH-4 namespace ids, e.g. "EPIC^GOODHOSP"
	At              time.Time
}

// Options configure a Processor. All fields are optional.
type Options struct {
	// Notify is called after the commit of every applied (not duplicate,
	// not rejected) message, synchronously, before the ACK is returned.
	Notify func(ctx context.Context, ev Event)
	// Queue, when set, is called with the Event of a message about to be
	// committed; the KV writes it returns are committed atomically with
	// the message (its resources and dedup key), so work derived from the
	// event (notification jobs) can never be lost between the commit and
	// Notify. It may be called more than once for one message (the commit
	// is retried on a version conflict) and must have no side effects; an
	// error is answered AR (the sender retries).
	Queue  func(ctx context.Context, ev Event) (map[string][]byte, error)
	Logger *slog.Logger
	Now    func() time.Time

	// Location is the time zone of v2 date/times sent without a UTC
	// offset (default UTC).
	Location *time.Location
	// Authorities maps assigning-authority namespace ids (CX.4.1, MSH-4.1)
	// that carry no OID or URI to Identifier.system URIs; unlisted ones
	// get AuthorityBase + namespace.
	Authorities map[string]string
	// ProcessingIDs are the accepted MSH-11 values (default P and T);
	// others are answered AR.
	ProcessingIDs []string
	// Validator, when set, validates every resource the mapper produces
	// before it is committed (a failure is a mapper bug, answered AR 207).
	// The mapper builds resources only from typed values it has checked
	// (dates parsed, codes from closed tables or the FHIR code grammar,
	// strings cleaned to FHIR's rules), and its tests and FuzzHandleER7
	// validate every output. Validating here is off by default because
	// google/fhir's parse of every resource costs more CPU than mapping
	// and storing the message (compare BenchmarkHandleER7/durable with
	// durable-validate-all).
	Validator *validate.Validator
	// Limits bound the messages parsed (zero: hl7v2's defaults, 1 MiB and
	// 2000 segments).
	Limits hl7v2.Limits
}

// Processor maps and applies ADT messages. It is safe for concurrent use.
type Processor struct {
	st    store.Store
	opts  Options
	log   *slog.Logger
	now   func() time.Time
	ack   hl7v2.AckBuilder
	locks keylock.Table
}

// New returns a Processor writing to st.
func New(st store.Store, opts Options) *Processor {
	p := &Processor{st: st, opts: opts, log: opts.Logger, now: opts.Now}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.opts.Location == nil {
		p.opts.Location = time.UTC
	}
	if len(p.opts.ProcessingIDs) == 0 {
		p.opts.ProcessingIDs = []string{"P", "T"}
	}
	p.ack = hl7v2.AckBuilder{Now: p.now}
	return p
}

// supportedVersion reports whether MSH-12 is one of 2.3 … 2.8.x.
func supportedVersion(v string) bool {
	return hl7v2.VersionAtLeast(v, "2.3") && !hl7v2.VersionAtLeast(v, "2.9")
}

// HandleER7 applies one ER7 message and returns its ACK: AA once the
// message is durably committed (or was already), AE for content errors,
// AR for unsupported messages and internal failures. Nothing is written
// unless the answer is AA.
func (p *Processor) HandleER7(ctx context.Context, raw []byte) []byte {
	msg, err := p.opts.Limits.Parse(raw)
	if err != nil {
		he := asHL7(err)
		p.log.LogAttrs(ctx, slog.LevelWarn, "adt: unreadable message", slog.String("location", he.Location.String()), slog.Int("code", int(he.Code)))
		return p.ack.ACK(msg, hl7v2.AE, "", he)
	}
	msh := msg.Segment("MSH")
	ctl := msh.Field(10).String()
	typ, trigger := msh.Field(9).Component(1).String(), msh.Field(9).Component(2).String()
	if trigger == "" {
		trigger = msg.Segment("EVN").Field(1).String() // before 2.3.1 some senders put it only here
	}
	reject := func(code hl7v2.AckCode, e *hl7v2.Error) []byte {
		p.log.LogAttrs(ctx, slog.LevelWarn, "adt: message not applied", slog.String("ack", string(code)),
			slog.String("control_id", ctl), slog.String("type", typ+"^"+trigger),
			slog.String("location", e.Location.String()), slog.Int("code", int(e.Code)))
		return p.ack.ACK(msg, code, "", e)
	}
	switch version := msh.Field(12).Component(1).String(); {
	case !supportedVersion(version):
		return reject(hl7v2.AR, hl7v2.Errorf(hl7v2.At("MSH", 12), hl7v2.CodeUnsupportedVersion, "version "+version+" is not supported (2.3 to 2.8)"))
	case typ != "ADT":
		return reject(hl7v2.AR, hl7v2.Errorf(hl7v2.At("MSH", 9), hl7v2.CodeUnsupportedType, "only ADT messages are accepted"))
	case triggers[trigger].kind == "":
		return reject(hl7v2.AR, hl7v2.Errorf(hl7v2.At("MSH", 9), hl7v2.CodeUnsupportedEvent, "event "+trigger+" is not supported"))
	case !slices.Contains(p.opts.ProcessingIDs, msh.Field(11).Component(1).String()):
		return reject(hl7v2.AR, hl7v2.Errorf(hl7v2.At("MSH", 11), hl7v2.CodeUnsupportedProcID, "processing id must be one of "+strings.Join(p.opts.ProcessingIDs, ", ")))
	case ctl == "":
		return reject(hl7v2.AE, hl7v2.Errorf(hl7v2.At("MSH", 10), hl7v2.CodeRequiredMissing, "MSH-10 message control id is required"))
	}

	pl, err := p.plan(msg, trigger)
	if err != nil {
		return reject(hl7v2.AE, asHL7(err))
	}
	ack, ev, dup, err := p.apply(ctx, pl)
	var he *hl7v2.Error
	switch {
	case errors.As(err, &he):
		return reject(hl7v2.AE, he)
	case err != nil:
		p.log.LogAttrs(ctx, slog.LevelError, "adt: apply failed", slog.String("control_id", ctl), slog.String("error", err.Error()))
		return p.ack.ACK(msg, hl7v2.AR, "", &hl7v2.Error{Code: hl7v2.CodeApplicationError, Text: "the message could not be stored; retry later"})
	case dup:
		p.log.LogAttrs(ctx, slog.LevelInfo, "adt: duplicate message acknowledged", slog.String("control_id", ctl), slog.String("sender", pl.sender))
		return ack
	}
	p.log.LogAttrs(ctx, slog.LevelInfo, "adt: message applied", slog.String("control_id", ctl), slog.String("sender", pl.sender),
		slog.String("trigger", trigger), slog.String("patient", ev.PatientID), slog.String("encounter", ev.EncounterID))
	if p.opts.Notify != nil {
		p.opts.Notify(ctx, ev)
	}
	return ack
}

func asHL7(err error) *hl7v2.Error {
	var he *hl7v2.Error
	if errors.As(err, &he) {
		return he
	}
	return &hl7v2.Error{Code: hl7v2.CodeApplicationError, Err: err}
}

// lock serialises messages sharing a key (patient identifier, visit,
// control id) for the time between their reads and their commit, and
// returns the unlock. Only messages sharing a key wait for each other.
func (p *Processor) lock(keys []string) func() { return p.locks.Lock(keys) }
