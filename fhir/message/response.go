package message

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/equitas/equitas/fhir/interaction"
)

// The response message is built from these types rather than a generic
// map so its elements come out in FHIR's conventional order.
type (
	responseBundle struct {
		ResourceType string          `json:"resourceType"`
		ID           string          `json:"id"`
		Type         string          `json:"type"`
		Timestamp    string          `json:"timestamp"`
		Entry        []responseEntry `json:"entry"`
	}
	responseEntry struct {
		FullURL  string `json:"fullUrl"`
		Resource any    `json:"resource"`
	}
	responseHeader struct {
		ResourceType string          `json:"resourceType"`
		ID           string          `json:"id"`
		EventCoding  json.RawMessage `json:"eventCoding"`
		Destination  []endpointRef   `json:"destination,omitempty"`
		Source       endpointRef     `json:"source"`
		Response     responseElem    `json:"response"`
	}
	endpointRef struct {
		Endpoint string `json:"endpoint"`
	}
	responseElem struct {
		Identifier string `json:"identifier"`
		Code       string `json:"code"`
		Details    ref    `json:"details"`
	}
	ref struct {
		Reference string `json:"reference"`
	}
	operationOutcome struct {
		ResourceType string  `json:"resourceType"`
		ID           string  `json:"id"`
		Issue        []issue `json:"issue"`
	}
	issue struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics"`
	}
)

// response builds the synchronous response message: a MessageHeader whose
// response names the request's MessageHeader.id with code ok, and an
// informational OperationOutcome (the wording of the Da Vinci example for
// a fully processed message; a resend says it was not applied again).
func (p *Processor) response(m *parsed, base string, duplicate bool) ([]byte, error) {
	hid, oid := interaction.NewID(), interaction.NewID()
	text := "The message was received and the message has been fully processed"
	if duplicate {
		text = "The message was received before and has been fully processed; it was not applied again"
	}
	h := responseHeader{
		ResourceType: "MessageHeader",
		ID:           hid,
		EventCoding:  json.RawMessage(m.eventRaw),
		Source:       endpointRef{Endpoint: strings.TrimRight(base, "/")},
		Response:     responseElem{Identifier: m.headerID, Code: "ok", Details: ref{Reference: "urn:uuid:" + oid}},
	}
	if m.source != "" {
		h.Destination = []endpointRef{{Endpoint: m.source}}
	}
	b := responseBundle{
		ResourceType: "Bundle",
		ID:           interaction.NewID(),
		Type:         "message",
		Timestamp:    p.now().UTC().Format(time.RFC3339Nano),
		Entry: []responseEntry{
			{FullURL: "urn:uuid:" + hid, Resource: h},
			{FullURL: "urn:uuid:" + oid, Resource: operationOutcome{
				ResourceType: "OperationOutcome", ID: oid,
				Issue: []issue{{Severity: "information", Code: "informational", Diagnostics: text}},
			}},
		},
	}
	out, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("message: encode the response: %w", err)
	}
	return out, nil
}
