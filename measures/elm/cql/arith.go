package cql

import (
	"fmt"
	"math"

	"github.com/equitas/equitas/measures/elm/ucum"
)

func boolOf(v Value) (bool, bool) {
	b, ok := v.(Boolean)
	return bool(b), ok
}

// And is three-valued conjunction.
func And(a, b Value) Value {
	x, xok := boolOf(a)
	y, yok := boolOf(b)
	if (xok && !x) || (yok && !y) {
		return Boolean(false)
	}
	if xok && yok {
		return Boolean(true)
	}
	return nil
}

// Or is three-valued disjunction.
func Or(a, b Value) Value {
	x, xok := boolOf(a)
	y, yok := boolOf(b)
	if (xok && x) || (yok && y) {
		return Boolean(true)
	}
	if xok && yok {
		return Boolean(false)
	}
	return nil
}

// Xor is three-valued exclusive or.
func Xor(a, b Value) Value {
	x, xok := boolOf(a)
	y, yok := boolOf(b)
	if !xok || !yok {
		return nil
	}
	return Boolean(x != y)
}

// Implies is three-valued implication.
func Implies(a, b Value) Value { return Or(Not(a), b) }

// Not is three-valued negation.
func Not(a Value) Value {
	if x, ok := boolOf(a); ok {
		return Boolean(!x)
	}
	return nil
}

// IsNull reports whether a is null.
func IsNull(a Value) Value { return Boolean(a == nil) }

// IsTrue reports whether a is true.
func IsTrue(a Value) Value { x, ok := boolOf(a); return Boolean(ok && x) }

// IsFalse reports whether a is false.
func IsFalse(a Value) Value { x, ok := boolOf(a); return Boolean(ok && !x) }

func intResult(v int64) Value {
	if v > math.MaxInt32 || v < math.MinInt32 {
		return nil
	}
	return Integer(v)
}

func decResult(f float64) Value {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e28 {
		return nil
	}
	return Decimal(rnd(f))
}

func longResult(a, b int64, r int64, overflow bool) Value {
	if overflow {
		return nil
	}
	return Long(r)
}

// uncertain returns the bounds of an Integer uncertainty (an
// Interval<Integer> produced by DurationBetween/DifferenceBetween) or of a
// plain number.
func uncertain(v Value) (lo, hi Value, ok bool) {
	switch x := v.(type) {
	case *Interval:
		if _, isInt := x.Low.(Integer); isInt {
			return x.Low, x.High, true
		}
	case Integer:
		return x, x, true
	}
	return nil, nil, false
}

func uncertainOp(a, b Value, op func(a, b Value) Value) (Value, bool) {
	_, ai := a.(*Interval)
	_, bi := b.(*Interval)
	if !ai && !bi {
		return nil, false
	}
	alo, ahi, ok1 := uncertain(a)
	blo, bhi, ok2 := uncertain(b)
	if !ok1 || !ok2 {
		return nil, false
	}
	cands := []Value{op(alo, blo), op(alo, bhi), op(ahi, blo), op(ahi, bhi)}
	lo, hi := cands[0], cands[0]
	for _, c := range cands[1:] {
		lo, hi = minV(lo, c), maxV(hi, c)
	}
	if lo == nil || hi == nil {
		return nil, true
	}
	if r, _ := Equal(lo, hi).(Boolean); r {
		return lo, true
	}
	return &Interval{Low: lo, High: hi, LowClosed: true, HighClosed: true}, true
}

// Add is CQL + on numbers, quantities, strings and date/time + quantity.
func Add(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	if r, ok := uncertainOp(a, b, Add); ok {
		return r
	}
	switch x := a.(type) {
	case DateTime, Date, Time:
		if q, ok := b.(Quantity); ok {
			return addDuration(x, q, 1)
		}
	case String:
		if y, ok := b.(String); ok {
			return x + y
		}
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case Integer:
		if y, ok := b.(Integer); ok {
			return intResult(int64(x) + int64(y))
		}
	case Long:
		if y, ok := b.(Long); ok {
			r := int64(x) + int64(y)
			return longResult(int64(x), int64(y), r, (r > int64(x)) != (int64(y) > 0))
		}
	case Decimal:
		if y, ok := b.(Decimal); ok {
			return decResult(float64(x) + float64(y))
		}
	case Quantity:
		if y, ok := b.(Quantity); ok {
			yv, err := ucum.Convert(y.Value, y.Unit, x.Unit)
			if err != nil {
				return nil
			}
			return Quantity{Value: rnd(x.Value + yv), Unit: x.Unit}
		}
	}
	return nil
}

