package caregaps

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/measure/measuretest"
)

func TestParseRequest(t *testing.T) {
	base := "periodStart=2025-01-01&periodEnd=2025-12-31&"
	for _, tt := range []struct {
		name  string
		query string
		check func(t *testing.T, r *Request)
		param string // the ParamError's parameter when refused
	}{
		{name: "patient subject", query: "subject=Patient/a&status=open-gap", check: func(t *testing.T, r *Request) {
			assert.Equal(t, "Patient/a", r.Subject)
			assert.Equal(t, []measure.GapStatus{measure.OpenGap}, r.Statuses)
			assert.Equal(t, 2025, r.Period().Start.Year)
			assert.Equal(t, 31, r.Period().End.Day, "a date end covers its whole day")
		}},
		{name: "absolute subject reference", query: "subject=http://x.org/fhir/Group/g&status=closed-gap", check: func(t *testing.T, r *Request) {
			assert.Equal(t, "Group/g", r.Subject)
		}},
		{name: "statuses repeated, comma-separated, duplicated", query: "subject=Patient/a&status=open-gap,closed-gap&status=open-gap&status=not-applicable", check: func(t *testing.T, r *Request) {
			assert.ElementsMatch(t, []measure.GapStatus{measure.OpenGap, measure.ClosedGap, measure.NotApplicable}, r.Statuses)
			assert.True(t, r.Wants(measure.NotApplicable))
		}},
		{name: "organization", query: "organization=Organization/o&status=open-gap", check: func(t *testing.T, r *Request) {
			assert.Equal(t, "Organization/o", r.Organization)
		}},
		{name: "organization and practitioner", query: "organization=Organization/o&practitioner=Practitioner/p&status=open-gap", check: func(t *testing.T, r *Request) {
			assert.Equal(t, "Practitioner/p", r.Practitioner)
		}},
		{name: "selectors", query: "subject=Patient/a&status=open-gap&measureId=m1&measureId=m2&measureUrl=http://x/Measure/m|1&measureIdentifier=s|v&program=p|mips&topic=t|1", check: func(t *testing.T, r *Request) {
			assert.Equal(t, []string{"m1", "m2"}, r.MeasureIDs)
			assert.Equal(t, []string{"http://x/Measure/m|1"}, r.MeasureURLs)
			assert.Equal(t, []string{"s|v"}, r.MeasureIdentifiers)
			assert.Equal(t, []string{"p|mips"}, r.Programs)
			assert.Equal(t, []string{"t|1"}, r.Topics)
		}},
		{name: "period given twice", query: "subject=Patient/a&status=open-gap&periodStart=2014-01&periodEnd=2014-03", param: "periodStart"},
		{name: "no target", query: "status=open-gap", param: "subject"},
		{name: "practitioner alone", query: "practitioner=Practitioner/p&status=open-gap", param: "practitioner"},
		{name: "subject with organization", query: "subject=Patient/a&organization=Organization/o&status=open-gap", param: "subject"},
		{name: "subject with practitioner", query: "subject=Patient/a&practitioner=Practitioner/p&status=open-gap", param: "subject"},
		{name: "bare subject", query: "subject=a&status=open-gap", param: "subject"},
		{name: "relative path with extra segments", query: "subject=x/Patient/a&status=open-gap", param: "subject"},
		{name: "no status", query: "subject=Patient/a", param: "status"},
		{name: "empty status", query: "subject=Patient/a&status=", param: "status"},
		{name: "prospective-gap", query: "subject=Patient/a&status=prospective-gap", param: "status"},
		{name: "unknown parameter", query: "subject=Patient/a&status=open-gap&reportType=x", param: "reportType"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(base + tt.query)
			require.NoError(t, err)
			r, err := ParseRequest(v)
			if tt.param != "" {
				var pe *ParamError
				require.True(t, errors.As(err, &pe), "want a ParamError, got %v", err)
				assert.Contains(t, pe.Param, tt.param)
				return
			}
			require.NoError(t, err)
			tt.check(t, r)
		})
	}
	t.Run("partial dates alone", func(t *testing.T) {
		r, err := ParseRequest(url.Values{"periodStart": {"2014-01"}, "periodEnd": {"2014-03"}, "subject": {"Patient/124"}, "status": {"open-gap"}})
		require.NoError(t, err)
		assert.Equal(t, 31, r.Period().End.Day, "2014-03 ends on March 31")
		assert.Equal(t, 3, r.Period().End.Month)
	})
}

