package cql

import (
	"strconv"
	"strings"

	"github.com/equitas/equitas/measures/elm/fhirmodel"
)

// FHIRProperty navigates element name of a FHIR value: choice elements
// resolve through their typed JSON key (valueQuantity), primitives yield a
// *FHIR whose "value" property is the System value, list elements a List.
func FHIRProperty(f *FHIR, name string) Value {
	if f == nil || f.Node == nil && f.Ext == nil {
		return nil
	}
	if f.Type != nil && f.Type.Primitive() {
		switch name {
		case "value":
			return primitiveValue(f)
		case "id":
			if n := f.Ext.Get("id"); n != nil {
				return String(n.Str)
			}
			return nil
		case "extension":
			return (*Alloc)(nil).childList(f.Ext.Get("extension"), nil, f.Type.Field("extension").Type)
		}
		return nil
	}
	return FHIRFieldProperty(nil, f, name, f.Type.Field(name))
}

// FHIRFieldProperty is FHIRProperty with the element already resolved on
// f's type (fd may be nil for unknown elements); compiled property access
// caches fd per call site.
func FHIRFieldProperty(a *Alloc, f *FHIR, name string, fd *fhirmodel.Field) Value {
	if f == nil || f.Node == nil && f.Ext == nil {
		return nil
	}
	if f.Type != nil && f.Type.Primitive() {
		return FHIRProperty(f, name)
	}
	n := f.Node
	if n == nil || n.Kind != fhirmodel.Object {
		return nil
	}
	if fd == nil {
		// Unknown type or element: untyped navigation.
		c := n.Get(name)
		if c == nil {
			if f.Type == nil {
				return choiceGuess(n, name)
			}
			return nil
		}
		if c.Kind == fhirmodel.Array {
			return a.childList(c, n.Get("_"+name), nil)
		}
		return &FHIR{Node: c, Ext: n.Get("_" + name)}
	}
	if fd.Choices != nil {
		for i, k := range n.Keys {
			if len(k) > len(name) && strings.HasPrefix(k, name) {
				suf := k[len(name):]
				for _, ch := range fd.Choices {
					if ch.Suffix == suf {
						c := n.Vals[i]
						if w, ok := c.CacheWrap.(*FHIR); ok {
							return w
						}
						var ext *fhirmodel.Node
						if ch.Type.Primitive() {
							ext = n.Get("_" + k)
						}
						w := a.NewFHIR(c, ext, ch.Type)
						c.CacheWrap = w
						return w
					}
				}
			}
		}
		return nil
	}
	c := n.Get(name)
	if c != nil && c.CacheWrap != nil {
		return c.CacheWrap.(Value)
	}
	var ext *fhirmodel.Node
	if fd.Type.Primitive() {
		ext = n.Get("_" + name)
	}
	if c == nil && ext == nil {
		if fd.List {
			return List{}
		}
		return nil
	}
	var v Value
	if fd.List || (c != nil && c.Kind == fhirmodel.Array) {
		v = a.childList(c, ext, fd.Type)
	} else {
		v = a.NewFHIR(c, ext, fd.Type)
	}
	if c != nil {
		c.CacheWrap = v
	}
	return v
}

func choiceGuess(n *fhirmodel.Node, name string) Value {
	for i, k := range n.Keys {
		if len(k) > len(name) && strings.HasPrefix(k, name) && k[len(name)] >= 'A' && k[len(name)] <= 'Z' {
			return &FHIR{Node: n.Vals[i]}
		}
	}
	return nil
}

func (a *Alloc) childList(c, ext *fhirmodel.Node, t *fhirmodel.Type) Value {
	if c != nil && c.Kind != fhirmodel.Array {
		return append(a.list(1), a.NewFHIR(c, ext, t))
	}
	var cn int
	if c != nil {
		cn = len(c.Vals)
	}
	if ext != nil && ext.Kind == fhirmodel.Array && len(ext.Vals) > cn {
		cn = len(ext.Vals)
	}
	out := a.list(cn)
	for i := 0; i < cn; i++ {
		var v, e *fhirmodel.Node
		if c != nil && i < len(c.Vals) {
			v = c.Vals[i]
		}
		if ext != nil && ext.Kind == fhirmodel.Array && i < len(ext.Vals) {
			e = ext.Vals[i]
		}
		if v != nil && v.Kind == fhirmodel.Null {
			v = nil
		}
		if e != nil && e.Kind == fhirmodel.Null {
			e = nil
		}
		if v == nil && e == nil {
			continue
		}
		out = append(out, a.NewFHIR(v, e, t))
	}
	return out
}

