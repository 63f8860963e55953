package rest

import (
	"context"
	"fmt"
	"net/http"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

// Renderer completes a stored resource version for output. An ATR Group
// keeps its members in an index (one key per member), not in the stored
// resource; its renderer writes them in on the way out. summary is true for
// _summary=true and _summary=count, where members are left out. A renderer
// returns res.Body unchanged for resources it does not complete.
type Renderer func(ctx context.Context, res *store.Resource, summary bool) ([]byte, error)

// Render registers the renderer of resources of typ, used by read, vread,
// history and search (matches and includes). Register before serving.
func (s *Server) Render(typ string, fn Renderer) {
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	if s.renderers == nil {
		s.renderers = map[string]Renderer{}
	}
	s.renderers[typ] = fn
}

// rendered returns res with its output body: res itself when no renderer
// applies, otherwise a copy holding the rendered body.
func (s *Server) rendered(ctx context.Context, res *store.Resource, summary bool) (*store.Resource, error) {
	if res == nil || res.Deleted || res.Body == nil {
		return res, nil
	}
	s.opsMu.RLock()
	fn := s.renderers[res.Type]
	s.opsMu.RUnlock()
	if fn == nil {
		return res, nil
	}
	body, err := fn(ctx, res, summary)
	if err != nil {
		return nil, fmt.Errorf("rest: render %s/%s: %w", res.Type, res.ID, err)
	}
	out := *res
	out.Body = body
	return &out, nil
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

// errNotYours refuses a restricted caller's write outside its patients.
var errNotYours = outcome.Errorf(http.StatusForbidden, "forbidden", "an organization-bound client may write only resources of the patients attributed to it")

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
