package catalog

import (
	"context"
	"encoding/json"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/report"
)

// requirements is what $data-requirements reports of a compiled measure,
// kept instead of the libraries' ELM trees (which are large).
type requirements struct {
	retrieves []elm.Retrieve
	libraries []string // canonical|version of the library closure
	valueSets []string // canonicals of the value sets used
}

func newRequirements(pkg *measure.Package) *requirements {
	r := &requirements{retrieves: elm.Retrieves(pkg.Libraries)}
	for _, l := range pkg.Libraries {
		ref := l.URL
		if ref == "" {
			ref = l.ID.Name
		}
		if l.ID.Version != "" {
			ref += "|" + l.ID.Version
		}
		r.libraries = append(r.libraries, ref)
	}
	r.valueSets = pkg.Terminology.URLs()
	return r
}

// Library shapes of $data-requirements output.
type (
	dataLibrary struct {
		ResourceType    string            `json:"resourceType"`
		Status          string            `json:"status"`
		Type            measure.Concept   `json:"type"`
		RelatedArtifact []relatedArtifact `json:"relatedArtifact,omitempty"`
		DataRequirement []dataRequirement `json:"dataRequirement,omitempty"`
	}
	relatedArtifact struct {
		Type     string `json:"type"`
		Display  string `json:"display,omitempty"`
		Resource string `json:"resource"`
	}
	dataRequirement struct {
		Type       string       `json:"type"`
		Profile    []string     `json:"profile,omitempty"`
		CodeFilter []codeFilter `json:"codeFilter,omitempty"`
		DateFilter []dateFilter `json:"dateFilter,omitempty"`
	}
	codeFilter struct {
		Path     string           `json:"path,omitempty"`
		ValueSet string           `json:"valueSet,omitempty"`
		Code     []measure.Coding `json:"code,omitempty"`
	}
	dateFilter struct {
		Path        string         `json:"path"`
		ValuePeriod *report.Period `json:"valuePeriod,omitempty"`
	}
)

// DataRequirements returns the module-definition Library of a measure:
// one dataRequirement per distinct retrieve of its ELM (type, profile,
// code filter by value set or codes, date filter on the measurement
// period where the retrieve names a date property) and a depends-on
// relatedArtifact per library and value set. period may be nil.
func (c *Catalog) DataRequirements(ctx context.Context, ref string, period *measure.Period) ([]byte, error) {
	e, err := c.entry(ctx, ref)
	if err != nil {
		return nil, err
	}
	lib := dataLibrary{ResourceType: "Library", Status: "active",
		Type: measure.Concept{Coding: []measure.Coding{{System: "http://terminology.hl7.org/CodeSystem/library-type", Code: "module-definition"}}}}
	for _, l := range e.reqs.libraries {
		lib.RelatedArtifact = append(lib.RelatedArtifact, relatedArtifact{Type: "depends-on", Display: "Library", Resource: l})
	}
	for _, v := range e.reqs.valueSets {
		lib.RelatedArtifact = append(lib.RelatedArtifact, relatedArtifact{Type: "depends-on", Display: "Value set", Resource: v})
	}
	for _, r := range e.reqs.retrieves {
		dr := dataRequirement{Type: r.DataType}
		if r.TemplateID != "" {
			dr.Profile = []string{r.TemplateID}
		}
		if r.ValueSet != "" {
			dr.CodeFilter = append(dr.CodeFilter, codeFilter{Path: r.CodeProperty, ValueSet: r.ValueSet})
		}
		if len(r.Codes) > 0 {
			cf := codeFilter{Path: r.CodeProperty}
			for _, code := range r.Codes {
				cf.Code = append(cf.Code, measure.Coding{System: code.System, Code: code.Code, Display: code.Display})
			}
			dr.CodeFilter = append(dr.CodeFilter, cf)
		}
		if r.DateProperty != "" {
			df := dateFilter{Path: r.DateProperty}
			if period != nil {
				p := ReportPeriod(*period)
				df.ValuePeriod = &p
			}
			dr.DateFilter = append(dr.DateFilter, df)
		}
		lib.DataRequirement = append(lib.DataRequirement, dr)
	}
	return json.Marshal(lib)
}
