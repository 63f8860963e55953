package equity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Decimal is a JSON number rounded to 6 decimals; NaN and ±Inf encode as
// null.
type Decimal float64

// MarshalJSON implements json.Marshaler.
func (d Decimal) MarshalJSON() ([]byte, error) {
	if n := dec(float64(d)); n != nil {
		return []byte(*n), nil
	}
	return []byte("null"), nil
}

// PValue is a JSON number with 6 significant digits (rounding a small
// p-value to 6 decimals would print 0); NaN encodes as null.
type PValue float64

// MarshalJSON implements json.Marshaler.
func (p PValue) MarshalJSON() ([]byte, error) {
	v := float64(p)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', 6, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler; null reads as NaN.
func (p *PValue) UnmarshalJSON(b []byte) error {
	var d Decimal
	if err := d.UnmarshalJSON(b); err != nil {
		return err
	}
	*p = PValue(d)
	return nil
}

// Dashboard is the JSON document the /ui/ dashboard draws (see
// DashboardJSON). Field names are stable; new fields may be added.
type Dashboard struct {
	Version     int              `json:"version"`
	Generated   string           `json:"generated"`
	Entity      DashboardEntity  `json:"entity"`
	Period      DashboardPeriod  `json:"period"`
	PriorPeriod *DashboardPeriod `json:"priorPeriod"`
	Patients    int              `json:"patients"`
	Failed      int              `json:"failed"`
	ElapsedMS   int64            `json:"elapsedMs"`
	Notes       []string         `json:"notes"`
	Measures    []DashMeasure    `json:"measures"`
	Composite   DashComposite    `json:"composite"`
	EquityPool  *DashPool        `json:"equityPool"`
}

// DashboardEntity is whose population the report covers.
type DashboardEntity struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// DashboardPeriod is a measurement period.
type DashboardPeriod struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// DashMeasure is one measure (group) of the report.
type DashMeasure struct {
	ID                  string           `json:"id"`
	Canonical           string           `json:"canonical"`
	Title               string           `json:"title"`
	Group               string           `json:"group"`
	ImprovementNotation string           `json:"improvementNotation"`
	DirectionNote       string           `json:"directionNote,omitempty"`
	Benchmark           Decimal          `json:"benchmark"`
	BenchmarkSource     string           `json:"benchmarkSource"`
	Overall             DashCounts       `json:"overall"`
	PriorOverall        *DashCounts      `json:"priorOverall"`
	Quality             Decimal          `json:"quality"`
	Equity              *DashEquity      `json:"equity"`
	Stratifiers         []DashStratifier `json:"stratifiers"`
}

// DashCounts are population counts with the rate and its Wilson CI.
type DashCounts struct {
	InitialPopulation int     `json:"initialPopulation"`
	Denominator       int     `json:"denominator"`
	Exclusions        int     `json:"exclusions"`
	Numerator         int     `json:"numerator"`
	Rate              Decimal `json:"rate"`
	CILow             Decimal `json:"ciLow"`
	CIHigh            Decimal `json:"ciHigh"`
}

// DashEquity is a measure's equity score (§6.2).
type DashEquity struct {
	Attainment  Decimal  `json:"attainment"`
	Improvement *Decimal `json:"improvement"`
	Score       Decimal  `json:"score"`
}

// DashStratifier is one stratifier of a measure.
type DashStratifier struct {
	Code       string         `json:"code"`
	Dimensions []string       `json:"dimensions"`
	Reference  *DashReference `json:"reference"`
	Strata     []DashStratum  `json:"strata"`
	Indices    *DashIndices   `json:"indices"`
	// Completeness is the share of the denominator whose value is known,
	// unknown or declined (§6.1).
	Completeness DashCompleteness `json:"completeness"`
}

// DashCompleteness is a stratifier's data completeness.
type DashCompleteness struct {
	Known    Decimal `json:"known"`
	Unknown  Decimal `json:"unknown"`
	Declined Decimal `json:"declined"`
}

// DashReference is the reference the gaps are measured against.
type DashReference struct {
	Strategy string  `json:"strategy"`
	Stratum  string  `json:"stratum"`
	Display  string  `json:"display"`
	Rate     Decimal `json:"rate"`
}

// DashStratum is one stratum. Suppressed strata have null counts (privacy)
// or a null rate (small denominator); never zeros.
type DashStratum struct {
	Code        string          `json:"code"`
	Codes       []string        `json:"codes"`
	Display     string          `json:"display"`
	System      string          `json:"system"`
	Denominator *int            `json:"denominator"`
	Numerator   *int            `json:"numerator"`
	Rate        Decimal         `json:"rate"`
	CILow       Decimal         `json:"ciLow"`
	CIHigh      Decimal         `json:"ciHigh"`
	RSE         Decimal         `json:"rse"`
	Reportable  bool            `json:"reportable"`
	Suppression string          `json:"suppression"`
	Missing     bool            `json:"missing"`
	IsReference bool            `json:"isReference"`
	Disparity   *DashDisparity  `json:"disparity"`
	Prior       *DashStratumYoY `json:"prior"`
}

// DashDisparity compares a stratum with the reference (positive absGap =
// the stratum is worse).
type DashDisparity struct {
	AbsGap          Decimal `json:"absGap"`
	AbsGapCILow     Decimal `json:"absGapCiLow"`
	AbsGapCIHigh    Decimal `json:"absGapCiHigh"`
	PValue          PValue  `json:"pValue"`
	RateRatio       Decimal `json:"rateRatio"`
	RateRatioCILow  Decimal `json:"rateRatioCiLow"`
	RateRatioCIHigh Decimal `json:"rateRatioCiHigh"`
	DisparityRatio  Decimal `json:"disparityRatio"`
	DRCILow         Decimal `json:"drCiLow"`
	DRCIHigh        Decimal `json:"drCiHigh"`
	RelDiffPct      Decimal `json:"relDiffPct"`
	Significant     bool    `json:"significant"`
	// FDRSignificant: the gap's p-value passes Benjamini–Hochberg at
	// q = 0.05 over the stratifier's comparisons.
	FDRSignificant bool `json:"fdrSignificant"`
}

// DashStratumYoY is a stratum's change since the prior period.
type DashStratumYoY struct {
	Rate        Decimal `json:"rate"`
	RateChange  Decimal `json:"rateChange"`
	RateChangeP PValue  `json:"rateChangeP"`
	PriorAbsGap Decimal `json:"priorAbsGap"`
	GapChange   Decimal `json:"gapChange"`
	GapChangeP  PValue  `json:"gapChangeP"`
	Trend       string  `json:"trend"`
}

// DashIndices are a stratifier's summary indices.
type DashIndices struct {
	J        int         `json:"J"`
	Mu       Decimal     `json:"mu"`
	MuSource string      `json:"muSource"`
	Values   []DashIndex `json:"values"`
}

// DashIndex is one summary index with its prior-period change.
type DashIndex struct {
	Name      string  `json:"name"`
	Value     Decimal `json:"value"`
	SE        Decimal `json:"se"`
	CILow     Decimal `json:"ciLow"`
	CIHigh    Decimal `json:"ciHigh"`
	Prior     Decimal `json:"prior"`
	ChangeAbs Decimal `json:"changeAbs"`
	ChangePct Decimal `json:"changePct"`
}

// DashComposite is the equity-weighted quality composite.
type DashComposite struct {
	Quality      Decimal `json:"quality"`
	Equity       Decimal `json:"equity"`
	EquityWeight Decimal `json:"equityWeight"`
	Score        Decimal `json:"score"`
}

// DashPool is the equity-pool allocation.
type DashPool struct {
	Threshold Decimal         `json:"threshold"`
	Amount    Decimal         `json:"amount"`
	Providers []DashPoolEntry `json:"providers"`
}

// DashPoolEntry is one provider's share.
type DashPoolEntry struct {
	ID      string  `json:"id"`
	Members int     `json:"members"`
	HighSVI int     `json:"highSvi"`
	Score   Decimal `json:"score"`
	Weight  Decimal `json:"weight"`
	Share   Decimal `json:"share"`
	Amount  Decimal `json:"amount"`
}

func nanIfZero(v float64) float64 {
	if v == 0 {
		return math.NaN()
	}
	return v
}

func dashCounts(c Counts, ci Interval) DashCounts {
	return DashCounts{InitialPopulation: c.InitialPopulation, Denominator: c.Denominator, Exclusions: c.Exclusions,
		Numerator: c.Numerator, Rate: Decimal(c.Rate()), CILow: Decimal(ci.Low), CIHigh: Decimal(ci.High)}
}

// Dashboard builds the dashboard document.
func (r *Result) Dashboard() Dashboard {
	d := Dashboard{Version: 1, Generated: r.Generated.UTC().Format("2006-01-02T15:04:05Z"),
		Entity: DashboardEntity{ID: r.Report.opts.Context.EntityID, Type: r.Report.opts.Context.EntityType},
		Period: DashboardPeriod{r.PeriodStart, r.PeriodEnd}, Patients: r.Patients, Failed: r.Failed,
		ElapsedMS: r.Elapsed.Milliseconds(), Notes: append([]string{}, r.Notes...), Measures: []DashMeasure{},
		Composite: DashComposite{Quality: Decimal(r.Quality), Equity: Decimal(r.Equity), EquityWeight: Decimal(r.EquityWeight), Score: Decimal(r.Composite)}}
	if r.PriorStart != "" {
		d.PriorPeriod = &DashboardPeriod{r.PriorStart, r.PriorEnd}
	}
	fo := r.Report.opts.FHIR
	for i := range r.Report.Measures {
		m := &r.Report.Measures[i]
		mr := r.Measures[i]
		first := m.Analyses[0]
		dm := DashMeasure{ID: m.Input.ID, Canonical: m.Input.Canonical, Title: mr.Title, Group: mr.GroupID,
			ImprovementNotation: m.Input.Direction.Code(), DirectionNote: mr.DirectionNote,
			Benchmark: Decimal(nanIfZero(m.Input.Benchmark)), BenchmarkSource: mr.BenchmarkSource,
			Overall: dashCounts(first.Overall, first.OverallCI), Quality: Decimal(mr.Quality), Stratifiers: []DashStratifier{}}
		if p := m.Prior[0]; p != nil {
			c := dashCounts(p.Overall, p.OverallCI)
			dm.PriorOverall = &c
		}
		if e := m.Equity; e != nil {
			de := &DashEquity{Attainment: Decimal(e.Attainment), Score: Decimal(e.Score())}
			if e.Improvement != nil {
				v := Decimal(*e.Improvement)
				de.Improvement = &v
			}
			dm.Equity = de
		}
		for ai := range m.Analyses {
			dm.Stratifiers = append(dm.Stratifiers, dashStratifier(m.Analyses[ai], m.Prior[ai], fo))
		}
		d.Measures = append(d.Measures, dm)
	}
	if r.Pool != nil {
		p := &DashPool{Threshold: Decimal(r.Pool.Threshold), Amount: Decimal(r.Pool.Amount), Providers: []DashPoolEntry{}}
		for _, e := range r.Pool.Providers {
			p.Providers = append(p.Providers, DashPoolEntry{ID: e.ID, Members: e.Members, HighSVI: e.HighSVI,
				Score: Decimal(e.Score), Weight: Decimal(e.Weight), Share: Decimal(e.Share), Amount: Decimal(e.Amount)})
		}
		d.EquityPool = p
	}
	return d
}

func dashStratifier(a Analysis, prior *Analysis, fo FHIROptions) DashStratifier {
	ds := DashStratifier{Code: stratifierName(a.Dimensions), Strata: []DashStratum{}}
	for _, dim := range a.Dimensions {
		ds.Dimensions = append(ds.Dimensions, string(dim))
	}
	label := func(s *Stratum) (code, display, system string) {
		codes, disp, sys := make([]string, len(s.Values)), make([]string, len(s.Values)), make([]string, len(s.Values))
		for j, dim := range a.Dimensions {
			codes[j], disp[j] = s.Values[j], StratumDisplay(dim, s.Values[j])
			if c := StratumValue(dim, s.Values[j], fo); len(c.Coding) > 0 {
				sys[j] = c.Coding[0].System
			}
		}
		return joinWith(codes, "|"), joinWith(disp, " · "), joinWith(sys, "|")
	}
	if a.HasReference {
		ref := &DashReference{Strategy: string(a.Reference.Strategy), Rate: Decimal(a.Reference.Rate)}
		if a.Reference.Stratum >= 0 {
			ref.Stratum, ref.Display, _ = label(&a.Strata[a.Reference.Stratum])
		} else {
			ref.Display = string(a.Reference.Strategy)
		}
		ds.Reference = ref
	}
	priorIdx := strataIndex(prior)
	for i := range a.Strata {
		s := &a.Strata[i]
		code, display, system := label(s)
		st := DashStratum{Code: code, Codes: append([]string{}, s.Values...), Display: display, System: system,
			Reportable: s.Reportable, Suppression: string(s.Suppression()), Missing: s.Missing,
			IsReference: a.HasReference && a.Reference.Stratum == i,
			Rate:        Decimal(math.NaN()), CILow: Decimal(math.NaN()), CIHigh: Decimal(math.NaN()), RSE: Decimal(math.NaN())}
		if !s.Masked() {
			den, num := s.Denominator, s.Numerator
			st.Denominator, st.Numerator = &den, &num
			if s.Suppression() == NotSuppressed {
				st.Rate, st.CILow, st.CIHigh, st.RSE = Decimal(s.Rate), Decimal(s.CI.Low), Decimal(s.CI.High), Decimal(s.RSE)
			}
		}
		if dp := a.Disparities[i]; dp != nil && a.HasReference {
			st.Disparity = &DashDisparity{AbsGap: Decimal(dp.AbsGap), AbsGapCILow: Decimal(dp.AbsGapCI.Low), AbsGapCIHigh: Decimal(dp.AbsGapCI.High),
				PValue: PValue(dp.PValue), RateRatio: Decimal(dp.RateRatio), RateRatioCILow: Decimal(dp.RateRatioCI.Low),
				RateRatioCIHigh: Decimal(dp.RateRatioCI.High), DisparityRatio: Decimal(dp.DisparityRatio),
				DRCILow: Decimal(dp.DisparityRatioCI.Low), DRCIHigh: Decimal(dp.DisparityRatioCI.High),
				RelDiffPct: Decimal(dp.RelDiffPct), Significant: dp.Significant}
		}
		st.Prior = stratumYoY(a, i, prior, priorIdx)
		ds.Strata = append(ds.Strata, st)
	}
	var ps []float64
	var at []int
	for i, st := range ds.Strata {
		if st.Disparity != nil && !st.IsReference {
			ps = append(ps, a.Disparities[i].PValue)
			at = append(at, i)
		}
	}
	for k, ok := range BenjaminiHochberg(ps, 0.05) {
		ds.Strata[at[k]].Disparity.FDRSignificant = ok
	}
	c := DataCompleteness(a.Stratification)
	if c.Denominator > 0 {
		ds.Completeness = DashCompleteness{Known: Decimal(c.Known), Unknown: Decimal(c.Unknown), Declined: Decimal(c.Declined)}
	} else {
		nan := Decimal(math.NaN())
		ds.Completeness = DashCompleteness{nan, nan, nan}
	}
	if ix := a.Indices; ix != nil {
		di := &DashIndices{J: ix.J, Mu: Decimal(ix.Mu), MuSource: ix.MuSource}
		var priorList []IndexValue
		if prior != nil && prior.Indices != nil {
			priorList = prior.Indices.List()
		}
		for k, iv := range ix.List() {
			e := DashIndex{Name: iv.Name, Value: Decimal(iv.Value), SE: Decimal(iv.SE),
				CILow: Decimal(iv.Value - Z95*iv.SE), CIHigh: Decimal(iv.Value + Z95*iv.SE),
				Prior: Decimal(math.NaN()), ChangeAbs: Decimal(math.NaN()), ChangePct: Decimal(math.NaN())}
			if priorList != nil {
				c := CompareIndex(priorList[k].Value, iv.Value)
				e.Prior, e.ChangeAbs, e.ChangePct = Decimal(c.Prior), Decimal(c.Abs), Decimal(c.Pct)
			}
			di.Values = append(di.Values, e)
		}
		ds.Indices = di
	}
	return ds
}

// stratumYoY is stratum i's change since the prior period; nil when either
// period suppresses it.
func stratumYoY(a Analysis, i int, prior *Analysis, priorIdx map[string]int) *DashStratumYoY {
	ps, rc, gc, ok := stratumChange(a, i, prior, priorIdx)
	if !ok {
		return nil
	}
	y := &DashStratumYoY{Rate: Decimal(ps.Rate), RateChange: Decimal(rc.Delta), RateChangeP: PValue(rc.P), Trend: string(rc.Trend),
		PriorAbsGap: Decimal(math.NaN()), GapChange: Decimal(math.NaN()), GapChangeP: PValue(math.NaN())}
	if gc != nil {
		y.PriorAbsGap, y.GapChange, y.GapChangeP = Decimal(gc.PriorGap), Decimal(gc.Delta), PValue(gc.P)
	}
	return y
}

func joinWith(parts []string, sep string) string {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(p)
	}
	return b.String()
}

