package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/interaction"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store"
)

// maxBody bounds a Subscription request body.
const maxBody = 1 << 20

// Mount takes over Subscription create and update on srv (so every stored
// Subscription is validated and bound to its owner) and registers $status
// and $dead-letters. Reads, searches and deletes stay with the REST layer.
func (m *Manager) Mount(srv *rest.Server) {
	h := &handlers{m: m, svc: srv.Service(), base: srv.Base}
	srv.FHIR().Post("/Subscription", h.create)
	srv.FHIR().Put("/Subscription/{id}", h.update)
	for _, level := range []rest.Level{rest.Type, rest.Instance} {
		srv.Operation(rest.Operation{Name: "status", Level: level, Types: []string{"Subscription"},
			Definition: StatusDefinition, Handler: http.HandlerFunc(h.status)})
		srv.Operation(rest.Operation{Name: "dead-letters", Level: level, Types: []string{"Subscription"},
			Definition: DeadLettersDefinition, Handler: http.HandlerFunc(h.deadLetters)})
	}
}

type handlers struct {
	m    *Manager
	svc  *interaction.Service
	base func(*http.Request) string
}

// caller checks authentication and the scope for an interaction class.
func caller(r *http.Request, class rune) (*access.Principal, error) {
	p := access.FromContext(r.Context())
	if p == nil {
		return nil, outcome.Errorf(http.StatusUnauthorized, "login", "authentication required")
	}
	if !p.Allows("Subscription", class) {
		return nil, outcome.Errorf(http.StatusForbidden, "forbidden", "scope does not allow this interaction on Subscription")
	}
	return p, nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/fhir+json" && mt != "application/json") {
		return nil, outcome.Errorf(http.StatusUnsupportedMediaType, "not-supported", "send the Subscription as application/fhir+json")
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, outcome.Errorf(http.StatusRequestEntityTooLarge, "too-costly", "a Subscription is limited to %d bytes", maxBody)
	case err != nil:
		return nil, outcome.Errorf(http.StatusBadRequest, "structure", "could not read the request body")
	}
	return b, nil
}

func (h *handlers) create(w http.ResponseWriter, r *http.Request) {
	p, err := caller(r, access.Create)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	body, sub, err := h.m.Bind(r.Context(), body, p.Organization, nil)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	var res interaction.Result
	err = h.m.changing(func() (err error) {
		res, err = h.svc.Create(r.Context(), "Subscription", body, nil)
		return err
	})
	h.written(w, r, sub, res, err)
}

func (h *handlers) update(w http.ResponseWriter, r *http.Request) {
	p, err := caller(r, access.Update)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	id := chi.URLParam(r, "id")
	body, err := readBody(w, r)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	var prev *Subscription
	switch cur, err := h.m.st.Read(r.Context(), "Subscription", id); {
	case err == nil:
		if prev, err = Parse(cur.Body); err != nil {
			prev = &Subscription{} // an unbound leftover: only a system client may replace it
		}
	case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrDeleted):
		outcome.WriteError(w, interaction.StoreError(err))
		return
	}
	body, sub, err := h.m.Bind(r.Context(), body, p.Organization, prev)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	var ifMatch uint64
	if v := r.Header.Get("If-Match"); v != "" {
		n, ok := interaction.ParseETag(v)
		if !ok {
			outcome.Error(w, http.StatusBadRequest, "invalid", "If-Match must be a version ETag such as W/\"3\"")
			return
		}
		ifMatch = n
	}
	var res interaction.Result
	err = h.m.changing(func() (err error) {
		res, err = h.svc.Update(r.Context(), "Subscription", id, body, ifMatch)
		return err
	})
	h.written(w, r, sub, res, err)
}

// written answers a create or update and queues the handshake of a
// requested Subscription.
func (h *handlers) written(w http.ResponseWriter, r *http.Request, sub *Subscription, res interaction.Result, err error) {
	if err != nil {
		outcome.WriteError(w, interaction.StoreError(err))
		return
	}
	if sub.Status == StatusRequested {
		if err := h.m.queueHandshake(r.Context(), res.Resource.ID); err != nil {
			h.m.log.LogAttrs(r.Context(), slog.LevelError, "subscription: queue handshake", slog.String("error", err.Error()))
		}
	}
	w.Header().Set("Location", h.base(r)+"/Subscription/"+res.Resource.ID+"/_history/"+strconv.FormatUint(res.Resource.Version, 10))
	w.Header().Set("ETag", `W/"`+strconv.FormatUint(res.Resource.Version, 10)+`"`)
	w.Header().Set("Last-Modified", res.Resource.LastUpdated.UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Resource.Body)
}

