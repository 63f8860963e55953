package rest

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/bundle"
	"github.com/equitas/equitas/fhir/interaction"
	"github.com/equitas/equitas/fhir/outcome"
)

// searchPost serves POST [base]/{type}/_search with a form body; the form
// and URL parameters are combined.
func (s *Server) searchPost(w http.ResponseWriter, r *http.Request) {
	typ := chi.URLParam(r, "type")
	label(r, "search-type", typ)
	ct := r.Header.Get("Content-Type")
	params := r.URL.Query()
	if ct != "" || r.ContentLength > 0 {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			outcome.Error(w, http.StatusUnsupportedMediaType, "not-supported", "POST _search takes application/x-www-form-urlencoded")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			s.fail(w, r, outcome.Errorf(http.StatusBadRequest, "invalid", "malformed form body"))
			return
		}
		for k, vs := range r.PostForm {
			params[k] = append(params[k], vs...)
		}
	}
	s.search(w, r, typ, params)
}

// search serves a type-level search as a searchset Bundle streamed from
// the stored bytes.
func (s *Server) search(w http.ResponseWriter, r *http.Request, typ string, params url.Values) {
	if !s.begin(w, r, "search-type", typ, access.Search) {
		return
	}
	q, err := interaction.ParseSearch(typ, params, parsePrefer(r).lenient)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if p := access.FromContext(r.Context()); p.Restricted() {
		q.Query.Filter = p.Sees
		if !q.SummaryCount && params.Get("_total") == "" {
			// Counting a restricted caller's matches means loading and
			// checking every candidate of the type; a page stops after
			// _count visible matches. The total is computed when asked
			// for (_total=accurate, _summary=count).
			q.Query.Total = false
		}
	}
	page, err := s.svc.Search(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Rendered before the Bundle starts, so a failure is still a clean 500.
	summary := params.Get("_summary") == "true" || elementsWithout(params, "member")
	for i, res := range page.Matches {
		if page.Matches[i], err = s.rendered(r.Context(), res, summary); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	for i, res := range page.Included {
		if page.Included[i], err = s.rendered(r.Context(), res, false); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	base := s.Base(r)
	self := base + "/" + typ
	if enc := q.Canonical.Encode(); enc != "" {
		self += "?" + enc
	}
	h := bundle.Header{ID: interaction.NewID(), Type: "searchset", Time: time.Now(), Links: []bundle.Link{{Relation: "self", URL: self}}}
	if page.Total >= 0 {
		t := page.Total
		h.Total = &t
	}
	if page.NextCursor != "" {
		next := url.Values{}
		for k, v := range q.Canonical {
			next[k] = v
		}
		next.Set(interaction.CursorParam, page.NextCursor)
		h.Links = append(h.Links, bundle.Link{Relation: "next", URL: base + "/" + typ + "?" + next.Encode()})
	}
	w.Header().Set("Content-Type", fhirJSON)
	bw := bundle.NewWriter(w, h)
	if len(q.Ignored) > 0 {
		oo, _ := json.Marshal(outcome.FromIssues(q.Ignored))
		bw.Entry(bundle.Entry{Resource: oo, Search: &bundle.Search{Mode: "outcome"}})
	}
	for _, res := range page.Matches {
		bw.Entry(bundle.Entry{FullURL: base + "/" + res.Type + "/" + res.ID, Resource: q.Subset(res.Body), Search: &bundle.Search{Mode: "match"}})
	}
	for _, res := range page.Included {
		bw.Entry(bundle.Entry{FullURL: base + "/" + res.Type + "/" + res.ID, Resource: res.Body, Search: &bundle.Search{Mode: "include"}})
	}
	if err := bw.Close(); err != nil {
		s.log.Debug("search response not delivered", "request_id", info(r.Context()).id, "error", err)
	}
}

// elementsWithout reports whether _elements is given without naming el:
// then a rendered element (an ATR Group's members) is dropped anyway, and
// need not be rendered.
func elementsWithout(params url.Values, el string) bool {
	vals, ok := params["_elements"]
	if !ok {
		return false
	}
	for _, v := range vals {
		for _, e := range strings.Split(v, ",") {
			e = strings.TrimSpace(e)
			if _, after, found := strings.Cut(e, "."); found {
				e = after
			}
			if e == el {
				return false
			}
		}
	}
	return true
}
