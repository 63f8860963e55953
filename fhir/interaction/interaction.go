// Package interaction implements the FHIR R4 RESTful interactions (create,
// conditional create/update/delete, update, delete, search, history, batch
// and transaction) over a store.Store, independent of HTTP. The REST layer
// (fhir/rest) translates requests into calls here and results back into
// responses.
//
// Every error that a client caused is an *outcome.HTTPError carrying the
// status and OperationOutcome issues to return; anything else is a server
// fault.
//
// Conditional interactions (create with If-None-Exist, conditional update
// and delete, and transactions containing them) hold a per-resource-type
// lock from the criteria search until the write commits, so two such
// requests in this process can never both see "no match" and both create.
// The lock does not cover other processes (the badger store is
// single-process anyway) or unconditional writes racing a conditional one.
package interaction

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/resourcetype"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
)

// Service performs interactions on one store.
type Service struct {
	st    store.Store
	v     *validate.Validator
	locks typeLocks
}

// New returns a Service over st using v to validate incoming resources.
func New(st store.Store, v *validate.Validator) *Service {
	return &Service{st: st, v: v}
}

// Store returns the underlying store.
func (s *Service) Store() store.Store { return s.st }

// Result is the outcome of a write or conditional interaction.
type Result struct {
	// Status is the HTTP status of the interaction: 200 (updated, or the
	// existing match of a conditional create), 201 (created) or 204
	// (deleted, or nothing to delete).
	Status int
	// Resource is the version written or matched; nil when nothing exists.
	Resource *store.Resource
}

// Criteria is a conditional interaction's search, in query-string form.
type Criteria = url.Values

// NewID returns a server-assigned resource id (a random UUID).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// CheckType returns a 404 HTTPError unless typ is an R4 resource type.
func CheckType(typ string) error {
	if !resourcetype.Valid(typ) {
		return outcome.Errorf(http.StatusNotFound, "not-supported", "unknown resource type %q", typ)
	}
	return nil
}

// checkBody validates body as a resource of type typ. When id is not
// empty, the body's id must equal it (update); when id is empty the body's
// id is ignored (create: the server assigns one).
func (s *Service) checkBody(body []byte, typ, id string, idRequired bool) error {
	rtype, bid, err := s.v.Resource(body)
	if err != nil {
		return err
	}
	if rtype != typ {
		return outcome.Errorf(http.StatusBadRequest, "invalid", "resource type %s does not match the URL's %s", rtype, typ)
	}
	if idRequired {
		if bid == "" {
			return &outcome.HTTPError{Status: http.StatusBadRequest, Issues: []outcome.Issue{{
				Severity: "error", Code: "required", Diagnostics: "update requires the resource id in the body", Expression: []string{typ + ".id"}}}}
		}
		if bid != id {
			return &outcome.HTTPError{Status: http.StatusBadRequest, Issues: []outcome.Issue{{
				Severity: "error", Code: "invalid", Diagnostics: fmt.Sprintf("resource id %q does not match the URL id %q", bid, id), Expression: []string{typ + ".id"}}}}
		}
	}
	return nil
}

// Create stores a new resource with a server-assigned id. With non-empty
// ifNoneExist (conditional create) it first searches: one match is
// returned with status 200 and nothing is written, several are a 412.
func (s *Service) Create(ctx context.Context, typ string, body []byte, ifNoneExist Criteria) (Result, error) {
	if err := CheckType(typ); err != nil {
		return Result{}, err
	}
	if err := s.checkBody(body, typ, "", false); err != nil {
		return Result{}, err
	}
	if len(ifNoneExist) > 0 {
		unlock := s.locks.lock(typ)
		defer unlock()
		m, err := s.match(ctx, typ, ifNoneExist)
		if err != nil {
			return Result{}, err
		}
		switch len(m) {
		case 0:
		case 1:
			return Result{Status: http.StatusOK, Resource: m[0]}, nil
		default:
			return Result{}, outcome.Errorf(http.StatusPreconditionFailed, "duplicate", "If-None-Exist criteria match more than one %s", typ)
		}
	}
	rs, err := s.st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: typ, ID: NewID(), Body: body, IfNoneExist: true}}})
	if err != nil {
		return Result{}, StoreError(err)
	}
	return Result{Status: http.StatusCreated, Resource: rs[0]}, nil
}

