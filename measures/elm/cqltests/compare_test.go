package cqltests

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/equitas/equitas/measures/elm/cql"
)

// sameValue reports whether an expression's result matches the suite's
// expected output, and if not, why. It is written independently of the
// engine's own Equal/Equivalent operators so that a bug there cannot hide a
// wrong result. The rules are those the suite intends:
//
//   - null matches only null;
//   - types must agree (Integer 3 does not match Decimal 3.0, nor Long 3L);
//   - decimals match numerically (1.0 matches 1.00), quantities by value and
//     unit, with '1' the default unit and calendar units singular or plural;
//   - lists match element by element in order, tuples element by element by
//     name, intervals by bounds after closing open bounds of discrete point
//     types (Interval[1, 5) matches Interval[1, 4]);
//   - Date, DateTime and Time match when precision and every component agree,
//     DateTimes of hour precision or finer being compared in UTC.
func sameValue(got, want cql.Value) (bool, string) {
	if got == nil || want == nil {
		if got == nil && want == nil {
			return true, ""
		}
		return false, "null mismatch"
	}
	if tg, tw := typeName(got), typeName(want); tg != tw {
		return false, fmt.Sprintf("type %s, want %s", tg, tw)
	}
	switch w := want.(type) {
	case cql.Boolean, cql.Integer, cql.Long, cql.String:
		if got != want {
			return false, "value differs"
		}
		return true, ""
	case cql.Decimal:
		if !sameDecimal(float64(got.(cql.Decimal)), float64(w)) {
			return false, "value differs"
		}
		return true, ""
	case cql.Quantity:
		return sameQuantity(got.(cql.Quantity), w)
	case cql.Ratio:
		g := got.(cql.Ratio)
		if ok, why := sameQuantity(g.Numerator, w.Numerator); !ok {
			return false, "numerator: " + why
		}
		if ok, why := sameQuantity(g.Denominator, w.Denominator); !ok {
			return false, "denominator: " + why
		}
		return true, ""
	case cql.Code:
		g := got.(cql.Code)
		if g.Code != w.Code || g.System != w.System || g.Version != w.Version {
			return false, "code differs"
		}
		return true, ""
	case *cql.Concept:
		g := got.(*cql.Concept)
		if len(g.Codes) != len(w.Codes) {
			return false, "number of codes differs"
		}
		for i := range w.Codes {
			if ok, why := sameValue(g.Codes[i], w.Codes[i]); !ok {
				return false, fmt.Sprintf("code %d: %s", i, why)
			}
		}
		return true, ""
	case cql.Date:
		g := got.(cql.Date)
		if g.Precision != w.Precision {
			return false, fmt.Sprintf("precision %s, want %s", g.Precision, w.Precision)
		}
		if g != w {
			return false, "value differs"
		}
		return true, ""
	case cql.DateTime:
		return sameDateTime(got.(cql.DateTime), w)
	case cql.Time:
		g := got.(cql.Time)
		if g.Precision != w.Precision {
			return false, fmt.Sprintf("precision %s, want %s", g.Precision, w.Precision)
		}
		if g != w {
			return false, "value differs"
		}
		return true, ""
	case *cql.Interval:
		return sameInterval(got.(*cql.Interval), w)
	case cql.List:
		g := got.(cql.List)
		if len(g) != len(w) {
			return false, fmt.Sprintf("%d elements, want %d", len(g), len(w))
		}
		for i := range w {
			if ok, why := sameValue(g[i], w[i]); !ok {
				return false, fmt.Sprintf("element %d: %s", i, why)
			}
		}
		return true, ""
	case *cql.Tuple:
		g := got.(*cql.Tuple)
		gn, wn := sortedNames(g), sortedNames(w)
		if strings.Join(gn, ",") != strings.Join(wn, ",") {
			return false, fmt.Sprintf("elements {%s}, want {%s}", strings.Join(gn, ", "), strings.Join(wn, ", "))
		}
		for _, n := range wn {
			if ok, why := sameValue(g.Get(n), w.Get(n)); !ok {
				return false, fmt.Sprintf("element %s: %s", n, why)
			}
		}
		return true, ""
	}
	return false, fmt.Sprintf("cannot compare %s values", typeName(want))
}

func typeName(v cql.Value) string {
	switch v.(type) {
	case nil:
		return "null"
	case cql.Boolean:
		return "Boolean"
	case cql.Integer:
		return "Integer"
	case cql.Long:
		return "Long"
	case cql.Decimal:
		return "Decimal"
	case cql.String:
		return "String"
	case cql.Quantity:
		return "Quantity"
	case cql.Ratio:
		return "Ratio"
	case cql.Code:
		return "Code"
	case *cql.Concept:
		return "Concept"
	case cql.Date:
		return "Date"
	case cql.DateTime:
		return "DateTime"
	case cql.Time:
		return "Time"
	case *cql.Interval:
		return "Interval"
	case cql.List:
		return "List"
	case *cql.Tuple:
		return "Tuple"
	case cql.ValueSet:
		return "ValueSet"
	case cql.CodeSystem:
		return "CodeSystem"
	case *cql.FHIR:
		return "FHIR"
	}
	return fmt.Sprintf("%T", v)
}

