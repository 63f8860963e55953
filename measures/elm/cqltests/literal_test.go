package cqltests

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/equitas/equitas/measures/elm/cql"
)

// The harness evaluates each expected output with the engine, since outputs
// are CQL expressions (lists, intervals, tuples, Now()). An engine that
// misread a literal would then agree with itself on both sides; parseLiteral
// reads the simple literal forms independently so that the harness can check
// the engine's reading of them.

var (
	reInteger  = regexp.MustCompile(`^[+-]?\d+$`)
	reLong     = regexp.MustCompile(`^[+-]?\d+L$`)
	reDecimal  = regexp.MustCompile(`^[+-]?\d+\.\d+$`)
	reQuantity = regexp.MustCompile(`^([+-]?\d+(?:\.\d+)?)\s*'([^']*)'$`)
	reDate     = regexp.MustCompile(`^@(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$`)
	reDateTime = regexp.MustCompile(`^@(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?T(?:(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?)?(Z|[+-]\d{2}:\d{2})?$`)
	reTime     = regexp.MustCompile(`^@T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?$`)
)

// parseLiteral returns the value of a simple CQL literal and true, or false
// when s is not one of the simple forms.
func parseLiteral(s string) (cql.Value, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "null":
		return nil, true
	case s == "true" || s == "false":
		return cql.Boolean(s == "true"), true
	case reInteger.MatchString(s):
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, false
		}
		return cql.Integer(n), true
	case reLong.MatchString(s):
		n, err := strconv.ParseInt(strings.TrimSuffix(s, "L"), 10, 64)
		if err != nil {
			return nil, false
		}
		return cql.Long(n), true
	case reDecimal.MatchString(s):
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Abs(f) >= 1e28 {
			return nil, false
		}
		return cql.Decimal(f), true
	case strings.HasPrefix(s, "'") && strings.HasSuffix(s, "'") && len(s) >= 2:
		str, ok := unquote(s[1 : len(s)-1])
		return cql.String(str), ok
	}
	if m := reQuantity.FindStringSubmatch(s); m != nil {
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return nil, false
		}
		return cql.Quantity{Value: f, Unit: m[2]}, true
	}
	if m := reDate.FindStringSubmatch(s); m != nil {
		d := cql.Date{Year: atoi(m[1]), Precision: cql.Year}
		if m[2] != "" {
			d.Month, d.Precision = atoi(m[2]), cql.Month
		}
		if m[3] != "" {
			d.Day, d.Precision = atoi(m[3]), cql.Day
		}
		return d, true
	}
	if m := reDateTime.FindStringSubmatch(s); m != nil {
		d := cql.DateTime{Year: atoi(m[1]), Precision: cql.Year}
		fields := []*int{&d.Month, &d.Day, &d.Hour, &d.Minute, &d.Second}
		precs := []cql.Precision{cql.Month, cql.Day, cql.Hour, cql.Minute, cql.Second}
		for i, f := range fields {
			if m[i+2] == "" {
				break
			}
			*f, d.Precision = atoi(m[i+2]), precs[i]
		}
		if m[7] != "" {
			d.Millisecond, d.Precision = millis(m[7]), cql.Millisecond
		}
		switch tz := m[8]; {
		case tz == "Z":
			d.HasOffset = true
		case tz != "":
			d.HasOffset = true
			d.Offset = atoi(tz[1:3])*60 + atoi(tz[4:6])
			if tz[0] == '-' {
				d.Offset = -d.Offset
			}
		}
		return d, true
	}
	if m := reTime.FindStringSubmatch(s); m != nil {
		t := cql.Time{Hour: atoi(m[1]), Precision: cql.Hour}
		if m[2] != "" {
			t.Minute, t.Precision = atoi(m[2]), cql.Minute
		}
		if m[3] != "" {
			t.Second, t.Precision = atoi(m[3]), cql.Second
		}
		if m[4] != "" {
			t.Millisecond, t.Precision = millis(m[4]), cql.Millisecond
		}
		return t, true
	}
	return nil, false
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// millis reads a fraction of a second of one to three digits (".1" is 100 ms).
func millis(frac string) int {
	for len(frac) < 3 {
		frac += "0"
	}
	return atoi(frac)
}

// unquote resolves the CQL string escapes.
func unquote(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", false
		}
		switch s[i] {
		case '\'', '"', '`', '\\', '/':
			b.WriteByte(s[i])
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", false
			}
			n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", false
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			return "", false
		}
	}
	return b.String(), true
}
