package measure

import (
	"fmt"
	"strings"

	"github.com/equitas/equitas/measures/elm/cql"
)

// Period is a measurement period: the interval the engine sees and the
// text the report shows.
type Period struct {
	Start, End         cql.DateTime
	StartText, EndText string
}

// Interval returns the closed Interval<DateTime> for "Measurement Period".
func (p Period) Interval() *cql.Interval {
	return &cql.Interval{Low: p.Start, High: p.End, LowClosed: true, HighClosed: true}
}

// ParsePeriod parses "START/END". Each bound is a date (YYYY, YYYY-MM or
// YYYY-MM-DD: whole units, so an end date includes its last millisecond)
// or a dateTime. Bounds without an offset are UTC, like the Measurement
// Period defaults in published ELM.
func ParsePeriod(s string) (Period, error) {
	start, end, ok := strings.Cut(s, "/")
	if !ok {
		return Period{}, fmt.Errorf("period %q: want START/END", s)
	}
	return NewPeriod(strings.TrimSpace(start), strings.TrimSpace(end))
}

// NewPeriod builds a period from its two bounds (see ParsePeriod).
func NewPeriod(start, end string) (Period, error) {
	lo, err := bound(start, false)
	if err != nil {
		return Period{}, fmt.Errorf("period start: %w", err)
	}
	hi, err := bound(end, true)
	if err != nil {
		return Period{}, fmt.Errorf("period end: %w", err)
	}
	if c, ok := compareDT(Period{Start: lo, End: hi}); ok && c > 0 {
		return Period{}, fmt.Errorf("period start %s is after its end %s", start, end)
	}
	return Period{Start: lo, End: hi, StartText: start, EndText: end}, nil
}

// DefaultPeriod is the Measure's effectivePeriod.
func DefaultPeriod(d *Definition) (Period, error) {
	if d.EffectiveStart == "" || d.EffectiveEnd == "" {
		return Period{}, fmt.Errorf("Measure %s has no complete effectivePeriod; give a period", d.URL)
	}
	return NewPeriod(d.EffectiveStart, d.EffectiveEnd)
}

func bound(s string, end bool) (cql.DateTime, error) {
	if s == "" {
		return cql.DateTime{}, fmt.Errorf("empty bound")
	}
	if strings.Contains(s, "T") {
		d, err := cql.ParseDateTime(s)
		if err != nil {
			return cql.DateTime{}, err
		}
		if !d.HasOffset {
			d.HasOffset, d.Offset = true, 0
		}
		return fill(d, end), nil
	}
	d, err := cql.ParseDate(s)
	if err != nil {
		return cql.DateTime{}, err
	}
	dt := cql.DateTime{Year: d.Year, Month: d.Month, Day: d.Day, Precision: d.Precision, HasOffset: true}
	return fill(dt, end), nil
}

// fill extends a partial bound to millisecond precision: the first instant
// for a start, the last for an end.
func fill(d cql.DateTime, end bool) cql.DateTime {
	p := d.Precision
	if p < cql.Month {
		d.Month = 1
		if end {
			d.Month = 12
		}
	}
	if p < cql.Day {
		d.Day = 1
		if end {
			d.Day = cql.DaysInMonth(d.Year, d.Month)
		}
	}
	if p < cql.Hour && end {
		d.Hour = 23
	}
	if p < cql.Minute && end {
		d.Minute = 59
	}
	if p < cql.Second && end {
		d.Second = 59
	}
	if p < cql.Millisecond && end {
		d.Millisecond = 999
	}
	d.Precision = cql.Millisecond
	return d
}

// compareDT compares a period's bounds at millisecond precision.
func compareDT(p Period) (int, bool) {
	return cql.CompareDateTime(p.Start, p.End, cql.Millisecond)
}