// sameDecimal compares decimals at the suite's scale of 8 places; the
// relative term only matters for magnitudes where float64 has fewer digits.
func sameDecimal(a, b float64) bool {
	d := math.Abs(a - b)
	return d < 1e-10 || d <= 1e-15*math.Max(math.Abs(a), math.Abs(b))
}

func sameQuantity(g, w cql.Quantity) (bool, string) {
	if !sameDecimal(g.Value, w.Value) {
		return false, "value differs"
	}
	if normUnit(g.Unit) != normUnit(w.Unit) {
		return false, fmt.Sprintf("unit '%s', want '%s'", g.Unit, w.Unit)
	}
	return true, ""
}

func normUnit(u string) string {
	switch u {
	case "", "1":
		return "1"
	case "years", "months", "weeks", "days", "hours", "minutes", "seconds", "milliseconds":
		return strings.TrimSuffix(u, "s")
	}
	return u
}

func sortedNames(t *cql.Tuple) []string {
	n := append([]string(nil), t.Names...)
	sort.Strings(n)
	return n
}

func sameDateTime(g, w cql.DateTime) (bool, string) {
	if g.Precision != w.Precision {
		return false, fmt.Sprintf("precision %s, want %s", g.Precision, w.Precision)
	}
	if w.Precision >= cql.Hour {
		gt, wt := dateTimeInstant(g), dateTimeInstant(w)
		if !gt.Equal(wt) {
			return false, "instant differs"
		}
		return true, ""
	}
	if g.Year != w.Year || g.Month != w.Month || g.Day != w.Day {
		return false, "value differs"
	}
	return true, ""
}

// dateTimeInstant places a DateTime of at least hour precision on the time
// line; a DateTime without an offset is taken at UTC, the evaluation offset
// the harness uses.
func dateTimeInstant(d cql.DateTime) time.Time {
	off := 0
	if d.HasOffset {
		off = d.Offset
	}
	loc := time.FixedZone("", off*60)
	return time.Date(d.Year, time.Month(d.Month), d.Day, d.Hour, d.Minute, d.Second, d.Millisecond*int(time.Millisecond), loc).UTC()
}

func sameInterval(g, w *cql.Interval) (bool, string) {
	g, w = closedForm(g), closedForm(w)
	if g.LowClosed != w.LowClosed || g.HighClosed != w.HighClosed {
		return false, fmt.Sprintf("bounds %s, want %s", bracket(g), bracket(w))
	}
	if ok, why := sameValue(g.Low, w.Low); !ok {
		return false, "low: " + why
	}
	if ok, why := sameValue(g.High, w.High); !ok {
		return false, "high: " + why
	}
	return true, ""
}

func bracket(i *cql.Interval) string {
	l, h := "(", ")"
	if i.LowClosed {
		l = "["
	}
	if i.HighClosed {
		h = "]"
	}
	return l + h
}

// closedForm closes the open, known bounds of an interval of a discrete point
// type (Integer, Long, Date, DateTime, Time), which CQL treats as the same
// interval: Interval[1, 5) = Interval[1, 4].
func closedForm(i *cql.Interval) *cql.Interval {
	r := *i
	if !r.LowClosed && r.Low != nil {
		if v, ok := step(r.Low, +1); ok {
			r.Low, r.LowClosed = v, true
		}
	}
	if !r.HighClosed && r.High != nil {
		if v, ok := step(r.High, -1); ok {
			r.High, r.HighClosed = v, true
		}
	}
	return &r
}

