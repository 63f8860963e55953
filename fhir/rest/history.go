package rest

import (
	"encoding/base64"
	"errors"
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

// history serves a history Bundle, newest first. Next links carry the
// last version served (_cursor); the store continues strictly after it, so
// versions written meanwhile neither shift pages nor repeat, and every page
// costs only its own size.
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
	var since time.Time
	var before *store.VersionRef
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
		case interaction.CursorParam:
			if before, err = parseHistoryCursor(v); err != nil {
				bad(k, "malformed history cursor")
			}
		case "_format", "_pretty":
		default:
			if !parsePrefer(r).lenient {
				issues = append(issues, outcome.Issue{Severity: "error", Code: "not-supported", Diagnostics: "history parameter " + k + " is not supported", Expression: []string{k}})
			}
		}
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
	// _since is inclusive ("at or after"); the store's bound is exclusive.
	storeSince := since
	if !storeSince.IsZero() {
		storeSince = storeSince.Add(-time.Nanosecond)
	}
	// One version more than the page tells whether a next page exists.
	// Patient scoping may drop versions, so keep reading until the page is
	// full or the history ends.
	want := count + 1
	var page []*store.Resource
	cur := before
	for len(page) < want {
		n := want - len(page)
		vs, err := s.cfg.Store.History(r.Context(), store.HistoryQuery{Type: typ, ID: id, Since: storeSince, Count: n, Before: cur})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, v := range vs {
			if p.Patients == nil || v.Deleted || patientVisible(p, v) {
				page = append(page, v)
			}
		}
		if len(vs) < n {
			break
		}
		cur = vs[len(vs)-1].Ref()
	}
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
	h := bundle.Header{ID: interaction.NewID(), Type: "history", Time: time.Now(), Links: []bundle.Link{{Relation: "self", URL: withQuery(path, q)}}}
	if before == nil && !more && count > 0 {
		n := len(page)
		h.Total = &n
	}
	if more {
		next := url.Values{}
		for k, vs := range q {
			next[k] = vs
		}
		next.Set("_count", strconv.Itoa(count))
		next.Set(interaction.CursorParam, historyCursor(page[len(page)-1].Ref()))
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

// historyCursor encodes the last version of a page for the next link.
func historyCursor(v *store.VersionRef) string {
	raw := v.Type + "\x00" + v.ID + "\x00" + strconv.FormatUint(v.Version, 10) + "\x00" + strconv.FormatInt(v.LastUpdated.UnixNano(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func parseHistoryCursor(c string) (*store.VersionRef, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 4 {
		return nil, errors.New("history cursor: wrong shape")
	}
	ver, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return nil, err
	}
	ns, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return nil, err
	}
	return &store.VersionRef{Type: parts[0], ID: parts[1], Version: ver, LastUpdated: time.Unix(0, ns).UTC()}, nil
}