// FuzzParseRequest: any query is either refused with a ParamError or
// yields a request that obeys the operation's rules.
func FuzzParseRequest(f *testing.F) {
	f.Add("periodStart=2025&periodEnd=2025&subject=Patient/a&status=open-gap")
	f.Add("periodStart=2025-01-01&periodEnd=2025-12-31&organization=Organization/o&practitioner=Practitioner/p&status=open-gap,closed-gap")
	f.Add("periodStart=2026&periodEnd=2025&subject=Group/g&status=not-applicable")
	f.Add("subject=%00&status=x")
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		r, err := ParseRequest(v)
		if err != nil {
			var pe *ParamError
			require.True(t, errors.As(err, &pe), "every refusal is a ParamError: %v", err)
			return
		}
		require.NotEmpty(t, r.Statuses)
		require.True(t, r.Subject != "" || r.Organization != "")
		require.False(t, r.Subject != "" && (r.Organization != "" || r.Practitioner != ""))
		c, ok := compare(r.Period())
		require.True(t, !ok || c <= 0, "start is not after end")
	})
}

func compare(p measure.Period) (int, bool) {
	a, b := p.Start, p.End
	for _, x := range [][2]int{{a.Year, b.Year}, {a.Month, b.Month}, {a.Day, b.Day}, {a.Hour, b.Hour}, {a.Minute, b.Minute}, {a.Second, b.Second}, {a.Millisecond, b.Millisecond}} {
		if x[0] != x[1] {
			if x[0] < x[1] {
				return -1, true
			}
			return 1, true
		}
	}
	return 0, a.Offset == b.Offset
}

func TestResolveNotation(t *testing.T) {
	const sys = `"system":"http://terminology.hl7.org/CodeSystem/measure-improvement-notation"`
	root := func(url, code, display string) string {
		return `{"resourceType":"Measure","url":"` + url + `","version":"1","improvementNotation":{"coding":[{` + sys + `,"code":"` + code + `","display":"` + display + `"}]},"group":[{}]}`
	}
	group := func(url, code, display string) string {
		return `{"resourceType":"Measure","url":"` + url + `","version":"1","improvementNotation":{"coding":[{` + sys + `,"code":"increase"}]},"group":[{"extension":[{"url":"http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-improvementNotation","valueCodeableConcept":{"coding":[{` + sys + `,"code":"` + code + `","display":"` + display + `"}]}}]}]}`
	}
	const cms165 = "https://madie.cms.gov/Measure/ControllingHighBloodPressureFHIR"
	const cms122 = "https://madie.cms.gov/Measure/DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR"
	for _, tt := range []struct {
		name      string
		raw       string
		overrides map[string]string
		want      Notation
	}{
		{"consistent increase", root("http://x/M", "increase", "Increased score indicates improvement"), nil, Notation{Code: "increase", Source: "measure"}},
		{"consistent decrease without display", root("http://x/M", "decrease", ""), nil, Notation{Code: "decrease", Source: "measure"}},
		{"group extension wins over the root", group("http://x/M", "decrease", "Decreased score indicates improvement"), nil, Notation{Code: "decrease", Source: "group"}},
		{"none", `{"resourceType":"Measure","url":"http://x/M","group":[{}]}`, nil, Notation{}},
		{"contradiction, unknown measure: the code", group("http://x/M", "decrease", "increase"), nil,
			Notation{Code: "decrease", Source: "group", Conflict: "improvementNotation code decrease has display increase"}},
		{"contradiction the other way", root("http://x/M", "increase", "Lower score indicates better quality"), nil,
			Notation{Code: "increase", Source: "measure", Conflict: "improvementNotation code increase has display Lower score indicates better quality"}},
		{"CMS165 as shipped: errata", group(cms165, "decrease", "increase"), nil,
			Notation{Code: "increase", Source: "errata", Conflict: "improvementNotation code decrease has display increase"}},
		{"CMS122 as shipped: errata keeps the code", group(cms122, "decrease", "increase"), nil,
			Notation{Code: "decrease", Source: "errata", Conflict: "improvementNotation code decrease has display increase"}},
		{"CMS165 coded consistently: no errata", group(cms165, "increase", "Increased score indicates improvement"), nil, Notation{Code: "increase", Source: "group"}},
		{"override by url|version", root("http://x/M", "increase", ""), map[string]string{"http://x/M|1": "decrease"}, Notation{Code: "decrease", Source: "override"}},
		{"override by url", group(cms165, "decrease", "increase"), map[string]string{cms165: "decrease"}, Notation{Code: "decrease", Source: "override"}},
		{"override of another version ignored", root("http://x/M", "increase", ""), map[string]string{"http://x/M|2": "decrease"}, Notation{Code: "increase", Source: "measure"}},
		{"the notation system's coding is preferred", `{"resourceType":"Measure","url":"http://x/M","improvementNotation":{"coding":[{"system":"http://other","code":"decrease"},{` + sys + `,"code":"increase"}]},"group":[{}]}`, nil,
			Notation{Code: "increase", Source: "measure"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ResolveNotation([]byte(tt.raw), 0, tt.overrides))
		})
	}
}

