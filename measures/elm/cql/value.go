// Package cql holds the runtime values of the Clinical Quality Language and
// the operators on them, independent of how ELM is loaded or compiled.
//
// A CQL value is a Go value of one of the types below; CQL null is the Go nil
// interface (never a typed nil):
//
//	Boolean, Integer (int32), Long (int64), Decimal (float64, rounded to 8 places),
//	String, Date, DateTime, Time (partial precision, see Precision),
//	Quantity (value + UCUM or calendar unit), Ratio, Code, Concept,
//	ValueSet, CodeSystem, Interval, List, Tuple,
//	*FHIR (a FHIR resource, complex element or primitive, backed by parsed JSON).
//
// Operators follow CQL semantics: three-valued logic, null propagation,
// precision-aware date/time comparison returning null when uncertain.
package cql

import (
	"github.com/equitas/equitas/measures/elm/fhirmodel"
)

// Value is any CQL runtime value; nil is CQL null.
type Value interface{ cqlValue() }

// Boolean is System.Boolean.
type Boolean bool

// Integer is System.Integer (32-bit).
type Integer int32

// Long is System.Long (64-bit).
type Long int64

// Decimal is System.Decimal, kept as a float64 rounded to 8 decimal places
// after arithmetic.
type Decimal float64

// String is System.String.
type String string

// Quantity is System.Quantity: a decimal value with a UCUM unit or a CQL
// calendar duration unit ("year", "month", "day", ... singular or plural).
type Quantity struct {
	Value float64
	Unit  string
}

// Ratio is System.Ratio.
type Ratio struct {
	Numerator, Denominator Quantity
}

// Code is System.Code.
type Code struct {
	Code, System, Version, Display string
}

// Concept is System.Concept.
type Concept struct {
	Codes   []Code
	Display string
}

// ValueSet is a reference to a value set by canonical URL.
type ValueSet struct {
	ID, Version, Name string
}

// CodeSystem is a reference to a code system.
type CodeSystem struct {
	ID, Version, Name string
}

// Interval is Interval<T>. A nil bound with its Closed flag set is
// unbounded (the minimum/maximum of the point type: Interval[x, null] is
// "ongoing"); a nil bound with the flag clear is unknown.
type Interval struct {
	Low, High             Value
	LowClosed, HighClosed bool
}

// List is List<T>.
type List []Value

// Tuple is a CQL tuple (also used for Instance of non-FHIR classes).
// Names are shared between tuples built by the same expression.
type Tuple struct {
	Names  []string
	Values []Value
}

// Get returns the named element or nil.
func (t *Tuple) Get(name string) Value {
	for i, n := range t.Names {
		if n == name {
			return t.Values[i]
		}
	}
	return nil
}

// FHIR is a FHIR resource, complex element or primitive. Node is the parsed
// JSON of the element; for primitives Node is the JSON value and Ext the
// sibling "_name" object carrying id/extension. Type is the element's FHIR
// type (resource type for resources, "dateTime", "Period", ...).
type FHIR struct {
	Node *fhirmodel.Node
	Ext  *fhirmodel.Node
	Type *fhirmodel.Type
}

// ID returns a resource's logical id ("" when absent).
func (f *FHIR) ID() string {
	if f == nil || f.Node == nil {
		return ""
	}
	if n := f.Node.Get("id"); n != nil {
		return n.Str
	}
	return ""
}

// ResourceType returns the resourceType of a resource node.
func (f *FHIR) ResourceType() string {
	if f == nil || f.Node == nil {
		return ""
	}
	if n := f.Node.Get("resourceType"); n != nil {
		return n.Str
	}
	return ""
}

func (Boolean) cqlValue()    {}
func (Integer) cqlValue()    {}
func (Long) cqlValue()       {}
func (Decimal) cqlValue()    {}
func (String) cqlValue()     {}
func (Quantity) cqlValue()   {}
func (Ratio) cqlValue()      {}
func (Code) cqlValue()       {}
func (*Concept) cqlValue()   {}
func (ValueSet) cqlValue()   {}
func (CodeSystem) cqlValue() {}
func (*Interval) cqlValue()  {}
func (List) cqlValue()       {}
func (*Tuple) cqlValue()     {}
func (*FHIR) cqlValue()      {}
func (Date) cqlValue()       {}
func (DateTime) cqlValue()   {}
func (Time) cqlValue()       {}
