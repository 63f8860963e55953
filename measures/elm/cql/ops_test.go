package cql_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm/cql"
)

func dt(t *testing.T, s string) cql.DateTime {
	t.Helper()
	d, err := cql.ParseDateTime(s)
	require.NoError(t, err, s)
	return d
}

func date(t *testing.T, s string) cql.Date {
	t.Helper()
	d, err := cql.ParseDate(s)
	require.NoError(t, err, s)
	return d
}

func tm(t *testing.T, s string) cql.Time {
	t.Helper()
	d, err := cql.ParseTime(s)
	require.NoError(t, err, s)
	return d
}

func ivl(lo, hi cql.Value, lc, hc bool) *cql.Interval {
	return &cql.Interval{Low: lo, High: hi, LowClosed: lc, HighClosed: hc}
}

var (
	T = cql.Boolean(true)
	F = cql.Boolean(false)
)

// assertValue compares with CQL equivalence so that structured values and
// null compare sensibly.
func assertValue(t *testing.T, want, got cql.Value, msg string) {
	t.Helper()
	if want == nil {
		assert.Nil(t, got, msg)
		return
	}
	assert.Truef(t, cql.Equivalent(want, got), "%s: want %v (%T), got %v (%T)", msg, want, want, got, got)
}

func TestLogic(t *testing.T) {
	tests := []struct {
		op      string
		f       func(a, b cql.Value) cql.Value
		a, b    cql.Value
		want    cql.Value
		comment string
	}{
		{"and", cql.And, T, T, T, ""},
		{"and", cql.And, T, nil, nil, "unknown"},
		{"and", cql.And, F, nil, F, "false dominates"},
		{"and", cql.And, nil, nil, nil, ""},
		{"or", cql.Or, F, nil, nil, ""},
		{"or", cql.Or, T, nil, T, "true dominates"},
		{"or", cql.Or, F, F, F, ""},
		{"xor", cql.Xor, T, F, T, ""},
		{"xor", cql.Xor, T, nil, nil, ""},
		{"implies", cql.Implies, F, nil, T, ""},
		{"implies", cql.Implies, T, nil, nil, ""},
		{"implies", cql.Implies, nil, T, T, ""},
	}
	for _, tc := range tests {
		assertValue(t, tc.want, tc.f(tc.a, tc.b), tc.op)
	}
	assert.Nil(t, cql.Not(nil))
	assert.Equal(t, F, cql.Not(T))
	assert.Equal(t, T, cql.IsNull(nil))
	assert.Equal(t, F, cql.IsTrue(nil))
	assert.Equal(t, F, cql.IsFalse(nil))
}

