package cql

import (
	"errors"
	"fmt"
	"math"
)

// DateFrom extracts the date of a DateTime.
func DateFrom(a Value) Value {
	switch x := ToCQLValue(a).(type) {
	case DateTime:
		p := x.Precision
		if p > Day {
			p = Day
		}
		return Date{Year: x.Year, Month: x.Month, Day: x.Day, Precision: p}
	case Date:
		return x
	}
	return nil
}

// TimeFrom extracts the time of a DateTime.
func TimeFrom(a Value) Value {
	x, ok := ToCQLValue(a).(DateTime)
	if !ok || x.Precision < Hour {
		return nil
	}
	return x.timeOf()
}

// TimezoneOffsetFrom returns the offset in hours.
func TimezoneOffsetFrom(a Value) Value {
	x, ok := ToCQLValue(a).(DateTime)
	if !ok || !x.HasOffset {
		return nil
	}
	return Decimal(float64(x.Offset) / 60)
}

// ComponentFrom extracts one component (year, month, ...).
func ComponentFrom(a Value, p Precision) Value {
	var d DateTime
	switch x := ToCQLValue(a).(type) {
	case DateTime:
		d = x
	case Date:
		d = x.ToDateTime()
	case Time:
		d = x.asDateTime()
		if p < Hour {
			return nil
		}
	default:
		return nil
	}
	if p > d.Precision {
		return nil
	}
	switch p {
	case Year:
		return Integer(d.Year)
	case Month:
		return Integer(d.Month)
	case Day:
		return Integer(d.Day)
	case Hour:
		return Integer(d.Hour)
	case Minute:
		return Integer(d.Minute)
	case Second:
		return Integer(d.Second)
	case Millisecond:
		return Integer(d.Millisecond)
	}
	return nil
}

// Construct builds a DateTime, Date or Time from components (trailing nulls
// set the precision).
func Construct(kind string, vals []Value, _ int) (Value, error) {
	ints := make([]int, len(vals))
	prec := 0
	var offset Value
	n := len(vals)
	if kind == "DateTime" {
		offset = vals[7]
		n = 7
	}
	for i := 0; i < n; i++ {
		if vals[i] == nil {
			break
		}
		iv, ok := vals[i].(Integer)
		if !ok {
			return nil, fmt.Errorf("cql: %s component is not an Integer", kind)
		}
		ints[i] = int(iv)
		prec = i + 1
	}
	if prec == 0 {
		return nil, nil
	}
	switch kind {
	case "Time":
		t := Time{Hour: ints[0], Minute: ints[1], Second: ints[2], Millisecond: ints[3], Precision: precFromIndex(prec + 2)}
		if t.Hour > 23 || t.Minute > 59 || t.Second > 59 || t.Millisecond > 999 || t.Hour < 0 {
			return nil, errors.New("cql: invalid Time")
		}
		return t, nil
	case "Date":
		d := DateTime{Year: ints[0], Month: ints[1], Day: ints[2], Precision: precFromIndex(prec - 1)}
		if !validDateTime(d) {
			return nil, errors.New("cql: invalid Date")
		}
		return Date{Year: d.Year, Month: d.Month, Day: d.Day, Precision: d.Precision}, nil
	}
	d := DateTime{Year: ints[0], Month: ints[1], Day: ints[2], Hour: ints[3], Minute: ints[4], Second: ints[5], Millisecond: ints[6], Precision: precFromIndex(prec - 1)}
	if offset != nil {
		f, ok := num(offset)
		if !ok {
			return nil, errors.New("cql: invalid timezone offset")
		}
		d.Offset, d.HasOffset = int(math.Round(f*60)), true
	}
	if !validDateTime(d) || d.Millisecond > 999 {
		return nil, errors.New("cql: invalid DateTime")
	}
	return d, nil
}

func toDT(v Value) (DateTime, bool, bool) {
	switch x := ToCQLValue(v).(type) {
	case DateTime:
		return x, true, false
	case Date:
		return x.ToDateTime(), true, false
	case Time:
		return x.asDateTime(), true, true
	}
	return DateTime{}, false, false
}

