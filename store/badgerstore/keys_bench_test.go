package badgerstore

import (
	"fmt"
	"testing"
)

// BenchmarkIndexKeys measures index-key derivation for one Observation
// (the CPU a write spends on search and compartment indexes).
func BenchmarkIndexKeys(b *testing.B) {
	ix := newIndexer()
	body := []byte(`{"resourceType":"Observation","id":"o1","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c/Hemoglobin.total in Blood"}],"text":"HbA1c"},"subject":{"reference":"Patient/p1"},` +
		`"encounter":{"reference":"Encounter/e1"},"effectiveDateTime":"2020-01-01T10:00:00-05:00","issued":"2020-01-01T12:00:00.000-05:00",` +
		`"valueQuantity":{"value":6.1,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`)
	ix.keys("Observation", "warm", body) // fill the Doc pool
	b.ReportAllocs()
	b.ResetTimer() // newIndexer is Open's one-off cost, not a write's
	n := 0
	for i := 0; i < b.N; i++ {
		n += len(ix.keys("Observation", fmt.Sprint("o", i%100), body))
	}
	b.ReportMetric(float64(n)/float64(b.N), "keys/resource")
}
