package cqltests

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/equitas/equitas/measures/elm/cql"
)

// TestSameValue pins the comparison rules the harness applies, since a lax
// comparator would turn wrong engine results into passes.
func TestSameValue(t *testing.T) {
	dt := func(y, mo, d, h, mi, s, ms, off int, p cql.Precision) cql.DateTime {
		return cql.DateTime{Year: y, Month: mo, Day: d, Hour: h, Minute: mi, Second: s, Millisecond: ms, Offset: off, HasOffset: true, Precision: p}
	}
	tests := []struct {
		name      string
		got, want cql.Value
		same      bool
	}{
		{"null null", nil, nil, true},
		{"null vs false", cql.Boolean(false), nil, false},
		{"integer", cql.Integer(3), cql.Integer(3), true},
		{"integer vs decimal", cql.Integer(3), cql.Decimal(3), false},
		{"integer vs long", cql.Integer(3), cql.Long(3), false},
		{"decimal scale", cql.Decimal(1.0), cql.Decimal(1.00), true},
		{"decimal 8th place", cql.Decimal(0.99999999), cql.Decimal(1.0), false},
		{"decimal float noise", cql.Decimal(0.1 + 0.2), cql.Decimal(0.3), true},
		{"quantity default unit", cql.Quantity{Value: 1, Unit: ""}, cql.Quantity{Value: 1, Unit: "1"}, true},
		{"quantity plural unit", cql.Quantity{Value: 2, Unit: "days"}, cql.Quantity{Value: 2, Unit: "day"}, true},
		{"quantity unit differs", cql.Quantity{Value: 2, Unit: "g"}, cql.Quantity{Value: 2, Unit: "cm"}, false},
		{"list order", cql.List{cql.Integer(1), cql.Integer(2)}, cql.List{cql.Integer(2), cql.Integer(1)}, false},
		{"list with null", cql.List{cql.String("a"), nil}, cql.List{cql.String("a"), nil}, true},
		{"tuple names any order",
			&cql.Tuple{Names: []string{"b", "a"}, Values: []cql.Value{cql.Integer(2), cql.Integer(1)}},
			&cql.Tuple{Names: []string{"a", "b"}, Values: []cql.Value{cql.Integer(1), cql.Integer(2)}}, true},
		{"tuple missing element",
			&cql.Tuple{Names: []string{"a"}, Values: []cql.Value{cql.Integer(1)}},
			&cql.Tuple{Names: []string{"a", "b"}, Values: []cql.Value{cql.Integer(1), nil}}, false},
		{"integer interval open high",
			&cql.Interval{Low: cql.Integer(1), High: cql.Integer(5), LowClosed: true},
			&cql.Interval{Low: cql.Integer(1), High: cql.Integer(4), LowClosed: true, HighClosed: true}, true},
		{"decimal interval open high",
			&cql.Interval{Low: cql.Decimal(1), High: cql.Decimal(5), LowClosed: true},
			&cql.Interval{Low: cql.Decimal(1), High: cql.Decimal(5), LowClosed: true, HighClosed: true}, false},
		{"unbounded vs unknown high",
			&cql.Interval{Low: cql.Integer(5), LowClosed: true},
			&cql.Interval{Low: cql.Integer(5), LowClosed: true, HighClosed: true}, false},
		{"date interval open low",
			&cql.Interval{Low: cql.Date{Year: 2012, Month: 2, Day: 29, Precision: cql.Day}, High: cql.Date{Year: 2012, Month: 3, Day: 1, Precision: cql.Day}, HighClosed: true},
			&cql.Interval{Low: cql.Date{Year: 2012, Month: 3, Day: 1, Precision: cql.Day}, High: cql.Date{Year: 2012, Month: 3, Day: 1, Precision: cql.Day}, LowClosed: true, HighClosed: true}, true},
		{"datetime same instant other offset", dt(2014, 1, 1, 12, 5, 5, 955, 60, cql.Millisecond), dt(2014, 1, 1, 11, 5, 5, 955, 0, cql.Millisecond), true},
		{"datetime precision differs", dt(2014, 1, 1, 0, 0, 0, 0, 0, cql.Day), dt(2014, 1, 1, 0, 0, 0, 0, 0, cql.Hour), false},
		{"time", cql.Time{Hour: 10, Minute: 30, Precision: cql.Minute}, cql.Time{Hour: 10, Minute: 30, Precision: cql.Minute}, true},
		{"time precision differs", cql.Time{Hour: 10, Precision: cql.Hour}, cql.Time{Hour: 10, Precision: cql.Minute}, false},
		{"code ignores display", cql.Code{Code: "1", System: "s", Display: "x"}, cql.Code{Code: "1", System: "s"}, true},
		{"code system differs", cql.Code{Code: "1", System: "s"}, cql.Code{Code: "1", System: "t"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			same, why := sameValue(tt.got, tt.want)
			assert.Equal(t, tt.same, same, why)
			if !same {
				assert.NotEmpty(t, why, "a mismatch must say why")
			}
		})
	}
}

