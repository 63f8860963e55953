// Package cqltests runs the HL7 CQL specification test suite
// (cqframework/cql-tests) against the Equitas ELM engine.
//
// The suite's CQL is translated once to ELM with the official CQL-to-ELM
// translator (npm @cqframework/cql) and committed under testdata, so the Go
// test needs no Node.js. Regenerate after changing the translator or the suite:
//
//	go generate ./measures/elm/cqltests
//
// The test compares every expression's result with its expected output and
// fails only when a test listed in testdata/baseline.txt stops passing;
// `go test ./measures/elm/cqltests -update-baseline` records the current set,
// and `-report FILE` writes every non-passing test (CQL, expected, actual,
// reason) as JSON lines. testdata/reference.json, written by
// `node translator/reference.mjs`, records what the reference engine shipped
// with the translator does with the tests, to tell engine bugs from suite or
// translator problems.
package cqltests

//go:generate sh -c "cd translator && npm ci --no-audit --no-fund --silent && node translate.mjs"
