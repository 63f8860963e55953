// Package store defines the persistence contract of Equitas: versioned FHIR
// resources with full history, a per-patient compartment index, a
// lastUpdated index and search-parameter indexes, written atomically.
//
// Everything above the store (the REST API, bulk jobs, attribution, ADT
// intake, the measure engine) depends on the Store interface, never on a
// concrete backend. The embedded default backend lives in store/badgerstore.
package store

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Errors returned by every Store implementation; callers test them with
// errors.Is.
var (
	ErrNotFound        = errors.New("store: resource not found")
	ErrDeleted         = errors.New("store: resource deleted")
	ErrVersionConflict = errors.New("store: version conflict")
	ErrInvalid         = errors.New("store: invalid resource")
	ErrClosed          = errors.New("store: closed")
)

// Resource is one version of a FHIR resource as stored. Body is the
// resource's canonical JSON with meta.versionId and meta.lastUpdated set by
// the store; it is never re-encoded through a model that could drop data.
type Resource struct {
	Type        string
	ID          string
	Version     uint64
	LastUpdated time.Time
	Deleted     bool   // a tombstone version (Body is nil)
	Body        []byte // canonical JSON; nil for tombstones
	// Created is set in Commit results when the write brought into being a
	// resource that did not exist or was deleted (HTTP 201 rather than
	// 200), decided atomically with the write.
	Created bool
}

// Op is the kind of a write.
type Op int

const (
	OpPut Op = iota + 1
	OpDelete
)

// Write is one change inside a transaction.
type Write struct {
	Op   Op
	Type string
	ID   string
	// Body is the resource JSON for OpPut. The store sets id, meta.versionId
	// and meta.lastUpdated; other elements are kept byte-for-byte.
	Body []byte
	// IfMatch, when non-zero, makes the write fail with ErrVersionConflict
	// unless the current version equals it.
	IfMatch uint64
	// IfNoneExist, for OpPut, fails with ErrVersionConflict if the resource exists.
	IfNoneExist bool
	// SkipUnchanged makes an OpPut whose body equals the current version's
	// (ignoring meta.versionId/lastUpdated) a no-op that returns the current
	// version; idempotent bulk ingest relies on it.
	SkipUnchanged bool
}

// WriteError reports which write of a transaction failed; it wraps the
// cause (ErrVersionConflict, ErrInvalid, ...), so errors.Is still works.
type WriteError struct {
	Index    int // position in Tx.Writes
	Type, ID string
	Err      error
}

func (e *WriteError) Error() string {
	return "store: write " + strconv.Itoa(e.Index) + " (" + e.Type + "/" + e.ID + "): " + e.Err.Error()
}

func (e *WriteError) Unwrap() error { return e.Err }

// Tx is one atomic unit: resource writes plus system key-value changes
// (value nil = delete), e.g. an ADT message's resources and its dedup key.
type Tx struct {
	Writes []Write
	KV     map[string][]byte
}

// Store is the persistence contract.
type Store interface {
	// Read returns the current version. A deleted resource yields the
	// tombstone together with ErrDeleted.
	Read(ctx context.Context, typ, id string) (*Resource, error)
	// VRead returns one version.
	VRead(ctx context.Context, typ, id string, version uint64) (*Resource, error)
	// History returns versions newest first. Empty typ means whole-system,
	// empty id means type-level history.
	History(ctx context.Context, q HistoryQuery) ([]*Resource, error)

	// Commit applies all writes of tx atomically (all or nothing, however
	// large) and returns the written versions in order.
	Commit(ctx context.Context, tx Tx) ([]*Resource, error)

	// Search evaluates a parsed FHIR search on one resource type.
	Search(ctx context.Context, q Query) (*SearchResult, error)

	// Compartment calls fn for the current version of every resource of the
	// given types (all types when empty) in the patient's compartment,
	// including the Patient itself when requested.
	Compartment(ctx context.Context, patientID string, types []string, fn func(*Resource) error) error

	// Scan calls fn for the current, non-deleted version of every resource of
	// typ whose lastUpdated is after since (zero = all), as of a consistent
	// snapshot taken at the call.
	Scan(ctx context.Context, typ string, since time.Time, fn func(*Resource) error) error

	// Snapshot returns a read-only view fixed at the time of the call, for
	// exports that promise a transactionTime.
	Snapshot(ctx context.Context) (Snapshot, error)

	// Counts returns the number of current resources per type (for metrics).
	Counts(ctx context.Context) (map[string]int64, error)

	// KV is a small namespaced key-value space for system records (jobs,
	// registered clients, dedup keys, attribution indexes). Writes to it can
	// be joined to a resource transaction through Tx.KV.
	KV() KV

	Close() error
}

// Snapshot is a consistent read-only view.
type Snapshot interface {
	Time() time.Time
	Read(ctx context.Context, typ, id string) (*Resource, error)
	Scan(ctx context.Context, typ string, since time.Time, fn func(*Resource) error) error
	Compartment(ctx context.Context, patientID string, types []string, fn func(*Resource) error) error
	Search(ctx context.Context, q Query) (*SearchResult, error)
	Close()
}

// KV is the system key-value space. Keys are namespaced by the caller
// (e.g. "job/", "client/").
type KV interface {
	Get(ctx context.Context, key string) ([]byte, error) // ErrNotFound when absent
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	// Scan calls fn for every key with the prefix, in key order.
	Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error
	// Batch applies puts (value != nil) and deletes (value == nil) atomically.
	Batch(ctx context.Context, ops map[string][]byte) error
}

// HistoryQuery selects versions for _history interactions.
type HistoryQuery struct {
	Type  string
	ID    string
	Since time.Time // only versions after Since (zero = all)
	Count int       // at most Count versions (0 = default page, <0 = all)
	// Before continues a newest-first listing: only versions listed after
	// (older than) this one, typically the last of the previous page. Each
	// page then costs its own size, whatever its depth.
	Before *VersionRef
}

// VersionRef identifies one version in a history listing.
type VersionRef struct {
	Type        string
	ID          string
	Version     uint64
	LastUpdated time.Time
}

// Ref returns the VersionRef of a resource version.
func (r *Resource) Ref() *VersionRef {
	return &VersionRef{Type: r.Type, ID: r.ID, Version: r.Version, LastUpdated: r.LastUpdated}
}

// Param is one search parameter occurrence: name[:modifier]=v1,v2 (the
// values are OR-ed; repeated parameters are AND-ed as separate Params).
type Param struct {
	Name     string
	Modifier string
	Values   []string // raw values, with prefixes (ge2020) and system|code intact
}

// Query is a parsed search on one type.
type Query struct {
	Type   string
	Params []Param
	Count  int    // page size (0 = default)
	Cursor string // opaque continuation from a previous page
	Sort   []SortKey
	Total  bool // compute the total count
	// Filter, when set, drops resources the caller may not see (provider
	// scoping); it is applied before paging so pages stay full and totals
	// stay honest.
	Filter func(*Resource) bool
}

// SortKey orders search results.
type SortKey struct {
	Param      string
	Descending bool
}

// SearchResult is one page of matches.
type SearchResult struct {
	Resources  []*Resource
	Total      int    // -1 when not computed
	NextCursor string // empty on the last page
}

// ParamError reports an unknown or malformed search parameter; the REST
// layer turns it into a 400 OperationOutcome.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string { return "search parameter " + e.Param + ": " + e.Reason }