func TestArithmetic(t *testing.T) {
	tests := []struct {
		name string
		got  cql.Value
		want cql.Value
	}{
		{"int add", cql.Add(cql.Integer(2), cql.Integer(3)), cql.Integer(5)},
		{"int overflow is null", cql.Add(cql.Integer(2147483647), cql.Integer(1)), nil},
		{"long overflow is null", cql.Multiply(cql.Long(9223372036854775807), cql.Long(2)), nil},
		{"int multiply overflow", cql.Multiply(cql.Integer(65536), cql.Integer(65536)), nil},
		{"null propagates", cql.Add(cql.Integer(1), nil), nil},
		{"mixed promotes to decimal", cql.Add(cql.Integer(1), cql.Decimal(0.5)), cql.Decimal(1.5)},
		{"divide is decimal", cql.Divide(cql.Integer(1), cql.Integer(3)), cql.Decimal(0.33333333)},
		{"divide by zero is null", cql.Divide(cql.Integer(1), cql.Integer(0)), nil},
		{"div", cql.TruncatedDivide(cql.Integer(-7), cql.Integer(2)), cql.Integer(-3)},
		{"mod", cql.Modulo(cql.Integer(7), cql.Integer(3)), cql.Integer(1)},
		{"mod zero", cql.Modulo(cql.Integer(7), cql.Integer(0)), nil},
		{"power", cql.Power(cql.Integer(2), cql.Integer(10)), cql.Integer(1024)},
		{"power negative exponent", cql.Power(cql.Integer(2), cql.Integer(-1)), cql.Decimal(0.5)},
		{"round half away", cql.Round(cql.Decimal(-1.5), nil), cql.Decimal(-2)},
		{"round places", cql.Round(cql.Decimal(3.14159), cql.Integer(2)), cql.Decimal(3.14)},
		{"truncate", cql.Truncate(cql.Decimal(-1.9)), cql.Integer(-1)},
		{"ceiling", cql.Ceiling(cql.Decimal(1.1)), cql.Integer(2)},
		{"floor", cql.Floor(cql.Decimal(-1.1)), cql.Integer(-2)},
		{"abs", cql.Abs(cql.Integer(-4)), cql.Integer(4)},
		{"negate min int overflows", cql.Negate(cql.Integer(-2147483648)), nil},
		{"ln negative null", cql.Ln(cql.Decimal(-1)), nil},
		{"log", cql.Log(cql.Decimal(100), cql.Decimal(10)), cql.Decimal(2)},
		{"exp", cql.Exp(cql.Integer(0)), cql.Decimal(1)},
		{"successor", cql.Successor(cql.Integer(1)), cql.Integer(2)},
		{"predecessor decimal", cql.Predecessor(cql.Decimal(1)), cql.Decimal(0.99999999)},
		{"quantity add converts", cql.Add(cql.Quantity{Value: 1, Unit: "g"}, cql.Quantity{Value: 500, Unit: "mg"}), cql.Quantity{Value: 1.5, Unit: "g"}},
		{"quantity incompatible", cql.Add(cql.Quantity{Value: 1, Unit: "g"}, cql.Quantity{Value: 1, Unit: "m"}), nil},
		{"quantity multiply", cql.Multiply(cql.Quantity{Value: 2, Unit: "m"}, cql.Quantity{Value: 3, Unit: "m"}), cql.Quantity{Value: 6, Unit: "m2"}},
	}
	for _, tc := range tests {
		assertValue(t, tc.want, tc.got, tc.name)
	}
	assert.Panics(t, func() { cql.Successor(cql.Integer(2147483647)) }, "successor of max integer is an error")
	assert.Panics(t, func() { cql.Exp(cql.Decimal(1000)) }, "exp overflow is an error")
}

func TestComparisonPrecision(t *testing.T) {
	tests := []struct {
		name string
		got  cql.Value
		want cql.Value
	}{
		{"less", cql.LessP(cql.Integer(1), cql.Integer(2), cql.PrecisionNone), T},
		{"null", cql.LessP(cql.Integer(1), nil, cql.PrecisionNone), nil},
		{"decimal vs integer", cql.GreaterOrEqualP(cql.Decimal(2.0), cql.Integer(2), cql.PrecisionNone), T},
		{"string order", cql.LessP(cql.String("abc"), cql.String("abd"), cql.PrecisionNone), T},
		{"quantity with units", cql.LessP(cql.Quantity{Value: 100, Unit: "mg/dL"}, cql.Quantity{Value: 2, Unit: "g/dL"}, cql.PrecisionNone), T},
		{"mmHg", cql.LessP(cql.Quantity{Value: 139, Unit: "mm[Hg]"}, cql.Quantity{Value: 140, Unit: "mm[Hg]"}, cql.PrecisionNone), T},
		{"datetime uncertain", cql.LessP(dt(t, "2020-01-01"), dt(t, "2020-01-01T10:00:00"), cql.PrecisionNone), nil},
		{"datetime certain despite precision", cql.LessP(dt(t, "2019-12-31"), dt(t, "2020-01-01T10:00:00"), cql.PrecisionNone), T},
		{"same day", cql.SameAs(dt(t, "2020-01-01T23:00:00Z"), dt(t, "2020-01-01T01:00:00Z"), cql.Day), T},
		{"timezone normalised", cql.Equal(dt(t, "2020-01-01T10:00:00+02:00"), dt(t, "2020-01-01T08:00:00Z")), T},
		{"offset moves the day", cql.SameAs(dt(t, "2020-01-01T23:00:00-05:00"), dt(t, "2020-01-02T01:00:00Z"), cql.Day), T},
		{"same or before month", cql.SameOrBefore(dt(t, "2020-01-31"), dt(t, "2020-01-01"), cql.Month), T},
		{"seconds vs millis uncertain", cql.Equal(tm(t, "10:00:00"), tm(t, "10:00:00.000")), nil},
		{"date equal", cql.Equal(date(t, "2020-02-29"), date(t, "2020-02-29")), T},
		{"partial date equal is uncertain", cql.Equal(date(t, "2020-02"), date(t, "2020-02-29")), nil},
	}
	for _, tc := range tests {
		assertValue(t, tc.want, tc.got, tc.name)
	}
}

