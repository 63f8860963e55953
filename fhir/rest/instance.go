package rest

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/interaction"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

// typeLevel serves [base]/{type}: search, create, conditional update and
// conditional delete; a "$name" segment is a system-level operation.
func (s *Server) typeLevel(w http.ResponseWriter, r *http.Request) {
	typ := chi.URLParam(r, "type")
	if strings.HasPrefix(typ, "$") {
		s.operation(w, r, System, "", "", typ[1:])
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.search(w, r, typ, r.URL.Query())
	case http.MethodPost:
		s.create(w, r, typ)
	case http.MethodPut:
		s.conditionalUpdate(w, r, typ)
	case http.MethodDelete:
		s.conditionalDelete(w, r, typ)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, DELETE")
		methodNotAllowed(w, r)
	}
}

// instance serves [base]/{type}/{id}: read, update, delete; a "$name"
// segment is a type-level operation.
func (s *Server) instance(w http.ResponseWriter, r *http.Request) {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	if strings.HasPrefix(id, "$") {
		s.operation(w, r, Type, typ, "", id[1:])
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.read(w, r, typ, id)
	case http.MethodPut:
		s.update(w, r, typ, id)
	case http.MethodDelete:
		s.delete(w, r, typ, id)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
		methodNotAllowed(w, r)
	}
}

// instanceOperation serves [base]/{type}/{id}/$name.
func (s *Server) instanceOperation(w http.ResponseWriter, r *http.Request) {
	op := chi.URLParam(r, "op")
	if !strings.HasPrefix(op, "$") {
		outcome.Error(w, http.StatusNotFound, "not-found", "no such FHIR endpoint")
		return
	}
	s.operation(w, r, Instance, chi.URLParam(r, "type"), chi.URLParam(r, "id"), op[1:])
}

// allow checks the type and the caller's scope for an interaction class.
func allow(r *http.Request, typ string, class rune) error {
	if err := interaction.CheckType(typ); err != nil {
		return err
	}
	p := access.FromContext(r.Context())
	if p == nil {
		return outcome.Errorf(http.StatusUnauthorized, "login", "authentication required")
	}
	if !p.Allows(typ, class) {
		return outcome.Errorf(http.StatusForbidden, "forbidden", "scope does not allow this interaction on %s", typ)
	}
	return nil
}

func (s *Server) read(w http.ResponseWriter, r *http.Request, typ, id string) {
	if !s.begin(w, r, "read", typ, access.Read) {
		return
	}
	res, err := s.cfg.Store.Read(r.Context(), typ, id)
	if errors.Is(err, store.ErrDeleted) && access.FromContext(r.Context()).Restricted() && !s.sawBeforeDeletion(r, res) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrDeleted) {
		if res != nil {
			w.Header().Set("ETag", etag(res.Version))
		}
		outcome.Error(w, http.StatusGone, "deleted", typ+"/"+id+" was deleted")
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		outcome.Error(w, http.StatusNotFound, "not-found", typ+"/"+id+" not found")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !sees(r, res) {
		outcome.Error(w, http.StatusNotFound, "not-found", typ+"/"+id+" not found")
		return
	}
	if notModified(r, res) {
		resourceHeaders(w, res)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.writeRendered(w, r, res, summaryTrue(r))
}

// notModified evaluates If-None-Match and If-Modified-Since on a read.
func notModified(r *http.Request, res *store.Resource) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			if t = strings.TrimSpace(t); t == "*" {
				return true
			}
			if v, ok := interaction.ParseETag(t); ok && v == res.Version {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !res.LastUpdated.Truncate(time.Second).After(t) {
			return true
		}
	}
	return false
}

func (s *Server) vread(w http.ResponseWriter, r *http.Request) {
	typ, id := chi.URLParam(r, "type"), chi.URLParam(r, "id")
	if !s.begin(w, r, "vread", typ, access.Read) {
		return
	}
	vid, err := strconv.ParseUint(chi.URLParam(r, "vid"), 10, 64)
	if err != nil || vid == 0 {
		outcome.Error(w, http.StatusNotFound, "not-found", "no such version")
		return
	}
	res, err := s.cfg.Store.VRead(r.Context(), typ, id, vid)
	if errors.Is(err, store.ErrNotFound) {
		outcome.Error(w, http.StatusNotFound, "not-found", typ+"/"+id+" has no version "+strconv.FormatUint(vid, 10))
		return
	}
	if (err == nil && res.Deleted || errors.Is(err, store.ErrDeleted)) && access.FromContext(r.Context()).Restricted() && !s.sawBeforeDeletion(r, res) {
		err = store.ErrNotFound
	}
	if err == nil && res.Deleted || errors.Is(err, store.ErrDeleted) {
		outcome.Error(w, http.StatusGone, "deleted", "version "+strconv.FormatUint(vid, 10)+" of "+typ+"/"+id+" is a deletion")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !sees(r, res) {
		outcome.Error(w, http.StatusNotFound, "not-found", typ+"/"+id+" not found")
		return
	}
	s.writeRendered(w, r, res, summaryTrue(r))
}

// respond answers a write per the Prefer header.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, res interaction.Result) {
	if res.Resource == nil {
		w.WriteHeader(res.Status)
		return
	}
	resourceHeaders(w, res.Resource)
	if res.Status == http.StatusCreated {
		w.Header().Set("Location", s.Base(r)+"/"+res.Resource.Type+"/"+res.Resource.ID+"/_history/"+strconv.FormatUint(res.Resource.Version, 10))
	}
	switch parsePrefer(r).ret {
	case "minimal":
		w.WriteHeader(res.Status)
	case "OperationOutcome":
		msg := "updated"
		if res.Status == http.StatusCreated {
			msg = "created"
		} else if res.Status == http.StatusOK && r.Method == http.MethodPost {
			msg = "an existing resource matched If-None-Exist"
		}
		outcome.Write(w, res.Status, outcome.New("information", "informational", res.Resource.Type+"/"+res.Resource.ID+" "+msg))
	default:
		writeResource(w, res.Status, res.Resource)
	}
}