// primitiveValue converts a FHIR primitive's JSON value to its System value.
func primitiveValue(f *FHIR) Value {
	n := f.Node
	if n == nil {
		return nil
	}
	if n.CacheValue != nil {
		if _, isNull := n.CacheValue.(nullMarker); isNull {
			return nil
		}
		return n.CacheValue.(Value)
	}
	v := convertPrimitive(f)
	if v == nil {
		n.CacheValue = nullMarker{}
	} else {
		n.CacheValue = v
	}
	return v
}

// nullMarker caches a primitive whose value does not convert.
type nullMarker struct{}

func convertPrimitive(f *FHIR) Value {
	n := f.Node
	switch n.Kind {
	case fhirmodel.Bool:
		return Boolean(n.Bool)
	case fhirmodel.Number:
		switch f.Type.Name {
		case "integer", "positiveInt", "unsignedInt":
			i, err := strconv.ParseInt(n.Str, 10, 32)
			if err != nil {
				return nil
			}
			return Integer(i)
		case "integer64":
			i, err := strconv.ParseInt(n.Str, 10, 64)
			if err != nil {
				return nil
			}
			return Long(i)
		}
		d, err := strconv.ParseFloat(n.Str, 64)
		if err != nil {
			return nil
		}
		return Decimal(d)
	case fhirmodel.String:
		switch f.Type.Name {
		case "date":
			if d, err := ParseDate(n.Str); err == nil {
				return d
			}
			return nil
		case "dateTime", "instant":
			if d, err := ParseDateTime(n.Str); err == nil {
				return d
			}
			return nil
		case "time":
			if t, err := ParseTime(n.Str); err == nil {
				return t
			}
			return nil
		case "decimal":
			if d, err := strconv.ParseFloat(n.Str, 64); err == nil {
				return Decimal(d)
			}
			return nil
		}
		return String(n.Str)
	}
	return nil
}

// ToCQLValue converts FHIR primitives to System values (other values are
// returned unchanged); it is how FHIR values take part in System operators.
func ToCQLValue(v Value) Value {
	f, ok := v.(*FHIR)
	if !ok || f == nil {
		return v
	}
	if f.Type == nil {
		if f.Node == nil {
			return nil
		}
		switch f.Node.Kind {
		case fhirmodel.String:
			return String(f.Node.Str)
		case fhirmodel.Bool:
			return Boolean(f.Node.Bool)
		case fhirmodel.Number:
			d, _ := strconv.ParseFloat(f.Node.Str, 64)
			return Decimal(d)
		}
		return v
	}
	if f.Type.Primitive() {
		return primitiveValue(f)
	}
	switch f.Type.Name {
	case "Coding":
		return codingToCode(f.Node)
	case "CodeableConcept":
		c := &Concept{}
		if cs := f.Node.Get("coding"); cs != nil {
			for _, cn := range cs.Vals {
				if code, ok := codingToCode(cn).(Code); ok {
					c.Codes = append(c.Codes, code)
				}
			}
		}
		if t := f.Node.Get("text"); t != nil {
			c.Display = t.Str
		}
		return c
	case "Quantity", "Age", "Duration", "Count", "Distance", "SimpleQuantity", "MoneyQuantity":
		vn := f.Node.Get("value")
		if vn == nil {
			return nil
		}
		val, _ := strconv.ParseFloat(vn.Str, 64)
		unit := "1"
		if c := f.Node.Get("code"); c != nil {
			unit = c.Str
		} else if u := f.Node.Get("unit"); u != nil {
			unit = u.Str
		}
		return Quantity{Value: val, Unit: unit}
	case "Period":
		var lo, hi Value
		if s := f.Node.Get("start"); s != nil {
			if d, err := ParseDateTime(s.Str); err == nil {
				lo = d
			}
		}
		if e := f.Node.Get("end"); e != nil {
			if d, err := ParseDateTime(e.Str); err == nil {
				hi = d
			}
		}
		return &Interval{Low: lo, High: hi, LowClosed: lo != nil, HighClosed: true}
	}
	return v
}

