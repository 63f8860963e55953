package equity

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Dimension is one equity stratifier dimension. The values are the codes
// of the project CodeSystem the FHIR stratifier.code uses (§6.4).
type Dimension string

const (
	DimRace              Dimension = "race-omb1997"
	DimEthnicity         Dimension = "ethnicity-omb1997"
	DimRaceEthnicity     Dimension = "race-ethnicity-spd15"
	DimLanguage          Dimension = "language-preferred"
	DimInterpreter       Dimension = "interpreter-needed"
	DimSex               Dimension = "sex"
	DimPayer             Dimension = "payer"
	DimAgeBand           Dimension = "age-band"
	DimDisability        Dimension = "disability"
	DimSexualOrientation Dimension = "sexual-orientation"
	DimGenderIdentity    Dimension = "gender-identity"
	DimCounty            Dimension = "county"
	DimZIP               Dimension = "zip"
	DimSVI               Dimension = "svi-quartile"
	DimProvider          Dimension = "attributed-provider"
)

// Dimensions lists every dimension Stratify understands.
func Dimensions() []Dimension {
	return []Dimension{DimRace, DimEthnicity, DimRaceEthnicity, DimLanguage, DimInterpreter, DimSex, DimPayer, DimAgeBand, DimDisability,
		DimSexualOrientation, DimGenderIdentity, DimCounty, DimZIP, DimSVI, DimProvider}
}

// ParseDimension checks a dimension code.
func ParseDimension(s string) (Dimension, error) {
	for _, d := range Dimensions() {
		if string(d) == s {
			return d, nil
		}
	}
	return "", fmt.Errorf("equity: unknown stratifier dimension %q", s)
}

// SVITable maps a geography key (census tract FIPS, ZIP, "County, ST" or
// county, as the table was built) to the CDC/ATSDR SVI overall percentile RPL_THEMES in
// [0, 1]; negative values (SVI's −999 for no data) count as unknown.
type SVITable map[string]float64

// LoadSVITable reads "key,rpl_themes" lines (header and # lines skipped);
// the key is everything before the last comma.
func LoadSVITable(text string) (SVITable, error) {
	t := SVITable{}
	first := true
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// The value is after the last comma, so keys such as
		// "Cook County, IL" need no quoting.
		c := strings.LastIndexByte(line, ',')
		k, v := line[:max(c, 0)], line[c+1:]
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		header := first
		first = false
		if c < 0 || err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > 1 {
			if header {
				continue
			}
			return nil, fmt.Errorf("equity: SVI table line %d: want key,rpl_themes", n+1)
		}
		t[strings.TrimSpace(k)] = f
	}
	return t, nil
}

// Tier is the SVI quartile code of a geography ("svi-q1" least vulnerable
// … "svi-q4" most vulnerable, RPL_THEMES ≥ 0.75), Unknown if absent.
func (t SVITable) Tier(keys ...string) string {
	for _, k := range keys {
		if k == "" {
			continue
		}
		if v, ok := t[k]; ok && v >= 0 {
			return sviTiers[int(math.Min(3, math.Floor(v*4)))]
		}
	}
	return Unknown
}

var sviTiers = [4]string{"svi-q1", "svi-q2", "svi-q3", "svi-q4"}

// Options configure stratification.
type Options struct {
	// AgeAt is the date ages are computed at (usually the end of the
	// measurement period); zero leaves age bands Unknown.
	AgeAt time.Time
	// AgeBands are the lower bounds of the bands, ascending; nil means
	// 0,18,45,65,75.
	AgeBands []int
	// SVI looks patients up by Attributes.GeoKeys.
	SVI SVITable
}

var defaultAgeBands = []int{0, 18, 45, 65, 75}

// Record is one patient's population membership for one measure group
// with the patient's attributes. Denominator is the FHIR denominator
// (before exclusions); Exclusion covers denominator exclusions and
// exceptions; NumeratorExclusion removes a numerator hit.
type Record struct {
	Attributes         *Attributes
	InitialPopulation  bool
	Denominator        bool
	Exclusion          bool
	Numerator          bool
	NumeratorExclusion bool
}

func (r *Record) add(c *Counts) {
	if r.InitialPopulation {
		c.InitialPopulation++
	}
	if !r.Denominator {
		return
	}
	if r.Exclusion {
		c.Exclusions++
		return
	}
	c.Denominator++
	if r.Numerator && !r.NumeratorExclusion {
		c.Numerator++
	}
}

