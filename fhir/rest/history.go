package rest

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
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

// history serves a history Bundle, newest first; paging and its cursor
// live in interaction.Service.History.
func (s *Server) history(w http.ResponseWriter, r *http.Request, typ, id string) {
	p := access.FromContext(r.Context())
	if typ != "" {
		if err := allow(r, typ, access.Read); err != nil {
			s.fail(w, r, err)
			return
		}
	} else if p == nil || !p.Allows("*", access.Read) {
		s.fail(w, r, outcome.Errorf(http.StatusForbidden, "forbidden", "system history needs system/*.read scope"))
		return
	}
	q := r.URL.Query()
	hq, err := interaction.ParseHistory(typ, id, q, parsePrefer(r).lenient)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var keep func(*store.Resource) bool
	if p.Restricted() {
		keep = s.historyFilter(r, p)
		if id != "" && !s.mayReadHistory(r, p, typ, id) {
			// As for a read: another organization's resource is unknown.
			s.fail(w, r, outcome.Errorf(http.StatusNotFound, "not-found", "%s/%s not found", typ, id))
			return
		}
	}
	page, err := s.svc.History(r.Context(), hq, keep)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i, v := range page.Versions {
		if page.Versions[i], err = s.rendered(r.Context(), v, false); err != nil {
			s.fail(w, r, err)
			return
		}
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
	if hq.Before == nil && page.Next == "" && hq.Count > 0 {
		n := len(page.Versions)
		h.Total = &n
	}
	if page.Next != "" {
		next := url.Values{}
		for k, vs := range q {
			next[k] = vs
		}
		next.Set("_count", strconv.Itoa(hq.Count))
		next.Set(interaction.CursorParam, page.Next)
		h.Links = append(h.Links, bundle.Link{Relation: "next", URL: withQuery(path, next)})
	}
	w.Header().Set("Content-Type", fhirJSON)
	bw := bundle.NewWriter(w, h)
	for _, v := range page.Versions {
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

// historyFilter keeps the versions a restricted caller may see: live
// versions by access.Principal.Sees, deletions when the version before
// them was visible (a tombstone has no body to judge by).
func (s *Server) historyFilter(r *http.Request, p *access.Principal) func(*store.Resource) bool {
	return func(v *store.Resource) bool {
		if !v.Deleted {
			return p.Sees(v)
		}
		return s.sawBeforeDeletion(r, v)
	}
}

// mayReadHistory reports whether a restricted caller may list the history
// of typ/id: the current version is visible, or, for a deleted resource,
// the last live one was.
func (s *Server) mayReadHistory(r *http.Request, p *access.Principal, typ, id string) bool {
	cur, err := s.cfg.Store.Read(r.Context(), typ, id)
	switch {
	case err == nil:
		return p.Sees(cur)
	case errors.Is(err, store.ErrDeleted):
		return s.sawBeforeDeletion(r, cur)
	}
	return true // unknown ids answer as they do for everyone
}