func TestEqualityAndEquivalence(t *testing.T) {
	c1 := cql.Code{Code: "8480-6", System: "http://loinc.org", Display: "Systolic"}
	c2 := cql.Code{Code: "8480-6", System: "http://loinc.org"}
	tests := []struct {
		name  string
		a, b  cql.Value
		eq    cql.Value
		equiv bool
	}{
		{"nulls", nil, nil, nil, true},
		{"null vs value", nil, cql.Integer(1), nil, false},
		{"strings", cql.String("Abc "), cql.String("abc"), F, true},
		{"codes display differs", c1, c2, F, true},
		{"concept vs code", &cql.Concept{Codes: []cql.Code{c1}}, c2, F, true},
		{"lists with null", cql.List{cql.Integer(1), nil}, cql.List{cql.Integer(1), nil}, T, true},
		{"decimal precision", cql.Decimal(1.5), cql.Decimal(1.50), T, true},
		{"decimal equivalence at lesser precision", cql.Decimal(1.51), cql.Decimal(1.5), F, true},
		{"tuples", &cql.Tuple{Names: []string{"a"}, Values: []cql.Value{cql.Integer(1)}}, &cql.Tuple{Names: []string{"a"}, Values: []cql.Value{cql.Integer(1)}}, T, true},
		{"calendar vs days", cql.Quantity{Value: 1, Unit: "year"}, cql.Quantity{Value: 365, Unit: "days"}, nil, true},
		{"intervals", ivl(cql.Integer(1), cql.Integer(5), true, false), ivl(cql.Integer(1), cql.Integer(4), true, true), T, true},
	}
	for _, tc := range tests {
		assertValue(t, tc.eq, cql.Equal(tc.a, tc.b), tc.name+" (=)")
		assert.Equal(t, tc.equiv, cql.Equivalent(tc.a, tc.b), tc.name+" (~)")
	}
}

