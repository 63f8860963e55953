package equity

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ReportContext identifies what a CSV row is about.
type ReportContext struct {
	EntityID, EntityType      string
	MeasureID, MeasureVersion string
	PeriodStart, PeriodEnd    string
}

// TidyColumns returns the header of the tidy long CSV (§6.3).
func TidyColumns() []string { return slices.Clone(tidyColumns) }

// IndexColumns returns the header of the indices CSV (§6.3).
func IndexColumns() []string { return slices.Clone(indexColumns) }

var tidyColumns = []string{"entity_id", "entity_type", "measure_id", "measure_version", "period_start", "period_end",
	"improvement_notation", "stratifier", "stratum_code", "stratum_system", "stratum_display", "data_source",
	"denominator", "numerator", "rate", "ci_low", "ci_high", "ci_method", "rse", "reportable", "suppression_reason",
	"reference_strategy", "reference_stratum", "reference_rate", "abs_gap", "abs_gap_ci_low", "abs_gap_ci_high",
	"abs_gap_p", "rate_ratio", "disparity_ratio", "dr_ci_low", "dr_ci_high", "prior_rate", "rate_change",
	"rate_change_p", "prior_abs_gap", "gap_change", "gap_change_p", "trend"}

var indexColumns = []string{"entity_id", "measure_id", "period_start", "period_end", "stratifier", "index_name",
	"value", "se", "ci_low", "ci_high", "J", "mu", "mu_source", "prior_value", "change_abs", "change_pct"}

func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64)
}

