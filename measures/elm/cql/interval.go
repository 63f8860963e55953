package cql

import (
	"errors"
	"math"
	"slices"
)

// ValidateInterval fails for intervals whose low bound is after the high bound.
func ValidateInterval(iv *Interval) error {
	if iv.Low == nil || iv.High == nil {
		return nil
	}
	if c, ok := Compare(iv.Low, iv.High, PrecisionNone); ok && c > 0 {
		return errors.New("invalid interval: low bound after high bound")
	}
	if iv.LowClosed && iv.HighClosed {
		return nil
	}
	if c, ok := Compare(lowBound(iv), highBound(iv), PrecisionNone); ok && c > 0 {
		return errors.New("invalid interval: low bound after high bound")
	}
	return nil
}

// pointType returns a sample point to infer the interval's point type.
func pointOf(iv *Interval) Value {
	if iv.Low != nil {
		return iv.Low
	}
	return iv.High
}

func minMaxLike(v Value, max bool) Value {
	r, err := MinMaxValue(TypeName(v), max)
	if err == nil {
		return r
	}
	if q, ok := v.(Quantity); ok {
		if max {
			return Quantity{Value: 99999999999999999999.99999999, Unit: q.Unit}
		}
		return Quantity{Value: -99999999999999999999.99999999, Unit: q.Unit}
	}
	return nil
}

// infinity is the internal bound of a closed null interval boundary
// (unbounded); it never escapes the interval operators.
type infinity struct{ neg bool }

func (infinity) cqlValue() {}

// lowBound is the inclusive start of iv: the point, its successor for an
// open bound, -infinity for a closed null bound, nil (unknown) for an open
// null bound.
func lowBound(iv *Interval) Value {
	if iv.Low == nil {
		if iv.LowClosed {
			return infinity{neg: true}
		}
		return nil
	}
	if iv.LowClosed {
		return iv.Low
	}
	return Successor(iv.Low)
}

// highBound is the inclusive end of iv (see lowBound).
func highBound(iv *Interval) Value {
	if iv.High == nil {
		if iv.HighClosed {
			return infinity{}
		}
		return nil
	}
	if iv.HighClosed {
		return iv.High
	}
	return Predecessor(iv.High)
}

// mkInterval builds a closed interval from inclusive bounds, mapping
// infinities back to closed nulls and unknown bounds to open nulls.
func mkInterval(lo, hi Value) *Interval {
	iv := &Interval{Low: lo, High: hi, LowClosed: true, HighClosed: true}
	if _, ok := lo.(infinity); ok {
		iv.Low = nil
	} else if lo == nil {
		iv.LowClosed = false
	}
	if _, ok := hi.(infinity); ok {
		iv.High = nil
	} else if hi == nil {
		iv.HighClosed = false
	}
	return iv
}

// closedBounds returns the inclusive start and end of iv; nil means unknown.
func closedBounds(iv *Interval) (Value, Value) {
	return lowBound(iv), highBound(iv)
}

// Start returns the starting point of an interval.
func Start(v Value) Value {
	iv, ok := v.(*Interval)
	if !ok {
		return nil
	}
	if iv.Low == nil {
		if iv.LowClosed && iv.High != nil {
			return minMaxLike(iv.High, false)
		}
		return nil
	}
	return lowBound(iv)
}

// End returns the ending point of an interval.
func End(v Value) Value {
	iv, ok := v.(*Interval)
	if !ok {
		return nil
	}
	if iv.High == nil {
		if iv.HighClosed && iv.Low != nil {
			return minMaxLike(iv.Low, true)
		}
		return nil
	}
	return highBound(iv)
}

// PointFrom returns the point of a unit interval.
func PointFrom(v Value) Value {
	iv, ok := v.(*Interval)
	if !ok {
		return nil
	}
	s, e := closedBounds(iv)
	if s == nil || e == nil {
		return nil
	}
	if b, _ := Equal(s, e).(Boolean); !b {
		fail("PointFrom requires a unit interval")
	}
	return s
}

// Width is end - start.
func Width(v Value) Value {
	iv, ok := v.(*Interval)
	if !ok {
		return nil
	}
	switch pointOf(iv).(type) {
	case DateTime, Date, Time:
		fail("Width is not defined for date/time intervals")
	}
	s, e := closedBounds(iv)
	return Subtract(e, s)
}

