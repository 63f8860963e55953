package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

// Renderer completes a stored resource version for output, writing it to
// w. An ATR Group keeps its members in an index (one key per member), not
// in the stored resource; its renderer writes them in on the way out, and
// streams, so a 100k-member list is never held whole for a read. summary
// is true for _summary=true (and _elements without the rendered element),
// where members are left out. A renderer writes res.Body unchanged for
// resources it does not complete.
type Renderer func(ctx context.Context, res *store.Resource, w io.Writer, summary bool) error

// Render registers the renderer of resources of typ, used by read, vread
// (streamed), history and search (matches and includes). Register before
// serving.
func (s *Server) Render(typ string, fn Renderer) {
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	if s.renderers == nil {
		s.renderers = map[string]Renderer{}
	}
	s.renderers[typ] = fn
}

func (s *Server) renderer(typ string) Renderer {
	s.opsMu.RLock()
	defer s.opsMu.RUnlock()
	return s.renderers[typ]
}

// rendered returns res with its output body, for Bundle entries: res
// itself when no renderer applies, otherwise a copy holding the rendered
// body.
func (s *Server) rendered(ctx context.Context, res *store.Resource, summary bool) (*store.Resource, error) {
	if res == nil || res.Deleted || res.Body == nil {
		return res, nil
	}
	fn := s.renderer(res.Type)
	if fn == nil {
		return res, nil
	}
	var buf bytes.Buffer
	buf.Grow(len(res.Body))
	if err := fn(ctx, res, &buf, summary); err != nil {
		return nil, fmt.Errorf("rest: render %s/%s: %w", res.Type, res.ID, err)
	}
	out := *res
	out.Body = buf.Bytes()
	return &out, nil
}

// writeRendered answers a read or vread with res, streamed through its
// renderer when it has one. A renderer failing after the first bytes went
// out aborts the response (the client sees a broken transfer, never a
// truncated resource that parses).
func (s *Server) writeRendered(w http.ResponseWriter, r *http.Request, res *store.Resource, summary bool) {
	fn := s.renderer(res.Type)
	if fn == nil || res.Body == nil {
		writeResource(w, http.StatusOK, res)
		return
	}
	sw := &startWriter{w: w, start: func() {
		resourceHeaders(w, res)
		w.Header().Set("Content-Type", fhirJSON)
		w.WriteHeader(http.StatusOK)
	}}
	if err := fn(r.Context(), res, sw, summary); err != nil {
		if !sw.started {
			s.fail(w, r, fmt.Errorf("rest: render %s/%s: %w", res.Type, res.ID, err))
			return
		}
		s.log.Error("rendering a resource failed mid-response", "request_id", info(r.Context()).id, "type", res.Type, "id", res.ID, "error", err)
		panic(http.ErrAbortHandler)
	}
	if !sw.started {
		sw.start()
	}
}

// startWriter sends the response head at the first body write, so a
// renderer failing before it wrote anything still gets a clean error
// response.
type startWriter struct {
	w       io.Writer
	start   func()
	started bool
}

func (sw *startWriter) Write(b []byte) (int, error) {
	if !sw.started {
		sw.started = true
		sw.start()
	}
	return sw.w.Write(b)
}

// sees applies the caller's visibility (access.Principal.Sees) to res.
func sees(r *http.Request, res *store.Resource) bool {
	return access.FromContext(r.Context()).Sees(res)
}

// checkWrite keeps a restricted caller's writes inside what it may see:
// the resource it replaces and the one it writes must both be visible
// (else 403), so no write can move data into or out of another
// organization's patients.
func checkWrite(r *http.Request, old, next *store.Resource) error {
	p := access.FromContext(r.Context())
	if !p.Restricted() {
		return nil
	}
	if old != nil && !old.Deleted && !p.Sees(old) {
		// The same answer as writing an invisible body under a new id, so
		// that writes do not tell which ids exist for other patients.
		return errNotYours
	}
	if next != nil && next.Type == "Group" {
		if err := p.MayWriteGroup(next.Body); err != nil {
			return outcome.Errorf(http.StatusForbidden, "forbidden", "%v", err)
		}
		return nil
	}
	if next != nil && !p.Sees(next) {
		return errNotYours
	}
	return nil
}

// errNotYours marks a restricted caller's write outside its patients;
// refusal turns it into the answer.
var errNotYours = errors.New("rest: write outside the caller's patients")

// refusal is the answer to a write checkWrite refused: errNotYours becomes
// a 403 OperationOutcome, other errors are kept.
func refusal(err error) error {
	if errors.Is(err, errNotYours) {
		return outcome.Errorf(http.StatusForbidden, "forbidden", "an organization-bound client may write only resources of the patients attributed to it")
	}
	return err
}

// refuseRestricted answers 403 for interactions an organization-bound
// caller may not use because their outcome would reveal resources outside
// its patients (conditional writes match across all patients;
// transactions write without per-entry visibility).
func refuseRestricted(r *http.Request, what string) error {
	if access.FromContext(r.Context()).Restricted() {
		return outcome.Errorf(http.StatusForbidden, "forbidden", "%s is not available to organization-bound clients", what)
	}
	return nil
}