// WriteCSV writes the tidy long table (§6.3) to tidy and the indices
// table to indices.
func (r *Result) WriteCSV(tidy, indices io.Writer) error { return r.Report.WriteCSV(tidy, indices) }

// ParametersJSON renders the result as a FHIR R4 Parameters resource:
// "measureReport" (one summary MeasureReport per measure, stratifiers and
// statistics as the equity-* extensions), "priorMeasureReport" (the prior
// period's, with year-over-year), "tidy" and "indices" (the CSV tables as
// Binary text/csv), "composite" (quality, equity, equityWeight, score),
// "equityPool" (threshold, amount, one "provider" part each), "patients",
// "failed" and "note" parameters.
func (r *Result) ParametersJSON() ([]byte, error) {
	type param struct {
		Name         string          `json:"name"`
		Resource     json.RawMessage `json:"resource,omitempty"`
		ValueString  string          `json:"valueString,omitempty"`
		ValueInteger *int            `json:"valueInteger,omitempty"`
		ValueDecimal *json.Number    `json:"valueDecimal,omitempty"`
		Part         []param         `json:"part,omitempty"`
	}
	var ps []param
	reports, err := r.Report.MeasureReports()
	if err != nil {
		return nil, err
	}
	for _, b := range reports {
		ps = append(ps, param{Name: "measureReport", Resource: b})
	}
	if r.PriorStart != "" {
		for _, m := range r.Report.Measures {
			var as []Analysis
			for _, p := range m.Prior {
				if p != nil {
					as = append(as, *p)
				}
			}
			if len(as) == 0 {
				continue
			}
			b, err := MeasureReportJSON(SummaryReport{Measure: m.Input.Canonical, PeriodStart: r.PriorStart, PeriodEnd: r.PriorEnd,
				Reporter: r.Report.opts.Reporter, Direction: m.Input.Direction, Date: r.Generated}, as, r.Report.opts.FHIR)
			if err != nil {
				return nil, fmt.Errorf("equity: measure %s prior period: %w", m.Input.ID, err)
			}
			ps = append(ps, param{Name: "priorMeasureReport", Resource: b})
		}
	}
	var tidy, indices bytes.Buffer
	if err := r.WriteCSV(&tidy, &indices); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		name string
		b    []byte
	}{{"tidy", tidy.Bytes()}, {"indices", indices.Bytes()}} {
		bin, err := json.Marshal(map[string]string{"resourceType": "Binary", "contentType": "text/csv",
			"data": base64.StdEncoding.EncodeToString(t.b)})
		if err != nil {
			return nil, fmt.Errorf("equity: parameters: %w", err)
		}
		ps = append(ps, param{Name: t.name, Resource: bin})
	}
	decPart := func(name string, v float64) (param, bool) {
		d := dec(v)
		return param{Name: name, ValueDecimal: d}, d != nil
	}
	var comp []param
	for _, x := range []struct {
		n string
		v float64
	}{{"quality", r.Quality}, {"equity", r.Equity}, {"equityWeight", r.EquityWeight}, {"score", r.Composite}} {
		if p, ok := decPart(x.n, x.v); ok {
			comp = append(comp, p)
		}
	}
	if len(comp) > 0 {
		ps = append(ps, param{Name: "composite", Part: comp})
	}
	if r.Pool != nil {
		pool := param{Name: "equityPool"}
		for _, x := range []struct {
			n string
			v float64
		}{{"threshold", r.Pool.Threshold}, {"amount", r.Pool.Amount}} {
			if p, ok := decPart(x.n, x.v); ok {
				pool.Part = append(pool.Part, p)
			}
		}
		for _, e := range r.Pool.Providers {
			members, high := e.Members, e.HighSVI
			pp := param{Name: "provider", Part: []param{{Name: "id", ValueString: e.ID},
				{Name: "members", ValueInteger: &members}, {Name: "highSvi", ValueInteger: &high}}}
			for _, x := range []struct {
				n string
				v float64
			}{{"score", e.Score}, {"weight", e.Weight}, {"share", e.Share}, {"amount", e.Amount}} {
				if p, ok := decPart(x.n, x.v); ok {
					pp.Part = append(pp.Part, p)
				}
			}
			pool.Part = append(pool.Part, pp)
		}
		ps = append(ps, pool)
	}
	patients, failed := r.Patients, r.Failed
	ps = append(ps, param{Name: "patients", ValueInteger: &patients}, param{Name: "failed", ValueInteger: &failed})
	for _, n := range r.Notes {
		ps = append(ps, param{Name: "note", ValueString: n})
	}
	b, err := json.Marshal(struct {
		ResourceType string  `json:"resourceType"`
		Parameter    []param `json:"parameter"`
	}{"Parameters", ps})
	if err != nil {
		return nil, fmt.Errorf("equity: parameters: %w", err)
	}
	return b, nil
}

// DashboardJSON encodes Dashboard.
func (r *Result) DashboardJSON() ([]byte, error) {
	b, err := json.Marshal(r.Dashboard())
	if err != nil {
		return nil, fmt.Errorf("equity: dashboard: %w", err)
	}
	return b, nil
}
