package hl7v2

import (
	"fmt"
	"strconv"
	"time"
)

// Precision is how much of a date/time a value carries.
type Precision int

const (
	PrecisionYear Precision = iota + 1
	PrecisionMonth
	PrecisionDay
	PrecisionHour
	PrecisionMinute
	PrecisionSecond
)

// Time is a parsed DTM/TS/DT value (YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]).
// T holds the instant in the sender's offset when HasZone, else in the
// location given to ParseTime.
type Time struct {
	T         time.Time
	Precision Precision
	HasZone   bool
	Fraction  int // digits of fractional seconds kept (0–4)
}

// ParseTime reads a DTM (and the older TS, whose first component it is,
// and DT). loc applies when the value carries no UTC offset.
func ParseTime(s string, loc *time.Location) (Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	var t Time
	body := s
	zone := ""
	for i := 4; i < len(s); i++ {
		if s[i] == '+' || s[i] == '-' {
			body, zone = s[:i], s[i:]
			break
		}
	}
	frac := ""
	if i := indexByte(body, '.'); i >= 0 {
		body, frac = body[:i], body[i+1:]
		if len(body) != 14 || len(frac) == 0 || len(frac) > 4 || !digits(frac) {
			return t, fmt.Errorf("%q: fractional seconds need a full YYYYMMDDHHMMSS and 1-4 digits", s)
		}
	}
	if !digits(body) {
		return t, fmt.Errorf("%q is not a date/time (YYYY[MM[DD[HHMM[SS]]]][+/-ZZZZ])", s)
	}
	switch len(body) {
	case 4:
		t.Precision = PrecisionYear
	case 6:
		t.Precision = PrecisionMonth
	case 8:
		t.Precision = PrecisionDay
	case 10:
		t.Precision = PrecisionHour
	case 12:
		t.Precision = PrecisionMinute
	case 14:
		t.Precision = PrecisionSecond
	default:
		return t, fmt.Errorf("%q is not a date/time (YYYY[MM[DD[HHMM[SS]]]][+/-ZZZZ])", s)
	}
	n := func(i, j, def int) int {
		if len(body) < j {
			return def
		}
		v, _ := strconv.Atoi(body[i:j])
		return v
	}
	y, mo, d, h, mi, sec := n(0, 4, 0), n(4, 6, 1), n(6, 8, 1), n(8, 10, 0), n(10, 12, 0), n(12, 14, 0)
	if y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || sec > 59 {
		return t, fmt.Errorf("%q is out of range", s)
	}
	ns := 0
	if frac != "" {
		f, _ := strconv.Atoi(frac)
		for k := len(frac); k < 9; k++ {
			f *= 10
		}
		ns = f
		t.Fraction = len(frac)
	}
	if zone != "" {
		if len(zone) != 5 || !digits(zone[1:]) {
			return t, fmt.Errorf("%q: UTC offset must be +/-HHMM", s)
		}
		zh, _ := strconv.Atoi(zone[1:3])
		zm, _ := strconv.Atoi(zone[3:5])
		if zh > 14 || zm > 59 {
			return t, fmt.Errorf("%q: UTC offset out of range", s)
		}
		off := zh*3600 + zm*60
		if zone[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
		t.HasZone = true
	}
	t.T = time.Date(y, time.Month(mo), d, h, mi, sec, ns, loc)
	return t, nil
}

func daysIn(y, m int) int {
	return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
