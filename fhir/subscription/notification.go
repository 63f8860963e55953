package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/equitas/equitas/fhir/interaction"
	"github.com/equitas/equitas/store"
)

type (
	obj     = map[string]any
	entries = []obj
)

// notification builds the R4 notification Bundle of a job: a history
// Bundle whose first entry is the SubscriptionStatus Parameters
// (backport-subscription-status-r4), then, for id-only and full-resource
// content, an entry per resource of the event (Encounter, Patient,
// MessageHeader), with the resource itself only for full-resource.
func (m *Manager) notification(ctx context.Context, sub *Subscription, j *job) ([]byte, error) {
	base := m.opts.BaseURL
	typ := kindNotification
	events := j.EventNumber
	if j.Type == kindHandshake {
		typ = "handshake"
		n, err := m.EventsSinceStart(ctx, sub.ID)
		if err != nil {
			return nil, err
		}
		events = n
	}
	params := []obj{
		{"name": "subscription", "valueReference": obj{"reference": base + "/Subscription/" + sub.ID}},
		{"name": "topic", "valueCanonical": TopicURL},
		{"name": "status", "valueCode": statusFor(sub, j)},
		{"name": "type", "valueCode": typ},
		{"name": "events-since-subscription-start", "valueString": strconv.FormatInt(events, 10)},
	}
	entry := entries{}
	if j.Type == kindNotification {
		ev := []obj{
			{"name": "event-number", "valueString": strconv.FormatInt(j.EventNumber, 10)},
			{"name": "timestamp", "valueInstant": j.At.UTC().Format(time.RFC3339Nano)},
		}
		if sub.Content != ContentEmpty {
			if j.Encounter != "" {
				ev = append(ev, obj{"name": "focus", "valueReference": obj{"reference": base + "/Encounter/" + j.Encounter}})
			}
			ev = append(ev, obj{"name": "additional-context", "valueReference": obj{"reference": base + "/Patient/" + j.Patient}})
			if j.MessageHeader != "" {
				ev = append(ev, obj{"name": "additional-context", "valueReference": obj{"reference": base + "/MessageHeader/" + j.MessageHeader}})
			}
			var err error
			if entry, err = m.resources(ctx, sub.Content == ContentFullResource, j); err != nil {
				return nil, err
			}
		}
		params = append(params, obj{"name": "notification-event", "part": ev})
	}
	status := resource{
		"resourceType": "Parameters", "id": interaction.NewID(),
		"meta":      obj{"profile": []string{ProfileStatus}},
		"parameter": params,
	}
	all := append(entries{{
		"fullUrl":  "urn:uuid:" + status["id"].(string),
		"resource": status,
		"request":  obj{"method": "GET", "url": base + "/Subscription/" + sub.ID + "/$status"},
		"response": obj{"status": "200"},
	}}, entry...)
	return json.Marshal(resource{
		"resourceType": "Bundle", "id": interaction.NewID(),
		"meta":      obj{"profile": []string{ProfileNotification}},
		"type":      "history",
		"timestamp": m.opts.Now().UTC().Format(time.RFC3339Nano),
		"entry":     all,
	})
}

// statusFor is the Subscription status a notification reports.
func statusFor(sub *Subscription, j *job) string {
	if j.Type == kindHandshake {
		return StatusRequested
	}
	return sub.Status
}

// resources lists the event's resources as history entries; with full
// they carry the resource (the Encounter as of its event version).
func (m *Manager) resources(ctx context.Context, full bool, j *job) (entries, error) {
	type ref struct {
		typ, id string
		ver     uint64
	}
	refs := []ref{{"Encounter", j.Encounter, j.EncounterVer}, {"Patient", j.Patient, 0}, {"MessageHeader", j.MessageHeader, 0}}
	out := entries{}
	for _, r := range refs {
		if r.id == "" {
			continue
		}
		var res *store.Resource
		var err error
		if r.ver > 0 {
			res, err = m.st.VRead(ctx, r.typ, r.id, r.ver)
		} else {
			res, err = m.st.Read(ctx, r.typ, r.id)
		}
		if err != nil {
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
				continue
			}
			return nil, fmt.Errorf("%s/%s: %w", r.typ, r.id, err)
		}
		method, status := "PUT", "200"
		if res.Version == 1 {
			method, status = "POST", "201"
		}
		e := obj{
			"fullUrl":  m.opts.BaseURL + "/" + r.typ + "/" + r.id,
			"request":  obj{"method": method, "url": r.typ + "/" + r.id},
			"response": obj{"status": status, "lastModified": res.LastUpdated.UTC().Format(time.RFC3339Nano)},
		}
		if full {
			e["resource"] = json.RawMessage(res.Body)
		}
		out = append(out, e)
	}
	return out, nil
}
