// Package elm loads CQL libraries compiled to ELM JSON and evaluates them
// against one patient's FHIR data at a time: the measure calculator's CQL
// engine.
//
// Workflow:
//
//	lib, err := elm.ParseLibrary(data)            // ELM JSON or a FHIR Library with application/elm+json
//	src := elm.NewLibrarySet(lib1, lib2, ...)     // a LibrarySource
//	prog, err := elm.Compile(ctx, lib.ID, src, terminology, elm.Options{})
//	ectx := prog.NewContext()                     // one per goroutine, reused across patients
//	res, err := ectx.Evaluate(ctx, patient, params) // every definition of the root library
//	// or: ectx.Reset(ctx, patient, params); ectx.EvalRef(ref); ectx.Call("fn", args...)
//
// Compile resolves includes, overloaded functions, parameters, code systems,
// codes, concepts and value sets once, and turns every expression into a Go
// closure. ELM the engine does not implement fails Compile with a
// *CompileError naming the node type, library and locator (errors.Is
// ErrUnsupported); it never evaluates to a silent null. Overloads the
// translator recorded a signature for are bound at compile time; the rest
// are dispatched on the runtime FHIR/System type of the arguments (cached
// per call site).
//
// A *Program is immutable and safe for concurrent use. All per-patient state
// lives in a *Context: memoised expression definitions (definitions are
// pure, so each is evaluated at most once per patient), memoised retrieves,
// query variables, and the patient's resources, parsed once per type into a
// lightweight JSON tree (fhirmodel.Node) from a recycled arena. Values
// returned for a patient are valid until the next Reset/Evaluate; strings
// taken from them (ids, codes) stay valid.
//
// Data access: a DataSource returns a patient's resources of one FHIR type
// as raw JSON. Retrieve filters them by profile (templateId against
// meta.profile, see ProfileMode), by code (codeProperty with a value set,
// code list or concept, comparators in, ~ and =) and by date
// (dateProperty/dateRange).
//
// Parameters: values passed by name override defaults; an included
// library's parameter takes the root library's same-named parameter (so
// "Measurement Period" set once applies to every library) unless set as
// "Library.Name".
//
// Values are the types of package cql; CQL null is a nil cql.Value:
//
//	Boolean, Integer, Long, Decimal, String   cql.Boolean, cql.Integer (int32), cql.Long, cql.Decimal (float64), cql.String
//	Date, DateTime, Time                      cql.Date, cql.DateTime, cql.Time (partial precision, offset in minutes)
//	Quantity, Ratio                           cql.Quantity{Value, Unit}, cql.Ratio
//	Code, Concept                             cql.Code, *cql.Concept
//	Interval<T>                               *cql.Interval (closed nil bound = unbounded, open nil bound = unknown)
//	List<T>, Tuple                            cql.List, *cql.Tuple
//	FHIR resources and elements               *cql.FHIR: ID(), ResourceType(), Node (parsed JSON), Type (FHIR type)
//
// FHIR primitives are *cql.FHIR values too (type "date", "code", ...), whose
// "value" property is the System value and "extension"/"id" come from the
// JSON's "_element" sibling, as FHIRHelpers expects; cql.ToCQLValue converts
// a FHIR primitive, Coding, CodeableConcept, Quantity or Period to its System
// value. Uncertain results of DurationBetween/DifferenceBetween (partial
// dates) are Interval<Integer> values that comparison operators treat as
// CQL uncertainties.
package elm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/equitas/equitas/measures/elm/cql"
)

// LibraryIdentifier names a library; an empty Version matches any version.
type LibraryIdentifier struct {
	Name, Version string
}

func (id LibraryIdentifier) String() string {
	if id.Version == "" {
		return id.Name
	}
	return id.Name + "|" + id.Version
}

// LibrarySource finds libraries by identifier.
type LibrarySource interface {
	Library(ctx context.Context, id LibraryIdentifier) (*Library, error)
}

// ErrLibraryNotFound is returned (wrapped) by LibrarySource implementations.
var ErrLibraryNotFound = errors.New("elm: library not found")

// LibrarySet is an in-memory LibrarySource.
type LibrarySet struct {
	libs []*Library
}

// NewLibrarySet returns a LibrarySource over the given libraries.
func NewLibrarySet(libs ...*Library) *LibrarySet {
	return &LibrarySet{libs: libs}
}

// Add adds a library.
func (s *LibrarySet) Add(l *Library) { s.libs = append(s.libs, l) }

// Library implements LibrarySource: exact version match when id.Version is
// set, otherwise the last added library of that name.
func (s *LibrarySet) Library(_ context.Context, id LibraryIdentifier) (*Library, error) {
	var found *Library
	for _, l := range s.libs {
		if l.ID.Name != id.Name {
			continue
		}
		if id.Version == "" || l.ID.Version == id.Version {
			found = l
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %s", ErrLibraryNotFound, id)
	}
	return found, nil
}

// CodeSet is an expanded value set.
type CodeSet interface {
	// Contains reports whether system|code is a member (system "" matches any system).
	Contains(system, code string) bool
	// Codes lists the members (for ExpandValueSet).
	Codes() []cql.Code
}

// Terminology resolves value sets (by canonical URL and optional version)
// and code systems at compile time.
type Terminology interface {
	ValueSet(ctx context.Context, url, version string) (CodeSet, error)
}

// ErrValueSetNotFound is returned (wrapped) by Terminology implementations
// for unknown value sets.
var ErrValueSetNotFound = errors.New("elm: value set not found")

// DataSource gives one patient's data: all of the patient's resources of a
// FHIR resource type as JSON ("Patient" returns the patient itself).
// Resources outside the patient compartment that measures reference (e.g.
// Medication, Location) are requested by type as well.
type DataSource interface {
	Retrieve(ctx context.Context, resourceType string) ([]json.RawMessage, error)
}

// ProfileMode selects how a Retrieve's templateId (profile) filters data.
type ProfileMode uint8

const (
	// ProfileMetaTag keeps resources whose meta.profile lists the templateId
	// (base FHIR StructureDefinitions always match). This is what the eCQM
	// test data and fqm-execution assume.
	ProfileMetaTag ProfileMode = iota
	// ProfileIgnore keeps every resource of the data type.
	ProfileIgnore
	// ProfileInfer keeps resources tagged with the profile and, for untagged
	// resources, infers QI-Core profile membership from content (Condition
	// category, Observation category/code, negation profiles).
	ProfileInfer
)

// Options tune compilation and evaluation.
type Options struct {
	Profiles ProfileMode
	// AllowMissingValueSets makes unknown value sets compile to empty sets
	// instead of failing Compile.
	AllowMissingValueSets bool
	// TimezoneOffset is the evaluation offset in minutes east of UTC used
	// for Now/Today. DateTimes without an offset compare as UTC.
	TimezoneOffset int
	// Now overrides the clock for Now()/Today() (tests).
	Now func() time.Time
}

// Results holds the values of the root library's expression definitions.
type Results struct {
	names  []string
	values []cql.Value
}

// Names returns the definition names in library order.
func (r *Results) Names() []string { return r.names }

// Get returns the value of a definition and whether it exists.
func (r *Results) Get(name string) (cql.Value, bool) {
	for i, n := range r.names {
		if n == name {
			return r.values[i], true
		}
	}
	return nil, false
}

// Boolean returns a definition's value as a bool (null and non-booleans are false).
func (r *Results) Boolean(name string) bool {
	v, _ := r.Get(name)
	b, ok := v.(cql.Boolean)
	return ok && bool(b)
}