// Bind validates a Subscription written by a caller bound to callerOrg
// ("" for a system client) over prev (nil on create), decides its owner
// and status, and returns the body to store. A provider client's
// Subscriptions are bound to its own organization; a system client names
// the organization with an "organization" filter. Group filters must name
// ATR lists of the owner. The server sets the status: off when asked,
// active when an active Subscription keeps its channel, requested (a
// handshake follows) otherwise.
func (m *Manager) Bind(ctx context.Context, body []byte, callerOrg string, prev *Subscription) ([]byte, *Subscription, error) {
	s, err := Parse(body)
	if err != nil {
		return nil, nil, err
	}
	owner := callerOrg
	switch {
	case callerOrg != "" && s.Filter.Organization != "" && !SameOrganization(callerOrg, s.Filter.Organization):
		return nil, nil, outcome.Errorf(http.StatusForbidden, "forbidden", "a provider client may subscribe only for its own organization")
	case callerOrg == "" && s.Filter.Organization == "":
		return nil, nil, invalid("Subscription.criteria.extension", "name the provider organization the notifications are for with the filter Encounter?organization=[id, NPI or TIN]")
	case callerOrg == "":
		owner = s.Filter.Organization
	}
	if prev != nil && callerOrg != "" && !SameOrganization(prev.Owner, callerOrg) {
		return nil, nil, outcome.Errorf(http.StatusForbidden, "forbidden", "this Subscription belongs to another organization")
	}
	for g := range s.Filter.Groups {
		gi, err := attribution.Group(ctx, m.kv, g)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, invalid("Subscription.criteria.extension", "Group/%s is not an attribution list", g)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("subscription: group %s: %w", g, err)
		}
		if !listOwnedBy(gi, owner) {
			return nil, nil, outcome.Errorf(http.StatusForbidden, "forbidden", "Group/%s is not a list of the subscribing organization", g)
		}
	}
	if m.opts.AllowEndpoint != nil {
		u, _ := url.Parse(s.Endpoint) // Parse checked it
		if err := m.opts.AllowEndpoint(u); err != nil {
			return nil, nil, invalid("Subscription.channel.endpoint", "endpoint not allowed: %v", err)
		}
	}
	s.Owner = owner
	switch {
	case s.Status == StatusOff:
	case prev != nil && prev.Status == StatusActive && s.Status == StatusActive &&
		prev.Endpoint == s.Endpoint && slices.Equal(prev.Headers, s.Headers):
	default:
		s.Status = StatusRequested
	}
	out, err := withOwner(body, owner)
	if err == nil {
		out, err = sjson.SetBytes(out, "status", s.Status)
	}
	if err == nil {
		out, err = sjson.DeleteBytes(out, "error")
	}
	if err != nil {
		return nil, nil, outcome.Errorf(http.StatusBadRequest, "structure", "could not bind the Subscription: %v", err)
	}
	return out, s, nil
}

// withOwner replaces any owner extension by one naming owner.
func withOwner(body []byte, owner string) ([]byte, error) {
	var exts []json.RawMessage
	for _, x := range gjson.GetBytes(body, "extension").Array() {
		if x.Get("url").String() != ExtOwner {
			exts = append(exts, json.RawMessage(x.Raw))
		}
	}
	own, err := json.Marshal(map[string]string{"url": ExtOwner, "valueString": owner})
	if err != nil {
		return nil, err
	}
	exts = append(exts, own)
	return sjson.SetBytes(body, "extension", exts)
}

