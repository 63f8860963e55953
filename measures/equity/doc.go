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
// The package needs no CQL: it works on population membership that the
// measure engine (or any other source) produced.
package equity