// Subtract is CQL -.
func Subtract(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	if r, ok := uncertainOp(a, b, Subtract); ok {
		return r
	}
	switch x := a.(type) {
	case DateTime, Date, Time:
		if q, ok := b.(Quantity); ok {
			return addDuration(x, q, -1)
		}
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case Integer:
		if y, ok := b.(Integer); ok {
			return intResult(int64(x) - int64(y))
		}
	case Long:
		if y, ok := b.(Long); ok {
			r := int64(x) - int64(y)
			return longResult(int64(x), int64(y), r, (r < int64(x)) != (int64(y) > 0))
		}
	case Decimal:
		if y, ok := b.(Decimal); ok {
			return decResult(float64(x) - float64(y))
		}
	case Quantity:
		if y, ok := b.(Quantity); ok {
			yv, err := ucum.Convert(y.Value, y.Unit, x.Unit)
			if err != nil {
				return nil
			}
			return Quantity{Value: rnd(x.Value - yv), Unit: x.Unit}
		}
	}
	return nil
}

func combineUnits(a, b string, op byte) string {
	if op == '.' && a == b && a != "1" && a != "" {
		return a + "2"
	}
	if a == "1" || a == "" {
		if op == '*' {
			return b
		}
		if b == "1" || b == "" {
			return "1"
		}
		return "/" + b
	}
	if b == "1" || b == "" {
		return a
	}
	if op == '/' && a == b {
		return "1"
	}
	return a + string(op) + b
}

// Multiply is CQL *.
func Multiply(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	if r, ok := uncertainOp(a, b, Multiply); ok {
		return r
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case Integer:
		if y, ok := b.(Integer); ok {
			return intResult(int64(x) * int64(y))
		}
	case Long:
		if y, ok := b.(Long); ok {
			r := int64(x) * int64(y)
			return longResult(int64(x), int64(y), r, x != 0 && r/int64(x) != int64(y))
		}
	case Decimal:
		if y, ok := b.(Decimal); ok {
			return decResult(float64(x) * float64(y))
		}
	case Quantity:
		if y, ok := b.(Quantity); ok {
			u := combineUnits(x.Unit, y.Unit, '.')
			return Quantity{Value: rnd(x.Value * y.Value), Unit: u}
		}
	}
	return nil
}

// Divide is CQL / (always Decimal for numbers; null on division by zero).
func Divide(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	switch a.(type) {
	case Integer, Long:
		if f, ok := num(a); ok {
			a = Decimal(f)
		}
	}
	switch b.(type) {
	case Integer, Long:
		if f, ok := num(b); ok {
			b = Decimal(f)
		}
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case Decimal:
		if y, ok := b.(Decimal); ok {
			if y == 0 {
				return nil
			}
			return decResult(float64(x) / float64(y))
		}
	case Quantity:
		if y, ok := b.(Quantity); ok {
			if y.Value == 0 {
				return nil
			}
			if x.Unit != y.Unit && ucum.Comparable(x.Unit, y.Unit) {
				yv, _ := ucum.Convert(y.Value, y.Unit, x.Unit)
				return Quantity{Value: rnd(x.Value / yv), Unit: "1"}
			}
			return Quantity{Value: rnd(x.Value / y.Value), Unit: combineUnits(x.Unit, y.Unit, '/')}
		}
	}
	return nil
}

// TruncatedDivide is CQL div.
func TruncatedDivide(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	if _, ok := uncertainOp(a, b, Add); ok {
		fail("div is not defined for uncertain values")
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case Integer:
		if y, ok := b.(Integer); ok && y != 0 {
			return intResult(int64(x) / int64(y))
		}
	case Long:
		if y, ok := b.(Long); ok && y != 0 {
			return Long(x / y)
		}
	case Decimal:
		if y, ok := b.(Decimal); ok && y != 0 {
			return decResult(math.Trunc(float64(x) / float64(y)))
		}
	case Quantity:
		if y, ok := b.(Quantity); ok && y.Value != 0 {
			return Quantity{Value: math.Trunc(x.Value / y.Value), Unit: x.Unit}
		}
	}
	return nil
}

