package equity

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DefaultCanonicalBase prefixes the project's CodeSystem and
// StructureDefinition canonicals when FHIROptions.Base is empty.
const DefaultCanonicalBase = "http://equitas.example/fhir"

const (
	systemPopulation    = "http://terminology.hl7.org/CodeSystem/measure-population"
	systemGender        = "http://hl7.org/fhir/administrative-gender"
	extDataAbsentReason = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
)

// FHIROptions configure the MeasureReport rendering.
type FHIROptions struct {
	// Base is the canonical base of the project extensions and code
	// systems; "" means DefaultCanonicalBase.
	Base string
}

func (o FHIROptions) base() string {
	if o.Base == "" {
		return DefaultCanonicalBase
	}
	return strings.TrimRight(o.Base, "/")
}

type coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type concept struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

type extension struct {
	URL          string       `json:"url"`
	ValueCode    string       `json:"valueCode,omitempty"`
	ValueCoding  *coding      `json:"valueCoding,omitempty"`
	ValueString  string       `json:"valueString,omitempty"`
	ValueDecimal *json.Number `json:"valueDecimal,omitempty"`
	ValueInteger *int         `json:"valueInteger,omitempty"`
	ValueRange   *rangeJSON   `json:"valueRange,omitempty"`
	Extension    []extension  `json:"extension,omitempty"`
}

type quantity struct {
	Value *json.Number `json:"value,omitempty"`
}

type rangeJSON struct {
	Low  quantity `json:"low"`
	High quantity `json:"high"`
}

type population struct {
	Code  concept `json:"code"`
	Count int     `json:"count"`
}

type score struct {
	Extension []extension  `json:"extension,omitempty"`
	Value     *json.Number `json:"value,omitempty"`
}

type component struct {
	Code  concept `json:"code"`
	Value concept `json:"value"`
}

type stratumJSON struct {
	Extension    []extension  `json:"extension,omitempty"`
	Value        *concept     `json:"value,omitempty"`
	Component    []component  `json:"component,omitempty"`
	Population   []population `json:"population,omitempty"`
	MeasureScore *score       `json:"measureScore,omitempty"`
}

type stratifierJSON struct {
	Extension []extension   `json:"extension,omitempty"`
	Code      []concept     `json:"code"`
	Stratum   []stratumJSON `json:"stratum"`
}