func TestDateArithmetic(t *testing.T) {
	q := func(v float64, u string) cql.Quantity { return cql.Quantity{Value: v, Unit: u} }
	tests := []struct {
		name string
		got  cql.Value
		want cql.Value
	}{
		{"month end clamps", cql.Add(date(t, "2020-01-31"), q(1, "month")), date(t, "2020-02-29")},
		{"leap year back", cql.Subtract(date(t, "2020-02-29"), q(1, "year")), date(t, "2019-02-28")},
		{"months to years at year precision", cql.Add(date(t, "2014"), q(24, "months")), date(t, "2016")},
		{"6 months from MP start", cql.Add(dt(t, "2025-01-01T00:00:00.000Z"), q(6, "months")), dt(t, "2025-07-01T00:00:00.000Z")},
		{"hours truncate on a date", cql.Add(date(t, "2020-01-01"), q(25, "hours")), date(t, "2020-01-02")},
		{"ucum days", cql.Add(dt(t, "2020-01-01T00:00:00Z"), q(2, "d")), dt(t, "2020-01-03T00:00:00Z")},
		{"weeks", cql.Add(date(t, "2020-01-01"), q(2, "weeks")), date(t, "2020-01-15")},
		{"time wraps", cql.Add(tm(t, "23:00"), q(2, "hours")), tm(t, "01:00")},
		{"null", cql.Add(nil, q(1, "day")), nil},
		{"date from", cql.DateFrom(dt(t, "2020-05-06T07:08:09Z")), date(t, "2020-05-06")},
		{"component", cql.ComponentFrom(dt(t, "2020-05-06T07:08:09Z"), cql.Month), cql.Integer(5)},
		{"missing component", cql.ComponentFrom(date(t, "2020"), cql.Month), nil},
	}
	for _, tc := range tests {
		assertValue(t, tc.want, tc.got, tc.name)
	}
}

func TestBetween(t *testing.T) {
	tests := []struct {
		name string
		got  cql.Value
		want cql.Value
	}{
		{"age in years", cql.CalculateAgeAt(date(t, "1960-06-15"), date(t, "2025-06-14"), cql.Year), cql.Integer(64)},
		{"age birthday", cql.CalculateAgeAt(date(t, "1960-06-15"), date(t, "2025-06-15"), cql.Year), cql.Integer(65)},
		{"duration months", cql.DurationBetween(date(t, "2020-01-31"), date(t, "2020-02-29"), cql.Month), cql.Integer(0)},
		{"difference months", cql.DifferenceBetween(date(t, "2020-01-31"), date(t, "2020-02-01"), cql.Month), cql.Integer(1)},
		{"negative", cql.DurationBetween(date(t, "2020-03-01"), date(t, "2020-01-01"), cql.Month), cql.Integer(-2)},
		{"days across offsets", cql.DurationBetween(dt(t, "2020-01-01T23:00:00.000-05:00"), dt(t, "2020-01-03T04:00:00.000Z"), cql.Day), cql.Integer(1)},
		{"second precision is exact for days", cql.DurationBetween(dt(t, "2020-01-01T23:00:00-05:00"), dt(t, "2020-01-03T04:00:00Z"), cql.Day), cql.Integer(1)},
		{"missing day is uncertain", cql.DurationBetween(dt(t, "2014-01-15"), dt(t, "2014-02"), cql.Day), ivl(cql.Integer(16), cql.Integer(44), true, true)},
		{"uncertain years", cql.DurationBetween(dt(t, "2005"), dt(t, "2010"), cql.Year), ivl(cql.Integer(4), cql.Integer(5), true, true)},
		{"difference hours", cql.DifferenceBetween(dt(t, "2020-01-01T10:59:00Z"), dt(t, "2020-01-01T11:01:00Z"), cql.Hour), cql.Integer(1)},
		{"null", cql.DurationBetween(nil, date(t, "2020-01-01"), cql.Day), nil},
	}
	for _, tc := range tests {
		assertValue(t, tc.want, tc.got, tc.name)
	}
	// Uncertainty compares certainly when the whole range is on one side.
	u := cql.DurationBetween(dt(t, "2005"), dt(t, "2010"), cql.Year)
	assertValue(t, T, cql.GreaterP(u, cql.Integer(3), cql.PrecisionNone), "uncertain > 3")
	assertValue(t, nil, cql.GreaterP(u, cql.Integer(4), cql.PrecisionNone), "uncertain > 4")
}

