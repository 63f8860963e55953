package cql

import (
	"math"
	"slices"
)

// ListContains reports whether lst contains v by equality (null matches null).
func ListContains(lst List, v Value) bool {
	for _, e := range lst {
		if e == nil && v == nil {
			return true
		}
		if r, _ := Equal(e, v).(Boolean); r {
			return true
		}
	}
	return false
}

// resourceKey identifies a FHIR resource by type and id, for hashing lists
// of resources (equal resources have equal keys).
func resourceKey(v Value) (string, bool) {
	f, ok := v.(*FHIR)
	if !ok || f == nil || f.Type == nil || !f.Type.Resource || f.Node == nil {
		return "", false
	}
	id := f.Node.Get("id")
	if id == nil || id.Str == "" {
		return "", false
	}
	return f.Type.Name + "/" + id.Str, true
}

// resourceIndex indexes the resources of lst by key; ok is false when lst
// holds anything else.
func resourceIndex(lst List) (map[string][]Value, bool) {
	idx := make(map[string][]Value, len(lst))
	for _, v := range lst {
		k, ok := resourceKey(v)
		if !ok {
			return nil, false
		}
		idx[k] = append(idx[k], v)
	}
	return idx, true
}

// containsIndexed is ListContains over an index of resources.
func containsIndexed(idx map[string][]Value, v Value) bool {
	k, ok := resourceKey(v)
	if !ok {
		return false
	}
	for _, e := range idx[k] {
		if r, _ := Equal(e, v).(Boolean); r {
			return true
		}
	}
	return false
}