// dec renders v rounded to 6 decimals (the precision of equity.md's
// oracles); NaN and ±Inf yield nil so the element is left out.
func dec(v float64) *json.Number {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	r := math.Round(v*1e6) / 1e6
	n := json.Number(strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", r), "0"), "."))
	if n == "-0" {
		n = "0"
	}
	return &n
}

func decExt(url string, v float64) (extension, bool) {
	d := dec(v)
	return extension{URL: url, ValueDecimal: d}, d != nil
}

func rangeExt(url string, ci Interval) (extension, bool) {
	lo, hi := dec(ci.Low), dec(ci.High)
	if lo == nil || hi == nil {
		return extension{}, false
	}
	return extension{URL: url, ValueRange: &rangeJSON{Low: quantity{lo}, High: quantity{hi}}}, true
}

var ombDisplay = map[string]string{
	"1002-5": "American Indian or Alaska Native", "2028-9": "Asian", "2054-5": "Black or African American",
	"2076-8": "Native Hawaiian or Other Pacific Islander", "2106-3": "White", "2131-1": "Other Race",
	"2135-2": "Hispanic or Latino", MENA: "Middle Eastern or North African", "2186-5": "Not Hispanic or Latino",
}

// StratumValue renders one stratum value of dimension d as a FHIR
// CodeableConcept: CDC REC, v3-NullFlavor, BCP-47 and administrative-gender
// codes where they exist, the project's equity-stratum code system
// otherwise, and text for the attributed provider (a reference).
func StratumValue(d Dimension, v string, opts FHIROptions) concept {
	switch {
	case v == Unknown:
		return concept{Coding: []coding{{System: SystemNullFlavor, Code: Unknown, Display: "Unknown"}}}
	case v == AskedDeclined:
		return concept{Coding: []coding{{System: SystemNullFlavor, Code: AskedDeclined, Display: "Asked but no answer"}}}
	case (d == DimRace || d == DimEthnicity || d == DimRaceEthnicity) && ombDisplay[v] != "":
		return concept{Coding: []coding{{System: SystemCDCREC, Code: v, Display: ombDisplay[v]}}}
	case d == DimLanguage:
		return concept{Coding: []coding{{System: SystemBCP47, Code: v}}}
	case d == DimSex:
		return concept{Coding: []coding{{System: systemGender, Code: v}}}
	case d == DimProvider:
		return concept{Text: v}
	}
	return concept{Coding: []coding{{System: opts.base() + "/CodeSystem/equity-stratum", Code: v}}}
}

func dimensionConcept(d Dimension, opts FHIROptions) concept {
	return concept{Coding: []coding{{System: opts.base() + "/CodeSystem/equity-stratifier", Code: string(d)}}}
}

func popJSON(code string, n int) population {
	return population{Code: concept{Coding: []coding{{System: systemPopulation, Code: code}}}, Count: n}
}

// StratifierJSON renders the analysis as one R4
// MeasureReport.group.stratifier element (§5.8, §6.4): a stratum per group
// (value, or component per dimension when cross-classified) with its
// population counts and rate; the Wilson CI as extension equity-ci on
// measureScore; equity-suppression on every suppressed stratum, whose
// measureScore then carries data-absent-reason = masked instead of a
// value (privacy-suppressed strata publish no counts either);
// equity-disparity (referenceStrategy, referenceStratum or referenceRate,
// absGap, absGapCI, pValue, rateRatio, disparityRatio, drCI) on compared
// strata; equity-index (name, value, se, J, mu) per summary index on the
// stratifier.
func StratifierJSON(a Analysis, opts FHIROptions) ([]byte, error) {
	base := opts.base() + "/StructureDefinition/"
	out := stratifierJSON{Stratum: []stratumJSON{}}
	for _, d := range a.Dimensions {
		out.Code = append(out.Code, dimensionConcept(d, opts))
	}
	for i := range a.Strata {
		s := &a.Strata[i]
		sj := stratumJSON{}
		if len(a.Dimensions) == 1 {
			v := StratumValue(a.Dimensions[0], s.Values[0], opts)
			sj.Value = &v
		} else {
			for j, d := range a.Dimensions {
				sj.Component = append(sj.Component, component{Code: dimensionConcept(d, opts), Value: StratumValue(d, s.Values[j], opts)})
			}
		}
		sup := s.Suppression()
		if !s.Masked() {
			sj.Population = []population{
				popJSON("initial-population", s.InitialPopulation),
				popJSON("denominator", s.Denominator+s.Exclusions),
				popJSON("denominator-exclusion", s.Exclusions),
				popJSON("numerator", s.Numerator),
			}
		}
		if sup != NotSuppressed {
			sj.Extension = append(sj.Extension, extension{URL: base + "equity-suppression", ValueCode: string(sup)})
			sj.MeasureScore = &score{Extension: []extension{{URL: extDataAbsentReason, ValueCode: "masked"}}}
		} else {
			sc := &score{Value: dec(s.Rate)}
			if e, ok := rangeExt(base+"equity-ci", s.CI); ok {
				sc.Extension = append(sc.Extension, e)
			}
			if sc.Value == nil {
				sc.Extension = append(sc.Extension, extension{URL: extDataAbsentReason, ValueCode: "not-applicable"})
			}
			sj.MeasureScore = sc
		}
		if d := a.Disparities[i]; d != nil && a.HasReference {
			sj.Extension = append(sj.Extension, disparityExt(a, *d, base, opts))
		}
		out.Stratum = append(out.Stratum, sj)
	}
	if ix := a.Indices; ix != nil {
		for _, kv := range ix.List() {
			j := ix.J
			e := extension{URL: base + "equity-index", Extension: []extension{{URL: "name", ValueCode: kv.Name}}}
			if v, ok := decExt("value", kv.Value); ok {
				e.Extension = append(e.Extension, v)
			}
			if v, ok := decExt("se", kv.SE); ok {
				e.Extension = append(e.Extension, v)
			}
			e.Extension = append(e.Extension, extension{URL: "J", ValueInteger: &j})
			if v, ok := decExt("mu", ix.Mu); ok {
				e.Extension = append(e.Extension, v)
			}
			e.Extension = append(e.Extension, extension{URL: "muSource", ValueCode: ix.MuSource})
			out.Extension = append(out.Extension, e)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("equity: stratifier JSON: %w", err)
	}
	return b, nil
}

func disparityExt(a Analysis, d Disparity, base string, opts FHIROptions) extension {
	ref := a.Reference
	e := extension{URL: base + "equity-disparity", Extension: []extension{{URL: "referenceStrategy", ValueCode: string(ref.Strategy)}}}
	if ref.Stratum >= 0 && len(a.Dimensions) == 1 {
		v := StratumValue(a.Dimensions[0], a.Strata[ref.Stratum].Values[0], opts)
		if len(v.Coding) > 0 {
			c := v.Coding[0]
			c.Display = ""
			e.Extension = append(e.Extension, extension{URL: "referenceStratum", ValueCoding: &c})
		} else {
			e.Extension = append(e.Extension, extension{URL: "referenceStratum", ValueString: v.Text})
		}
	} else if ref.Stratum >= 0 {
		e.Extension = append(e.Extension, extension{URL: "referenceStratum", ValueString: strings.Join(a.Strata[ref.Stratum].Values, " | ")})
	}
	for _, x := range []struct {
		url string
		v   float64
	}{{"referenceRate", ref.Rate}, {"absGap", d.AbsGap}} {
		if v, ok := decExt(x.url, x.v); ok {
			e.Extension = append(e.Extension, v)
		}
	}
	if r, ok := rangeExt("absGapCI", d.AbsGapCI); ok {
		e.Extension = append(e.Extension, r)
	}
	if !math.IsNaN(d.PValue) {
		// p-values keep 6 significant digits: rounding to 6 decimals would
		// turn a highly significant gap into 0.
		p := json.Number(strconv.FormatFloat(d.PValue, 'g', 6, 64))
		e.Extension = append(e.Extension, extension{URL: "pValue", ValueDecimal: &p})
	}
	for _, x := range []struct {
		url string
		v   float64
	}{{"rateRatio", d.RateRatio}, {"disparityRatio", d.DisparityRatio}} {
		if v, ok := decExt(x.url, x.v); ok {
			e.Extension = append(e.Extension, v)
		}
	}
	if r, ok := rangeExt("drCI", d.DisparityRatioCI); ok {
		e.Extension = append(e.Extension, r)
	}
	return e
}
