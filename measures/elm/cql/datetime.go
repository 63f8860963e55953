package cql

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Precision is a date/time precision; the zero value means "unspecified".
type Precision uint8

// Precisions, coarsest first. Week is only used by arithmetic and
// DifferenceBetween/DurationBetween.
const (
	PrecisionNone Precision = iota
	Year
	Month
	Week
	Day
	Hour
	Minute
	Second
	Millisecond
)

var precisionNames = [...]string{"", "year", "month", "week", "day", "hour", "minute", "second", "millisecond"}

func (p Precision) String() string {
	if int(p) < len(precisionNames) {
		return precisionNames[p]
	}
	return "invalid"
}

// ParsePrecision accepts ELM ("Day") and CQL ("day", "days") spellings.
func ParsePrecision(s string) (Precision, bool) {
	s = strings.ToLower(s)
	s = strings.TrimSuffix(s, "s")
	for i, n := range precisionNames {
		if i > 0 && n == s {
			return Precision(i), true
		}
	}
	return PrecisionNone, false
}

// DateTime is System.DateTime with partial precision. Fields below Precision
// are zero. Offset is minutes east of UTC; HasOffset is false when the source
// carried no offset (treated as the evaluation offset, UTC).
type DateTime struct {
	Year, Month, Day, Hour, Minute, Second, Millisecond int
	Offset                                              int
	HasOffset                                           bool
	Precision                                           Precision
}

// Date is System.Date (precision Year, Month or Day).
type Date struct {
	Year, Month, Day int
	Precision        Precision
}

// Time is System.Time (precision Hour .. Millisecond).
type Time struct {
	Hour, Minute, Second, Millisecond int
	Precision                         Precision
}

