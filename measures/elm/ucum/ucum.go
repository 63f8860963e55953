// Package ucum converts between UCUM units (the subset clinical quality
// measures use: SI prefixes, mass, volume, length, time, pressure, molar
// amounts, counts, percent and annotations) and CQL calendar duration words.
package ucum

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// dims are exponents of base dimensions: mass, length, time, amount, other.
type dims [6]int8

// Unit is a parsed unit: a factor relative to coherent base units and the
// dimension exponents.
type Unit struct {
	Factor float64
	Dims   dims
	// Special marks non-ratio units ([pH]) that convert only to themselves.
	Special string
}

// ErrUnknownUnit is returned (wrapped) for units outside the supported subset.
var ErrUnknownUnit = errors.New("ucum: unknown unit")

var base = map[string]Unit{
	"g":       {Factor: 1, Dims: dims{1, 0, 0, 0}},
	"m":       {Factor: 1, Dims: dims{0, 1, 0, 0}},
	"s":       {Factor: 1, Dims: dims{0, 0, 1, 0}},
	"mol":     {Factor: 6.0221367e23, Dims: dims{0, 0, 0, 0}},
	"L":       {Factor: 1e-3, Dims: dims{0, 3, 0, 0}},
	"l":       {Factor: 1e-3, Dims: dims{0, 3, 0, 0}},
	"min":     {Factor: 60, Dims: dims{0, 0, 1, 0}},
	"h":       {Factor: 3600, Dims: dims{0, 0, 1, 0}},
	"d":       {Factor: 86400, Dims: dims{0, 0, 1, 0}},
	"wk":      {Factor: 604800, Dims: dims{0, 0, 1, 0}},
	"mo":      {Factor: 2629800, Dims: dims{0, 0, 1, 0}},
	"a":       {Factor: 31557600, Dims: dims{0, 0, 1, 0}},
	"[in_i]":  {Factor: 0.0254, Dims: dims{0, 1, 0, 0}},
	"[ft_i]":  {Factor: 0.3048, Dims: dims{0, 1, 0, 0}},
	"[lb_av]": {Factor: 453.59237, Dims: dims{1, 0, 0, 0}},
	"[oz_av]": {Factor: 28.349523125, Dims: dims{1, 0, 0, 0}},
	"mm[Hg]":  {Factor: 133322.387415, Dims: dims{1, -1, -2, 0}},
	"Pa":      {Factor: 1000, Dims: dims{1, -1, -2, 0}},
	"%":       {Factor: 0.01},
	"[ppm]":   {Factor: 1e-6},
	"1":       {Factor: 1},
	"[iU]":    {Factor: 1, Dims: dims{0, 0, 0, 0, 1}},
	"[IU]":    {Factor: 1, Dims: dims{0, 0, 0, 0, 1}},
	"U":       {Factor: 1, Dims: dims{0, 0, 0, 0, 0, 1}},
	"eq":      {Factor: 6.0221367e23},
	"Cel":     {Factor: 1, Special: "Cel"},
	"[degF]":  {Factor: 1, Special: "[degF]"},
	"[pH]":    {Factor: 1, Special: "[pH]"},
}

var prefixes = map[string]float64{
	"k": 1e3, "h": 1e2, "da": 1e1, "d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6, "μ": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15, "M": 1e6, "G": 1e9,
}

// calendarWords maps CQL calendar duration words to UCUM.
var calendarWords = map[string]string{
	"year": "a", "years": "a", "month": "mo", "months": "mo", "week": "wk", "weeks": "wk",
	"day": "d", "days": "d", "hour": "h", "hours": "h", "minute": "min", "minutes": "min",
	"second": "s", "seconds": "s", "millisecond": "ms", "milliseconds": "ms",
}

// Normalize maps calendar words to their UCUM spelling.
func Normalize(unit string) string {
	if u, ok := calendarWords[unit]; ok {
		return u
	}
	return unit
}

