package rest

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/bundle"
	"github.com/equitas/equitas/fhir/interaction"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/searchparam"
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
	if p := access.FromContext(r.Context()); p != nil && p.Patients != nil {
		q.Query.Filter = func(res *store.Resource) bool { return patientVisible(p, res) }
	}
	page, err := s.svc.Search(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
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
		bw.Entry(bundle.Entry{FullURL: base + "/" + res.Type + "/" + res.ID, Resource: subset(res.Body, q.Elements, q.SummaryData), Search: &bundle.Search{Mode: "match"}})
	}
	for _, res := range page.Included {
		bw.Entry(bundle.Entry{FullURL: base + "/" + res.Type + "/" + res.ID, Resource: res.Body, Search: &bundle.Search{Mode: "include"}})
	}
	if err := bw.Close(); err != nil {
		s.log.Debug("search response not delivered", "request_id", info(r.Context()).id, "error", err)
	}
}

// mandatoryElements are kept by _elements whatever the client asks.
var mandatoryElements = map[string]bool{"resourceType": true, "id": true, "meta": true}

// subset applies _elements and _summary=data to stored JSON: only the
// listed top-level elements (plus resourceType, id, meta) are kept, or
// everything but the narrative, and the resource is tagged SUBSETTED.
// Otherwise the stored bytes are returned untouched.
func subset(body []byte, keep []string, dropText bool) []byte {
	if len(keep) == 0 && !dropText {
		return body
	}
	want := map[string]bool{}
	for _, k := range keep {
		want[k] = true
	}
	out := []byte{'{'}
	first := true
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		base := strings.TrimPrefix(name, "_")
		if dropText && name == "text" {
			return true
		}
		if len(keep) > 0 && !mandatoryElements[name] && !want[base] && !want[strings.TrimSuffix(base, "[x]")] && !choiceWanted(base, want) {
			return true
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, k.Raw...)
		out = append(out, ':')
		out = append(out, v.Raw...)
		return true
	})
	out = append(out, '}')
	tagged, err := sjson.SetRawBytes(out, "meta.tag.-1", []byte(`{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}`))
	if err != nil {
		return out
	}
	return tagged
}

// choiceWanted matches valueQuantity against _elements=value.
func choiceWanted(name string, want map[string]bool) bool {
	for i := 1; i < len(name); i++ {
		if name[i] >= 'A' && name[i] <= 'Z' {
			return want[name[:i]]
		}
	}
	return false
}

// patientVisible reports whether a patient-scoped caller may see res.
func patientVisible(p *access.Principal, res *store.Resource) bool {
	if res.Type == "Patient" {
		return p.SeesPatient(res.ID)
	}
	linked := false
	for _, param := range []string{"patient", "subject", "beneficiary", "member"} {
		for _, ref := range searchparam.ReferenceValues(res.Type, param, res.Body) {
			id, ok := strings.CutPrefix(ref, "Patient/")
			if !ok {
				continue
			}
			linked = true
			if p.SeesPatient(id) {
				return true
			}
		}
	}
	return !linked
}
