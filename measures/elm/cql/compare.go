package cql

import (
	"math"
	"strings"

	"github.com/equitas/equitas/measures/elm/ucum"
)

// Error is a CQL runtime error raised by an operator.
type Error struct{ Msg string }

func (e *Error) Error() string { return "cql: " + e.Msg }

func fail(msg string) { panic(&Error{Msg: msg}) }

// TypeName returns the CQL type name of a value.
func TypeName(v Value) string {
	switch x := v.(type) {
	case nil:
		return "Null"
	case Boolean:
		return "Boolean"
	case Integer:
		return "Integer"
	case Long:
		return "Long"
	case Decimal:
		return "Decimal"
	case String:
		return "String"
	case Date:
		return "Date"
	case DateTime:
		return "DateTime"
	case Time:
		return "Time"
	case Quantity:
		return "Quantity"
	case Ratio:
		return "Ratio"
	case Code:
		return "Code"
	case *Concept:
		return "Concept"
	case ValueSet:
		return "ValueSet"
	case CodeSystem:
		return "CodeSystem"
	case *Interval:
		return "Interval"
	case List:
		return "List"
	case *Tuple:
		return "Tuple"
	case *FHIR:
		if x.Type != nil {
			return "FHIR." + x.Type.Name
		}
		return "FHIR"
	}
	return "Unknown"
}

// IsSystemType scores whether v is of System type name (3 exact, 2 via
// subtype, 0 no).
func IsSystemType(v Value, name string) int {
	switch name {
	case "Any":
		return 2
	case "Vocabulary":
		switch v.(type) {
		case ValueSet, CodeSystem:
			return 2
		}
		return 0
	}
	if TypeName(v) == name {
		return 3
	}
	return 0
}

func rnd(f float64) float64 {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return f
	}
	return math.Round(f*1e8) / 1e8
}

// num extracts a numeric value for mixed Integer/Long/Decimal operations.
func num(v Value) (float64, bool) {
	switch x := v.(type) {
	case Integer:
		return float64(x), true
	case Long:
		return float64(x), true
	case Decimal:
		return float64(x), true
	}
	return 0, false
}

// promote converts Integer/Long operands to a common numeric type.
func promote(a, b Value) (Value, Value) {
	switch x := a.(type) {
	case Integer:
		switch b.(type) {
		case Long:
			return Long(x), b
		case Decimal:
			return Decimal(x), b
		case Quantity:
			return Quantity{Value: float64(x), Unit: "1"}, b
		}
	case Long:
		switch y := b.(type) {
		case Integer:
			return a, Long(y)
		case Decimal:
			return Decimal(x), b
		}
	case Decimal:
		switch y := b.(type) {
		case Integer:
			return a, Decimal(y)
		case Long:
			return a, Decimal(y)
		case Quantity:
			return Quantity{Value: float64(x), Unit: "1"}, b
		}
	case Quantity:
		switch y := b.(type) {
		case Integer:
			return a, Quantity{Value: float64(y), Unit: "1"}
		case Decimal:
			return a, Quantity{Value: float64(y), Unit: "1"}
		}
	case Date:
		if y, ok := b.(DateTime); ok {
			return x.ToDateTime(), y
		}
	case DateTime:
		if y, ok := b.(Date); ok {
			return a, y.ToDateTime()
		}
	}
	return a, b
}