// step returns the successor (+1) or predecessor (-1) of a discrete value at
// its precision.
func step(v cql.Value, dir int) (cql.Value, bool) {
	switch x := v.(type) {
	case cql.Integer:
		return x + cql.Integer(dir), true
	case cql.Long:
		return x + cql.Long(dir), true
	case cql.Date:
		t := time.Date(x.Year, time.Month(max(x.Month, 1)), max(x.Day, 1), 0, 0, 0, 0, time.UTC)
		switch x.Precision {
		case cql.Year:
			t = t.AddDate(dir, 0, 0)
		case cql.Month:
			t = t.AddDate(0, dir, 0)
		default:
			t = t.AddDate(0, 0, dir)
		}
		r := cql.Date{Year: t.Year(), Precision: x.Precision}
		if x.Precision >= cql.Month {
			r.Month = int(t.Month())
		}
		if x.Precision >= cql.Day {
			r.Day = t.Day()
		}
		return r, true
	case cql.DateTime:
		t := time.Date(x.Year, time.Month(max(x.Month, 1)), max(x.Day, 1), x.Hour, x.Minute, x.Second, x.Millisecond*int(time.Millisecond), time.UTC)
		switch x.Precision {
		case cql.Year:
			t = t.AddDate(dir, 0, 0)
		case cql.Month:
			t = t.AddDate(0, dir, 0)
		case cql.Day:
			t = t.AddDate(0, 0, dir)
		case cql.Hour:
			t = t.Add(time.Duration(dir) * time.Hour)
		case cql.Minute:
			t = t.Add(time.Duration(dir) * time.Minute)
		case cql.Second:
			t = t.Add(time.Duration(dir) * time.Second)
		default:
			t = t.Add(time.Duration(dir) * time.Millisecond)
		}
		r := x
		r.Year, r.Month, r.Day = t.Year(), int(t.Month()), t.Day()
		r.Hour, r.Minute, r.Second, r.Millisecond = t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/int(time.Millisecond)
		return truncateDateTime(r), true
	case cql.Time:
		ms := ((x.Hour*60+x.Minute)*60+x.Second)*1000 + x.Millisecond
		unit := map[cql.Precision]int{cql.Hour: 3600000, cql.Minute: 60000, cql.Second: 1000}[x.Precision]
		if unit == 0 {
			unit = 1
		}
		ms += dir * unit
		return cql.Time{Hour: ms / 3600000, Minute: ms / 60000 % 60, Second: ms / 1000 % 60, Millisecond: ms % 1000, Precision: x.Precision}, true
	}
	return nil, false
}

func truncateDateTime(d cql.DateTime) cql.DateTime {
	if d.Precision < cql.Month {
		d.Month = 0
	}
	if d.Precision < cql.Day {
		d.Day = 0
	}
	if d.Precision < cql.Hour {
		d.Hour = 0
	}
	if d.Precision < cql.Minute {
		d.Minute = 0
	}
	if d.Precision < cql.Second {
		d.Second = 0
	}
	if d.Precision < cql.Millisecond {
		d.Millisecond = 0
	}
	return d
}

// formatValue renders a value as CQL for reports.
func formatValue(v cql.Value) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case cql.Boolean:
		return strconv.FormatBool(bool(x))
	case cql.Integer:
		return strconv.Itoa(int(x))
	case cql.Long:
		return strconv.FormatInt(int64(x), 10) + "L"
	case cql.Decimal:
		return formatDecimal(float64(x))
	case cql.String:
		return "'" + strings.ReplaceAll(string(x), "'", `\'`) + "'"
	case cql.Quantity:
		return formatDecimal(x.Value) + " '" + x.Unit + "'"
	case cql.Ratio:
		return formatValue(x.Numerator) + ":" + formatValue(x.Denominator)
	case cql.Code:
		return fmt.Sprintf("Code { code: '%s', system: '%s' }", x.Code, x.System)
	case *cql.Concept:
		parts := make([]string, len(x.Codes))
		for i, c := range x.Codes {
			parts[i] = formatValue(c)
		}
		return "Concept { codes: {" + strings.Join(parts, ", ") + "} }"
	case cql.Date:
		return "@" + x.String()
	case cql.DateTime:
		if x.Precision < cql.Hour {
			// CQL marks a DateTime without a time part with a trailing T.
			return "@" + x.String() + "T"
		}
		return "@" + x.String()
	case cql.Time:
		return "@T" + x.String()
	case *cql.Interval:
		b := bracket(x)
		return "Interval" + b[:1] + formatValue(x.Low) + ", " + formatValue(x.High) + b[1:]
	case cql.List:
		const shown = 12
		parts := make([]string, 0, min(len(x), shown+1))
		for i, e := range x {
			if i == shown {
				parts = append(parts, fmt.Sprintf("… %d more", len(x)-shown))
				break
			}
			parts = append(parts, formatValue(e))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case *cql.Tuple:
		parts := make([]string, len(x.Names))
		for i, n := range x.Names {
			parts[i] = n + ": " + formatValue(x.Values[i])
		}
		return "Tuple {" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprintf("%s(%v)", typeName(v), v)
}

func formatDecimal(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEInN") {
		s += ".0"
	}
	return s
}

// promotedEqual reports whether got and want differ only in that one holds
// Integers where the other holds Decimals of the same value; the suite writes
// some Decimal results as Integer literals, and reports say so.
func promotedEqual(got, want cql.Value) bool {
	return sameAfter(promote(got), promote(want))
}

func sameAfter(a, b cql.Value) bool {
	ok, _ := sameValue(a, b)
	return ok
}

// promote turns every Integer in v into a Decimal.
func promote(v cql.Value) cql.Value {
	switch x := v.(type) {
	case cql.Integer:
		return cql.Decimal(x)
	case cql.List:
		r := make(cql.List, len(x))
		for i, e := range x {
			r[i] = promote(e)
		}
		return r
	case *cql.Interval:
		r := *x
		r.Low, r.High = promote(x.Low), promote(x.High)
		return &r
	}
	return v
}
