// Package measure evaluates FHIR Measures (eCQMs) over patients.
//
// It loads a measure package (Measure, its Library closure with compiled
// ELM, and ValueSet expansions), compiles it with the ELM engine in
// measures/elm, evaluates patients in parallel and turns each patient's
// population expression results into population membership following the
// CQF Measures IG rules (initial population ⊇ denominator ⊇ numerator,
// exclusions and exceptions, boolean or episode-of-care population basis,
// proportion, ratio, continuous-variable and cohort scoring, stratifiers,
// supplemental data). Package report turns the results into MeasureReports.
package measure