func cmpOrdered[T int32 | int64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// quantityCompare compares two quantities converting units; ok false when
// the units are not comparable.
func quantityCompare(a, b Quantity) (int, bool) {
	if a.Unit == b.Unit || ucum.Normalize(a.Unit) == ucum.Normalize(b.Unit) {
		return cmpOrdered(rnd(a.Value), rnd(b.Value)), true
	}
	bv, err := ucum.Convert(b.Value, b.Unit, a.Unit)
	if err != nil {
		return 0, false
	}
	return cmpOrdered(rnd(a.Value), rnd(bv)), true
}

// Compare orders two non-null values of the same ordered type at precision
// p. ok is false when the comparison is uncertain or the values are not
// comparable (the CQL result is then null).
func Compare(a, b Value, p Precision) (int, bool) {
	if ia, ok := a.(infinity); ok {
		if ib, ok := b.(infinity); ok && ia == ib {
			return 0, true
		}
		if b == nil {
			return 0, false
		}
		if ia.neg {
			return -1, true
		}
		return 1, true
	}
	if ib, ok := b.(infinity); ok {
		if a == nil {
			return 0, false
		}
		if ib.neg {
			return 1, true
		}
		return -1, true
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case Integer:
		if y, ok := b.(Integer); ok {
			return cmpOrdered(int32(x), int32(y)), true
		}
	case Long:
		if y, ok := b.(Long); ok {
			return cmpOrdered(int64(x), int64(y)), true
		}
	case Decimal:
		if y, ok := b.(Decimal); ok {
			return cmpOrdered(rnd(float64(x)), rnd(float64(y))), true
		}
	case String:
		if y, ok := b.(String); ok {
			return strings.Compare(string(x), string(y)), true
		}
	case Quantity:
		if y, ok := b.(Quantity); ok {
			return quantityCompare(x, y)
		}
	case DateTime:
		if y, ok := b.(DateTime); ok {
			return CompareDateTime(x, y, p)
		}
	case Date:
		if y, ok := b.(Date); ok {
			return CompareDate(x, y, p)
		}
	case Time:
		if y, ok := b.(Time); ok {
			return CompareTime(x, y, p)
		}
	case Boolean:
		if y, ok := b.(Boolean); ok {
			bi := func(b Boolean) int32 {
				if b {
					return 1
				}
				return 0
			}
			return cmpOrdered(bi(x), bi(y)), true
		}
	case *Interval:
		// Uncertainty intervals (from DurationBetween) against points.
		if lo, ok1 := Compare(x.High, b, p); ok1 && lo < 0 {
			return -1, true
		}
		if hi, ok2 := Compare(x.Low, b, p); ok2 && hi > 0 {
			return 1, true
		}
		if y, ok := b.(*Interval); ok {
			if c, ok := Compare(x.High, y.Low, p); ok && c < 0 {
				return -1, true
			}
			if c, ok := Compare(x.Low, y.High, p); ok && c > 0 {
				return 1, true
			}
		}
		return 0, false
	}
	if y, ok := b.(*Interval); ok && a != nil {
		c, ok := Compare(y, a, p)
		return -c, ok
	}
	return 0, false
}

func cmpResult(a, b Value, p Precision, f func(int) bool) Value {
	if a == nil || b == nil {
		return nil
	}
	c, ok := Compare(a, b, p)
	if !ok {
		return nil
	}
	return Boolean(f(c))
}

// LessP is Less at precision p.
func LessP(a, b Value, p Precision) Value {
	return cmpResult(a, b, p, func(c int) bool { return c < 0 })
}

// GreaterP is Greater at precision p.
func GreaterP(a, b Value, p Precision) Value {
	return cmpResult(a, b, p, func(c int) bool { return c > 0 })
}

// LessOrEqualP is LessOrEqual at precision p.
func LessOrEqualP(a, b Value, p Precision) Value {
	return cmpResult(a, b, p, func(c int) bool { return c <= 0 })
}

// GreaterOrEqualP is GreaterOrEqual at precision p.
func GreaterOrEqualP(a, b Value, p Precision) Value {
	return cmpResult(a, b, p, func(c int) bool { return c >= 0 })
}

// Equal is CQL = (null when either side is null or uncertain).
func Equal(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case List:
		y, ok := b.(List)
		if !ok {
			return Boolean(false)
		}
		if len(x) != len(y) {
			return Boolean(false)
		}
		var res Value = Boolean(true)
		for i := range x {
			if x[i] == nil && y[i] == nil {
				continue
			}
			r := Equal(x[i], y[i])
			if r == nil {
				res = nil
				continue
			}
			if !bool(r.(Boolean)) {
				return Boolean(false)
			}
		}
		return res
	case *Tuple:
		y, ok := b.(*Tuple)
		if !ok || len(x.Names) != len(y.Names) {
			return Boolean(false)
		}
		var res Value = Boolean(true)
		for i, n := range x.Names {
			yv := y.Get(n)
			xv := x.Values[i]
			if xv == nil && yv == nil {
				continue
			}
			r := Equal(xv, yv)
			if r == nil {
				// A null element makes tuple equality unknown.
				return nil
			}
			if !bool(r.(Boolean)) {
				return Boolean(false)
			}
		}
		return res
	case *Interval:
		y, ok := b.(*Interval)
		if !ok {
			return Boolean(false)
		}
		lx, hx := closedBounds(x)
		ly, hy := closedBounds(y)
		return And(Equal(lx, ly), Equal(hx, hy))
	case Code:
		y, ok := b.(Code)
		if !ok {
			return Boolean(false)
		}
		return Boolean(x.Code == y.Code && x.System == y.System && x.Version == y.Version && x.Display == y.Display)
	case *Concept:
		y, ok := b.(*Concept)
		if !ok || len(x.Codes) != len(y.Codes) || x.Display != y.Display {
			return Boolean(false)
		}
		for i := range x.Codes {
			if x.Codes[i] != y.Codes[i] {
				return Boolean(false)
			}
		}
		return Boolean(true)
	case Quantity:
		y, ok := b.(Quantity)
		if !ok {
			return Boolean(false)
		}
		if isDuration(x.Unit) && isDuration(y.Unit) {
			xym, yym := calendarYearMonth(x.Unit), calendarYearMonth(y.Unit)
			// Years and months have no fixed length in days, and calendar
			// years/months differ from UCUM's definite 'a'/'mo'.
			if xym != yym || ((xym || yym) && isCalendarWord(x.Unit) != isCalendarWord(y.Unit)) {
				return nil
			}
		}
		c, ok := quantityCompare(x, y)
		if !ok {
			return nil
		}
		return Boolean(c == 0)
	case Ratio:
		y, ok := b.(Ratio)
		if !ok {
			return Boolean(false)
		}
		return And(Equal(x.Numerator, y.Numerator), Equal(x.Denominator, y.Denominator))
	case ValueSet:
		y, ok := b.(ValueSet)
		return Boolean(ok && x.ID == y.ID && x.Version == y.Version)
	case CodeSystem:
		y, ok := b.(CodeSystem)
		return Boolean(ok && x.ID == y.ID && x.Version == y.Version)
	case *FHIR:
		y, ok := b.(*FHIR)
		if !ok {
			xv := ToCQLValue(x)
			if _, still := xv.(*FHIR); still {
				return Boolean(false)
			}
			return Equal(xv, b)
		}
		return Boolean(x.Node == y.Node || nodeEqual(x.Node, y.Node))
	case Boolean, Integer, Long, Decimal, String, Date, DateTime, Time:
		if y, ok := b.(*FHIR); ok {
			return Equal(a, ToCQLValue(y))
		}
		if TypeName(a) != TypeName(b) {
			return Boolean(false)
		}
		c, ok := Compare(a, b, PrecisionNone)
		if !ok {
			return nil
		}
		return Boolean(c == 0)
	}
	return Boolean(false)
}

