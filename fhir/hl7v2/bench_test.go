package hl7v2

import (
	"testing"
	"time"
)

// BenchmarkParse parses a typical ADT^A01 and reads the fields the ADT
// mapper reads.
func BenchmarkParse(b *testing.B) {
	raw := []byte(a01)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		m, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		pid := m.Segment("PID")
		_ = pid.Field(3).Repetition(2).Component(1).String()
		_ = pid.Field(5).Component(1).String()
		_ = m.Segment("PV1").Field(19).String()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkACK builds an AE acknowledgment with one ERR.
func BenchmarkACK(b *testing.B) {
	m, err := Parse([]byte(a01))
	if err != nil {
		b.Fatal(err)
	}
	e := Errorf(Location{Segment: "PID", Field: 7}, CodeDataType, "bad date")
	b.ReportAllocs()
	for b.Loop() {
		_ = ACK(m, AE, "", e)
	}
}
