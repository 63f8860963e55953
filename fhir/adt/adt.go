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
	"log/slog"
	"time"

	"github.com/equitas/equitas/fhir/hl7v2"
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
	EncounterID     string // empty for A40 and for A08 without a visit
	MessageHeaderID string
	Sender          string // MSH-3^MSH-4 as sent
	At              time.Time
}

// Options configure a Processor. All fields are optional.
type Options struct {
	// Notify is called after the commit of every applied (not duplicate,
	// not rejected) message, synchronously, before the ACK is returned.
	Notify func(ctx context.Context, ev Event)
	Logger *slog.Logger
	Now    func() time.Time
}

// Processor maps and applies ADT messages. It is safe for concurrent use.
type Processor struct {
	st   store.Store
	opts Options
	log  *slog.Logger
	now  func() time.Time
	ack  hl7v2.AckBuilder
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
	p.ack = hl7v2.AckBuilder{Now: p.now}
	return p
}

// HandleER7 applies one ER7 message and returns its ACK (AA, AE or AR).
func (p *Processor) HandleER7(ctx context.Context, raw []byte) []byte {
	msg, err := hl7v2.Parse(raw)
	if err != nil {
		return p.ack.ACK(msg, hl7v2.AR, "", asHL7(err))
	}
	return p.ack.ACK(msg, hl7v2.AR, "ADT processing is not implemented yet",
		hl7v2.Errorf(hl7v2.At("MSH", 9), hl7v2.CodeUnsupportedEvent, "not implemented yet"))
}

func asHL7(err error) *hl7v2.Error {
	if e, ok := err.(*hl7v2.Error); ok {
		return e
	}
	return &hl7v2.Error{Code: hl7v2.CodeApplicationError, Err: err}
}