// Modulo is CQL mod.
func Modulo(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case Integer:
		if y, ok := b.(Integer); ok && y != 0 {
			return Integer(x % y)
		}
	case Long:
		if y, ok := b.(Long); ok && y != 0 {
			return Long(x % y)
		}
	case Decimal:
		if y, ok := b.(Decimal); ok && y != 0 {
			return decResult(math.Mod(float64(x), float64(y)))
		}
	case Quantity:
		if y, ok := b.(Quantity); ok && y.Value != 0 {
			return Quantity{Value: rnd(math.Mod(x.Value, y.Value)), Unit: x.Unit}
		}
	}
	return nil
}

// Power is CQL ^.
func Power(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	a, b = promote(a, b)
	switch x := a.(type) {
	case Integer:
		if y, ok := b.(Integer); ok {
			if y < 0 {
				return decResult(math.Pow(float64(x), float64(y)))
			}
			r := math.Pow(float64(x), float64(y))
			return intResult(int64(r))
		}
	case Long:
		if y, ok := b.(Long); ok {
			r := math.Pow(float64(x), float64(y))
			if math.Abs(r) > math.MaxInt64 {
				return nil
			}
			return Long(int64(r))
		}
	case Decimal:
		if y, ok := b.(Decimal); ok {
			return decResult(math.Pow(float64(x), float64(y)))
		}
	}
	return nil
}

// Log is CQL Log(x, base).
func Log(a, b Value) Value {
	x, ok1 := num(a)
	y, ok2 := num(b)
	if !ok1 || !ok2 || x <= 0 || y <= 0 || y == 1 {
		return nil
	}
	return decResult(math.Log(x) / math.Log(y))
}

// Ln is the natural logarithm.
func Ln(a Value) Value {
	x, ok := num(a)
	if !ok {
		return nil
	}
	if x < 0 {
		return nil
	}
	if x == 0 {
		fail("Ln(0) is undefined")
	}
	return decResult(math.Log(x))
}

// Exp is e^x.
func Exp(a Value) Value {
	x, ok := num(a)
	if !ok {
		return nil
	}
	r := decResult(math.Exp(x))
	if r == nil {
		fail("Exp overflow")
	}
	return r
}

// Negate is unary minus.
func Negate(a Value) Value {
	switch x := a.(type) {
	case Integer:
		return intResult(-int64(x))
	case Long:
		if x == math.MinInt64 {
			return nil
		}
		return -x
	case Decimal:
		return -x
	case Quantity:
		return Quantity{Value: -x.Value, Unit: x.Unit}
	}
	return nil
}

// Abs is absolute value.
func Abs(a Value) Value {
	switch x := a.(type) {
	case Integer:
		return intResult(int64(math.Abs(float64(x))))
	case Long:
		if x < 0 {
			return Negate(x)
		}
		return x
	case Decimal:
		return Decimal(math.Abs(float64(x)))
	case Quantity:
		return Quantity{Value: math.Abs(x.Value), Unit: x.Unit}
	}
	return nil
}

func toIntFloat(f float64) Value {
	if f > math.MaxInt32 || f < math.MinInt32 {
		return nil
	}
	return Integer(int32(f))
}

// Ceiling rounds up to an Integer.
func Ceiling(a Value) Value {
	x, ok := num(a)
	if !ok {
		return nil
	}
	return toIntFloat(math.Ceil(rnd(x)))
}

// Floor rounds down to an Integer.
func Floor(a Value) Value {
	x, ok := num(a)
	if !ok {
		return nil
	}
	return toIntFloat(math.Floor(rnd(x)))
}

// Truncate drops the fraction.
func Truncate(a Value) Value {
	x, ok := num(a)
	if !ok {
		return nil
	}
	return toIntFloat(math.Trunc(x))
}

// Round rounds half up (away from zero for .5) to precision places.
func Round(a, p Value) Value {
	x, ok := num(a)
	if !ok {
		return nil
	}
	places := 0
	if pi, ok := p.(Integer); ok {
		places = int(pi)
	}
	m := math.Pow(10, float64(places))
	v := math.Round(x*m) / m
	return decResult(v)
}

// Predecessor returns the next smaller value of the type.
func Predecessor(a Value) Value { return step(a, -1) }

// Successor returns the next larger value of the type.
func Successor(a Value) Value { return step(a, 1) }

