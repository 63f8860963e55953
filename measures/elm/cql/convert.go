package cql

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/equitas/equitas/measures/elm/ucum"
)

// ToStringValue formats a value as CQL ToString does ("" for null).
func ToStringValue(v Value) string {
	s, _ := ToString(v).(String)
	return string(s)
}

func formatDecimal(f float64) string {
	s := strconv.FormatFloat(rnd(f), 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// ToString converts to String.
func ToString(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case nil:
		return nil
	case String:
		return x
	case Boolean:
		return String(strconv.FormatBool(bool(x)))
	case Integer:
		return String(strconv.FormatInt(int64(x), 10))
	case Long:
		return String(strconv.FormatInt(int64(x), 10))
	case Decimal:
		return String(formatDecimal(float64(x)))
	case Quantity:
		return String(strconv.FormatFloat(rnd(x.Value), 'f', -1, 64) + " '" + x.Unit + "'")
	case Ratio:
		return String(ToStringValue(x.Numerator) + ":" + ToStringValue(x.Denominator))
	case Date:
		return String(x.String())
	case DateTime:
		return String(x.String())
	case Time:
		return String(x.String())
	}
	return nil
}

// ToBoolean converts strings and numbers to Boolean.
func ToBoolean(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case Boolean:
		return x
	case String:
		switch strings.ToLower(strings.TrimSpace(string(x))) {
		case "true", "t", "yes", "y", "1":
			return Boolean(true)
		case "false", "f", "no", "n", "0":
			return Boolean(false)
		}
	case Integer:
		if x == 1 {
			return Boolean(true)
		}
		if x == 0 {
			return Boolean(false)
		}
	case Long:
		if x == 1 {
			return Boolean(true)
		}
		if x == 0 {
			return Boolean(false)
		}
	case Decimal:
		if x == 1 {
			return Boolean(true)
		}
		if x == 0 {
			return Boolean(false)
		}
	}
	return nil
}

var intRe = regexp.MustCompile(`^[+-]?\d+$`)

// ToInteger converts to Integer.
func ToInteger(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case Integer:
		return x
	case Long:
		return intResult(int64(x))
	case Boolean:
		if x {
			return Integer(1)
		}
		return Integer(0)
	case String:
		s := strings.TrimSpace(string(x))
		if !intRe.MatchString(s) {
			return nil
		}
		i, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil
		}
		return Integer(i)
	}
	return nil
}

// ToLong converts to Long.
func ToLong(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case Integer:
		return Long(x)
	case Long:
		return x
	case Boolean:
		if x {
			return Long(1)
		}
		return Long(0)
	case String:
		s := strings.TrimSpace(string(x))
		if !intRe.MatchString(s) {
			return nil
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil
		}
		return Long(i)
	}
	return nil
}

var decRe = regexp.MustCompile(`^[+-]?\d+(\.\d+)?$`)

// ToDecimal converts to Decimal.
func ToDecimal(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case Integer:
		return Decimal(x)
	case Long:
		return Decimal(x)
	case Decimal:
		return x
	case Boolean:
		if x {
			return Decimal(1)
		}
		return Decimal(0)
	case String:
		s := strings.TrimSpace(string(x))
		if !decRe.MatchString(s) {
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil
		}
		return decResult(f)
	}
	return nil
}

// ToDate converts to Date.
func ToDate(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case Date:
		return x
	case DateTime:
		return DateFrom(x)
	case String:
		s := string(x)
		if i := strings.IndexByte(s, 'T'); i >= 0 {
			s = s[:i]
		}
		d, err := ParseDate(s)
		if err != nil {
			return nil
		}
		return d
	}
	return nil
}

// ToDateTime converts to DateTime.
func ToDateTime(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case DateTime:
		return x
	case Date:
		return x.ToDateTime()
	case String:
		d, err := ParseDateTime(string(x))
		if err != nil {
			return nil
		}
		return d
	}
	return nil
}

// ToTime converts to Time.
func ToTime(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case Time:
		return x
	case String:
		s := string(x)
		if i := strings.LastIndexAny(s, "Z+-"); i > 0 {
			s = s[:i]
		}
		t, err := ParseTime(s)
		if err != nil {
			return nil
		}
		return t
	}
	return nil
}