func TestIntervals(t *testing.T) {
	i := func(lo, hi int) *cql.Interval { return ivl(cql.Integer(lo), cql.Integer(hi), true, true) }
	mp := ivl(dt(t, "2025-01-01T00:00:00.000Z"), dt(t, "2025-12-31T23:59:59.999Z"), true, true)
	tests := []struct {
		name string
		got  cql.Value
		want cql.Value
	}{
		{"open start", cql.Start(ivl(cql.Integer(1), cql.Integer(5), false, true)), cql.Integer(2)},
		{"open end", cql.End(ivl(cql.Integer(1), cql.Integer(5), true, false)), cql.Integer(4)},
		{"closed null end is max", cql.End(ivl(cql.Integer(1), nil, true, true)), cql.Integer(2147483647)},
		{"open null start unknown", cql.Start(ivl(nil, cql.Integer(5), false, true)), nil},
		{"contains", cql.Contains(i(1, 5), cql.Integer(5), cql.PrecisionNone), T},
		{"contains open", cql.Contains(ivl(cql.Integer(1), cql.Integer(5), true, false), cql.Integer(5), cql.PrecisionNone), F},
		{"in unknown start", cql.In(cql.Integer(3), ivl(nil, cql.Integer(5), false, true), cql.PrecisionNone), nil},
		{"in unbounded end", cql.In(cql.Integer(3000), ivl(cql.Integer(1), nil, true, true), cql.PrecisionNone), T},
		{"before", cql.Before(i(1, 2), i(3, 4), cql.PrecisionNone), T},
		{"after", cql.After(i(5, 6), i(3, 4), cql.PrecisionNone), T},
		{"meets", cql.Meets(i(1, 2), i(3, 4), cql.PrecisionNone), T},
		{"overlaps", cql.Overlaps(i(1, 3), i(3, 4), cql.PrecisionNone), T},
		{"overlaps before", cql.OverlapsBefore(i(1, 3), i(2, 4), cql.PrecisionNone), T},
		{"overlaps after", cql.OverlapsAfter(i(2, 5), i(1, 4), cql.PrecisionNone), T},
		{"starts", cql.Starts(i(1, 2), i(1, 4), cql.PrecisionNone), T},
		{"ends", cql.Ends(i(3, 4), i(1, 4), cql.PrecisionNone), T},
		{"includes", cql.Includes(i(1, 10), i(2, 3), cql.PrecisionNone), T},
		{"included in", cql.IncludedIn(i(2, 3), i(1, 10), cql.PrecisionNone), T},
		{"properly includes equal", cql.ProperIncludes(i(1, 10), i(1, 10), cql.PrecisionNone), F},
		{"during day of MP", cql.In(dt(t, "2025-12-31T23:59:59.999+00:00"), mp, cql.Day), T},
		{"during day of MP (day precision point)", cql.In(dt(t, "2025-06-01"), mp, cql.Day), T},
		{"point after MP", cql.In(dt(t, "2026-01-01T00:00:00Z"), mp, cql.Day), F},
		{"union", cql.UnionP(i(1, 3), i(4, 6), cql.PrecisionNone), i(1, 6)},
		{"union disjoint", cql.UnionP(i(1, 3), i(5, 6), cql.PrecisionNone), nil},
		{"intersect", cql.IntersectP(i(1, 5), i(3, 8), cql.PrecisionNone), i(3, 5)},
		{"except", cql.ExceptP(i(1, 10), i(5, 12), cql.PrecisionNone), i(1, 4)},
		{"width", cql.Width(i(3, 7)), cql.Integer(4)},
		{"size", cql.Size(i(3, 7)), cql.Integer(5)},
		{"point from", cql.PointFrom(i(3, 3)), cql.Integer(3)},
		{"collapse", cql.CollapseOne(cql.List{i(1, 3), i(2, 5), i(7, 8)}), cql.List{i(1, 5), i(7, 8)}},
		{"collapse meets", cql.CollapseOne(cql.List{i(1, 3), i(4, 5)}), cql.List{i(1, 5)}},
		{"expand", cql.ExpandOp(i(1, 3), nil), cql.List{cql.Integer(1), cql.Integer(2), cql.Integer(3)}},
	}
	for _, tc := range tests {
		assertValue(t, tc.want, tc.got, tc.name)
	}
	require.Error(t, cql.ValidateInterval(ivl(cql.Integer(5), cql.Integer(5), true, false)))
	require.NoError(t, cql.ValidateInterval(i(5, 5)))
}

