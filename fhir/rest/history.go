package rest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/bundle"
	"github.com/equitas/equitas/fhir/interaction"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

// maxHistoryScan bounds how many versions one history page may read: the
// store pages history only from the newest version, so deep pages cost
// their offset (with bodies) and are refused past this depth.
const maxHistoryScan = 20_000

func (s *Server) systemHistory(w http.ResponseWriter, r *http.Request) {
	label(r, "history-system", "")
	s.history(w, r, "", "")
}

func (s *Server) typeHistory(w http.ResponseWriter, r *http.Request) {
	typ := chi.URLParam(r, "type")
	label(r, "history-type", typ)
	s.history(w, r, typ, "")
}

func (s *Server) instanceHistory(w http.ResponseWriter, r *http.Request) {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	label(r, "history-instance", typ)
	s.history(w, r, typ, id)
}

// history serves a history Bundle, newest first. Paging: the first page
// fixes an upper time bound (_until) that later pages keep, so versions
// written meanwhile neither shift pages nor repeat; _offset counts the
// versions already served below that bound.
func (s *Server) history(w http.ResponseWriter, r *http.Request, typ, id string) {
	p := access.FromContext(r.Context())
	if typ != "" {
		if err := allow(r, typ, access.Read); err != nil {
			s.fail(w, r, err)
			return
		}
	} else if p == nil || !p.Allows("*", access.Read) || p.Patients != nil {
		s.fail(w, r, outcome.Errorf(http.StatusForbidden, "forbidden", "system history needs system/*.read scope"))
		return
	}
	q := r.URL.Query()
	var issues []outcome.Issue
	bad := func(param, msg string) {
		issues = append(issues, outcome.Issue{Severity: "error", Code: "invalid", Diagnostics: msg, Expression: []string{param}})
	}
	count := interaction.DefaultCount
	var since, until time.Time
	offset := 0
	for k, vs := range q {
		v := vs[0]
		var err error
		switch k {
		case "_count":
			count, err = strconv.Atoi(v)
			if err != nil || count < 0 {
				bad(k, "_count must be a non-negative integer")
			}
			count = min(count, interaction.MaxCount)
		case "_since":
			if since, err = parseInstant(v); err != nil {
				bad(k, "_since must be an instant such as 2024-01-01T00:00:00Z")
			}
		case "_until":
			if until, err = parseInstant(v); err != nil {
				bad(k, "_until must be an instant")
			}
		case "_offset":
			if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
				bad(k, "_offset must be a non-negative integer")
			}
		case "_format", "_pretty":
		default:
			if !parsePrefer(r).lenient {
				issues = append(issues, outcome.Issue{Severity: "error", Code: "not-supported", Diagnostics: "history parameter " + k + " is not supported", Expression: []string{k}})
			}
		}
	}
	if offset+count >= maxHistoryScan {
		bad("_offset", fmt.Sprintf("history pages deeper than %d versions are not served; narrow the range with _since", maxHistoryScan))
	}
	if len(issues) > 0 {
		s.fail(w, r, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: issues})
		return
	}
	if id != "" {
		if _, err := s.cfg.Store.Read(r.Context(), typ, id); err != nil && !isDeleted(err) {
			s.fail(w, r, err)
			return
		}
	}
	now := time.Now()
	if until.IsZero() {
		until = now
	}
	// _since is inclusive ("at or after"); the store's bound is exclusive.
	storeSince := since
	if !storeSince.IsZero() {
		storeSince = storeSince.Add(-time.Nanosecond)
	}
	want := offset + count + 1
	var page []*store.Resource
	for fetch := want; ; fetch *= 2 {
		vs, err := s.cfg.Store.History(r.Context(), store.HistoryQuery{Type: typ, ID: id, Since: storeSince, Count: min(fetch, maxHistoryScan)})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		page = page[:0]
		for _, v := range vs {
			if !v.LastUpdated.After(until) && (p.Patients == nil || v.Deleted || patientVisible(p, v)) {
				page = append(page, v)
			}
		}
		if len(page) >= want || len(vs) < fetch || fetch >= maxHistoryScan {
			break
		}
	}
	if offset > len(page) {
		offset = len(page)
	}
	page = page[offset:]
	more := count > 0 && len(page) > count
	if len(page) > count {
		page = page[:count]
	}

	base := s.Base(r)
	path := base + "/_history"
	switch {
	case id != "":
		path = base + "/" + typ + "/" + id + "/_history"
	case typ != "":
		path = base + "/" + typ + "/_history"
	}
	selfQ := url.Values{}
	for k, vs := range q {
		selfQ[k] = vs
	}
	h := bundle.Header{ID: interaction.NewID(), Type: "history", Time: now, Links: []bundle.Link{{Relation: "self", URL: withQuery(path, selfQ)}}}
	if offset == 0 && !more && count > 0 {
		n := len(page)
		h.Total = &n
	}
	if more {
		next := url.Values{}
		for k, vs := range q {
			next[k] = vs
		}
		next.Set("_count", strconv.Itoa(count))
		next.Set("_until", until.UTC().Format(time.RFC3339Nano))
		next.Set("_offset", strconv.Itoa(offset+count))
		h.Links = append(h.Links, bundle.Link{Relation: "next", URL: withQuery(path, next)})
	}
	w.Header().Set("Content-Type", fhirJSON)
	bw := bundle.NewWriter(w, h)
	for _, v := range page {
		bw.Entry(historyEntry(base, v))
	}
	_ = bw.Close()
}

func historyEntry(base string, v *store.Resource) bundle.Entry {
	e := bundle.Entry{FullURL: base + "/" + v.Type + "/" + v.ID}
	resp := &bundle.Response{Etag: etag(v.Version), LastModified: v.LastUpdated.UTC().Format(time.RFC3339Nano)}
	switch {
	case v.Deleted:
		e.Request = &bundle.Request{Method: http.MethodDelete, URL: v.Type + "/" + v.ID}
		resp.Status = "204 No Content"
	case v.Version == 1:
		e.Request = &bundle.Request{Method: http.MethodPost, URL: v.Type}
		resp.Status = "201 Created"
	default:
		e.Request = &bundle.Request{Method: http.MethodPut, URL: v.Type + "/" + v.ID}
		resp.Status = "200 OK"
	}
	if !v.Deleted {
		e.Resource = v.Body
	}
	e.Response = resp
	return e
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func isDeleted(err error) bool { return errors.Is(err, store.ErrDeleted) }

// parseInstant accepts a FHIR instant or dateTime (a date means its start
// in UTC).
func parseInstant(v string) (time.Time, error) {
	// An unescaped "+01:00" arrives as " 01:00" after query decoding.
	v = strings.ReplaceAll(v, " ", "+")
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &time.ParseError{Layout: time.RFC3339, Value: v}
}