// Size is the number of points in an interval (width + one step).
func Size(v Value) Value {
	iv, ok := v.(*Interval)
	if !ok {
		return nil
	}
	s, e := closedBounds(iv)
	w := Subtract(e, s)
	switch x := w.(type) {
	case Integer:
		return x + 1
	case Long:
		return x + 1
	case Decimal:
		return Decimal(rnd(float64(x) + 1e-8))
	case Quantity:
		return Quantity{Value: rnd(x.Value + 1e-8), Unit: x.Unit}
	}
	return nil
}

func lt(a, b Value, p Precision) Value { return LessP(a, b, p) }
func le(a, b Value, p Precision) Value { return LessOrEqualP(a, b, p) }
func eq(a, b Value, p Precision) Value {
	if a == nil || b == nil {
		return nil
	}
	c, ok := Compare(a, b, p)
	if !ok {
		return nil
	}
	return Boolean(c == 0)
}

func asInterval(v Value) (*Interval, bool) {
	iv, ok := v.(*Interval)
	return iv, ok
}

// asIntervals views a and b as intervals, a point becoming a unit
// interval; points reports that neither was an interval.
func asIntervals(a, b Value) (x, y *Interval, points bool) {
	x, xi := asInterval(a)
	y, yi := asInterval(b)
	if !xi {
		x = pointInterval(a)
	}
	if !yi {
		y = pointInterval(b)
	}
	return x, y, !xi && !yi
}

// pointInterval treats a point as a unit interval.
func pointInterval(v Value) *Interval {
	return &Interval{Low: v, High: v, LowClosed: true, HighClosed: true}
}

// Before: a ends before b starts (intervals or points).
func Before(a, b Value, p Precision) Value {
	if a == nil || b == nil {
		return nil
	}
	x, y, points := asIntervals(a, b)
	if points {
		return lt(a, b, p)
	}
	return lt(highBound(x), lowBound(y), p)
}

// After: a starts after b ends.
func After(a, b Value, p Precision) Value {
	return Before(b, a, p)
}

// SameAs compares points (or interval bounds) for equality at precision p.
func SameAs(a, b Value, p Precision) Value {
	if x, ok := a.(*Interval); ok {
		if y, ok := b.(*Interval); ok {
			return And(eq(lowBound(x), lowBound(y), p), eq(highBound(x), highBound(y), p))
		}
	}
	return eq(a, b, p)
}

// SameOrBefore is a <= b at precision p (points or interval start/end).
func SameOrBefore(a, b Value, p Precision) Value {
	if a == nil || b == nil {
		return nil
	}
	x, y, points := asIntervals(a, b)
	if points {
		return le(a, b, p)
	}
	return le(highBound(x), lowBound(y), p)
}

// SameOrAfter is a >= b at precision p.
func SameOrAfter(a, b Value, p Precision) Value {
	if a == nil || b == nil {
		return nil
	}
	x, y, points := asIntervals(a, b)
	if points {
		return GreaterOrEqualP(a, b, p)
	}
	return GreaterOrEqualP(lowBound(x), highBound(y), p)
}

func truncPrec(v Value, p Precision) Value {
	if p == PrecisionNone {
		return v
	}
	switch x := v.(type) {
	case DateTime:
		return x.UTC().truncate(p)
	case Date:
		d := x.ToDateTime().truncate(p)
		return Date{Year: d.Year, Month: d.Month, Day: d.Day, Precision: d.Precision}
	case Time:
		return x.asDateTime().truncate(p).timeOf()
	}
	return v
}

// MeetsBefore: a ends immediately before b starts.
func MeetsBefore(a, b Value, p Precision) Value {
	x, ok1 := asInterval(a)
	y, ok2 := asInterval(b)
	if !ok1 || !ok2 {
		return nil
	}
	e, s := highBound(x), lowBound(y)
	if e == nil || s == nil {
		// An unknown bound still lies within its interval (x's end is at
		// least x's start, y's start at most y's end): decide when even the
		// earliest possible successor of x's end is after y's latest start.
		eMin, sMax := e, s
		if eMin == nil {
			eMin = lowBound(x)
		}
		if sMax == nil {
			sMax = highBound(y)
		}
		if eMin != nil && sMax != nil {
			if b, _ := lt(sMax, Successor(eMin), p).(Boolean); b {
				return Boolean(false)
			}
		}
		return nil
	}
	return eq(Successor(truncPrec(e, p)), truncPrec(s, p), p)
}

