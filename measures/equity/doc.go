// Package equity computes health-equity statistics for quality measures:
// it stratifies per-patient measure results by patient attributes (race
// and ethnicity rolled up to OMB categories, preferred language, sex,
// payer, age band, disability, SOGI, geography, attributed provider),
// computes per-stratum rates with Wilson intervals, applies reportability
// and privacy (cell-size) suppression, measures disparities against an
// explicit reference with Newcombe and Katz intervals, summarises them in
// disparity indices, tests year-over-year change, scores an
// equity-weighted composite and allocates an equity pool, and renders the
// result as FHIR R4 MeasureReport stratifiers.
//
// The formulas and their numeric oracles are those of
// shared/reference/equity.md; section numbers in comments refer to it.
// The statistics need no CQL: they work on population membership that the
// measure engine (or any other source) produced. Run is the service on
// top: it evaluates measures over a patientsource (one compartment read
// per patient feeds the attributes and every measure, current and prior
// period), and its Result renders as FHIR Parameters, the tidy and
// indices CSV tables, and the dashboard JSON.
package equity