var qtyRe = regexp.MustCompile(`^\s*([+-]?\d+(?:\.\d+)?)\s*(?:'([^']*)'|([A-Za-z]+))?\s*$`)

// ToQuantity converts to Quantity.
func ToQuantity(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case Quantity:
		return x
	case Integer:
		return Quantity{Value: float64(x), Unit: "1"}
	case Long:
		return Quantity{Value: float64(x), Unit: "1"}
	case Decimal:
		return Quantity{Value: float64(x), Unit: "1"}
	case Ratio:
		if x.Denominator.Value == 0 {
			return nil
		}
		return Quantity{Value: rnd(x.Numerator.Value / x.Denominator.Value), Unit: combineUnits(x.Numerator.Unit, x.Denominator.Unit, '/')}
	case String:
		m := qtyRe.FindStringSubmatch(string(x))
		if m == nil {
			return nil
		}
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return nil
		}
		u := m[2] + m[3]
		if u == "" {
			u = "1"
		}
		if m[3] != "" && !isCalendarWord(m[3]) {
			return nil
		}
		return Quantity{Value: f, Unit: u}
	}
	return nil
}

// ToRatio converts "n 'u':d 'u'" strings to Ratio.
func ToRatio(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case Ratio:
		return x
	case String:
		num, den, ok := strings.Cut(string(x), ":")
		if !ok {
			return nil
		}
		n, ok1 := ToQuantity(String(num)).(Quantity)
		d, ok2 := ToQuantity(String(den)).(Quantity)
		if !ok1 || !ok2 {
			return nil
		}
		return Ratio{Numerator: n, Denominator: d}
	}
	return nil
}

// ToConcept converts a Code or list of Codes to a Concept.
func ToConcept(a Value) Value {
	a = ToCQLValue(a)
	switch x := a.(type) {
	case *Concept:
		return x
	case Code:
		return &Concept{Codes: []Code{x}}
	case List:
		c := &Concept{}
		for _, e := range x {
			if code, ok := ToCQLValue(e).(Code); ok {
				c.Codes = append(c.Codes, code)
			}
		}
		return c
	}
	return nil
}

// ToList wraps a value in a list (null → empty list).
func ToList(a Value) Value {
	if a == nil {
		return List{}
	}
	if l, ok := a.(List); ok {
		return l
	}
	return List{a}
}

// ToChars splits a string into one-character strings.
func ToChars(a Value) Value {
	s, ok := a.(String)
	if !ok {
		return nil
	}
	out := List{}
	for _, r := range string(s) {
		out = append(out, String(r))
	}
	return out
}

// ConvertsTo wraps a conversion as a ConvertsToX predicate.
func ConvertsTo(f func(Value) Value) func(Value) Value {
	return func(a Value) Value {
		if a == nil {
			return nil
		}
		return Boolean(f(a) != nil)
	}
}

// ConverterTo returns the conversion to a System type name, or nil.
func ConverterTo(name string) func(Value) Value {
	switch name {
	case "Boolean":
		return ToBoolean
	case "Integer":
		return ToInteger
	case "Long":
		return ToLong
	case "Decimal":
		return ToDecimal
	case "String":
		return ToString
	case "Date":
		return ToDate
	case "DateTime":
		return ToDateTime
	case "Time":
		return ToTime
	case "Quantity":
		return ToQuantity
	case "Ratio":
		return ToRatio
	case "Concept":
		return ToConcept
	}
	return nil
}

// ConvertQuantity converts a quantity to the given unit (null when not convertible).
func ConvertQuantity(a, u Value) Value {
	q, ok := a.(Quantity)
	unit, ok2 := u.(String)
	if !ok || !ok2 {
		return nil
	}
	v, err := ucum.Convert(q.Value, q.Unit, string(unit))
	if err != nil {
		return nil
	}
	return Quantity{Value: rnd(v), Unit: string(unit)}
}

// CanConvertQuantity reports whether a quantity converts to the unit.
func CanConvertQuantity(a, u Value) Value {
	if a == nil || u == nil {
		return nil
	}
	return Boolean(ConvertQuantity(a, u) != nil)
}

// MathRound is exported for tests: round half away from zero.
func MathRound(f float64) float64 { return math.Round(f) }