// MeetsAfter: a starts immediately after b ends.
func MeetsAfter(a, b Value, p Precision) Value { return MeetsBefore(b, a, p) }

// Meets is MeetsBefore or MeetsAfter.
func Meets(a, b Value, p Precision) Value {
	return Or(MeetsBefore(a, b, p), MeetsAfter(a, b, p))
}

// Overlaps: the intervals share a point.
func Overlaps(a, b Value, p Precision) Value {
	if a == nil || b == nil {
		return nil
	}
	x, ok1 := asInterval(a)
	y, ok2 := asInterval(b)
	if !ok1 {
		x = pointInterval(a)
	}
	if !ok2 {
		y = pointInterval(b)
	}
	return And(le(lowBound(x), highBound(y), p), le(lowBound(y), highBound(x), p))
}

// OverlapsBefore: a starts before b and overlaps it.
func OverlapsBefore(a, b Value, p Precision) Value {
	x, ok1 := asInterval(a)
	y, ok2 := asInterval(b)
	if !ok1 || !ok2 {
		return nil
	}
	return And(lt(lowBound(x), lowBound(y), p), Overlaps(x, y, p))
}

// OverlapsAfter: a ends after b and overlaps it.
func OverlapsAfter(a, b Value, p Precision) Value {
	x, ok1 := asInterval(a)
	y, ok2 := asInterval(b)
	if !ok1 || !ok2 {
		return nil
	}
	return And(GreaterP(highBound(x), highBound(y), p), Overlaps(x, y, p))
}

// Starts: a starts with b and ends within it.
func Starts(a, b Value, p Precision) Value {
	x, ok1 := asInterval(a)
	y, ok2 := asInterval(b)
	if !ok1 || !ok2 {
		return nil
	}
	return And(eq(lowBound(x), lowBound(y), p), le(highBound(x), highBound(y), p))
}

// Ends: a ends with b and starts within it.
func Ends(a, b Value, p Precision) Value {
	x, ok1 := asInterval(a)
	y, ok2 := asInterval(b)
	if !ok1 || !ok2 {
		return nil
	}
	return And(le(lowBound(y), lowBound(x), p), eq(highBound(x), highBound(y), p))
}

// Includes: interval a includes interval or point b; list a includes list b.
func Includes(a, b Value, p Precision) Value {
	if a == nil || b == nil {
		return nil
	}
	if la, ok := a.(List); ok {
		lb, ok := b.(List)
		if !ok {
			return Contains(a, b, p)
		}
		for _, e := range lb {
			if !ListContains(la, e) {
				return Boolean(false)
			}
		}
		return Boolean(true)
	}
	x, ok := asInterval(a)
	if !ok {
		return nil
	}
	y, ok := asInterval(b)
	if !ok {
		return Contains(a, b, p)
	}
	return And(le(lowBound(x), lowBound(y), p), le(highBound(y), highBound(x), p))
}

// IncludedIn: a is included in b (During).
func IncludedIn(a, b Value, p Precision) Value {
	if _, ok := a.(*Interval); !ok {
		if _, ok := a.(List); !ok && a != nil {
			return In(a, b, p)
		}
	}
	return Includes(b, a, p)
}

// ProperIncludes: includes and not equal.
func ProperIncludes(a, b Value, p Precision) Value {
	if la, ok := a.(List); ok {
		lb, ok := b.(List)
		if !ok {
			return nil
		}
		r := Includes(la, lb, p)
		if x, _ := r.(Boolean); !x {
			return r
		}
		return Boolean(len(DistinctList(la)) > len(DistinctList(lb)))
	}
	x, ok1 := asInterval(a)
	y, ok2 := asInterval(b)
	if !ok1 {
		return nil
	}
	if !ok2 {
		return ProperContains(a, b, p)
	}
	return And(Includes(x, y, p), Or(lt(lowBound(x), lowBound(y), p), lt(highBound(y), highBound(x), p)))
}

// ProperIncludedIn: a is properly included in b.
func ProperIncludedIn(a, b Value, p Precision) Value {
	if _, ok := a.(*Interval); !ok {
		if _, ok := a.(List); !ok && a != nil {
			return ProperIn(a, b, p)
		}
	}
	return ProperIncludes(b, a, p)
}