func TestLists(t *testing.T) {
	l := func(vs ...int) cql.List {
		out := cql.List{}
		for _, v := range vs {
			out = append(out, cql.Integer(v))
		}
		return out
	}
	tests := []struct {
		name string
		got  cql.Value
		want cql.Value
	}{
		{"distinct", cql.Distinct(l(1, 2, 2, 3, 1)), l(1, 2, 3)},
		{"union distinct", cql.UnionP(l(1, 2), l(2, 3), cql.PrecisionNone), l(1, 2, 3)},
		{"union null", cql.UnionP(nil, l(1), cql.PrecisionNone), l(1)},
		{"intersect", cql.IntersectP(l(1, 2, 3), l(2, 3, 4), cql.PrecisionNone), l(2, 3)},
		{"except", cql.ExceptP(l(1, 2, 3), l(2), cql.PrecisionNone), l(1, 3)},
		{"flatten", cql.Flatten(cql.List{l(1), l(2, 3)}), l(1, 2, 3)},
		{"singleton empty", cql.SingletonFrom(l()), nil},
		{"skip", cql.Skip(l(1, 2, 3), cql.Integer(2)), l(3)},
		{"take", cql.Take(l(1, 2, 3), cql.Integer(2)), l(1, 2)},
		{"tail", cql.Tail(l(1, 2, 3)), l(2, 3)},
		{"index of", cql.IndexOf(l(5, 6), cql.Integer(6)), cql.Integer(1)},
		{"index of missing", cql.IndexOf(l(5, 6), cql.Integer(7)), cql.Integer(-1)},
		{"contains null", cql.Contains(cql.List{cql.Integer(1), nil}, nil, cql.PrecisionNone), T},
		{"includes", cql.Includes(l(1, 2, 3), l(2, 3), cql.PrecisionNone), T},
		{"count skips nulls", cql.Count(cql.List{cql.Integer(1), nil}), cql.Integer(1)},
		{"sum", cql.Sum(l(1, 2, 3)), cql.Integer(6)},
		{"sum empty is null", cql.Sum(l()), nil},
		{"min", cql.Min(l(3, 1, 2)), cql.Integer(1)},
		{"max", cql.Max(l(3, 1, 2)), cql.Integer(3)},
		{"avg", cql.Avg(l(1, 2)), cql.Decimal(1.5)},
		{"median", cql.Median(l(3, 1, 2, 4)), cql.Decimal(2.5)},
		{"mode", cql.Mode(l(1, 2, 2, 3)), cql.Integer(2)},
		{"variance", cql.Variance(l(1, 2, 3, 4, 5)), cql.Decimal(2.5)},
		{"population variance", cql.PopulationVariance(l(1, 2, 3, 4, 5)), cql.Decimal(2)},
		{"stddev", cql.StdDev(l(1, 2, 3, 4, 5)), cql.Decimal(1.58113883)},
		{"product", cql.Product(l(2, 3, 4)), cql.Integer(24)},
		{"geometric mean", cql.GeometricMean(l(2, 8)), cql.Decimal(4)},
		{"all true empty", cql.AllTrue(cql.List{}), T},
		{"any true", cql.AnyTrue(cql.List{F, nil, T}), T},
		{"max quantity converts", cql.Max(cql.List{cql.Quantity{Value: 1, Unit: "g"}, cql.Quantity{Value: 900, Unit: "mg"}}), cql.Quantity{Value: 1, Unit: "g"}},
	}
	for _, tc := range tests {
		assertValue(t, tc.want, tc.got, tc.name)
	}
	assert.Panics(t, func() { cql.SingletonFrom(l(1, 2)) })
}

