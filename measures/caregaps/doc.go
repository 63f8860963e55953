// Package caregaps computes DEQM gaps in care (Da Vinci DEQM 4.0.0
// Measure/$care-gaps): for each patient of a population and each selected
// proportion measure it derives the gap status (open-gap, closed-gap or
// not-applicable) from the patient's population membership and the
// measure's improvementNotation, and renders the result as the DEQM gaps
// document Bundle (Composition LOINC 96315-7, individual MeasureReports,
// DetectedIssues carrying the gapStatus modifier extension) or as a
// provider gap list in CSV. Measures are evaluated by package measure;
// patients are read from the store one at a time, so memory stays flat in
// population size. The HTTP face is fhir/gapsapi.
package caregaps
