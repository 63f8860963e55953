// Package report builds FHIR R4 MeasureReports (individual, subject-list
// and summary, DEQM-shaped) from the per-patient results of package
// measure. Builders are fed one patient at a time and keep only counts,
// so a summary over millions of patients needs constant memory (apart
// from subject lists and median observations, which are the output).
package report

import (
	"github.com/equitas/equitas/measures/measure"
)

// FHIR and DEQM URLs used in reports.
const (
	ProfileIndividual  = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/indv-measurereport-deqm"
	ProfileSummary     = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/summary-measurereport-deqm"
	ProfileSubjectList = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/subjectlist-measurereport-deqm"

	ExtMeasureScoring           = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-measureScoring"
	ExtGroupImprovementNotation = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-groupImprovementNotation"
	ExtSupplementalData         = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-supplementalData"
	ExtCriteriaReference        = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-criteriaReference"
	ExtPopulationBasis          = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-populationBasis"
	ExtMeasureInfo              = "http://hl7.org/fhir/StructureDefinition/cqf-measureInfo"
	ExtEvaluationError          = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-evaluationErrors"
)

// MeasureReport is a FHIR R4 MeasureReport (the elements Equitas emits).
type MeasureReport struct {
	ResourceType        string           `json:"resourceType"`
	ID                  string           `json:"id,omitempty"`
	Meta                *Meta            `json:"meta,omitempty"`
	Contained           []any            `json:"contained,omitempty"`
	Extension           []Extension      `json:"extension,omitempty"`
	Status              string           `json:"status"`
	Type                string           `json:"type"`
	Measure             string           `json:"measure"`
	Subject             *Reference       `json:"subject,omitempty"`
	Date                string           `json:"date,omitempty"`
	Reporter            *Reference       `json:"reporter,omitempty"`
	Period              *Period          `json:"period,omitempty"`
	ImprovementNotation *measure.Concept `json:"improvementNotation,omitempty"`
	Group               []Group          `json:"group,omitempty"`
	EvaluatedResource   []Reference      `json:"evaluatedResource,omitempty"`
}

// Meta is FHIR Meta.
type Meta struct {
	Profile []string `json:"profile,omitempty"`
}

// Extension is a FHIR Extension with the value types reports use.
type Extension struct {
	URL                  string           `json:"url"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueCode            string           `json:"valueCode,omitempty"`
	ValueCanonical       string           `json:"valueCanonical,omitempty"`
	ValueReference       *Reference       `json:"valueReference,omitempty"`
	ValueCodeableConcept *measure.Concept `json:"valueCodeableConcept,omitempty"`
	Extension            []Extension      `json:"extension,omitempty"`
}

// Reference is a FHIR Reference.
type Reference struct {
	Extension []Extension `json:"extension,omitempty"`
	Reference string      `json:"reference,omitempty"`
	Display   string      `json:"display,omitempty"`
}

// Period is a FHIR Period.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Quantity is a FHIR Quantity (measure scores are unitless).
type Quantity struct {
	Value float64 `json:"value"`
}

// Group is MeasureReport.group.
type Group struct {
	ID           string           `json:"id,omitempty"`
	Extension    []Extension      `json:"extension,omitempty"`
	Code         *measure.Concept `json:"code,omitempty"`
	Population   []Population     `json:"population,omitempty"`
	MeasureScore *Quantity        `json:"measureScore,omitempty"`
	Stratifier   []Stratifier     `json:"stratifier,omitempty"`
}

// Population is MeasureReport.group.population (also used in strata).
type Population struct {
	ID             string          `json:"id,omitempty"`
	Code           measure.Concept `json:"code"`
	Count          int             `json:"count"`
	SubjectResults *Reference      `json:"subjectResults,omitempty"`
}

// Stratifier is MeasureReport.group.stratifier.
type Stratifier struct {
	ID      string            `json:"id,omitempty"`
	Code    []measure.Concept `json:"code,omitempty"`
	Stratum []Stratum         `json:"stratum,omitempty"`
}

// Stratum is MeasureReport.group.stratifier.stratum.
type Stratum struct {
	Value        *measure.Concept `json:"value,omitempty"`
	Component    []Component      `json:"component,omitempty"`
	Population   []Population     `json:"population,omitempty"`
	MeasureScore *Quantity        `json:"measureScore,omitempty"`
}

// Component is MeasureReport.group.stratifier.stratum.component.
type Component struct {
	Code  measure.Concept `json:"code"`
	Value measure.Concept `json:"value"`
}

// List is a FHIR List of subjects (subject-list reports).
type List struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id"`
	Status       string      `json:"status"`
	Mode         string      `json:"mode"`
	Title        string      `json:"title,omitempty"`
	Entry        []ListEntry `json:"entry,omitempty"`
	// EmptyReason says why a list has no entries (DEQM subject lists of
	// empty populations still need a List).
	EmptyReason *measure.Concept `json:"emptyReason,omitempty"`
}

// emptyNilKnown is List.emptyReason for a population nobody is in.
var emptyNilKnown = &measure.Concept{Coding: []measure.Coding{{System: "http://terminology.hl7.org/CodeSystem/list-empty-reason", Code: "nilknown", Display: "Nil Known"}}}

// ListEntry is one List.entry.
type ListEntry struct {
	Item Reference `json:"item"`
}

// Observation carries a supplemental data value (individual) or a value
// count (summary).
type Observation struct {
	ResourceType         string           `json:"resourceType"`
	ID                   string           `json:"id"`
	Extension            []Extension      `json:"extension,omitempty"`
	Status               string           `json:"status"`
	Code                 measure.Concept  `json:"code"`
	Subject              *Reference       `json:"subject,omitempty"`
	ValueInteger         *int             `json:"valueInteger,omitempty"`
	ValueCodeableConcept *measure.Concept `json:"valueCodeableConcept,omitempty"`
}

// Bundle is a FHIR collection Bundle of reports.
type Bundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Type         string        `json:"type"`
	Timestamp    string        `json:"timestamp,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// BundleEntry is one Bundle.entry.
type BundleEntry struct {
	FullURL  string `json:"fullUrl,omitempty"`
	Resource any    `json:"resource"`
}
