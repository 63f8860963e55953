package elm

import (
	"strings"

	"github.com/equitas/equitas/measures/elm/fhirmodel"

	"github.com/equitas/equitas/measures/elm/cql"
)

// Operator tables: ELM node type → implementation in package cql.
var unaryOps = map[string]func(cql.Value) cql.Value{
	"Not": cql.Not, "IsNull": cql.IsNull, "IsTrue": cql.IsTrue, "IsFalse": cql.IsFalse,
	"Negate": cql.Negate, "Abs": cql.Abs, "Ceiling": cql.Ceiling, "Floor": cql.Floor, "Truncate": cql.Truncate,
	"Ln": cql.Ln, "Exp": cql.Exp, "Predecessor": cql.Predecessor, "Successor": cql.Successor,
	"Precision": cql.PrecisionOf, "Length": cql.Length, "Upper": cql.Upper, "Lower": cql.Lower,
	"ToBoolean": cql.ToBoolean, "ToInteger": cql.ToInteger, "ToLong": cql.ToLong, "ToDecimal": cql.ToDecimal,
	"ToString": cql.ToString, "ToDate": cql.ToDate, "ToDateTime": cql.ToDateTime, "ToTime": cql.ToTime,
	"ToQuantity": cql.ToQuantity, "ToRatio": cql.ToRatio, "ToConcept": cql.ToConcept, "ToList": cql.ToList,
	"ToChars":           cql.ToChars,
	"ConvertsToBoolean": cql.ConvertsTo(cql.ToBoolean), "ConvertsToInteger": cql.ConvertsTo(cql.ToInteger),
	"ConvertsToLong": cql.ConvertsTo(cql.ToLong), "ConvertsToDecimal": cql.ConvertsTo(cql.ToDecimal),
	"ConvertsToString": cql.ConvertsTo(cql.ToString), "ConvertsToDate": cql.ConvertsTo(cql.ToDate),
	"ConvertsToDateTime": cql.ConvertsTo(cql.ToDateTime), "ConvertsToTime": cql.ConvertsTo(cql.ToTime),
	"ConvertsToQuantity": cql.ConvertsTo(cql.ToQuantity), "ConvertsToRatio": cql.ConvertsTo(cql.ToRatio),
	"DateFrom": cql.DateFrom, "TimeFrom": cql.TimeFrom, "TimezoneOffsetFrom": cql.TimezoneOffsetFrom, "TimezoneFrom": cql.TimezoneOffsetFrom,
	"Start": cql.Start, "End": cql.End, "PointFrom": cql.PointFrom, "Width": cql.Width, "Size": cql.Size,
	"Collapse": cql.CollapseOne, "Flatten": cql.Flatten, "Distinct": cql.Distinct, "SingletonFrom": cql.SingletonFrom,
	"Tail":  cql.Tail,
	"Count": cql.Count, "Sum": cql.Sum, "Min": cql.Min, "Max": cql.Max, "Avg": cql.Avg, "Median": cql.Median,
	"Mode": cql.Mode, "StdDev": cql.StdDev, "PopulationStdDev": cql.PopulationStdDev, "Variance": cql.Variance,
	"PopulationVariance": cql.PopulationVariance, "AllTrue": cql.AllTrue, "AnyTrue": cql.AnyTrue,
	"Product": cql.Product, "GeometricMean": cql.GeometricMean,
	"LowBoundary": nil, "HighBoundary": nil,
}

var binaryOps = map[string]func(a, b cql.Value) cql.Value{
	"Xor": cql.Xor, "Implies": cql.Implies,
	"Equal": cql.Equal, "NotEqual": cql.NotEqual, "Equivalent": cql.EquivalentV,
	"Add": cql.Add, "Subtract": cql.Subtract, "Multiply": cql.Multiply, "Divide": cql.Divide,
	"TruncatedDivide": cql.TruncatedDivide, "Modulo": cql.Modulo, "Power": cql.Power, "Log": cql.Log,
	"Concatenate": nil, "StartsWith": cql.StartsWith, "EndsWith": cql.EndsWith, "Matches": cql.Matches,
	"Indexer": cql.Indexer, "Skip": cql.Skip, "Take": cql.Take, "Times": cql.Times,
	"ConvertQuantity": cql.ConvertQuantity, "CanConvertQuantity": cql.CanConvertQuantity,
	"Expand": cql.ExpandOp, "Collapse": cql.Collapse,
	"LowBoundary": cql.LowBoundary, "HighBoundary": cql.HighBoundary,
}

var precisionOps = map[string]func(a, b cql.Value, p cql.Precision) cql.Value{
	"Less": cql.LessP, "Greater": cql.GreaterP, "LessOrEqual": cql.LessOrEqualP, "GreaterOrEqual": cql.GreaterOrEqualP,
	"SameAs": cql.SameAs, "SameOrBefore": cql.SameOrBefore, "SameOrAfter": cql.SameOrAfter,
	"Before": cql.Before, "After": cql.After, "Meets": cql.Meets, "MeetsBefore": cql.MeetsBefore, "MeetsAfter": cql.MeetsAfter,
	"Overlaps": cql.Overlaps, "OverlapsBefore": cql.OverlapsBefore, "OverlapsAfter": cql.OverlapsAfter,
	"Starts": cql.Starts, "Ends": cql.Ends, "During": cql.IncludedIn,
	"Includes": cql.Includes, "IncludedIn": cql.IncludedIn, "ProperIncludes": cql.ProperIncludes,
	"ProperIncludedIn": cql.ProperIncludedIn, "Contains": cql.Contains, "In": cql.In, "ProperContains": cql.ProperContains,
	"ProperIn":          cql.ProperIn,
	"DifferenceBetween": cql.DifferenceBetween, "DurationBetween": cql.DurationBetween,
	"Union": cql.UnionP, "Intersect": cql.IntersectP, "Except": cql.ExceptP,
}

