package measure

import (
	"strconv"
	"strings"

	"github.com/equitas/equitas/measures/elm/cql"
	"github.com/equitas/equitas/measures/elm/fhirmodel"
)

var nullValue = Value{Key: "null", Concept: Concept{Text: "null"}}

func boolValue(b bool) Value {
	if b {
		return Value{Key: "true", Concept: Concept{Text: "true"}}
	}
	return Value{Key: "false", Concept: Concept{Text: "false"}}
}

// Values reduces a CQL value to stratifier/supplemental-data values: codes
// and concepts keep their codings, lists yield one value per element,
// tuples their "code" element (SDE Payer) or their "codes" as one concept
// (SDE Race, SDE Ethnicity), other values their text. Null yields none.
func Values(v cql.Value) []Value {
	var out []Value
	var walk func(cql.Value)
	walk = func(v cql.Value) {
		switch x := v.(type) {
		case nil:
		case cql.List:
			for _, e := range x {
				walk(e)
			}
		case *cql.Tuple:
			if c := x.Get("code"); c != nil {
				walk(c)
				return
			}
			// SupplementalDataElements 3.x returns race and ethnicity as
			// Tuple{codes: List<Code>, display}: one value, a concept.
			if cs, ok := x.Get("codes").(cql.List); ok {
				concept := &cql.Concept{}
				for _, c := range cs {
					if code, ok := c.(cql.Code); ok {
						concept.Codes = append(concept.Codes, code)
					}
				}
				if d, ok := x.Get("display").(cql.String); ok {
					concept.Display = string(d)
				}
				if len(concept.Codes) > 0 || concept.Display != "" {
					walk(concept)
				}
				return
			}
			var parts []string
			for i, n := range x.Names {
				parts = append(parts, n+"="+text(x.Values[i]))
			}
			t := "{" + strings.Join(parts, ", ") + "}"
			out = append(out, Value{Key: "tuple:" + t, Concept: Concept{Text: t}})
		case cql.Code:
			out = append(out, codeValue([]Coding{{System: x.System, Version: x.Version, Code: x.Code, Display: x.Display}}, ""))
		case *cql.Concept:
			if x == nil {
				return
			}
			cs := make([]Coding, 0, len(x.Codes))
			for _, c := range x.Codes {
				cs = append(cs, Coding{System: c.System, Version: c.Version, Code: c.Code, Display: c.Display})
			}
			out = append(out, codeValue(cs, x.Display))
		case cql.Boolean:
			out = append(out, boolValue(bool(x)))
		case *cql.FHIR:
			if val, ok := fhirValue(x); ok {
				out = append(out, val)
			}
		default:
			t := text(v)
			out = append(out, Value{Key: "text:" + t, Concept: Concept{Text: t}})
		}
	}
	walk(v)
	return out
}

func codeValue(cs []Coding, display string) Value {
	keys := make([]string, 0, len(cs))
	for _, c := range cs {
		keys = append(keys, c.System+"|"+c.Code)
	}
	key := strings.Join(keys, ",")
	if key == "" {
		key = "text:" + display
	}
	return Value{Key: key, Concept: Concept{Coding: cs, Text: display}}
}

// fhirValue converts FHIR Coding, CodeableConcept, primitives and resources.
func fhirValue(f *cql.FHIR) (Value, bool) {
	n := f.Node
	if n == nil {
		return Value{}, false
	}
	typ := ""
	if f.Type != nil {
		typ = f.Type.Name
	}
	coding := func(c *fhirmodel.Node) Coding {
		s := func(k string) string {
			if v := c.Get(k); v != nil {
				return v.Str
			}
			return ""
		}
		return Coding{System: s("system"), Version: s("version"), Code: s("code"), Display: s("display")}
	}
	switch {
	case typ == "Coding":
		return codeValue([]Coding{coding(n)}, ""), true
	case typ == "CodeableConcept":
		var cs []Coding
		if arr := n.Get("coding"); arr != nil {
			for _, c := range arr.Vals {
				cs = append(cs, coding(c))
			}
		}
		t := ""
		if tx := n.Get("text"); tx != nil {
			t = tx.Str
		}
		return codeValue(cs, t), true
	case n.Kind == fhirmodel.String || n.Kind == fhirmodel.Number:
		return Value{Key: "text:" + n.Str, Concept: Concept{Text: n.Str}}, true
	case n.Kind == fhirmodel.Bool:
		return boolValue(n.Bool), true
	case f.ResourceType() != "":
		ref := f.ResourceType() + "/" + f.ID()
		return Value{Key: "ref:" + ref, Concept: Concept{Text: ref}}, true
	}
	return Value{}, false
}

func text(v cql.Value) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case cql.String:
		return string(x)
	case cql.Integer:
		return strconv.Itoa(int(x))
	case cql.Long:
		return strconv.FormatInt(int64(x), 10)
	case cql.Decimal:
		return strconv.FormatFloat(float64(x), 'f', -1, 64)
	case cql.Quantity:
		return strconv.FormatFloat(x.Value, 'f', -1, 64) + " '" + x.Unit + "'"
	case cql.Date:
		return x.String()
	case cql.DateTime:
		return x.String()
	case cql.Time:
		return x.String()
	case cql.Code:
		return x.System + "|" + x.Code
	case *cql.FHIR:
		if val, ok := fhirValue(x); ok {
			return val.Concept.Text + codesText(val.Concept.Coding)
		}
	}
	return "?"
}

func codesText(cs []Coding) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.System+"|"+c.Code)
	}
	return strings.Join(parts, ",")
}

// number reads a measure observation value.
func number(v cql.Value) (float64, bool) {
	switch x := v.(type) {
	case cql.Integer:
		return float64(x), true
	case cql.Long:
		return float64(x), true
	case cql.Decimal:
		return float64(x), true
	case cql.Quantity:
		return x.Value, true
	case *cql.FHIR:
		if x.Node != nil && x.Node.Kind == fhirmodel.Number {
			f, err := strconv.ParseFloat(x.Node.Str, 64)
			return f, err == nil
		}
	}
	return 0, false
}