// wholeBetween counts whole periods of p from a to b (both full precision).
func wholeBetween(a, b DateTime, p Precision) int64 {
	a, b = a.UTC(), b.UTC()
	sign := int64(1)
	if b.epochMillis() < a.epochMillis() {
		a, b, sign = b, a, -1
	}
	af, bf := a.fields(), b.fields()
	restLess := func(from int) bool {
		for i := from; i < 7; i++ {
			if bf[i] != af[i] {
				return bf[i] < af[i]
			}
		}
		return false
	}
	var n int64
	switch p {
	case Year:
		n = int64(b.Year - a.Year)
		if restLess(1) {
			n--
		}
	case Month:
		n = int64((b.Year-a.Year)*12 + b.Month - a.Month)
		if restLess(2) {
			n--
		}
	default:
		n = (b.epochMillis() - a.epochMillis()) / unitMillis(p)
	}
	return n * sign
}

// rangeOf evaluates f, exactly when both values are known to the unit p
// (and, for dates, at least to the day); otherwise over the uncertainty of
// the partial values, whose missing fields range over their possible values
// down to full precision (day for Dates, millisecond for DateTimes).
func rangeOf(f func(a, b DateTime) int64, a, b DateTime, p, full Precision, times bool) Value {
	need := p
	if need == Week {
		need = Day
	}
	if !times {
		need = max(need, Day)
	}
	need = min(need, full)
	if a.Precision >= need && b.Precision >= need {
		return Integer(f(a, b))
	}
	// Uncertain: evaluate over the extremes the partial values allow.
	aLo, aHi := fillDateTime(a, full, false), fillDateTime(a, full, true)
	bLo, bHi := fillDateTime(b, full, false), fillDateTime(b, full, true)
	lo, hi := f(aHi, bLo), f(aLo, bHi)
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo == hi {
		return Integer(lo)
	}
	return &Interval{Low: Integer(lo), High: Integer(hi), LowClosed: true, HighClosed: true}
}

// DurationBetween counts whole calendar periods between two dates/times;
// uncertain results are Interval<Integer>.
func DurationBetween(a, b Value, p Precision) Value {
	x, ok1, times := toDT(a)
	y, ok2, _ := toDT(b)
	if !ok1 || !ok2 {
		return nil
	}
	if p == PrecisionNone {
		return nil
	}
	return rangeOf(func(a, b DateTime) int64 { return wholeBetween(a, b, p) }, x, y, p, fullPrecision(a, b), times)
}

// DifferenceBetween counts period boundaries crossed between two dates/times.
func DifferenceBetween(a, b Value, p Precision) Value {
	x, ok1, times := toDT(a)
	y, ok2, _ := toDT(b)
	if !ok1 || !ok2 || p == PrecisionNone {
		return nil
	}
	f := func(a, b DateTime) int64 {
		if p >= Hour {
			a, b = a.UTC(), b.UTC()
		}
		tp := p
		if tp == Week {
			tp = Day
		}
		at, bt := a.truncate(tp), b.truncate(tp)
		at.Precision, bt.Precision = Millisecond, Millisecond
		switch p {
		case Year:
			return int64(bt.Year - at.Year)
		case Month:
			return int64((bt.Year-at.Year)*12 + bt.Month - at.Month)
		case Week:
			// Week boundaries are Sundays.
			ad := int64(daysFromCivil(at.Year, at.Month, at.Day))
			bd := int64(daysFromCivil(bt.Year, bt.Month, bt.Day))
			// 1970-01-01 was a Thursday; shift so weeks start on Sunday.
			return floorDiv(bd+4, 7) - floorDiv(ad+4, 7)
		}
		return (bt.epochMillis() - at.epochMillis()) / unitMillis(p)
	}
	return rangeOf(f, x, y, p, fullPrecision(a, b), times)
}

func fullPrecision(a, b Value) Precision {
	_, da := ToCQLValue(a).(Date)
	_, db := ToCQLValue(b).(Date)
	if da && db {
		return Day
	}
	return Millisecond
}

// CalculateAgeAt is the age in whole periods at asOf.
func CalculateAgeAt(birth, asOf Value, p Precision) Value {
	if birth == nil || asOf == nil {
		return nil
	}
	if p == PrecisionNone {
		p = Year
	}
	return DurationBetween(birth, asOf, p)
}
