package cql

import "github.com/equitas/equitas/measures/elm/fhirmodel"

// Alloc hands out FHIR wrappers and list storage from reusable slabs, so
// navigating a patient's resources does not allocate per element. Values
// from an Alloc are valid until its Reset. The zero value is ready to use; a
// nil *Alloc allocates from the heap.
type Alloc struct {
	fhir     []FHIR
	fhirPool [][]FHIR
	fhirUsed int
	vals     []Value
	valPool  [][]Value
	valUsed  int
}

// Reset recycles every slab; values handed out before are invalid.
func (a *Alloc) Reset() {
	if a == nil {
		return
	}
	a.fhirUsed, a.valUsed = 0, 0
	a.fhir, a.vals = nil, nil
	if len(a.fhirPool) > 0 {
		a.fhir = a.fhirPool[0]
	}
	if len(a.valPool) > 0 {
		a.vals = a.valPool[0][:0]
	}
}

// NewFHIR returns a wrapper for a FHIR element.
func (a *Alloc) NewFHIR(n, ext *fhirmodel.Node, t *fhirmodel.Type) *FHIR {
	if a == nil {
		return &FHIR{Node: n, Ext: ext, Type: t}
	}
	if len(a.fhir) == 0 {
		a.fhirUsed++
		if a.fhirUsed < len(a.fhirPool) {
			a.fhir = a.fhirPool[a.fhirUsed]
		} else {
			slab := make([]FHIR, 512)
			a.fhirPool = append(a.fhirPool, slab)
			a.fhirUsed = len(a.fhirPool) - 1
			a.fhir = slab
		}
	}
	f := &a.fhir[0]
	a.fhir = a.fhir[1:]
	*f = FHIR{Node: n, Ext: ext, Type: t}
	return f
}

// list returns an empty list with capacity n from the slab.
func (a *Alloc) list(n int) List {
	if a == nil || n > 256 {
		return make(List, 0, n)
	}
	if cap(a.vals)-len(a.vals) < n {
		a.valUsed++
		if a.valUsed < len(a.valPool) {
			a.vals = a.valPool[a.valUsed][:0]
		} else {
			slab := make([]Value, 0, 2048)
			a.valPool = append(a.valPool, slab)
			a.valUsed = len(a.valPool) - 1
			a.vals = slab
		}
	}
	start := len(a.vals)
	a.vals = a.vals[:start+n]
	clear(a.vals[start:])
	return List(a.vals[start : start : start+n])
}
