// Package loadtest measures the REST API's latency under a fixed request
// rate, the way an EHR integration loads it: many small reads and searches
// at a steady pace rather than a closed loop as fast as possible (which would
// hide queueing in the percentiles). Its benchmarks run against EQUITAS_URL
// when set, otherwise against the real equitas binary on a loopback port.
package loadtest