// Contains: list contains element, or interval contains point.
func Contains(a, b Value, p Precision) Value {
	switch x := a.(type) {
	case nil:
		if _, ok := b.(*Interval); ok {
			return nil
		}
		return Boolean(false)
	case List:
		if lb, ok := b.(List); ok && !listOfLists(x) {
			return Includes(x, lb, p)
		}
		return Boolean(ListContains(x, b))
	case *Interval:
		if b == nil {
			return nil
		}
		return And(le(lowBound(x), b, p), le(b, highBound(x), p))
	}
	return nil
}

func listOfLists(l List) bool {
	for _, e := range l {
		if _, ok := e.(List); ok {
			return true
		}
	}
	return false
}

// In: element in list, or point in interval.
func In(a, b Value, p Precision) Value {
	if b == nil {
		if _, ok := a.(*Interval); ok {
			return nil
		}
		return Boolean(false)
	}
	return Contains(b, a, p)
}

// ProperContains: interval contains point strictly inside; list contains
// the element and some other, different element.
func ProperContains(a, b Value, p Precision) Value {
	switch x := a.(type) {
	case nil:
		if _, ok := b.(*Interval); ok {
			return nil
		}
		return Boolean(false)
	case List:
		if lb, ok := b.(List); ok && !listOfLists(x) {
			return ProperIncludes(x, lb, p)
		}
		var in Value = Boolean(false)
		for _, e := range x {
			if e == nil && b == nil {
				in = Boolean(true)
				break
			}
			if e == nil || b == nil {
				continue
			}
			r := Equal(e, b)
			if r == nil {
				in = nil
				continue
			}
			if bool(r.(Boolean)) {
				in = Boolean(true)
				break
			}
		}
		if ib, ok := in.(Boolean); ok && !bool(ib) {
			return in
		}
		var other Value = Boolean(false)
		for _, e := range x {
			if b == nil {
				if e != nil {
					other = Boolean(true)
					break
				}
				continue
			}
			if e == nil {
				other = nil
				continue
			}
			if r := Not(Equal(e, b)); r == nil {
				if ob, _ := other.(Boolean); !bool(ob) {
					other = nil
				}
			} else if bool(r.(Boolean)) {
				other = Boolean(true)
				break
			}
		}
		return And(in, other)
	case *Interval:
		if b == nil {
			return nil
		}
		return And(lt(lowBound(x), b, p), lt(b, highBound(x), p))
	}
	return nil
}

// ProperIn is ProperContains with operands swapped.
func ProperIn(a, b Value, p Precision) Value { return ProperContains(b, a, p) }

// maxBound is the larger of two lower bounds; an unknown bound stays
// unknown unless the other is certainly larger.
func maxBound(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	return maxV(a, b)
}

// minBound is the smaller of two upper bounds.
func minBound(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	return minV(a, b)
}

func minV(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	if c, ok := Compare(a, b, PrecisionNone); ok && c > 0 {
		return b
	}
	return a
}

func maxV(a, b Value) Value {
	if a == nil || b == nil {
		return nil
	}
	if c, ok := Compare(a, b, PrecisionNone); ok && c < 0 {
		return b
	}
	return a
}

// UnionP is union of lists (distinct) or of overlapping/meeting intervals.
func UnionP(a, b Value, p Precision) Value {
	if x, ok := a.(*Interval); ok {
		y, ok := b.(*Interval)
		if !ok {
			return nil
		}
		ov, _ := Or(Overlaps(x, y, p), Meets(x, y, p)).(Boolean)
		if !ov {
			return nil
		}
		return mkInterval(minV(lowBound(x), lowBound(y)), maxV(highBound(x), highBound(y)))
	}
	la, _ := a.(List)
	lb, _ := b.(List)
	if a == nil && b == nil {
		return nil
	}
	out := make(List, 0, len(la)+len(lb))
	out = append(out, la...)
	out = append(out, lb...)
	return DistinctList(out)
}

// IntersectP is intersection of lists or intervals.
func IntersectP(a, b Value, p Precision) Value {
	if x, ok := a.(*Interval); ok {
		y, ok := b.(*Interval)
		if !ok {
			return nil
		}
		if ov, ok := Overlaps(x, y, p).(Boolean); ok && !bool(ov) {
			return nil
		}
		return mkInterval(maxBound(lowBound(x), lowBound(y)), minBound(highBound(x), highBound(y)))
	}
	la, ok1 := a.(List)
	lb, ok2 := b.(List)
	if !ok1 || !ok2 {
		return nil
	}
	out := List{}
	if idx, ok := resourceIndex(lb); ok && len(lb) > 8 {
		for _, e := range la {
			if containsIndexed(idx, e) {
				out = append(out, e)
			}
		}
		return DistinctList(out)
	}
	for _, e := range la {
		if ListContains(lb, e) {
			out = append(out, e)
		}
	}
	return DistinctList(out)
}

