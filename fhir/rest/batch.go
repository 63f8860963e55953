package rest

import (
	"bytes"
	"context"
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
)

// bundle serves POST [base] with a batch or transaction Bundle.
func (s *Server) bundle(w http.ResponseWriter, r *http.Request) {
	label(r, "batch", "Bundle")
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	base := s.Base(r)
	rb, err := s.svc.ParseBundle(body, base)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rb.Type == "transaction" {
		label(r, "transaction", "Bundle")
		s.transaction(w, r, rb)
		return
	}
	w.Header().Set("Content-Type", fhirJSON)
	bw := bundle.NewWriter(w, bundle.Header{ID: interaction.NewID(), Type: "batch-response", Time: time.Now()})
	for _, e := range rb.Entries {
		bw.Entry(s.dispatch(r, e))
	}
	_ = bw.Close()
}

func (s *Server) transaction(w http.ResponseWriter, r *http.Request, rb *interaction.RequestBundle) {
	if err := refuseRestricted(r, "transaction"); err != nil {
		s.fail(w, r, err)
		return
	}
	for _, e := range rb.Entries {
		class := writeClass(e.Method)
		if class == 0 {
			continue // GET entries are checked when dispatched
		}
		typ, _, _ := strings.Cut(strings.SplitN(e.URL, "?", 2)[0], "/")
		if interaction.CheckType(typ) != nil {
			continue // rejected as a malformed entry by the transaction
		}
		if err := allow(r, typ, class); err != nil {
			s.fail(w, r, prefixIssues(err, e.Expr()))
			return
		}
	}
	results, err := s.svc.Transaction(r.Context(), rb)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	base := s.Base(r)
	minimal := parsePrefer(r).ret == "minimal"
	w.Header().Set("Content-Type", fhirJSON)
	bw := bundle.NewWriter(w, bundle.Header{ID: interaction.NewID(), Type: "transaction-response", Time: time.Now()})
	for i, res := range results {
		e := rb.Entries[i]
		if res.Deferred {
			bw.Entry(s.dispatch(r, e))
			continue
		}
		be := bundle.Entry{Response: &bundle.Response{Status: statusLine(res.Status)}}
		if v := res.Resource; v != nil {
			be.FullURL = base + "/" + v.Type + "/" + v.ID
			be.Response.Location = v.Type + "/" + v.ID + "/_history/" + strconv.FormatUint(v.Version, 10)
			be.Response.Etag = etag(v.Version)
			be.Response.LastModified = v.LastUpdated.UTC().Format(time.RFC3339Nano)
			if !minimal && !v.Deleted {
				be.Resource = v.Body
			}
		}
		bw.Entry(be)
	}
	_ = bw.Close()
}

// writeClass is the scope class a write method needs (0 for reads).
func writeClass(method string) rune {
	switch method {
	case http.MethodPost:
		return access.Create
	case http.MethodPut:
		return access.Update
	case http.MethodDelete:
		return access.Delete
	}
	return 0
}

// prefixIssues locates err's issues at a Bundle entry.
func prefixIssues(err error, expr string) error {
	var he *outcome.HTTPError
	if errors.As(err, &he) {
		for i := range he.Issues {
			he.Issues[i].Expression = append([]string{expr}, he.Issues[i].Expression...)
		}
	}
	return err
}

func statusLine(code int) string { return strconv.Itoa(code) + " " + http.StatusText(code) }

// dispatch runs one batch entry (or a transaction's GET entry) through the
// FHIR router as an internal request carrying the caller's identity, and
// turns the response into a response entry. The same handlers, checks and
// errors apply as for a direct request.
func (s *Server) dispatch(outer *http.Request, e interaction.Entry) bundle.Entry {
	fail := func(status int, code, msg string) bundle.Entry {
		oo := outcome.New("error", code, msg, e.Expr()+".request")
		return bundle.Entry{Response: &bundle.Response{Status: statusLine(status), Outcome: mustJSON(oo)}}
	}
	u, err := url.Parse(e.URL)
	if err != nil || u.IsAbs() || u.Host != "" {
		return fail(http.StatusBadRequest, "invalid", "request.url must be relative to the FHIR base")
	}
	path := "/" + strings.TrimLeft(u.Path, "/")
	if path == "/" {
		return fail(http.StatusBadRequest, "not-supported", "nested batch or transaction entries are not supported")
	}
	// A fresh route context makes the FHIR router route this request
	// from scratch instead of continuing the outer request's routing.
	ctx := context.WithValue(outer.Context(), chi.RouteCtxKey, (*chi.Context)(nil))
	// Entry handlers label their own interaction, not the outer request's.
	ctx = context.WithValue(ctx, infoKey{}, &requestInfo{id: info(outer.Context()).id})
	req, err := http.NewRequestWithContext(ctx, e.Method, path, bytes.NewReader(e.Resource))
	if err != nil {
		return fail(http.StatusBadRequest, "invalid", "request.method or request.url is not valid")
	}
	req.URL.RawQuery = u.RawQuery
	req.Host = outer.Host
	req.TLS = outer.TLS
	req.RemoteAddr = outer.RemoteAddr
	for _, h := range []string{"Authorization", "Prefer", "Accept"} {
		if v := outer.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	if len(e.Resource) > 0 {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for h, v := range map[string]string{"If-Match": e.IfMatch, "If-None-Match": e.IfNoneMatch, "If-Modified-Since": e.IfModifiedSince, "If-None-Exist": e.IfNoneExist} {
		if v != "" {
			req.Header.Set(h, v)
		}
	}
	rec := &recorder{header: http.Header{}}
	s.fhir.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	resp := &bundle.Response{Status: statusLine(rec.status), Location: rec.header.Get("Location"), Etag: rec.header.Get("ETag")}
	if lm := rec.header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			resp.LastModified = t.UTC().Format(time.RFC3339)
		}
	}
	be := bundle.Entry{Response: resp}
	body := bytes.TrimSpace(rec.body.Bytes())
	switch {
	case len(body) == 0 || body[0] != '{':
	case rec.status >= 400:
		resp.Outcome = body
	default:
		be.Resource = body
	}
	return be
}

// recorder buffers an internal response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