// DistinctList removes duplicates (by equality; nulls collapse to one).
func DistinctList(lst List) List {
	if len(lst) < 2 {
		return lst
	}
	if len(lst) > 8 {
		seen := make(map[string][]Value, len(lst))
		out := make(List, 0, len(lst))
		hashed := true
		for _, v := range lst {
			k, ok := resourceKey(v)
			if !ok {
				hashed = false
				break
			}
			if containsIndexed(seen, v) {
				continue
			}
			seen[k] = append(seen[k], v)
			out = append(out, v)
		}
		if hashed {
			return out
		}
	}
	out := make(List, 0, len(lst))
	for _, v := range lst {
		if !ListContains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Distinct is the Distinct operator.
func Distinct(a Value) Value {
	lst, ok := a.(List)
	if !ok {
		return nil
	}
	return DistinctList(lst)
}

// Flatten flattens a list of lists one level.
func Flatten(a Value) Value {
	lst, ok := a.(List)
	if !ok {
		return nil
	}
	out := List{}
	for _, e := range lst {
		if l, ok := e.(List); ok {
			out = append(out, l...)
		} else {
			out = append(out, e)
		}
	}
	return out
}

// SingletonFrom returns the only element, null for empty, error for many.
func SingletonFrom(a Value) Value {
	lst, ok := a.(List)
	if !ok {
		return nil
	}
	switch len(lst) {
	case 0:
		return nil
	case 1:
		return lst[0]
	}
	fail("SingletonFrom requires a list of at most one element")
	return nil
}

// Tail returns all but the first element.
func Tail(a Value) Value {
	lst, ok := a.(List)
	if !ok {
		return nil
	}
	if len(lst) == 0 {
		return List{}
	}
	return slices.Clone(lst[1:])
}

// Skip drops the first n elements.
func Skip(a, n Value) Value {
	lst, ok := a.(List)
	if !ok {
		return nil
	}
	k, ok := n.(Integer)
	if !ok {
		return lst
	}
	if int(k) >= len(lst) {
		return List{}
	}
	if k < 0 {
		k = 0
	}
	return slices.Clone(lst[k:])
}

// Take keeps the first n elements.
func Take(a, n Value) Value {
	lst, ok := a.(List)
	if !ok {
		return nil
	}
	k, ok := n.(Integer)
	if !ok || k <= 0 {
		return List{}
	}
	if int(k) > len(lst) {
		k = Integer(len(lst))
	}
	return slices.Clone(lst[:k])
}

// Slice returns elements [start, end).
func Slice(a, start, end Value) Value {
	lst, ok := a.(List)
	if !ok {
		return nil
	}
	s, _ := start.(Integer)
	e := Integer(len(lst))
	if x, ok := end.(Integer); ok {
		e = x
	}
	if s < 0 {
		s = 0
	}
	if int(e) > len(lst) {
		e = Integer(len(lst))
	}
	if s >= e {
		return List{}
	}
	return slices.Clone(lst[s:e])
}

// IndexOf returns the index of element or -1.
func IndexOf(a, el Value) Value {
	lst, ok := a.(List)
	if !ok || el == nil {
		return nil
	}
	for i, e := range lst {
		if r, _ := Equal(e, el).(Boolean); r {
			return Integer(i)
		}
	}
	return Integer(-1)
}

// Indexer returns the element (list) or character (string) at an index.
func Indexer(a, i Value) Value {
	idx, ok := i.(Integer)
	if !ok {
		return nil
	}
	switch x := a.(type) {
	case List:
		if idx < 0 || int(idx) >= len(x) {
			return nil
		}
		return x[idx]
	case String:
		r := []rune(string(x))
		if idx < 0 || int(idx) >= len(r) {
			return nil
		}
		return String(r[idx])
	}
	return nil
}

// Times is the cartesian product of two lists of tuples.
func Times(a, b Value) Value {
	la, ok1 := a.(List)
	lb, ok2 := b.(List)
	if !ok1 || !ok2 {
		return nil
	}
	out := List{}
	for _, x := range la {
		for _, y := range lb {
			tx, _ := x.(*Tuple)
			ty, _ := y.(*Tuple)
			if tx == nil || ty == nil {
				continue
			}
			t := &Tuple{Names: append(slices.Clone(tx.Names), ty.Names...), Values: append(slices.Clone(tx.Values), ty.Values...)}
			out = append(out, t)
		}
	}
	return out
}

func nonNull(a Value) (List, bool) {
	lst, ok := a.(List)
	if !ok {
		return nil, false
	}
	out := make(List, 0, len(lst))
	for _, v := range lst {
		if v != nil {
			out = append(out, v)
		}
	}
	return out, true
}

// Count counts non-null elements.
func Count(a Value) Value {
	lst, ok := nonNull(a)
	if !ok {
		return Integer(0)
	}
	return Integer(len(lst))
}

// Sum adds non-null elements.
func Sum(a Value) Value {
	lst, ok := nonNull(a)
	if !ok || len(lst) == 0 {
		return nil
	}
	acc := lst[0]
	for _, v := range lst[1:] {
		acc = Add(acc, v)
	}
	return acc
}

// Min returns the least non-null element.
func Min(a Value) Value {
	lst, ok := nonNull(a)
	if !ok || len(lst) == 0 {
		return nil
	}
	m := lst[0]
	for _, v := range lst[1:] {
		if c, ok := Compare(v, m, PrecisionNone); ok && c < 0 {
			m = v
		}
	}
	return m
}

// Max returns the greatest non-null element.
func Max(a Value) Value {
	lst, ok := nonNull(a)
	if !ok || len(lst) == 0 {
		return nil
	}
	m := lst[0]
	for _, v := range lst[1:] {
		if c, ok := Compare(v, m, PrecisionNone); ok && c > 0 {
			m = v
		}
	}
	return m
}

// Avg is the mean of non-null elements.
func Avg(a Value) Value {
	lst, ok := nonNull(a)
	if !ok || len(lst) == 0 {
		return nil
	}
	s := Sum(toDecimals(lst))
	if q, ok := s.(Quantity); ok {
		return Quantity{Value: rnd(q.Value / float64(len(lst))), Unit: q.Unit}
	}
	return Divide(s, Decimal(len(lst)))
}

func toDecimals(lst List) List {
	out := make(List, len(lst))
	for i, v := range lst {
		if f, ok := num(v); ok {
			out[i] = Decimal(f)
		} else {
			out[i] = v
		}
	}
	return out
}

// Median of non-null elements.
func Median(a Value) Value {
	lst, ok := nonNull(a)
	if !ok || len(lst) == 0 {
		return nil
	}
	s := slices.Clone(lst)
	slices.SortStableFunc(s, SortCompare)
	n := len(s)
	if n%2 == 1 {
		if f, ok := num(s[n/2]); ok {
			return Decimal(f)
		}
		return s[n/2]
	}
	return Avg(List{s[n/2-1], s[n/2]})
}

// Mode is the most frequent non-null element.
func Mode(a Value) Value {
	lst, ok := nonNull(a)
	if !ok || len(lst) == 0 {
		return nil
	}
	best, bestN := lst[0], 0
	for _, v := range lst {
		n := 0
		for _, w := range lst {
			if r, _ := Equal(v, w).(Boolean); r {
				n++
			}
		}
		if n > bestN {
			best, bestN = v, n
		}
	}
	return best
}

func variance(a Value, pop bool) (float64, string, bool) {
	lst, ok := nonNull(a)
	if !ok || len(lst) == 0 || (!pop && len(lst) < 2) {
		return 0, "", false
	}
	var xs []float64
	unit := ""
	for _, v := range lst {
		if q, ok := v.(Quantity); ok {
			xs = append(xs, q.Value)
			unit = q.Unit
			continue
		}
		f, ok := num(v)
		if !ok {
			return 0, "", false
		}
		xs = append(xs, f)
	}
	mean := 0.0
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	ss := 0.0
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	d := float64(len(xs) - 1)
	if pop {
		d = float64(len(xs))
	}
	return ss / d, unit, true
}

func statResult(v float64, unit string, ok bool) Value {
	if !ok {
		return nil
	}
	if unit != "" {
		return Quantity{Value: rnd(v), Unit: unit}
	}
	return decResult(v)
}

// Variance is the sample variance.
func Variance(a Value) Value { return statResult(variance(a, false)) }

// PopulationVariance is the population variance.
func PopulationVariance(a Value) Value { return statResult(variance(a, true)) }

// StdDev is the sample standard deviation.
func StdDev(a Value) Value {
	v, u, ok := variance(a, false)
	return statResult(math.Sqrt(v), u, ok)
}

// PopulationStdDev is the population standard deviation.
func PopulationStdDev(a Value) Value {
	v, u, ok := variance(a, true)
	return statResult(math.Sqrt(v), u, ok)
}

// AllTrue is true when every non-null element is true.
func AllTrue(a Value) Value {
	lst, _ := nonNull(a)
	for _, v := range lst {
		if b, ok := v.(Boolean); ok && !bool(b) {
			return Boolean(false)
		}
	}
	return Boolean(true)
}

// AnyTrue is true when some element is true.
func AnyTrue(a Value) Value {
	lst, _ := nonNull(a)
	for _, v := range lst {
		if b, ok := v.(Boolean); ok && bool(b) {
			return Boolean(true)
		}
	}
	return Boolean(false)
}

// Product multiplies non-null elements.
func Product(a Value) Value {
	lst, ok := nonNull(a)
	if !ok || len(lst) == 0 {
		return nil
	}
	acc := lst[0]
	for _, v := range lst[1:] {
		acc = Multiply(acc, v)
	}
	return acc
}

// GeometricMean is the nth root of the product.
func GeometricMean(a Value) Value {
	lst, ok := nonNull(a)
	if !ok || len(lst) == 0 {
		return nil
	}
	p := 1.0
	for _, v := range lst {
		f, ok := num(v)
		if !ok {
			return nil
		}
		p *= f
	}
	return decResult(math.Pow(p, 1/float64(len(lst))))
}