func codingToCode(n *fhirmodel.Node) Value {
	if n == nil {
		return nil
	}
	if code, ok := n.CacheValue.(Code); ok {
		return code
	}
	c := Code{}
	if x := n.Get("code"); x != nil {
		c.Code = x.Str
	}
	if x := n.Get("system"); x != nil {
		c.System = x.Str
	}
	if x := n.Get("version"); x != nil {
		c.Version = x.Str
	}
	if x := n.Get("display"); x != nil {
		c.Display = x.Str
	}
	var v Value = c
	n.CacheValue = v
	return v
}

// SystemProperty reads a property of a System structured value.
func SystemProperty(v Value, name string) Value {
	s := func(x string) Value {
		if x == "" {
			return nil
		}
		return String(x)
	}
	switch x := v.(type) {
	case *Tuple:
		return x.Get(name)
	case Code:
		switch name {
		case "code":
			return s(x.Code)
		case "system":
			return s(x.System)
		case "version":
			return s(x.Version)
		case "display":
			return s(x.Display)
		}
	case *Concept:
		switch name {
		case "codes":
			out := make(List, len(x.Codes))
			for i, c := range x.Codes {
				out[i] = c
			}
			return out
		case "display":
			return s(x.Display)
		}
	case Quantity:
		switch name {
		case "value":
			return Decimal(x.Value)
		case "unit":
			return s(x.Unit)
		}
	case Ratio:
		switch name {
		case "numerator":
			return x.Numerator
		case "denominator":
			return x.Denominator
		}
	case *Interval:
		switch name {
		case "low":
			return x.Low
		case "high":
			return x.High
		case "lowClosed":
			return Boolean(x.LowClosed)
		case "highClosed":
			return Boolean(x.HighClosed)
		}
	case ValueSet:
		switch name {
		case "id":
			return s(x.ID)
		case "version":
			return s(x.Version)
		case "name":
			return s(x.Name)
		}
	case CodeSystem:
		switch name {
		case "id":
			return s(x.ID)
		case "version":
			return s(x.Version)
		case "name":
			return s(x.Name)
		}
	}
	return nil
}

// InstanceBuilder returns a constructor for System class instances.
func InstanceBuilder(class string) func(names []string, vals []Value) Value {
	get := func(names []string, vals []Value, k string) Value {
		for i, n := range names {
			if n == k {
				return vals[i]
			}
		}
		return nil
	}
	str := func(v Value) string { s, _ := v.(String); return string(s) }
	switch class {
	case "Code":
		return func(n []string, v []Value) Value {
			return Code{Code: str(get(n, v, "code")), System: str(get(n, v, "system")), Version: str(get(n, v, "version")), Display: str(get(n, v, "display"))}
		}
	case "Concept":
		return func(n []string, v []Value) Value {
			c := &Concept{Display: str(get(n, v, "display"))}
			if l, ok := get(n, v, "codes").(List); ok {
				for _, e := range l {
					if code, ok := e.(Code); ok {
						c.Codes = append(c.Codes, code)
					}
				}
			}
			return c
		}
	case "Quantity":
		return func(n []string, v []Value) Value {
			val, ok := num(get(n, v, "value"))
			if !ok {
				return nil
			}
			u := str(get(n, v, "unit"))
			if u == "" {
				u = "1"
			}
			return Quantity{Value: val, Unit: u}
		}
	case "Ratio":
		return func(n []string, v []Value) Value {
			nq, ok1 := get(n, v, "numerator").(Quantity)
			dq, ok2 := get(n, v, "denominator").(Quantity)
			if !ok1 || !ok2 {
				return nil
			}
			return Ratio{Numerator: nq, Denominator: dq}
		}
	case "ValueSet":
		return func(n []string, v []Value) Value {
			return ValueSet{ID: str(get(n, v, "id")), Version: str(get(n, v, "version")), Name: str(get(n, v, "name"))}
		}
	case "CodeSystem":
		return func(n []string, v []Value) Value {
			return CodeSystem{ID: str(get(n, v, "id")), Version: str(get(n, v, "version")), Name: str(get(n, v, "name"))}
		}
	case "Tuple":
		return func(n []string, v []Value) Value { return &Tuple{Names: n, Values: v} }
	}
	return nil
}

