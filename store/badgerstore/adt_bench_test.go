package badgerstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// cpuTime is the process's user+system CPU time. The machine is shared,
// so CPU per operation is the figure that does not depend on what else
// runs; wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// adtTx is the transaction an applied HL7 v2 ADT message commits: an A01
// (even i) creates a Patient and an Encounter, the A03 that follows updates
// the Encounter; both add a MessageHeader, a Provenance and two KV keys.
func adtTx(i int) store.Tx {
	n := i / 2
	pid, eid := fmt.Sprintf("p%d", n), fmt.Sprintf("e%d", n)
	status, end := "in-progress", ""
	if i%2 == 1 {
		status, end = "finished", `,"end":"2026-03-03T10:00:00-05:00"`
	}
	var ws []store.Write
	if i%2 == 0 {
		ws = append(ws, store.Write{Op: store.OpPut, Type: "Patient", ID: pid, SkipUnchanged: true, Body: []byte(fmt.Sprintf(
			`{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3","value":"MRN%d"},{"system":"http://hl7.org/fhir/sid/us-ssn","value":"9%08d"}],`+
				`"name":[{"family":"Smith","given":["Mary","Ann"]}],"gender":"female","birthDate":"1980-01-02",`+
				`"address":[{"line":["%d Main St"],"city":"Town","state":"MA","postalCode":"02000"}],"telecom":[{"system":"phone","value":"555-1234"}]}`, n, n, n))})
	}
	ws = append(ws,
		store.Write{Op: store.OpPut, Type: "Encounter", ID: eid, SkipUnchanged: true, Body: []byte(fmt.Sprintf(
			`{"resourceType":"Encounter","status":%q,"class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},`+
				`"identifier":[{"system":"urn:visit","value":"V%d"}],"subject":{"reference":"Patient/%s"},"period":{"start":"2026-03-01T07:30:00-05:00"%s}}`,
			status, n, pid, end))},
		store.Write{Op: store.OpPut, Type: "MessageHeader", ID: fmt.Sprintf("m%d", i), Body: []byte(fmt.Sprintf(
			`{"resourceType":"MessageHeader","eventCoding":{"system":"http://terminology.hl7.org/CodeSystem/v2-0003","code":"A0%d"},`+
				`"source":{"endpoint":"urn:sender"},"focus":[{"reference":"Patient/%s"},{"reference":"Encounter/%s"}]}`, 1+2*(i%2), pid, eid))},
		store.Write{Op: store.OpPut, Type: "Provenance", ID: fmt.Sprintf("v%d", i), Body: []byte(fmt.Sprintf(
			`{"resourceType":"Provenance","target":[{"reference":"Patient/%s"},{"reference":"Encounter/%s"}],"recorded":"2026-03-01T07:30:00Z",`+
				`"agent":[{"who":{"display":"sender"}}],"entity":[{"role":"source","what":{"reference":"MessageHeader/m%d"}}]}`, pid, eid, i))},
	)
	return store.Tx{Writes: ws, KV: map[string][]byte{
		fmt.Sprintf("adt/msg/sender/B%d", i): []byte("m"),
		fmt.Sprintf("adt/visit/V%d", n):      []byte(eid),
	}}
}

// BenchmarkCommitADT commits ADT-message transactions (3–4 small
// resources and 2 KV keys each, A01 then A03 per patient) from 64
// goroutines, and reports the process CPU per message and per resource:
// on 2 cores, 5k messages/s leaves the store about 200 CPU-µs a message.
func BenchmarkCommitADT(b *testing.B) {
	for _, noSync := range []bool{true, false} {
		name := "durable"
		if noSync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			const msgs = 8000
			txs := make([]store.Tx, msgs)
			resources := 0
			for i := range txs {
				txs[i] = adtTx(i)
				resources += len(txs[i].Writes)
			}
			var cpu, wall time.Duration
			for range b.N {
				b.StopTimer()
				st, err := badgerstore.Open(context.Background(), b.TempDir(), badgerstore.Options{NoSync: noSync})
				require.NoError(b, err)
				b.StartTimer()
				cpu0, start := cpuTime(), time.Now()
				var next atomic.Int64
				var wg sync.WaitGroup
				var failed atomic.Value
				for range 64 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						// A worker takes a patient: its A01, then its A03.
						for {
							i := int(next.Add(2)) - 2
							if i >= msgs {
								return
							}
							for j := i; j < i+2; j++ {
								if _, err := st.Commit(context.Background(), txs[j]); err != nil {
									failed.Store(err)
									return
								}
							}
						}
					}()
				}
				wg.Wait()
				cpu += cpuTime() - cpu0
				wall += time.Since(start)
				b.StopTimer()
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(err)
				}
				require.NoError(b, st.Close())
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(msgs*b.N), "cpu-µs/msg")
			b.ReportMetric(float64(cpu.Microseconds())/float64(resources*b.N), "cpu-µs/resource")
			b.ReportMetric(float64(msgs*b.N)/wall.Seconds(), "msgs/s")
		})
	}
}