// begin labels the request for metrics and checks the caller may perform
// class on typ; on false the failure has already been written.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, op, typ string, class rune) bool {
	label(r, op, typ)
	if err := allow(r, typ, class); err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}

// finishWrite answers a create or update: the service's error, or the
// result shaped per Prefer.
func (s *Server) finishWrite(w http.ResponseWriter, r *http.Request, res interaction.Result, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.respond(w, r, res)
}

// finishDelete answers a delete: 204 with the tombstone's version as ETag
// (none when nothing was there to delete).
func (s *Server) finishDelete(w http.ResponseWriter, r *http.Request, res interaction.Result, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.Resource != nil {
		w.Header().Set("ETag", etag(res.Resource.Version))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, typ string) {
	if !s.begin(w, r, "create", typ, access.Create) {
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var crit url.Values
	if ine := r.Header.Get("If-None-Exist"); ine != "" {
		label(r, "conditional-create", typ)
		if err := refuseRestricted(r, "conditional create"); err != nil {
			s.fail(w, r, err)
			return
		}
		_, q, found := strings.Cut(ine, "?")
		if !found {
			q = ine
		}
		if crit, err = url.ParseQuery(q); err != nil || len(crit) == 0 {
			outcome.Error(w, http.StatusBadRequest, "invalid", "If-None-Exist must be search parameters, e.g. identifier=system|value")
			return
		}
	}
	if err := checkWrite(r, nil, &store.Resource{Type: typ, Body: body}); err != nil {
		s.fail(w, r, refusal(err))
		return
	}
	res, err := s.svc.Create(r.Context(), typ, body, crit)
	s.finishWrite(w, r, res, err)
}

// ifMatch reads If-Match (0 when absent).
func ifMatch(r *http.Request) (uint64, error) {
	h := r.Header.Get("If-Match")
	if h == "" {
		return 0, nil
	}
	v, ok := interaction.ParseETag(h)
	if !ok {
		return 0, outcome.Errorf(http.StatusBadRequest, "invalid", "If-Match %q is not a version ETag such as W/\"3\"", h)
	}
	return v, nil
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, typ, id string) {
	if !s.begin(w, r, "update", typ, access.Update) {
		return
	}
	im, err := ifMatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkReplace(r, typ, id, body); err != nil {
		s.fail(w, r, refusal(err))
		return
	}
	res, err := s.svc.Update(r.Context(), typ, id, body, im)
	s.finishWrite(w, r, res, err)
}

func (s *Server) conditionalUpdate(w http.ResponseWriter, r *http.Request, typ string) {
	if !s.begin(w, r, "conditional-update", typ, access.Update) {
		return
	}
	if err := refuseRestricted(r, "conditional update"); err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.svc.ConditionalUpdate(r.Context(), typ, r.URL.Query(), body)
	s.finishWrite(w, r, res, err)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, typ, id string) {
	if !s.begin(w, r, "delete", typ, access.Delete) {
		return
	}
	im, err := ifMatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkReplace(r, typ, id, nil); errors.Is(err, errNotYours) {
		// Deleting another patient's resource answers as deleting one
		// that is not there: nothing done, no version.
		w.WriteHeader(http.StatusNoContent)
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.svc.Delete(r.Context(), typ, id, im)
	s.finishDelete(w, r, res, err)
}

func (s *Server) conditionalDelete(w http.ResponseWriter, r *http.Request, typ string) {
	if !s.begin(w, r, "conditional-delete", typ, access.Delete) {
		return
	}
	if err := refuseRestricted(r, "conditional delete"); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.svc.ConditionalDelete(r.Context(), typ, r.URL.Query())
	s.finishDelete(w, r, res, err)
}

// checkReplace applies checkWrite to an update (body set) or delete of
// typ/id by a restricted caller, against the current version.
func (s *Server) checkReplace(r *http.Request, typ, id string, body []byte) error {
	if !access.FromContext(r.Context()).Restricted() {
		return nil
	}
	var next *store.Resource
	if body != nil {
		next = &store.Resource{Type: typ, ID: id, Body: body}
	}
	old, err := s.cfg.Store.Read(r.Context(), typ, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		old = nil
	case errors.Is(err, store.ErrDeleted):
		old = nil // gone: the write is judged by its new body alone
	case err != nil:
		return err
	}
	return checkWrite(r, old, next)
}

// sawBeforeDeletion reports whether a restricted caller could see the
// last live version before tombstone, so that 410 Gone is told only to
// those who could have read the resource (404 for the others).
func (s *Server) sawBeforeDeletion(r *http.Request, tombstone *store.Resource) bool {
	if tombstone == nil {
		return false
	}
	p := access.FromContext(r.Context())
	if tombstone.Type == "Patient" || tombstone.Type == "Group" {
		return p.Sees(tombstone)
	}
	versions, err := s.cfg.Store.History(r.Context(), store.HistoryQuery{Type: tombstone.Type, ID: tombstone.ID, Count: -1})
	if err != nil {
		return false
	}
	for _, v := range versions { // newest first
		if v.Version < tombstone.Version && !v.Deleted && v.Body != nil {
			return p.Sees(v)
		}
	}
	return false
}

// summaryTrue reports whether a read asked for _summary=true or count,
// where rendered members are left out.
func summaryTrue(r *http.Request) bool {
	v := r.URL.Query().Get("_summary")
	return v == "true" || v == "count"
}