// Parse parses a UCUM unit expression.
func Parse(s string) (Unit, error) {
	s = Normalize(strings.TrimSpace(s))
	if s == "" {
		return Unit{Factor: 1}, nil
	}
	if u, ok := base[s]; ok && u.Special != "" {
		return u, nil
	}
	u := Unit{Factor: 1}
	sign := 1
	i := 0
	if strings.HasPrefix(s, "/") {
		sign = -1
		i = 1
	}
	for i < len(s) {
		j := i
		depth := 0
		for j < len(s) {
			c := s[j]
			if c == '[' || c == '{' {
				depth++
			} else if c == ']' || c == '}' {
				depth--
			} else if depth == 0 && (c == '.' || c == '/') {
				break
			}
			j++
		}
		term := s[i:j]
		tu, err := parseTerm(term)
		if err != nil {
			return Unit{}, fmt.Errorf("%w: %q", err, s)
		}
		if tu.Special != "" {
			return Unit{}, fmt.Errorf("%w: special unit in expression %q", ErrUnknownUnit, s)
		}
		if sign > 0 {
			u.Factor *= tu.Factor
		} else {
			u.Factor /= tu.Factor
		}
		for k := range u.Dims {
			u.Dims[k] += int8(sign) * tu.Dims[k]
		}
		if j >= len(s) {
			break
		}
		if s[j] == '/' {
			sign = -1
		} else {
			sign = 1
		}
		i = j + 1
	}
	return u, nil
}

func parseTerm(t string) (Unit, error) {
	// Strip annotations: {copies}/mL, {drinks}/d.
	for {
		a := strings.IndexByte(t, '{')
		if a < 0 {
			break
		}
		b := strings.IndexByte(t[a:], '}')
		if b < 0 {
			return Unit{}, ErrUnknownUnit
		}
		t = t[:a] + t[a+b+1:]
	}
	if t == "" {
		return Unit{Factor: 1}, nil
	}
	if strings.HasPrefix(t, "10*") || strings.HasPrefix(t, "10^") {
		e, err := strconv.Atoi(t[3:])
		if err != nil {
			return Unit{}, ErrUnknownUnit
		}
		return Unit{Factor: math.Pow(10, float64(e))}, nil
	}
	if n, err := strconv.ParseFloat(t, 64); err == nil {
		return Unit{Factor: n}, nil
	}
	// Exponent suffix: m2, cm3, s-1.
	exp := 1
	k := len(t)
	for k > 0 && (t[k-1] >= '0' && t[k-1] <= '9') {
		k--
	}
	if k > 0 && t[k-1] == '-' && k < len(t) {
		k--
	}
	if k < len(t) && k > 0 && t[k-1] != ']' || (k < len(t) && k > 0 && t[k-1] == ']') {
		e, err := strconv.Atoi(t[k:])
		if err == nil {
			exp = e
			t = t[:k]
		}
	}
	u, ok := base[t]
	if !ok {
		found := false
		for p, f := range prefixes {
			if strings.HasPrefix(t, p) {
				if bu, ok := base[t[len(p):]]; ok && bu.Special == "" {
					u = Unit{Factor: f * bu.Factor, Dims: bu.Dims}
					found = true
					break
				}
			}
		}
		if !found {
			return Unit{}, ErrUnknownUnit
		}
	}
	if exp != 1 {
		u.Factor = math.Pow(u.Factor, float64(exp))
		for i := range u.Dims {
			u.Dims[i] *= int8(exp)
		}
	}
	return u, nil
}

// Convert converts value from one unit to another. It fails for units of
// different dimensions or outside the supported subset.
func Convert(value float64, from, to string) (float64, error) {
	from, to = Normalize(from), Normalize(to)
	if from == to {
		return value, nil
	}
	fu, err := Parse(from)
	if err != nil {
		return 0, err
	}
	tu, err := Parse(to)
	if err != nil {
		return 0, err
	}
	if fu.Special != "" || tu.Special != "" {
		return 0, fmt.Errorf("%w: cannot convert %s to %s", ErrUnknownUnit, from, to)
	}
	if fu.Dims != tu.Dims {
		return 0, fmt.Errorf("ucum: incompatible units %s and %s", from, to)
	}
	return value * fu.Factor / tu.Factor, nil
}

// Comparable reports whether two units have the same dimension.
func Comparable(a, b string) bool {
	_, err := Convert(1, a, b)
	return err == nil
}
