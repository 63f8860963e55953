package cqltests

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// slowTest is the time above which a single suite test is worth a log line.
const slowTest = 100 * time.Millisecond

var statusOrder = []status{statusPass, statusFail, statusEval, statusCompile, statusPanic, statusUntranslate, statusRejected}

// summarise logs pass counts per family, the most frequent failure reasons
// and one summary line.
func summarise(t *testing.T, m *manifest, all []outcome) {
	t.Helper()
	type counts map[status]int
	supplement := map[string]bool{}
	for _, f := range m.Families {
		supplement[f.Family] = f.Supplement
	}
	per := map[string]counts{}
	total, extra := counts{}, counts{}
	nSuite, nExtra := 0, 0
	for _, o := range all {
		if per[o.Family] == nil {
			per[o.Family] = counts{}
		}
		per[o.Family][o.Status]++
		if supplement[o.Family] {
			extra[o.Status]++
			nExtra++
		} else {
			total[o.Status]++
			nSuite++
		}
	}
	line := func(name string, c counts) string {
		n := 0
		for _, v := range c {
			n += v
		}
		var parts []string
		for _, s := range statusOrder[1:] {
			if c[s] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", s, c[s]))
			}
		}
		return fmt.Sprintf("%-36s %4d/%4d pass  %s", name, c[statusPass], n, strings.Join(parts, ", "))
	}
	for _, f := range m.Families {
		t.Log(line(f.Family, per[f.Family]))
	}

	reasons := map[string]int{}
	for _, o := range all {
		if o.Status == statusPass || o.Status == statusRejected || o.Status == statusUntranslate {
			continue
		}
		reasons[string(o.Status)+": "+reasonClass(o.Reason)]++
	}
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if reasons[keys[i]] != reasons[keys[j]] {
			return reasons[keys[i]] > reasons[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > 20 {
		keys = keys[:20]
	}
	for _, k := range keys {
		t.Logf("  %4d × %s", reasons[k], k)
	}
	for _, o := range all {
		if o.Status == statusUntranslate || o.Status == statusRejected {
			t.Logf("  not run (%s): %s/%s: %s — %s", o.Status, o.Family, o.Test, strings.Join(strings.Fields(o.Expression), " "), o.Reason)
		}
	}
	// Slow tests point at runaway operators (an expand or a loop that
	// should have stopped) before they become timeouts.
	slow := slices.Clone(all)
	slices.SortFunc(slow, func(a, b outcome) int { return cmp.Compare(b.Elapsed, a.Elapsed) })
	for _, o := range slow[:min(3, len(slow))] {
		if o.Elapsed >= slowTest {
			t.Logf("  slow: %s/%s took %s: %s", o.Family, o.Test, o.Elapsed.Round(time.Millisecond), strings.Join(strings.Fields(o.Expression), " "))
		}
	}
	t.Log(line("TOTAL (HL7 suite)", total))
	evaluable := nSuite - total[statusUntranslate] - total[statusRejected]
	t.Logf("CQL spec suite: %d of %d tests pass (%d of %d the translator accepts; %d invalid expressions already rejected by the translator, %d untranslatable)",
		total[statusPass], nSuite, total[statusPass], evaluable, total[statusRejected], total[statusUntranslate])
	if nExtra > 0 {
		t.Logf("Equitas supplement: %d of %d tests pass", extra[statusPass], nExtra)
	}
}

var (
	quoted  = regexp.MustCompile(`"[^"]*"|'[^']*'`)
	numbers = regexp.MustCompile(`\b\d+(\.\d+)?\b`)
	libAt   = regexp.MustCompile(`elm: T\d+\|1\.0\.0( at [^:]*)?: `)
)

// reasonClass strips test-specific detail from a failure reason so that
// failures with one root cause count together.
func reasonClass(r string) string {
	r = libAt.ReplaceAllString(r, "")
	if i := strings.IndexByte(r, '\n'); i >= 0 {
		r = r[:i]
	}
	r = quoted.ReplaceAllString(r, "…")
	r = numbers.ReplaceAllString(r, "N")
	if len(r) > 120 {
		r = r[:120]
	}
	return r
}

// writeReport writes every non-passing outcome as a JSON line.
func writeReport(path string, all []outcome) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, o := range all {
		if o.Status == statusPass {
			continue
		}
		if err := enc.Encode(o); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