// selected returns the Subscriptions a $status or $dead-letters call is
// about, among those the caller may see (its organization's; all for a
// system client): the instance, or at type level the "id" parameters
// (repeated or comma-separated), or, without ids, all of them. An instance
// the caller may not see is a 404; at type level it is left out.
func (h *handlers) selected(r *http.Request) ([]*Subscription, error) {
	p, err := caller(r, access.Read)
	if err != nil {
		return nil, err
	}
	if id := chi.URLParam(r, "id"); id != "" && !strings.HasPrefix(id, "$") { // "$status" is the type level
		s, ok, err := h.m.Lookup(r.Context(), p, id)
		if err != nil {
			return nil, interaction.StoreError(err)
		}
		if !ok {
			return nil, outcome.Errorf(http.StatusNotFound, "not-found", "Subscription/%s not found", id)
		}
		return []*Subscription{s}, nil
	}
	q := r.URL.Query()
	for name := range q {
		if name != "id" && name != "_format" {
			return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "%s is not a parameter here (id)", name)
		}
	}
	var ids []string
	for _, v := range q["id"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimPrefix(strings.TrimSpace(id), "Subscription/"); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return h.m.List(r.Context(), p, ids)
}

// status serves $status (backport IG): a searchset Bundle with one status
// Parameters (backport-subscription-status-r4, type query-status) per
// selected Subscription.
func (h *handlers) status(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "$status is GET")
		return
	}
	subs, err := h.selected(r)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	base := h.base(r)
	entries := []obj{}
	for _, s := range subs {
		n, err := h.m.EventsSinceStart(r.Context(), s.ID)
		if err != nil {
			outcome.WriteError(w, err)
			return
		}
		params := []obj{
			{"name": "subscription", "valueReference": obj{"reference": base + "/Subscription/" + s.ID}},
			{"name": "topic", "valueCanonical": TopicURL},
			{"name": "status", "valueCode": s.Status},
			{"name": "type", "valueCode": "query-status"},
			{"name": "events-since-subscription-start", "valueString": strconv.FormatInt(n, 10)},
		}
		if s.errText != "" {
			params = append(params, obj{"name": "error", "valueCodeableConcept": obj{
				"coding": []obj{{"system": "http://terminology.hl7.org/CodeSystem/subscription-error", "code": "no-response"}},
				"text":   s.errText}})
		}
		id := interaction.NewID()
		entries = append(entries, obj{
			"fullUrl":  "urn:uuid:" + id,
			"resource": resource{"resourceType": "Parameters", "id": id, "meta": obj{"profile": []string{ProfileStatus}}, "parameter": params},
			"search":   obj{"mode": "match"},
		})
	}
	writeJSON(w, resource{
		"resourceType": "Bundle", "id": interaction.NewID(), "type": "searchset", "total": len(entries),
		"timestamp": h.m.opts.Now().UTC().Format(time.RFC3339Nano),
		"entry":     entries,
	})
}

// deadLetters serves $dead-letters: one "dead-letter" parameter per
// notification of the selected Subscriptions whose delivery was given up.
func (h *handlers) deadLetters(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "$dead-letters is GET")
		return
	}
	subs, err := h.selected(r)
	if err != nil {
		outcome.WriteError(w, err)
		return
	}
	base := h.base(r)
	params := []obj{}
	for _, s := range subs {
		dl, err := h.m.DeadLetters(r.Context(), s.ID)
		if err != nil {
			outcome.WriteError(w, err)
			return
		}
		for _, d := range dl {
			part := []obj{
				{"name": "subscription", "valueReference": obj{"reference": base + "/Subscription/" + s.ID}},
				{"name": "type", "valueCode": d.Type},
				{"name": "timestamp", "valueInstant": d.At.UTC().Format(time.RFC3339Nano)},
				{"name": "attempts", "valueInteger": d.Attempts},
				{"name": "error", "valueString": d.LastError},
				{"name": "dead-at", "valueInstant": d.DeadAt.UTC().Format(time.RFC3339Nano)},
			}
			if d.EventNumber > 0 {
				part = append(part, obj{"name": "event-number", "valueString": strconv.FormatInt(d.EventNumber, 10)})
			}
			if d.Kind != "" {
				part = append(part, obj{"name": "event", "valueCode": d.Kind})
			}
			if d.Encounter != "" {
				part = append(part, obj{"name": "focus", "valueReference": obj{"reference": base + "/Encounter/" + d.Encounter}})
			}
			if d.LastHTTPStatus != 0 {
				part = append(part, obj{"name": "http-status", "valueInteger": d.LastHTTPStatus})
			}
			params = append(params, obj{"name": "dead-letter", "part": part})
		}
	}
	writeJSON(w, resource{"resourceType": "Parameters", "parameter": params})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		outcome.Error(w, http.StatusInternalServerError, "exception", "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	_, _ = w.Write(b)
}