func pval(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func stratifierName(dims []Dimension) string {
	s := make([]string, len(dims))
	for i, d := range dims {
		s[i] = string(d)
	}
	return strings.Join(s, "+")
}

// WriteTidyCSV writes the header and one row per stratum of a (and a first
// "overall" row). prior, when not nil, is the same stratifier for the
// previous period: strata are matched by their values to fill the
// year-over-year columns. Suppressed cells are left empty with the reason,
// never written as 0.
func WriteTidyCSV(w io.Writer, rc ReportContext, a Analysis, prior *Analysis, opts FHIROptions) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(tidyColumns); err != nil {
		return fmt.Errorf("equity: csv: %w", err)
	}
	head := []string{rc.EntityID, rc.EntityType, rc.MeasureID, rc.MeasureVersion, rc.PeriodStart, rc.PeriodEnd,
		a.Direction.Code(), stratifierName(a.Dimensions)}
	o := a.Overall
	row := append(append([]string{}, head...), "overall", "", "Overall", "all",
		strconv.Itoa(o.Denominator), strconv.Itoa(o.Numerator), num(o.Rate()), num(a.OverallCI.Low), num(a.OverallCI.High), "wilson", "", "", "none")
	row = append(row, make([]string, len(tidyColumns)-len(row))...)
	if err := cw.Write(row); err != nil {
		return fmt.Errorf("equity: csv: %w", err)
	}
	priorIdx := strataIndex(prior)
	for i := range a.Strata {
		s := &a.Strata[i]
		codes, systems, displays := make([]string, len(s.Values)), make([]string, len(s.Values)), make([]string, len(s.Values))
		for j, d := range a.Dimensions {
			c := StratumValue(d, s.Values[j], opts)
			codes[j], displays[j] = s.Values[j], c.Text
			if len(c.Coding) > 0 {
				systems[j], displays[j] = c.Coding[0].System, c.Coding[0].Display
			}
		}
		source := "direct"
		if s.Missing {
			source = "unknown"
		}
		sup := s.Suppression()
		row := append(append([]string{}, head...), strings.Join(codes, "|"), strings.Join(systems, "|"), strings.Join(displays, "|"), source)
		if s.Masked() {
			row = append(row, "", "", "", "", "", "wilson", "")
		} else {
			row = append(row, strconv.Itoa(s.Denominator), strconv.Itoa(s.Numerator))
			if sup == NotSuppressed {
				row = append(row, num(s.Rate), num(s.CI.Low), num(s.CI.High), "wilson", num(s.RSE))
			} else {
				row = append(row, "", "", "", "wilson", "")
			}
		}
		row = append(row, strconv.FormatBool(s.Reportable), string(sup))
		d := a.Disparities[i]
		if d != nil && a.HasReference {
			refName := ""
			if a.Reference.Stratum >= 0 {
				refName = strings.Join(a.Strata[a.Reference.Stratum].Values, "|")
			}
			row = append(row, string(a.Reference.Strategy), refName, num(a.Reference.Rate), num(d.AbsGap),
				num(d.AbsGapCI.Low), num(d.AbsGapCI.High), pval(d.PValue), num(d.RateRatio), num(d.DisparityRatio),
				num(d.DisparityRatioCI.Low), num(d.DisparityRatioCI.High))
		} else {
			row = append(row, make([]string, 11)...)
		}
		row = append(row, yoyCells(a, i, prior, priorIdx)...)
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("equity: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("equity: csv: %w", err)
	}
	return nil
}

// yoyCells fills prior_rate … trend for stratum i.
func yoyCells(a Analysis, i int, prior *Analysis, priorIdx map[string]int) []string {
	out := make([]string, 7)
	ps, rc, gc, ok := stratumChange(a, i, prior, priorIdx)
	if !ok {
		return out
	}
	out[0], out[1], out[2], out[6] = num(ps.Rate), num(rc.Delta), pval(rc.P), string(rc.Trend)
	if gc != nil {
		out[3], out[4], out[5] = num(gc.PriorGap), num(gc.Delta), pval(gc.P)
	}
	return out
}

// IndexValue is one named summary index with its SE (NaN when there is no
// closed form).
type IndexValue struct {
	Name      string
	Value, SE float64
}

// List names the indices as the CSV and FHIR outputs do.
func (ix *Indices) List() []IndexValue {
	nan := math.NaN()
	return []IndexValue{
		{"id-unweighted", ix.IDUnweighted, nan}, {"id-weighted", ix.IDWeighted, nan},
		{"id-best", ix.IDBest, nan}, {"range-difference", ix.RangeDiff, nan},
		{"range-ratio", ix.RangeRatio, nan}, {"bgv", ix.BGV, ix.BGVSE},
		{"theil", ix.Theil, ix.TheilSE}, {"mld", ix.MLD, ix.MLDSE},
		{"mdb-unweighted", ix.MDBUnweighted, nan}, {"mdb-weighted", ix.MDBWeighted, nan},
	}
}

// WriteIndicesCSV writes the indices file: header and one row per index
// (nothing but the header when a has no indices).
func WriteIndicesCSV(w io.Writer, rc ReportContext, a Analysis, prior *Analysis) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(indexColumns); err != nil {
		return fmt.Errorf("equity: csv: %w", err)
	}
	if a.Indices != nil {
		var priorList []IndexValue
		if prior != nil && prior.Indices != nil {
			priorList = prior.Indices.List()
		}
		for k, iv := range a.Indices.List() {
			lo, hi := "", ""
			if !math.IsNaN(iv.SE) {
				lo, hi = num(iv.Value-Z95*iv.SE), num(iv.Value+Z95*iv.SE)
			}
			pv, ca, cp := "", "", ""
			if priorList != nil {
				c := CompareIndex(priorList[k].Value, iv.Value)
				pv, ca, cp = num(c.Prior), num(c.Abs), num(c.Pct)
			}
			row := []string{rc.EntityID, rc.MeasureID, rc.PeriodStart, rc.PeriodEnd, stratifierName(a.Dimensions),
				iv.Name, num(iv.Value), num(iv.SE), lo, hi, strconv.Itoa(a.Indices.J), num(a.Indices.Mu), a.Indices.MuSource,
				pv, ca, cp}
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("equity: csv: %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("equity: csv: %w", err)
	}
	return nil
}