// namedBinaryOps are binary operators whose operands are named fields.
var namedBinaryOps = map[string]struct {
	a, b string
	f    func(a, b cql.Value) cql.Value
}{
	"Split":          {"stringToSplit", "separator", cql.Split},
	"SplitOnMatches": {"stringToSplit", "separatorPattern", cql.SplitOnMatches},
	"IndexOf":        {"source", "element", cql.IndexOf},
	"PositionOf":     {"pattern", "string", func(p, s cql.Value) cql.Value { return cql.PositionOf(p, s, false) }},
	"LastPositionOf": {"pattern", "string", func(p, s cql.Value) cql.Value { return cql.PositionOf(p, s, true) }},
}

var naryOps = map[string]func([]cql.Value) cql.Value{
	"Concatenate": cql.Concatenate, "ReplaceMatches": cql.ReplaceMatches,
}

var sourceOps = map[string]func(cql.Value) cql.Value{
	"Count": cql.Count, "Sum": cql.Sum, "Min": cql.Min, "Max": cql.Max, "Avg": cql.Avg, "Median": cql.Median,
	"Mode": cql.Mode, "StdDev": cql.StdDev, "PopulationStdDev": cql.PopulationStdDev, "Variance": cql.Variance,
	"PopulationVariance": cql.PopulationVariance, "AllTrue": cql.AllTrue, "AnyTrue": cql.AnyTrue,
	"Product": cql.Product, "GeometricMean": cql.GeometricMean,
}

func init() {
	// Entries set to nil above are handled elsewhere; drop them so lookups miss.
	for k, v := range unaryOps {
		if v == nil {
			delete(unaryOps, k)
		}
	}
	for k, v := range binaryOps {
		if v == nil {
			delete(binaryOps, k)
		}
	}
	// Aggregates take "source", not "operand".
	for k := range sourceOps {
		delete(unaryOps, k)
	}
}

// nativeFunc implements FHIRHelpers' external functions.
func nativeFunc(lib, name string, arity int) func(c *Context, args []cql.Value) cql.Value {
	if !strings.HasPrefix(lib, "FHIRHelpers") {
		return nil
	}
	switch {
	case name == "hasValue" && arity == 1:
		return func(_ *Context, a []cql.Value) cql.Value {
			f, ok := a[0].(*cql.FHIR)
			return cql.Boolean(ok && f.Node != nil && f.Node.Kind != 0)
		}
	case name == "getValue" && arity == 1:
		return func(_ *Context, a []cql.Value) cql.Value { return cql.ToCQLValue(a[0]) }
	case name == "extension" && arity == 2:
		return func(_ *Context, a []cql.Value) cql.Value { return cql.Extensions(a[0], a[1], "extension") }
	case name == "modifierExtension" && arity == 2:
		return func(_ *Context, a []cql.Value) cql.Value { return cql.Extensions(a[0], a[1], "modifierExtension") }
	case name == "memberOf" && arity == 2:
		return func(c *Context, a []cql.Value) cql.Value {
			url, ok := cql.ToCQLValue(a[1]).(cql.String)
			if a[0] == nil || !ok {
				return nil
			}
			return cql.InCodeSet(a[0], c.valueSet(cql.ValueSet{ID: string(url)}).Contains)
		}
	case name == "conformsTo" && arity == 2:
		return func(_ *Context, a []cql.Value) cql.Value {
			r, ok := a[0].(*cql.FHIR)
			url, ok2 := cql.ToCQLValue(a[1]).(cql.String)
			if !ok || r == nil || !ok2 {
				return nil
			}
			if r.Type != nil && string(url) == "http://hl7.org/fhir/StructureDefinition/"+r.Type.Name {
				return cql.Boolean(true)
			}
			return cql.Boolean(hasProfile(r, string(url)))
		}
	case name == "resolve" && arity == 1:
		return func(c *Context, a []cql.Value) cql.Value {
			ref := a[0]
			if f, ok := ref.(*cql.FHIR); ok && f != nil && f.Type != nil && f.Type.Name == "Reference" {
				ref = cql.FHIRProperty(f, "reference")
			}
			s, ok := cql.ToCQLValue(ref).(cql.String)
			if !ok {
				return nil
			}
			return c.resolve(string(s))
		}
	case name == "reference" && arity == 1:
		return func(_ *Context, a []cql.Value) cql.Value {
			r, ok := a[0].(*cql.FHIR)
			if !ok || r == nil || r.ResourceType() == "" || r.ID() == "" {
				return nil
			}
			model := fhirmodel.R4()
			str := cql.NewFHIRInstance(model.Type("string"), []string{"value"}, []cql.Value{cql.String(r.ResourceType() + "/" + r.ID())})
			return cql.NewFHIRInstance(model.Type("Reference"), []string{"reference"}, []cql.Value{str})
		}
	}
	return nil
}

// systemFunc implements functions referenced without a library definition.
func systemFunc(name string, arity int) func(c *Context, args []cql.Value) cql.Value {
	return nil
}