func TestReasonClass(t *testing.T) {
	assert.Equal(t,
		reasonClass(`elm: T12|1.0.0: unsupported ELM node "Foo" (5 args)`),
		reasonClass(`elm: T99|1.0.0: unsupported ELM node "Bar" (7 args)`))
}

func TestParseLiteral(t *testing.T) {
	tests := []struct {
		in   string
		want cql.Value
	}{
		{"null", nil},
		{"-2147483648", cql.Integer(-2147483648)},
		{"9223372036854775807L", cql.Long(9223372036854775807)},
		{"0.99999999", cql.Decimal(0.99999999)},
		{`'\u0027I start with a single quote and end with a double quote\u0022'`, cql.String(`'I start with a single quote and end with a double quote"`)},
		{`'125 \'cm\''`, cql.String("125 'cm'")},
		{"150.2 '[lb_av]'", cql.Quantity{Value: 150.2, Unit: "[lb_av]"}},
		{"@2014-01", cql.Date{Year: 2014, Month: 1, Precision: cql.Month}},
		{"@2012T", cql.DateTime{Year: 2012, Precision: cql.Year}},
		{"@2014-01-01T12:05:05.955-01:15", cql.DateTime{Year: 2014, Month: 1, Day: 1, Hour: 12, Minute: 5, Second: 5, Millisecond: 955, Offset: -75, HasOffset: true, Precision: cql.Millisecond}},
		{"@T23:59:59.1", cql.Time{Hour: 23, Minute: 59, Second: 59, Millisecond: 100, Precision: cql.Millisecond}},
	}
	for _, tt := range tests {
		got, ok := parseLiteral(tt.in)
		if assert.True(t, ok, tt.in) {
			assert.Equal(t, tt.want, got, tt.in)
		}
	}
	for _, in := range []string{"{1, 2}", "Interval[1, 2]", "Now()", "2147483648"} {
		_, ok := parseLiteral(in)
		assert.False(t, ok, in)
	}
}

func TestFormatValue(t *testing.T) {
	long := make(cql.List, 20)
	for i := range long {
		long[i] = cql.Integer(i)
	}
	tests := []struct {
		in   cql.Value
		want string
	}{
		{nil, "null"},
		{cql.Decimal(2), "2.0"},
		{cql.Long(3), "3L"},
		{cql.String("a'b"), `'a\'b'`},
		{cql.DateTime{Year: 2012, Month: 1, Day: 5, Precision: cql.Day}, "@2012-01-05T"},
		{cql.Time{Hour: 10, Precision: cql.Hour}, "@T10"},
		{&cql.Interval{Low: cql.Integer(5), LowClosed: true}, "Interval[5, null)"},
		{long, "{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, … 8 more}"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, formatValue(tt.in))
	}
}