// ExceptP is list difference or interval difference (when the result is a
// single interval).
func ExceptP(a, b Value, p Precision) Value {
	if x, ok := a.(*Interval); ok {
		y, ok := b.(*Interval)
		if !ok {
			return nil
		}
		xs, xe, ys, ye := lowBound(x), highBound(x), lowBound(y), highBound(y)
		if xs == nil && xe == nil {
			return nil
		}
		ov, known := Overlaps(x, y, p).(Boolean)
		if !known {
			return nil
		}
		if !ov {
			return x
		}
		startsIn, _ := le(ys, xs, p).(Boolean)
		endsIn, _ := le(xe, ye, p).(Boolean)
		switch {
		case bool(startsIn) && bool(endsIn):
			return nil
		case bool(startsIn):
			return mkInterval(Successor(ye), xe)
		case bool(endsIn):
			return mkInterval(xs, Predecessor(ys))
		}
		return nil
	}
	la, ok := a.(List)
	if !ok {
		return nil
	}
	lb, _ := b.(List)
	out := List{}
	if idx, ok := resourceIndex(lb); ok && len(lb) > 8 {
		for _, e := range la {
			if !containsIndexed(idx, e) {
				out = append(out, e)
			}
		}
		return DistinctList(out)
	}
	for _, e := range la {
		if !ListContains(lb, e) {
			out = append(out, e)
		}
	}
	return DistinctList(out)
}

// CollapseOne collapses a list of intervals without a per quantity.
func CollapseOne(a Value) Value { return Collapse(a, nil) }

// Collapse merges overlapping and meeting intervals of a list.
func Collapse(a, per Value) Value {
	lst, ok := a.(List)
	if !ok {
		return nil
	}
	var ivs []*Interval
	for _, e := range lst {
		if iv, ok := e.(*Interval); ok {
			lo, hi := lowBound(iv), highBound(iv)
			if lo == nil && hi == nil {
				continue
			}
			ivs = append(ivs, &Interval{Low: lo, High: hi, LowClosed: true, HighClosed: true})
		}
	}
	slices.SortStableFunc(ivs, func(x, y *Interval) int { return SortCompare(x.Low, y.Low) })
	var prec Precision
	if q, ok := per.(Quantity); ok {
		prec, _ = durationUnit(q.Unit)
	}
	out := List{}
	var cur *Interval
	for _, iv := range ivs {
		if cur == nil {
			cur = iv
			continue
		}
		if m, _ := Or(Overlaps(cur, iv, prec), Meets(cur, iv, prec)).(Boolean); m {
			if cur.High == nil || (iv.High != nil && SortCompare(iv.High, cur.High) > 0) || iv.High == nil {
				if iv.High == nil {
					cur = &Interval{Low: cur.Low, High: nil, LowClosed: true, HighClosed: true}
				} else {
					cur = &Interval{Low: cur.Low, High: iv.High, LowClosed: true, HighClosed: true}
				}
			}
			continue
		}
		out = append(out, cur)
		cur = iv
	}
	if cur != nil {
		out = append(out, cur)
	}
	for i, v := range out {
		iv := v.(*Interval)
		out[i] = mkInterval(iv.Low, iv.High)
	}
	return out
}

// ExpandOp expands an interval or list of intervals into unit intervals
// (list argument) or points (single interval argument) of the per quantity.
func ExpandOp(a, per Value) Value {
	switch x := a.(type) {
	case *Interval:
		r := expandList(List{x}, per)
		lst, ok := r.(List)
		if !ok {
			return nil
		}
		out := List{}
		for _, e := range lst {
			out = append(out, e.(*Interval).Low)
		}
		return out
	case List:
		return expandList(x, per)
	}
	return nil
}

func expandList(lst List, per Value) Value {
	out := List{}
	for _, e := range lst {
		iv, ok := e.(*Interval)
		if !ok || iv == nil {
			continue
		}
		s, en := lowBound(iv), highBound(iv)
		if s == nil || en == nil {
			return nil
		}
		if _, inf := s.(infinity); inf {
			return nil
		}
		if _, inf := en.(infinity); inf {
			return nil
		}
		items, ok := expandOne(s, en, per)
		if !ok {
			return nil
		}
		out = append(out, items...)
	}
	return out
}