func TestStringsAndConversions(t *testing.T) {
	tests := []struct {
		name string
		got  cql.Value
		want cql.Value
	}{
		{"concat", cql.Concatenate([]cql.Value{cql.String("a"), cql.String("b")}), cql.String("ab")},
		{"concat null", cql.Concatenate([]cql.Value{cql.String("a"), nil}), nil},
		{"split", cql.Split(cql.String("a,b"), cql.String(",")), cql.List{cql.String("a"), cql.String("b")}},
		{"combine", cql.Combine(cql.List{cql.String("a"), nil, cql.String("b")}, cql.String("-")), cql.String("a-b")},
		{"position", cql.PositionOf(cql.String("b"), cql.String("abc"), false), cql.Integer(1)},
		{"substring", cql.Substring(cql.String("abcdef"), cql.Integer(1), cql.Integer(3), true), cql.String("bcd")},
		{"matches", cql.Matches(cql.String("1234"), cql.String(`\d+`)), T},
		{"upper", cql.Upper(cql.String("ab")), cql.String("AB")},
		{"length", cql.Length(cql.String("héllo")), cql.Integer(5)},
		{"to integer", cql.ToInteger(cql.String("42")), cql.Integer(42)},
		{"to integer bad", cql.ToInteger(cql.String("4.2")), nil},
		{"to decimal", cql.ToDecimal(cql.String("4.25")), cql.Decimal(4.25)},
		{"to boolean", cql.ToBoolean(cql.String("yes")), T},
		{"to datetime", cql.ToDateTime(cql.String("2020-01-02T03:04:05Z")), dt(t, "2020-01-02T03:04:05Z")},
		{"date to datetime", cql.ToDateTime(date(t, "2020-01-02")), dt(t, "2020-01-02")},
		{"to quantity", cql.ToQuantity(cql.String("5.5 'mg'")), cql.Quantity{Value: 5.5, Unit: "mg"}},
		{"to string decimal", cql.ToString(cql.Decimal(1.5)), cql.String("1.5")},
		{"to string datetime", cql.ToString(dt(t, "2020-01-02T03:04:05.006+01:00")), cql.String("2020-01-02T03:04:05.006+01:00")},
		{"to concept", cql.ToConcept(cql.Code{Code: "x"}), &cql.Concept{Codes: []cql.Code{{Code: "x"}}}},
		{"to list null", cql.ToList(nil), cql.List{}},
		{"convert quantity", cql.ConvertQuantity(cql.Quantity{Value: 5, Unit: "mg"}, cql.String("g")), cql.Quantity{Value: 0.005, Unit: "g"}},
		{"convert quantity incompatible", cql.ConvertQuantity(cql.Quantity{Value: 5, Unit: "mg"}, cql.String("mL")), nil},
		{"converts to", cql.ConvertsTo(cql.ToInteger)(cql.String("x")), F},
	}
	for _, tc := range tests {
		assertValue(t, tc.want, tc.got, tc.name)
	}
}

func TestParseDateTime(t *testing.T) {
	tests := []struct {
		in   string
		prec cql.Precision
		ok   bool
	}{
		{"2020", cql.Year, true},
		{"2020-02", cql.Month, true},
		{"2020-02-29", cql.Day, true},
		{"2021-02-29", 0, false},
		{"2020-01-01T10", cql.Hour, true},
		{"2020-01-01T10:30:15.5Z", cql.Millisecond, true},
		{"2020-01-01T10:30:15+05:30", cql.Second, true},
		{"2020-13-01", 0, false},
		{"20-01-01", 0, false},
	}
	for _, tc := range tests {
		d, err := cql.ParseDateTime(tc.in)
		if !tc.ok {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.prec, d.Precision, tc.in)
	}
	d := dt(t, "2020-01-01T10:30:15.5Z")
	assert.Equal(t, 500, d.Millisecond)
}
