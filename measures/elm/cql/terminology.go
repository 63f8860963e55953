package cql

import "github.com/equitas/equitas/measures/elm/fhirmodel"

// codesOf lists the codes carried by a value: Code, Concept, FHIR Coding,
// CodeableConcept, code primitive, or lists of those.
func codesOf(v Value, out []Code) []Code {
	switch x := v.(type) {
	case Code:
		return append(out, x)
	case *Concept:
		return append(out, x.Codes...)
	case String:
		return append(out, Code{Code: string(x)})
	case List:
		for _, e := range x {
			out = codesOf(e, out)
		}
		return out
	case *FHIR:
		if x == nil || x.Node == nil {
			return out
		}
		n := x.Node
		switch {
		case n.Kind == fhirmodel.String:
			return append(out, Code{Code: n.Str})
		case n.Kind == fhirmodel.Array:
			for _, e := range n.Vals {
				out = codesOf(&FHIR{Node: e, Type: x.Type}, out)
			}
			return out
		case n.Get("coding") != nil:
			for _, c := range n.Get("coding").Vals {
				if code, ok := codingToCode(c).(Code); ok {
					out = append(out, code)
				}
			}
			return out
		case n.Get("code") != nil:
			if code, ok := codingToCode(n).(Code); ok {
				out = append(out, code)
			}
		}
	}
	return out
}

// AnyCodeIn reports whether any code of v is in the set.
func AnyCodeIn(v Value, contains func(system, code string) bool) bool {
	// Fast path for FHIR data: walk the JSON without building Codes.
	switch x := v.(type) {
	case *FHIR:
		if x != nil {
			return nodeCodeIn(x.Node, contains)
		}
		return false
	case List:
		for _, e := range x {
			if f, ok := e.(*FHIR); ok {
				if f != nil && nodeCodeIn(f.Node, contains) {
					return true
				}
				continue
			}
			if AnyCodeIn(e, contains) {
				return true
			}
		}
		return false
	}
	var buf [4]Code
	for _, c := range codesOf(v, buf[:0]) {
		if contains(c.System, c.Code) {
			return true
		}
	}
	return false
}

func strOf(n *fhirmodel.Node) string {
	if n == nil {
		return ""
	}
	return n.Str
}

// nodeCodeIn tests a code, Coding, CodeableConcept or array of them.
func nodeCodeIn(n *fhirmodel.Node, contains func(system, code string) bool) bool {
	if n == nil {
		return false
	}
	switch n.Kind {
	case fhirmodel.String:
		return contains("", n.Str)
	case fhirmodel.Array:
		for _, e := range n.Vals {
			if nodeCodeIn(e, contains) {
				return true
			}
		}
		return false
	case fhirmodel.Object:
		if cs := n.Get("coding"); cs != nil {
			for _, c := range cs.Vals {
				if code := c.Get("code"); code != nil && contains(strOf(c.Get("system")), code.Str) {
					return true
				}
			}
			return false
		}
		if code := n.Get("code"); code != nil && code.Kind == fhirmodel.String {
			return contains(strOf(n.Get("system")), code.Str)
		}
	}
	return false
}

// InCodeSet is InValueSet / AnyInValueSet: null input → false? CQL: null
// code yields false for InValueSet.
func InCodeSet(v Value, contains func(system, code string) bool) Value {
	if v == nil {
		return Boolean(false)
	}
	return Boolean(AnyCodeIn(v, contains))
}

// CodesMatch reports whether any code of v matches any code of want
// (by code and system; exact also compares version when both have one).
func CodesMatch(v, want Value, exact bool) bool {
	var a, b [4]Code
	have := codesOf(v, a[:0])
	wants := codesOf(want, b[:0])
	for _, h := range have {
		for _, w := range wants {
			if h.Code == w.Code && (h.System == w.System || w.System == "") {
				if exact && h.Version != "" && w.Version != "" && h.Version != w.Version {
					continue
				}
				return true
			}
		}
	}
	return false
}

// DateInRange reports whether a date, dateTime or period value overlaps rng.
func DateInRange(v Value, rng *Interval) bool {
	switch v.(type) {
	case nil:
		return false
	case *Interval:
		b, _ := Overlaps(v, rng, PrecisionNone).(Boolean)
		return bool(b)
	}
	b, _ := In(v, rng, PrecisionNone).(Boolean)
	return bool(b)
}