// expandOne splits [s, e] into intervals of the per quantity; points are
// first truncated to the per's precision (decimal places for numbers,
// calendar precision for dates and times).
func expandOne(s, e, per Value) (List, bool) {
	var q Quantity
	switch x := per.(type) {
	case nil:
		q = Quantity{Value: 1, Unit: "1"}
		switch p := s.(type) {
		case DateTime:
			q.Unit = p.Precision.String()
		case Date:
			q.Unit = p.Precision.String()
		case Time:
			q.Unit = p.Precision.String()
		case Quantity:
			q.Unit = p.Unit
		}
	case Quantity:
		q = x
	case Integer:
		q = Quantity{Value: float64(x), Unit: "1"}
	case Decimal:
		q = Quantity{Value: float64(x), Unit: "1"}
	default:
		return nil, false
	}
	if q.Value <= 0 {
		return nil, false
	}
	var out List
	emit := func(lo, hi Value) bool {
		out = append(out, &Interval{Low: lo, High: hi, LowClosed: true, HighClosed: true})
		return len(out) < 100000
	}
	switch sv := s.(type) {
	case Integer, Long, Decimal:
		places := decimalPlaces(q.Value)
		_, intPoints := sv.(Integer)
		sf, _ := num(s)
		ef, _ := num(e)
		unit := math.Pow(10, -float64(places))
		if intPoints && places > 0 {
			// Integer points cover their whole unit at a finer precision.
			ef = ef + 1 - unit
		}
		m := math.Pow(10, float64(places))
		sf, ef = math.Trunc(sf*m)/m, math.Trunc(rnd(ef)*m)/m
		width := q.Value - unit
		for p := sf; rnd(p+width) <= rnd(ef); p = rnd(p + q.Value) {
			var lo, hi Value = Decimal(rnd(p)), Decimal(rnd(p + width))
			if intPoints && places == 0 {
				lo, hi = Integer(int32(p)), Integer(int32(p+width))
			}
			if !emit(lo, hi) {
				break
			}
		}
		return out, true
	case Quantity:
		ev, ok := e.(Quantity)
		if !ok {
			return nil, false
		}
		places := decimalPlaces(q.Value)
		unit := math.Pow(10, -float64(places))
		m := math.Pow(10, float64(places))
		sf, ef := math.Trunc(sv.Value*m)/m, math.Trunc(ev.Value*m)/m
		width := q.Value - unit
		for p := sf; rnd(p+width) <= rnd(ef); p = rnd(p + q.Value) {
			if !emit(Quantity{Value: rnd(p), Unit: sv.Unit}, Quantity{Value: rnd(p + width), Unit: sv.Unit}) {
				break
			}
		}
		return out, true
	}
	prec, ok := durationUnit(q.Unit)
	if !ok {
		return nil, false
	}
	n := int64(q.Value)
	if n <= 0 {
		return nil, false
	}
	var sd, ed DateTime
	kind := 0
	switch x := s.(type) {
	case DateTime:
		sd, ed = x, e.(DateTime)
	case Date:
		sd, ed, kind = x.ToDateTime(), e.(Date).ToDateTime(), 1
	case Time:
		sd, ed, kind = x.asDateTime(), e.(Time).asDateTime(), 2
	default:
		return nil, false
	}
	cp := prec
	if cp == Week {
		cp = Day
	}
	if cp > sd.Precision || cp > ed.Precision {
		return List{}, true
	}
	sd, ed = sd.truncate(cp), ed.truncate(cp)
	conv := func(d DateTime) Value {
		switch kind {
		case 1:
			return Date{Year: d.Year, Month: d.Month, Day: d.Day, Precision: d.Precision}
		case 2:
			return d.timeOf()
		}
		return d
	}
	for cur := sd; ; {
		next, ok := cur.AddDuration(n, prec)
		if !ok {
			break
		}
		hi, ok := next.AddDuration(-1, cp)
		if !ok {
			break
		}
		if c, ok := CompareDateTime(hi, ed, PrecisionNone); !ok || c > 0 {
			break
		}
		if !emit(conv(cur), conv(hi)) {
			break
		}
		cur = next
	}
	return out, true
}