// Stratification is the result of one stratifier over a population.
type Stratification struct {
	Dimensions []Dimension
	Overall    Counts
	Strata     []Stratum
}

// Stratify counts records per combination of the dimensions' values (one
// dimension is a plain stratifier; several are cross-classified strata,
// FHIR stratum.component). Strata are returned sorted (SortStrata) and not
// yet Assessed.
func Stratify(recs []Record, dims []Dimension, opts Options) Stratification {
	out := Stratification{Dimensions: dims}
	idx := map[string]int{}
	vals := make([]string, len(dims))
	var key []byte
	if opts.AgeBands == nil {
		opts.AgeBands = defaultAgeBands
	}
	labels := bandLabels(opts.AgeBands)
	for i := range recs {
		r := &recs[i]
		r.add(&out.Overall)
		key = key[:0]
		for j, d := range dims {
			vals[j] = value(r.Attributes, d, &opts, labels)
			if j > 0 {
				key = append(key, '\x1f')
			}
			key = append(key, vals[j]...)
		}
		// The map lookup with string(key) does not allocate; only a new
		// stratum copies its key.
		n, ok := idx[string(key)]
		if !ok {
			n = len(out.Strata)
			idx[string(key)] = n
			out.Strata = append(out.Strata, Stratum{Values: append([]string(nil), vals...), Missing: missing(vals)})
		}
		r.add(&out.Strata[n].Counts)
	}
	SortStrata(out.Strata)
	return out
}

func missing(vals []string) bool {
	for _, v := range vals {
		if v == Unknown || v == AskedDeclined {
			return true
		}
	}
	return false
}

func value(a *Attributes, d Dimension, opts *Options, bands []string) string {
	if a == nil {
		return Unknown
	}
	var v string
	switch d {
	case DimRace:
		v = a.Race
	case DimEthnicity:
		v = a.Ethnicity
	case DimRaceEthnicity:
		v = a.RaceEthnicity
	case DimLanguage:
		v = a.Language
	case DimInterpreter:
		v = a.InterpreterNeeded
	case DimSex:
		v = a.Sex
	case DimPayer:
		v = a.Payer
	case DimAgeBand:
		v = ageBand(a.BirthDate, opts, bands)
	case DimDisability:
		v = a.Disability
	case DimSexualOrientation:
		v = a.SexualOrientation
	case DimGenderIdentity:
		v = a.GenderIdentity
	case DimCounty:
		v = a.County
	case DimZIP:
		v = a.ZIP
	case DimSVI:
		v = opts.SVI.Tier(a.GeoKeys()...)
	case DimProvider:
		v = a.Provider
	}
	if v == "" || v == "unknown" {
		return Unknown
	}
	return v
}

// bandLabels names the age bands "lo-hi", the last one "lo+".
func bandLabels(bands []int) []string {
	out := make([]string, len(bands))
	for i, lo := range bands {
		if i == len(bands)-1 {
			out[i] = strconv.Itoa(lo) + "+"
		} else {
			out[i] = strconv.Itoa(lo) + "-" + strconv.Itoa(bands[i+1]-1)
		}
	}
	return out
}

// ageBand is the label of the band holding the age at opts.AgeAt.
func ageBand(birth string, opts *Options, labels []string) string {
	if opts.AgeAt.IsZero() || len(birth) < 4 {
		return Unknown
	}
	y, err := strconv.Atoi(birth[:4])
	if err != nil {
		return Unknown
	}
	m, d := 1, 1
	if len(birth) >= 7 {
		m, _ = strconv.Atoi(birth[5:7])
	}
	if len(birth) >= 10 {
		d, _ = strconv.Atoi(birth[8:10])
	}
	at := opts.AgeAt
	age := at.Year() - y
	if int(at.Month()) < m || (int(at.Month()) == m && at.Day() < d) {
		age--
	}
	bands := opts.AgeBands
	for i := len(bands) - 1; i >= 0; i-- {
		if age >= bands[i] {
			return labels[i]
		}
	}
	return Unknown
}

// GeoKeys are the keys an SVI table is searched with, most precise first:
// census tract, ZIP, "County, ST", county.
func (a *Attributes) GeoKeys() []string {
	keys := []string{a.Tract, a.ZIP, "", a.County}
	if a.County != "" && a.State != "" {
		keys[2] = a.County + ", " + a.State
	}
	return keys
}

func joinKey(values []string) string { return strings.Join(values, "\x1f") }