func isCalendarWord(u string) bool {
	switch strings.TrimSuffix(u, "s") {
	case "year", "month", "week", "day", "hour", "minute", "second", "millisecond":
		return true
	}
	return false
}

// calendarDays converts calendar durations for equivalence (1 year ~ 365
// days, 1 month ~ 30 days).
func calendarDays(q Quantity) (float64, bool) {
	f := map[string]float64{"year": 365, "month": 30, "week": 7, "day": 1}[strings.TrimSuffix(q.Unit, "s")]
	if f == 0 {
		return 0, false
	}
	return q.Value * f, true
}

func isDuration(u string) bool {
	_, ok := durationUnit(u)
	return ok
}

func calendarMonths(q Quantity) (float64, bool) {
	f := map[string]float64{"year": 12, "month": 1}[strings.TrimSuffix(q.Unit, "s")]
	if f == 0 {
		return 0, false
	}
	return q.Value * f, true
}

func calendarYearMonth(u string) bool {
	switch strings.TrimSuffix(u, "s") {
	case "year", "month", "a", "mo":
		return true
	}
	return false
}

// NotEqual is CQL !=.
func NotEqual(a, b Value) Value { return Not(Equal(a, b)) }

// EquivalentV is CQL ~ as a Value.
func EquivalentV(a, b Value) Value { return Boolean(Equivalent(a, b)) }