// Update stores a new version of typ/id, creating the resource when it
// does not exist (the client chooses the id). ifMatch, when non-zero, must
// equal the current version (else 412).
func (s *Service) Update(ctx context.Context, typ, id string, body []byte, ifMatch uint64) (Result, error) {
	if err := CheckType(typ); err != nil {
		return Result{}, err
	}
	if err := s.checkBody(body, typ, id, true); err != nil {
		return Result{}, err
	}
	return s.put(ctx, typ, id, body, ifMatch)
}

func (s *Service) put(ctx context.Context, typ, id string, body []byte, ifMatch uint64) (Result, error) {
	rs, err := s.st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: typ, ID: id, Body: body, IfMatch: ifMatch}}})
	if err != nil {
		return Result{}, StoreError(err)
	}
	// The store decides creation atomically with the write, so of several
	// concurrent create-on-update requests exactly one answers 201.
	st := http.StatusOK
	if rs[0].Created {
		st = http.StatusCreated
	}
	return Result{Status: st, Resource: rs[0]}, nil
}

// ConditionalUpdate updates the single resource matching criteria, or
// creates one when nothing matches (with the body's id if it has one);
// several matches are a 412.
func (s *Service) ConditionalUpdate(ctx context.Context, typ string, criteria Criteria, body []byte) (Result, error) {
	if err := CheckType(typ); err != nil {
		return Result{}, err
	}
	if len(criteria) == 0 {
		return Result{}, outcome.Errorf(http.StatusBadRequest, "invalid", "conditional update needs search criteria")
	}
	if err := s.checkBody(body, typ, "", false); err != nil {
		return Result{}, err
	}
	bid := gjson.GetBytes(body, "id").String()
	unlock := s.locks.lock(typ)
	defer unlock()
	m, err := s.match(ctx, typ, criteria)
	if err != nil {
		return Result{}, err
	}
	switch len(m) {
	case 0:
		id := bid
		if id == "" {
			id = NewID()
		}
		return s.put(ctx, typ, id, body, 0)
	case 1:
		if bid != "" && bid != m[0].ID {
			return Result{}, outcome.Errorf(http.StatusBadRequest, "invalid", "resource id %q does not match the id %q of the resource found by the criteria", bid, m[0].ID)
		}
		return s.put(ctx, typ, m[0].ID, body, m[0].Version)
	default:
		return Result{}, outcome.Errorf(http.StatusPreconditionFailed, "multiple-matches", "conditional update criteria match more than one %s", typ)
	}
}

// Delete deletes typ/id. Deleting a resource that does not exist or is
// already deleted succeeds with 204 and no resource.
func (s *Service) Delete(ctx context.Context, typ, id string, ifMatch uint64) (Result, error) {
	if err := CheckType(typ); err != nil {
		return Result{}, err
	}
	_, err := s.st.Read(ctx, typ, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		if ifMatch != 0 {
			return Result{}, outcome.Errorf(http.StatusPreconditionFailed, "conflict", "%s/%s has no current version %d", typ, id, ifMatch)
		}
		return Result{Status: http.StatusNoContent}, nil
	}
	if err != nil {
		return Result{}, StoreError(err)
	}
	rs, err := s.st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpDelete, Type: typ, ID: id, IfMatch: ifMatch}}})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		return Result{Status: http.StatusNoContent}, nil
	}
	if err != nil {
		return Result{}, StoreError(err)
	}
	return Result{Status: http.StatusNoContent, Resource: rs[0]}, nil
}