// daysFromCivil converts a proleptic Gregorian date to days since 1970-01-01.
func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func civilFromDays(z int) (int, int, int) {
	z += 719468
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// DaysInMonth returns the number of days of month m in year y.
func DaysInMonth(y, m int) int {
	switch m {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if (y%4 == 0 && y%100 != 0) || y%400 == 0 {
			return 29
		}
		return 28
	}
	return 31
}

// fields returns the components as an array indexed by precision order
// (year, month, day, hour, minute, second, millisecond), skipping week.
func (d DateTime) fields() [7]int {
	return [7]int{d.Year, d.Month, d.Day, d.Hour, d.Minute, d.Second, d.Millisecond}
}

func precIndex(p Precision) int {
	switch {
	case p <= Month:
		return int(p) - 1
	case p == Week:
		return 2
	default:
		return int(p) - 2
	}
}

func precFromIndex(i int) Precision {
	if i <= 1 {
		return Precision(i + 1)
	}
	return Precision(i + 2)
}

// UTC returns d normalised to offset zero when it has at least hour precision.
func (d DateTime) UTC() DateTime {
	if !d.HasOffset || d.Offset == 0 || d.Precision < Hour {
		if d.HasOffset && d.Precision >= Hour {
			return d
		}
		d.HasOffset = d.HasOffset && d.Offset == 0
		return d
	}
	p := d.Precision
	r := d.addMillis(-int64(d.Offset) * 60000)
	r.Precision = p
	r.Offset, r.HasOffset = 0, true
	return r
}

// epochMillis returns milliseconds since the epoch treating missing fields as
// their minimum.
func (d DateTime) epochMillis() int64 {
	m, day := d.Month, d.Day
	if m == 0 {
		m = 1
	}
	if day == 0 {
		day = 1
	}
	days := int64(daysFromCivil(d.Year, m, day))
	return days*86400000 + int64(d.Hour)*3600000 + int64(d.Minute)*60000 + int64(d.Second)*1000 + int64(d.Millisecond)
}

func fromEpochMillis(ms int64, p Precision, off int, hasOff bool) DateTime {
	days := ms / 86400000
	rem := ms % 86400000
	if rem < 0 {
		rem += 86400000
		days--
	}
	y, m, d := civilFromDays(int(days))
	r := DateTime{Year: y, Month: m, Day: d,
		Hour: int(rem / 3600000), Minute: int(rem / 60000 % 60), Second: int(rem / 1000 % 60), Millisecond: int(rem % 1000),
		Offset: off, HasOffset: hasOff, Precision: p}
	return r.truncate(p)
}

func (d DateTime) addMillis(ms int64) DateTime {
	return fromEpochMillis(d.epochMillis()+ms, Millisecond, d.Offset, d.HasOffset)
}

// truncate zeroes the fields finer than p.
func (d DateTime) truncate(p Precision) DateTime {
	if p < Month {
		d.Month = 0
	}
	if p < Day {
		d.Day = 0
	}
	if p < Hour {
		d.Hour = 0
	}
	if p < Minute {
		d.Minute = 0
	}
	if p < Second {
		d.Second = 0
	}
	if p < Millisecond {
		d.Millisecond = 0
	}
	if p < d.Precision {
		d.Precision = p
	}
	return d
}

// CompareDateTime compares a and b down to precision p (PrecisionNone means
// the finest available). ok is false when the result is uncertain because
// the values are equal down to the coarser of their precisions but one has
// more precision than the other (CQL returns null then).
func CompareDateTime(a, b DateTime, p Precision) (cmp int, ok bool) {
	if a.Precision >= Hour || b.Precision >= Hour {
		a, b = a.UTC(), b.UTC()
	}
	return compareFields(a.fields(), b.fields(), 0, a.Precision, b.Precision, p)
}

// compareFields compares date/time fields from index first down to
// precision p (PrecisionNone: all fields), where a and b carry values down
// to precisions pa and pb. ok is false once one side runs out of precision
// before the other with the fields equal so far. Milliseconds are a field
// of their own here: a value at second precision against one with
// milliseconds is uncertain, not compared as decimal seconds.
func compareFields(af, bf [7]int, first int, pa, pb, p Precision) (cmp int, ok bool) {
	limit := 6
	if p != PrecisionNone {
		limit = precIndex(p)
	}
	ai, bi := precIndex(pa), precIndex(pb)
	for i := first; i <= limit; i++ {
		if i > ai || i > bi {
			if i > ai && i > bi {
				return 0, true
			}
			return 0, false
		}
		if af[i] != bf[i] {
			if af[i] < bf[i] {
				return -1, true
			}
			return 1, true
		}
	}
	return 0, true
}

// ToDateTime widens a Date to a DateTime (no offset).
func (d Date) ToDateTime() DateTime {
	return DateTime{Year: d.Year, Month: d.Month, Day: d.Day, Precision: d.Precision}
}

// CompareDate compares dates like CompareDateTime.
func CompareDate(a, b Date, p Precision) (int, bool) {
	if p > Day {
		p = Day
	}
	return CompareDateTime(a.ToDateTime(), b.ToDateTime(), p)
}

func (t Time) asDateTime() DateTime {
	return DateTime{Year: 2000, Month: 1, Day: 1, Hour: t.Hour, Minute: t.Minute, Second: t.Second, Millisecond: t.Millisecond, Precision: t.Precision}
}

// CompareTime compares times like CompareDateTime.
func CompareTime(a, b Time, p Precision) (int, bool) {
	if p != PrecisionNone && p < Hour {
		p = Hour
	}
	// Fields 0-2 (the date) of a time are placeholders: start at the hour.
	return compareFields(a.asDateTime().fields(), b.asDateTime().fields(), 3, a.Precision, b.Precision, p)
}

// ParseDateTime parses an ISO-8601 / FHIR dateTime (partial allowed).
func ParseDateTime(s string) (DateTime, error) {
	var d DateTime
	orig := s
	s = strings.TrimPrefix(s, "@")
	bad := func() (DateTime, error) { return DateTime{}, fmt.Errorf("cql: invalid DateTime %q", orig) }
	num := func(n int) (int, bool) {
		if len(s) < n {
			return 0, false
		}
		v := 0
		for i := 0; i < n; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		s = s[n:]
		return v, true
	}
	var ok bool
	if d.Year, ok = num(4); !ok {
		return bad()
	}
	d.Precision = Year
	date := []struct {
		sep  byte
		dst  *int
		prec Precision
	}{{'-', &d.Month, Month}, {'-', &d.Day, Day}}
	for _, f := range date {
		if len(s) == 0 || s[0] != f.sep {
			break
		}
		s = s[1:]
		if *f.dst, ok = num(2); !ok {
			return bad()
		}
		d.Precision = f.prec
	}
	if len(s) > 0 && s[0] == 'T' {
		s = s[1:]
		if len(s) > 0 && s[0] != 'Z' && s[0] != '+' && s[0] != '-' {
			if d.Precision != Day {
				return bad()
			}
			if d.Hour, ok = num(2); !ok {
				return bad()
			}
			d.Precision = Hour
			if len(s) > 0 && s[0] == ':' {
				s = s[1:]
				if d.Minute, ok = num(2); !ok {
					return bad()
				}
				d.Precision = Minute
				if len(s) > 0 && s[0] == ':' {
					s = s[1:]
					if d.Second, ok = num(2); !ok {
						return bad()
					}
					d.Precision = Second
					if len(s) > 0 && s[0] == '.' {
						s = s[1:]
						i := 0
						for i < len(s) && s[i] >= '0' && s[i] <= '9' {
							i++
						}
						if i == 0 {
							return bad()
						}
						frac := s[:i]
						s = s[i:]
						for len(frac) < 3 {
							frac += "0"
						}
						ms, _ := strconv.Atoi(frac[:3])
						d.Millisecond = ms
						d.Precision = Millisecond
					}
				}
			}
		}
		if len(s) > 0 {
			switch s[0] {
			case 'Z':
				s = s[1:]
				d.HasOffset = true
			case '+', '-':
				sign := 1
				if s[0] == '-' {
					sign = -1
				}
				s = s[1:]
				h, ok1 := num(2)
				if !ok1 || len(s) < 1 || s[0] != ':' {
					return bad()
				}
				s = s[1:]
				m, ok2 := num(2)
				if !ok2 {
					return bad()
				}
				d.Offset = sign * (h*60 + m)
				d.HasOffset = true
			}
		}
	}
	if len(s) != 0 {
		return bad()
	}
	if !validDateTime(d) {
		return bad()
	}
	return d, nil
}

func validDateTime(d DateTime) bool {
	if d.Precision >= Month && (d.Month < 1 || d.Month > 12) {
		return false
	}
	if d.Precision >= Day && (d.Day < 1 || d.Day > DaysInMonth(d.Year, d.Month)) {
		return false
	}
	if d.Hour > 23 || d.Minute > 59 || d.Second > 59 || d.Offset > 14*60 || d.Offset < -14*60 {
		return false
	}
	return d.Year >= 1 && d.Year <= 9999
}

// ParseDate parses YYYY[-MM[-DD]].
func ParseDate(s string) (Date, error) {
	s = strings.TrimPrefix(s, "@")
	d, err := ParseDateTime(s)
	if err != nil || d.Precision > Day || strings.Contains(s, "T") {
		return Date{}, fmt.Errorf("cql: invalid Date %q", s)
	}
	return Date{Year: d.Year, Month: d.Month, Day: d.Day, Precision: d.Precision}, nil
}

// ParseTime parses [T]hh[:mm[:ss[.fff]]].
func ParseTime(s string) (Time, error) {
	orig := s
	s = strings.TrimPrefix(s, "@")
	s = strings.TrimPrefix(s, "T")
	d, err := ParseDateTime("2000-01-01T" + s)
	if err != nil || d.HasOffset {
		return Time{}, fmt.Errorf("cql: invalid Time %q", orig)
	}
	return Time{Hour: d.Hour, Minute: d.Minute, Second: d.Second, Millisecond: d.Millisecond, Precision: d.Precision}, nil
}

func (d DateTime) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%04d", d.Year)
	if d.Precision >= Month {
		fmt.Fprintf(&b, "-%02d", d.Month)
	}
	if d.Precision >= Day {
		fmt.Fprintf(&b, "-%02d", d.Day)
	}
	if d.Precision >= Hour {
		fmt.Fprintf(&b, "T%02d", d.Hour)
	}
	if d.Precision >= Minute {
		fmt.Fprintf(&b, ":%02d", d.Minute)
	}
	if d.Precision >= Second {
		fmt.Fprintf(&b, ":%02d", d.Second)
	}
	if d.Precision >= Millisecond {
		fmt.Fprintf(&b, ".%03d", d.Millisecond)
	}
	if d.HasOffset && d.Precision >= Hour {
		if d.Offset == 0 {
			b.WriteString("Z")
		} else {
			o := d.Offset
			sign := '+'
			if o < 0 {
				sign, o = '-', -o
			}
			fmt.Fprintf(&b, "%c%02d:%02d", sign, o/60, o%60)
		}
	}
	return b.String()
}