func step(a Value, d int) Value {
	switch x := a.(type) {
	case nil:
		return nil
	case infinity:
		return x
	case Integer:
		r := intResult(int64(x) + int64(d))
		if r == nil {
			fail("Successor/Predecessor overflow")
		}
		return r
	case Long:
		return x + Long(d)
	case Decimal:
		return Decimal(float64(x) + float64(d)*1e-8)
	case Quantity:
		return Quantity{Value: x.Value + float64(d)*1e-8, Unit: x.Unit}
	case DateTime:
		r, ok := x.AddDuration(int64(d), x.Precision)
		if !ok {
			fail("DateTime out of range")
		}
		return r
	case Date:
		r, ok := x.ToDateTime().AddDuration(int64(d), x.Precision)
		if !ok {
			fail("Date out of range")
		}
		return Date{Year: r.Year, Month: r.Month, Day: r.Day, Precision: x.Precision}
	case Time:
		ms := int64(x.Hour)*3600000 + int64(x.Minute)*60000 + int64(x.Second)*1000 + int64(x.Millisecond)
		ms += int64(d) * unitMillis(x.Precision)
		if ms < 0 || ms >= 86400000 {
			fail("Time out of range")
		}
		return Time{Hour: int(ms / 3600000), Minute: int(ms / 60000 % 60), Second: int(ms / 1000 % 60), Millisecond: int(ms % 1000), Precision: x.Precision}
	}
	return nil
}

// MinMaxValue returns the minimum or maximum value of a System type.
func MinMaxValue(typ string, max bool) (Value, error) {
	switch typ {
	case "Integer":
		if max {
			return Integer(math.MaxInt32), nil
		}
		return Integer(math.MinInt32), nil
	case "Long":
		if max {
			return Long(math.MaxInt64), nil
		}
		return Long(math.MinInt64), nil
	case "Decimal":
		if max {
			return Decimal(99999999999999999999.99999999), nil
		}
		return Decimal(-99999999999999999999.99999999), nil
	case "DateTime":
		if max {
			return DateTime{Year: 9999, Month: 12, Day: 31, Hour: 23, Minute: 59, Second: 59, Millisecond: 999, Precision: Millisecond}, nil
		}
		return DateTime{Year: 1, Month: 1, Day: 1, Precision: Millisecond}, nil
	case "Date":
		if max {
			return Date{Year: 9999, Month: 12, Day: 31, Precision: Day}, nil
		}
		return Date{Year: 1, Month: 1, Day: 1, Precision: Day}, nil
	case "Time":
		if max {
			return Time{Hour: 23, Minute: 59, Second: 59, Millisecond: 999, Precision: Millisecond}, nil
		}
		return Time{Precision: Millisecond}, nil
	}
	return nil, fmt.Errorf("cql: MinValue/MaxValue of %s", typ)
}

// PrecisionOf returns the number of digits of precision of a value.
func PrecisionOf(a Value) Value {
	switch x := a.(type) {
	case Decimal:
		return Integer(decimalPlaces(float64(x)))
	case Date:
		return Integer([]int{0, 4, 6, 6, 8}[x.Precision])
	case DateTime:
		return Integer([]int{0, 4, 6, 6, 8, 10, 12, 14, 17}[x.Precision])
	case Time:
		return Integer([]int{0, 0, 0, 0, 0, 2, 4, 6, 9}[x.Precision])
	}
	return nil
}

// LowBoundary returns the least value within the precision of a.
func LowBoundary(a, p Value) Value { return boundary(a, p, false) }

// HighBoundary returns the greatest value within the precision of a.
func HighBoundary(a, p Value) Value { return boundary(a, p, true) }

