package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

const fhirJSON = "application/fhir+json; charset=utf-8"

// jsonFormats are the _format values and media types this server speaks.
var jsonFormats = map[string]bool{
	"json": true, "application/json": true, "application/fhir+json": true,
	"application/json+fhir": true, // DSTU2-era alias still sent by clients
}

// negotiate enforces the response format (Accept / _format → 406) for the
// FHIR routes: FHIR JSON, or a media type the requested operation declares
// in Operation.Formats. Request Content-Type is checked where a body is
// read.
func (s *Server) negotiate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := r.URL.Query().Get("_format"); f != "" {
			// An unescaped "+" (application/fhir+json) decodes to a space.
			f = strings.ReplaceAll(f, " ", "+")
			mt, _, err := mime.ParseMediaType(f)
			if err != nil {
				mt = f
			}
			if mt = strings.ToLower(mt); !jsonFormats[mt] && !slices.Contains(s.opFormats(r), mt) {
				outcome.Error(w, http.StatusNotAcceptable, "not-supported", "_format "+f+" is not supported; this server speaks application/fhir+json")
				return
			}
		} else if a := r.Header.Get("Accept"); a != "" && !acceptsJSON(a) && !accepts(a, s.opFormats(r)) {
			outcome.Error(w, http.StatusNotAcceptable, "not-supported", "Accept "+a+" is not supported; this server speaks application/fhir+json")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// opFormats returns the extra media types of the operation a request
// path names ([base]/$op, [base]/Type/$op, [base]/Type/id/$op), if any.
func (s *Server) opFormats(r *http.Request) []string {
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, BasePath), "/"), "/")
	name, ok := strings.CutPrefix(segs[len(segs)-1], "$")
	if !ok {
		return nil
	}
	var op Operation
	switch len(segs) {
	case 1:
		op, ok = s.lookupOp(System, "", name)
	case 2:
		op, ok = s.lookupOp(Type, segs[0], name)
	case 3:
		op, ok = s.lookupOp(Instance, segs[0], name)
	default:
		ok = false
	}
	if !ok {
		return nil
	}
	return op.Formats
}

// accepts reports whether an Accept header admits one of formats.
func accepts(accept string, formats []string) bool {
	if len(formats) == 0 {
		return false
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				continue
			}
		}
		if slices.Contains(formats, strings.ToLower(mt)) {
			return true
		}
	}
	return false
}

// acceptsJSON reports whether an Accept header admits FHIR JSON.
func acceptsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				continue
			}
		}
		mt = strings.ToLower(mt)
		if jsonFormats[mt] || mt == "*/*" || mt == "application/*" {
			return true
		}
	}
	return false
}

// readBody returns the request body as FHIR JSON, enforcing Content-Type
// (415) and the size limit (413).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || !jsonFormats[strings.ToLower(mt)] || mt == "json" {
		return nil, outcome.Errorf(http.StatusUnsupportedMediaType, "not-supported",
			"Content-Type %q is not supported; send application/fhir+json", ct)
	}
	return s.readRaw(w, r)
}

func (s *Server) readRaw(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, tooLarge(s.cfg.MaxBodyBytes)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(s.cfg.MaxBodyBytes)
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

// prefer is the parsed Prefer header.
type prefer struct {
	ret     string // minimal | representation | OperationOutcome
	lenient bool
}

func parsePrefer(r *http.Request) prefer {
	var p prefer
	for _, h := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(h, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			v = strings.Trim(strings.TrimSpace(v), `"`)
			switch strings.TrimSpace(k) {
			case "return":
				p.ret = v
			case "handling":
				p.lenient = v == "lenient"
			}
		}
	}
	return p
}

// etag is the weak ETag of a version.
func etag(v uint64) string { return `W/"` + strconv.FormatUint(v, 10) + `"` }

// resourceHeaders sets ETag and Last-Modified for a stored version.
func resourceHeaders(w http.ResponseWriter, res *store.Resource) {
	w.Header().Set("ETag", etag(res.Version))
	if !res.LastUpdated.IsZero() {
		w.Header().Set("Last-Modified", res.LastUpdated.UTC().Format(http.TimeFormat))
	}
}

// writeResource sends stored bytes as-is.
func writeResource(w http.ResponseWriter, status int, res *store.Resource) {
	resourceHeaders(w, res)
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(status)
	_, _ = w.Write(res.Body)
}

// mustJSON encodes a value built by this package.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`)
	}
	return b
}