// ConditionalDelete deletes the single resource matching criteria (204
// when none matches, 412 when several do).
func (s *Service) ConditionalDelete(ctx context.Context, typ string, criteria Criteria) (Result, error) {
	if err := CheckType(typ); err != nil {
		return Result{}, err
	}
	if len(criteria) == 0 {
		return Result{}, outcome.Errorf(http.StatusBadRequest, "invalid", "conditional delete needs search criteria")
	}
	unlock := s.locks.lock(typ)
	defer unlock()
	m, err := s.match(ctx, typ, criteria)
	if err != nil {
		return Result{}, err
	}
	switch len(m) {
	case 0:
		return Result{Status: http.StatusNoContent}, nil
	case 1:
		return s.Delete(ctx, typ, m[0].ID, 0)
	default:
		return Result{}, outcome.Errorf(http.StatusPreconditionFailed, "multiple-matches", "conditional delete criteria match more than one %s", typ)
	}
}

// match returns up to two current resources matching criteria (two are
// enough to tell "several").
func (s *Service) match(ctx context.Context, typ string, criteria Criteria) ([]*store.Resource, error) {
	q, err := ParseSearch(typ, criteria, false)
	if err != nil {
		return nil, err
	}
	if len(q.Query.Params) == 0 {
		return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "conditional criteria select no search parameter")
	}
	q.Query.Count = 2
	q.Query.Total = false
	res, err := s.st.Search(ctx, q.Query)
	if err != nil {
		return nil, StoreError(err)
	}
	return res.Resources, nil
}

// StoreError maps store errors to HTTP errors; unknown errors pass through
// (the REST layer turns them into 500s).
func StoreError(err error) error {
	var pe *store.ParamError
	var he *outcome.HTTPError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &he):
		return err
	case errors.As(err, &pe):
		return &outcome.HTTPError{Status: http.StatusBadRequest, Issues: []outcome.Issue{{
			Severity: "error", Code: "invalid", Diagnostics: pe.Error(), Expression: []string{pe.Param}}}}
	case errors.Is(err, store.ErrNotFound):
		return outcome.Errorf(http.StatusNotFound, "not-found", "resource not found")
	case errors.Is(err, store.ErrDeleted):
		return outcome.Errorf(http.StatusGone, "deleted", "resource deleted")
	case errors.Is(err, store.ErrVersionConflict):
		return outcome.Errorf(http.StatusPreconditionFailed, "conflict", "version conflict: the resource has changed (or already exists)")
	case errors.Is(err, store.ErrInvalid):
		return outcome.Errorf(http.StatusBadRequest, "invalid", "%v", err)
	case errors.Is(err, store.ErrClosed):
		return outcome.Errorf(http.StatusServiceUnavailable, "transient", "the server is shutting down")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return outcome.Errorf(http.StatusServiceUnavailable, "timeout", "request cancelled or timed out")
	}
	return err
}

// typeLocks serialises conditional interactions per resource type.
type typeLocks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

func (l *typeLocks) get(typ string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*sync.Mutex{}
	}
	m, ok := l.m[typ]
	if !ok {
		m = &sync.Mutex{}
		l.m[typ] = m
	}
	return m
}

func (l *typeLocks) lock(typ string) (unlock func()) {
	m := l.get(typ)
	m.Lock()
	return m.Unlock
}

// lockAll locks several types in a fixed order (no deadlock between two
// transactions locking overlapping sets).
func (l *typeLocks) lockAll(types []string) (unlock func()) {
	types = append([]string(nil), types...)
	sort.Strings(types)
	var ms []*sync.Mutex
	for i, t := range types {
		if i > 0 && types[i-1] == t {
			continue
		}
		m := l.get(t)
		m.Lock()
		ms = append(ms, m)
	}
	return func() {
		for i := len(ms) - 1; i >= 0; i-- {
			ms[i].Unlock()
		}
	}
}