// NewFHIRInstance builds a FHIR element from element values (FHIR values
// keep their JSON; System values are written as JSON primitives).
func NewFHIRInstance(t *fhirmodel.Type, names []string, vals []Value) Value {
	n := &fhirmodel.Node{Kind: fhirmodel.Object}
	for i, name := range names {
		jn := toNode(vals[i])
		if jn == nil {
			continue
		}
		n.Keys = append(n.Keys, name)
		n.Vals = append(n.Vals, jn)
	}
	if t != nil && t.Primitive() {
		return &FHIR{Node: n.Get("value"), Type: t}
	}
	return &FHIR{Node: n, Type: t}
}

func toNode(v Value) *fhirmodel.Node {
	switch x := v.(type) {
	case nil:
		return nil
	case *FHIR:
		if x.Node == nil {
			return nil
		}
		return x.Node
	case Boolean:
		return &fhirmodel.Node{Kind: fhirmodel.Bool, Bool: bool(x)}
	case Integer, Long, Decimal:
		return &fhirmodel.Node{Kind: fhirmodel.Number, Str: ToStringValue(x)}
	case List:
		n := &fhirmodel.Node{Kind: fhirmodel.Array}
		for _, e := range x {
			if c := toNode(e); c != nil {
				n.Vals = append(n.Vals, c)
			}
		}
		return n
	}
	s := ToStringValue(v)
	return &fhirmodel.Node{Kind: fhirmodel.String, Str: s}
}

// Extensions returns the extensions (or modifierExtensions) of an element
// with the given url.
func Extensions(el, url Value, key string) Value {
	f, ok := el.(*FHIR)
	u := ToCQLValue(url)
	us, _ := u.(String)
	if !ok || f == nil {
		return nil
	}
	var exts Value
	if f.Type != nil && f.Type.Primitive() {
		exts = FHIRProperty(f, "extension")
	} else {
		exts = FHIRProperty(f, key)
	}
	lst, _ := exts.(List)
	out := List{}
	for _, e := range lst {
		ef, _ := e.(*FHIR)
		if ef == nil || ef.Node == nil {
			continue
		}
		if un := ef.Node.Get("url"); un != nil && un.Str == string(us) {
			out = append(out, e)
		}
	}
	return out
}

func nodeEqual(a, b *fhirmodel.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Kind != b.Kind || a.Str != b.Str || a.Bool != b.Bool || len(a.Vals) != len(b.Vals) {
		return false
	}
	for i := range a.Vals {
		if a.Kind == fhirmodel.Object && a.Keys[i] != b.Keys[i] {
			return false
		}
		if !nodeEqual(a.Vals[i], b.Vals[i]) {
			return false
		}
	}
	return true
}

// Children returns the direct child elements (deep: all descendants) of a
// FHIR element or tuple, in document order.
func Children(v Value, deep bool) Value {
	if v == nil {
		return nil
	}
	out := List{}
	var walk func(v Value)
	walk = func(v Value) {
		var kids []Value
		switch x := v.(type) {
		case *FHIR:
			if x == nil || x.Node == nil || x.Node.Kind != fhirmodel.Object {
				return
			}
			for _, k := range x.Node.Keys {
				if k == "resourceType" || strings.HasPrefix(k, "_") {
					continue
				}
				switch c := FHIRProperty(x, k).(type) {
				case nil:
				case List:
					kids = append(kids, c...)
				default:
					kids = append(kids, c)
				}
			}
		case *Tuple:
			for _, e := range x.Values {
				if e != nil {
					kids = append(kids, e)
				}
			}
		case List:
			for _, e := range x {
				walk(e)
			}
			return
		}
		for _, k := range kids {
			out = append(out, k)
			if deep {
				walk(k)
			}
		}
	}
	walk(v)
	return out
}