func (d Date) String() string {
	return d.ToDateTime().String()
}

func (t Time) String() string {
	s := t.asDateTime().String()
	return s[strings.IndexByte(s, 'T')+1:]
}

// FromTime converts a Go time to a millisecond-precision DateTime.
func FromTime(t time.Time) DateTime {
	_, off := t.Zone()
	return DateTime{Year: t.Year(), Month: int(t.Month()), Day: t.Day(), Hour: t.Hour(), Minute: t.Minute(),
		Second: t.Second(), Millisecond: t.Nanosecond() / 1e6, Offset: off / 60, HasOffset: true, Precision: Millisecond}
}

// AddDuration adds n units of precision unit to d with CQL calendar
// semantics: months/years clamp the day to the month's end, and units finer
// than d's precision are converted to its precision (truncating).
func (d DateTime) AddDuration(n int64, unit Precision) (DateTime, bool) {
	if unit == Week {
		n, unit = n*7, Day
	}
	if unit > d.Precision {
		// Convert the quantity to the value's precision, truncating
		// (1 year = 12 months; 1 month = 30 days; 1 year = 365 days).
		switch {
		case unit == Month:
			n, unit = n/12, Year
		case d.Precision >= Day:
			n, unit = n*unitMillis(unit)/unitMillis(d.Precision), d.Precision
		case d.Precision == Month:
			n, unit = n*unitMillis(unit)/unitMillis(Day)/30, Month
		default:
			n, unit = n*unitMillis(unit)/unitMillis(Day)/365, Year
		}
	}
	r := d
	switch unit {
	case Year:
		r.Year += int(n)
	case Month:
		tot := int64(r.Year)*12 + int64(r.Month-1) + n
		if r.Precision < Month {
			tot = int64(r.Year)*12 + n
			r.Year = int(tot / 12)
			break
		}
		r.Year, r.Month = int(floorDiv(tot, 12)), int(floorMod(tot, 12))+1
	default:
		p := r.Precision
		r = r.addMillis(n * unitMillis(unit))
		r.Precision = p
		r = r.truncate(p)
		if r.Year < 1 || r.Year > 9999 {
			return DateTime{}, false
		}
		return r, true
	}
	if r.Precision >= Day {
		if dim := DaysInMonth(r.Year, r.Month); r.Day > dim {
			r.Day = dim
		}
	}
	if r.Year < 1 || r.Year > 9999 {
		return DateTime{}, false
	}
	return r, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

func unitMillis(p Precision) int64 {
	switch p {
	case Week:
		return 7 * 86400000
	case Day:
		return 86400000
	case Hour:
		return 3600000
	case Minute:
		return 60000
	case Second:
		return 1000
	case Millisecond:
		return 1
	case Month:
		return 30 * 86400000
	case Year:
		return 365 * 86400000
	}
	return 0
}