func boundary(a, p Value, high bool) Value {
	pi, _ := p.(Integer)
	switch x := a.(type) {
	case Decimal:
		if p == nil {
			pi = 8
		}
		if pi < 0 || pi > 8 {
			return nil
		}
		places := decimalPlaces(float64(x))
		if int(pi) <= places {
			m := math.Pow(10, float64(pi))
			return Decimal(rnd(math.Trunc(float64(x)*m) / m))
		}
		if !high {
			return Decimal(rnd(float64(x)))
		}
		d := math.Pow(10, -float64(places)) - math.Pow(10, -float64(pi))
		if x < 0 {
			return Decimal(rnd(float64(x) - d))
		}
		return Decimal(rnd(float64(x) + d))
	case DateTime:
		target := Millisecond
		if p != nil {
			target = map[Integer]Precision{4: Year, 6: Month, 8: Day, 10: Hour, 12: Minute, 14: Second, 17: Millisecond}[pi]
			if target == PrecisionNone {
				return nil
			}
		}
		return fillDateTime(x, target, high)
	case Date:
		target := Day
		if p != nil {
			target = map[Integer]Precision{4: Year, 6: Month, 8: Day}[pi]
			if target == PrecisionNone {
				return nil
			}
		}
		d := fillDateTime(x.ToDateTime(), target, high)
		return Date{Year: d.Year, Month: d.Month, Day: d.Day, Precision: d.Precision}
	case Time:
		target := Millisecond
		if p != nil {
			target = map[Integer]Precision{2: Hour, 4: Minute, 6: Second, 9: Millisecond}[pi]
			if target == PrecisionNone {
				return nil
			}
		}
		d := fillDateTime(x.asDateTime(), target, high)
		return Time{Hour: d.Hour, Minute: d.Minute, Second: d.Second, Millisecond: d.Millisecond, Precision: d.Precision}
	}
	return nil
}

// fillDateTime extends d to precision target with the lowest or highest
// possible values of the missing fields.
func fillDateTime(d DateTime, target Precision, high bool) DateTime {
	if target <= d.Precision {
		return d.truncate(target)
	}
	r := d
	for p := d.Precision + 1; p <= target; p++ {
		switch p {
		case Month:
			r.Month = 1
			if high {
				r.Month = 12
			}
		case Day:
			r.Day = 1
			if high {
				r.Day = DaysInMonth(r.Year, r.Month)
			}
		case Hour:
			if high {
				r.Hour = 23
			}
		case Minute:
			if high {
				r.Minute = 59
			}
		case Second:
			if high {
				r.Second = 59
			}
		case Millisecond:
			if high {
				r.Millisecond = 999
			}
		}
	}
	r.Precision = target
	return r
}

func addDuration(v Value, q Quantity, sign int64) Value {
	unit, ok := durationUnit(q.Unit)
	if !ok {
		fail(fmt.Sprintf("cannot add quantity with unit %q to a date/time", q.Unit))
	}
	n := int64(q.Value)
	if float64(n) != q.Value {
		// Fractional durations: convert to the next finer unit where possible.
		switch unit {
		case Day, Hour, Minute, Second:
			ms := int64(math.Round(q.Value * float64(unitMillis(unit))))
			n, unit = ms, Millisecond
		case Week:
			n, unit = int64(math.Round(q.Value*7)), Day
		}
	}
	n *= sign
	switch x := v.(type) {
	case DateTime:
		r, ok := x.AddDuration(n, unit)
		if !ok {
			fail("DateTime arithmetic out of range")
		}
		return r
	case Date:
		if unit > Day {
			// Convert to days (truncating) per CQL.
			n = n * unitMillis(unit) / unitMillis(Day)
			unit = Day
		}
		r, ok := x.ToDateTime().AddDuration(n, unit)
		if !ok {
			fail("Date arithmetic out of range")
		}
		return Date{Year: r.Year, Month: r.Month, Day: r.Day, Precision: x.Precision}
	case Time:
		if unit < Hour {
			return nil
		}
		ms := int64(x.Hour)*3600000 + int64(x.Minute)*60000 + int64(x.Second)*1000 + int64(x.Millisecond)
		ms += n * unitMillis(unit)
		ms = floorMod(ms, 86400000)
		t := Time{Hour: int(ms / 3600000), Minute: int(ms / 60000 % 60), Second: int(ms / 1000 % 60), Millisecond: int(ms % 1000), Precision: x.Precision}
		return Time(t.asDateTime().truncate(x.Precision).timeOf())
	}
	return nil
}

func (d DateTime) timeOf() Time {
	return Time{Hour: d.Hour, Minute: d.Minute, Second: d.Second, Millisecond: d.Millisecond, Precision: d.Precision}
}

func durationUnit(u string) (Precision, bool) {
	switch u {
	case "a":
		return Year, true
	case "mo":
		return Month, true
	case "wk":
		return Week, true
	case "d":
		return Day, true
	case "h":
		return Hour, true
	case "min":
		return Minute, true
	case "s":
		return Second, true
	case "ms":
		return Millisecond, true
	}
	return ParsePrecision(u)
}
