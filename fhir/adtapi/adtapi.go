// Package adtapi serves ADT intake over HTTP on the FHIR server:
// POST [base]/$hl7v2 takes one HL7 v2 message in ER7 (HL7 over HTTP, for
// HIEs that relay over HTTPS instead of MLLP) and answers its ER7
// acknowledgement; POST [base]/$process-message takes a FHIR message
// Bundle (Da Vinci Unsolicited Notifications). The handlers only translate
// HTTP; the work is done by the ADT processor (fhir/adt) and the message
// processor (fhir/message).
//
// $hl7v2 status codes follow HL7 over HTTP: the acknowledgement is the
// application's answer, so every message with an MSH segment is answered
// 200 whatever MSA-1 says (AA applied; AE fix the content, do not resend;
// AR rejected, may retry). A body that is not an HL7 message at all gets
// 400 with the acknowledgement (AE). Transport problems are FHIR
// OperationOutcomes: 415 for another Content-Type, 413 for an oversize
// body, 401/403 for the caller.
//
// $process-message answers 200 with the response message Bundle (also for
// a resend, which is not applied again), 400 with an OperationOutcome for
// an invalid message, 422 for an event it does not process. Only
// synchronous messaging is offered: async=true is refused with 400, as the
// Da Vinci notification IG does not use it.
package adtapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/message"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/rest"
)

// Canonical URLs of the operations, listed in the CapabilityStatement.
const (
	ProcessMessageDefinition = "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"
	// HL7v2Definition names this server's own operation (no published
	// OperationDefinition exists for HL7 v2 over FHIR REST).
	HL7v2Definition = "http://equitas.example/OperationDefinition/hl7v2"
	// NotificationReceiver is the Da Vinci Alerts receiver
	// CapabilityStatement, instantiated once $process-message is mounted.
	NotificationReceiver = "http://hl7.org/fhir/us/davinci-alerts/CapabilityStatement/notification-receiver"
)

// ER7ContentType is the media type of HL7 v2 ER7 bodies (HL7 over HTTP).
const ER7ContentType = "x-application/hl7-v2+er7"

// er7Types are the request media types accepted for $hl7v2.
var er7Types = map[string]bool{
	ER7ContentType: true, "application/hl7-v2": true, "application/hl7-v2+er7": true,
	"x-application/hl7-v2": true, "text/plain": true,
}

// DefaultMaxER7Bytes bounds an $hl7v2 body unless Config says otherwise
// (the MLLP listener's default message limit).
const DefaultMaxER7Bytes = 1 << 20

// ER7Handler answers one ER7 message with its acknowledgement
// (*adt.Processor).
type ER7Handler interface {
	HandleER7(ctx context.Context, raw []byte) []byte
}

// Config assembles the handlers; nil processors leave their operation out.
type Config struct {
	HL7      ER7Handler
	Messages *message.Processor
	// MaxER7Bytes bounds an $hl7v2 body (0: DefaultMaxER7Bytes);
	// MaxMessageBytes bounds a $process-message body (0:
	// rest.DefaultMaxBodyBytes).
	MaxER7Bytes     int64
	MaxMessageBytes int64
}

// Mount registers $hl7v2 and $process-message on srv.
func Mount(srv *rest.Server, cfg Config) {
	if cfg.MaxER7Bytes <= 0 {
		cfg.MaxER7Bytes = DefaultMaxER7Bytes
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = rest.DefaultMaxBodyBytes
	}
	h := &handlers{cfg: cfg, base: srv.Base}
	if cfg.HL7 != nil {
		srv.Operation(rest.Operation{Name: "hl7v2", Level: rest.System, Definition: HL7v2Definition,
			Formats: []string{ER7ContentType, "application/hl7-v2", "application/hl7-v2+er7"}, Handler: http.HandlerFunc(h.hl7v2)})
	}
	if cfg.Messages != nil {
		srv.Operation(rest.Operation{Name: "process-message", Level: rest.System, Definition: ProcessMessageDefinition, Handler: http.HandlerFunc(h.processMessage)})
		srv.Instantiate(NotificationReceiver)
	}
}

type handlers struct {
	cfg  Config
	base func(*http.Request) string
}

// intakeTypes are what ADT intake writes; a caller must be allowed to
// create and update all of them.
var intakeTypes = []string{"Patient", "Encounter", "MessageHeader"}

// authorize admits callers that may write what ADT intake writes; clients
// scoped to an organization's patients are providers, not feeds.
func authorize(r *http.Request) error {
	p := access.FromContext(r.Context())
	if p == nil {
		return outcome.Errorf(http.StatusUnauthorized, "login", "authentication required")
	}
	for _, t := range intakeTypes {
		if !p.Allows(t, access.Create) || !p.Allows(t, access.Update) {
			return outcome.Errorf(http.StatusForbidden, "forbidden", "ADT intake needs a scope that allows creating and updating %s", t)
		}
	}
	if p.Patients != nil {
		return outcome.Errorf(http.StatusForbidden, "forbidden", "clients bound to an organization cannot submit ADT messages")
	}
	return nil
}

func (h *handlers) hl7v2(w http.ResponseWriter, r *http.Request) {
	err := authorize(r)
	var body []byte
	if err == nil {
		body, err = readBody(w, r, h.cfg.MaxER7Bytes, er7Types, ER7ContentType)
	}
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	ack := h.cfg.HL7.HandleER7(r.Context(), body)
	status := http.StatusOK
	if !bytes.HasPrefix(bytes.TrimLeft(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), " \t\r\n"), []byte("MSH")) {
		status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", ER7ContentType+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(ack)
}

var fhirTypes = map[string]bool{"application/fhir+json": true, "application/json": true, "application/json+fhir": true}

func (h *handlers) processMessage(w http.ResponseWriter, r *http.Request) {
	err := authorize(r)
	var body []byte
	if err == nil {
		body, err = readBody(w, r, h.cfg.MaxMessageBytes, fhirTypes, "application/fhir+json")
	}
	if err == nil && strings.EqualFold(r.URL.Query().Get("async"), "true") {
		err = outcome.Errorf(http.StatusBadRequest, "not-supported",
			"asynchronous messaging is not supported: omit async (or send async=false) and read the response message from this response")
	}
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	res, err := h.cfg.Messages.Process(r.Context(), body, h.base(r))
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Response)
}

// readBody checks the method, Content-Type (415) and size (413) and reads
// a non-empty body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, types map[string]bool, want string) ([]byte, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, outcome.Errorf(http.StatusMethodNotAllowed, "not-supported", "use POST")
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !types[strings.ToLower(mt)] {
		return nil, outcome.Errorf(http.StatusUnsupportedMediaType, "not-supported", "Content-Type %q is not supported here; send %s", ct, want)
	}
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(limit)
	case err != nil:
		return nil, outcome.Errorf(http.StatusBadRequest, "structure", "could not read the request body")
	case len(bytes.TrimSpace(b)) == 0:
		return nil, outcome.Errorf(http.StatusBadRequest, "required", "the request body is empty")
	}
	return b, nil
}

func tooLarge(limit int64) error {
	return outcome.Errorf(http.StatusRequestEntityTooLarge, "too-costly", "request body exceeds %d bytes", limit)
}