// Equivalent is CQL ~: never null; nulls are equivalent to each other;
// strings compare case- and whitespace-insensitively; codes by code and
// system; concepts when any codes are equivalent; decimals at the lesser
// precision.
func Equivalent(a, b Value) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case String:
		y, ok := b.(String)
		return ok && normStr(string(x)) == normStr(string(y))
	case Decimal:
		y, ok := b.(Decimal)
		if !ok {
			return false
		}
		return equivDecimal(float64(x), float64(y))
	case Code:
		switch y := b.(type) {
		case Code:
			return x.Code == y.Code && x.System == y.System
		case *Concept:
			return Equivalent(&Concept{Codes: []Code{x}}, y)
		}
		return false
	case *Concept:
		var ys []Code
		switch y := b.(type) {
		case *Concept:
			ys = y.Codes
		case Code:
			ys = []Code{y}
		default:
			return false
		}
		for _, c := range x.Codes {
			for _, d := range ys {
				if c.Code == d.Code && c.System == d.System {
					return true
				}
			}
		}
		return false
	case List:
		y, ok := b.(List)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equivalent(x[i], y[i]) {
				return false
			}
		}
		return true
	case *Tuple:
		y, ok := b.(*Tuple)
		if !ok || len(x.Names) != len(y.Names) {
			return false
		}
		for i, n := range x.Names {
			if !Equivalent(x.Values[i], y.Get(n)) {
				return false
			}
		}
		return true
	case *Interval:
		y, ok := b.(*Interval)
		if !ok {
			return false
		}
		lx, hx := closedBounds(x)
		ly, hy := closedBounds(y)
		return Equivalent(lx, ly) && Equivalent(hx, hy)
	case Quantity:
		y, ok := b.(Quantity)
		if !ok {
			return false
		}
		if mx, ok := calendarMonths(x); ok {
			if my, ok := calendarMonths(y); ok {
				return equivDecimal(mx, my)
			}
		}
		if dx, ok := calendarDays(x); ok {
			if dy, ok := calendarDays(y); ok {
				return equivDecimal(dx, dy)
			}
		}
		c, ok := quantityCompare(x, y)
		return ok && c == 0
	case DateTime, Date, Time:
		if TypeName(a) != TypeName(b) {
			return false
		}
		c, ok := Compare(a, b, PrecisionNone)
		return ok && c == 0
	case *FHIR:
		if y, ok := b.(*FHIR); ok {
			return nodeEqual(x.Node, y.Node)
		}
		return Equivalent(ToCQLValue(x), b)
	}
	if y, ok := b.(*FHIR); ok {
		return Equivalent(a, ToCQLValue(y))
	}
	r, _ := Equal(a, b).(Boolean)
	return bool(r)
}

func equivDecimal(x, y float64) bool {
	// Compare at the precision of the less precise operand.
	px, py := decimalPlaces(x), decimalPlaces(y)
	p := min(px, py)
	f := math.Pow(10, float64(p))
	return math.Round(x*f) == math.Round(y*f)
}

func decimalPlaces(f float64) int {
	f = rnd(f)
	for p := 0; p < 8; p++ {
		m := math.Pow(10, float64(p))
		if math.Abs(math.Round(f*m)-f*m) < 1e-9 {
			return p
		}
	}
	return 8
}

func normStr(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// SortCompare orders values for sorting: nulls first, then by Compare;
// incomparable values keep their order.
func SortCompare(a, b Value) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if fa, ok := a.(*FHIR); ok {
		a = ToCQLValue(fa)
	}
	if fb, ok := b.(*FHIR); ok {
		b = ToCQLValue(fb)
	}
	c, ok := Compare(a, b, PrecisionNone)
	if !ok {
		// Uncertain date comparisons: fall back to lexical order of the
		// fields that exist.
		if x, ok := a.(DateTime); ok {
			if y, ok := b.(DateTime); ok {
				return cmpOrdered(x.UTC().epochMillis(), y.UTC().epochMillis())
			}
		}
		return 0
	}
	return c
}