// TestResolveNotationShippedContent reads the official Measure files.
func TestResolveNotationShippedContent(t *testing.T) {
	dir := filepath.Join(measuretest.SharedDir(t), "ecqm", "measures")
	for _, tt := range []struct {
		name     string
		code     string
		conflict bool
	}{
		{"ControllingHighBloodPressureFHIR", "increase", true},
		{"DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR", "decrease", true},
		{"CMS71FHIRSTKAnticoagAFFlutter", "increase", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, tt.name, "Measure.json"))
			require.NoError(t, err)
			n := ResolveNotation(raw, 0, nil)
			assert.Equal(t, tt.code, n.Code)
			assert.Equal(t, tt.conflict, n.Conflict != "", "conflict: %q", n.Conflict)
		})
	}
}

// TestSelectedNotationPlacement: a report states the notation at the root
// when every group shares it, else on every group (deqm-4), and a measure
// without a proportion group has no gaps.
func TestSelectedNotationPlacement(t *testing.T) {
	const sys = `"system":"http://terminology.hl7.org/CodeSystem/measure-improvement-notation"`
	ext := func(code string) string {
		return `{"extension":[{"url":"http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-improvementNotation","valueCodeableConcept":{"coding":[{` + sys + `,"code":"` + code + `"}]}}]}`
	}
	s := New(nil, nil, Options{})
	for _, tt := range []struct {
		name      string
		notations []string
		scoring   measure.Scoring
		root      string
		perGroup  bool
		none      bool
	}{
		{"shared", []string{"increase", "increase"}, measure.Proportion, "increase", false, false},
		{"different", []string{"increase", "decrease"}, measure.Proportion, "", true, false},
		{"cohort only", []string{"increase"}, measure.Cohort, "", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := `{"resourceType":"Measure","url":"http://x/M","group":[`
			def := &measure.Definition{URL: "http://x/M"}
			for i, n := range tt.notations {
				if i > 0 {
					raw += ","
				}
				raw += ext(n)
				def.Groups = append(def.Groups, measure.Group{Index: i, Scoring: tt.scoring, ImprovementNotation: n})
			}
			raw += "]}"
			mm := parseMeta([]byte(raw))
			sel := s.selected(&mm, &measure.Measure{Def: def})
			if tt.none {
				assert.Nil(t, sel)
				return
			}
			require.NotNil(t, sel)
			assert.Equal(t, tt.root, sel.Def.ImprovementNotation)
			for gi, g := range sel.Def.Groups {
				assert.Equal(t, tt.perGroup, g.GroupLevelImprovementNotation)
				assert.Equal(t, tt.notations[gi], g.ImprovementNotation)
			}
			assert.Equal(t, "increase", def.Groups[0].ImprovementNotation, "the compiled measure is not changed")
		})
	}
}
