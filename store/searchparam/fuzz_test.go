package searchparam

import (
	"testing"

	"github.com/equitas/equitas/store"
)

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2020", "2020-02", "2020-02-29", "2020-03-01T10:00", "2020-03-01T10:00:05.123456789+14:00", "0001-01-01", "9999-12-31T23:59:60Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, ok := ParseDate(s)
		if ok && lo >= hi {
			t.Fatalf("%q: empty range [%d, %d)", s, lo, hi)
		}
	})
}

// FuzzCriterion feeds arbitrary values to every parameter type: parsing
// either fails with a ParamError or yields a criterion whose matching and
// index ranges never panic.
func FuzzCriterion(f *testing.F) {
	f.Add("date", "", "ge2020-01")
	f.Add("code", "not", "http://loinc.org|4548-4")
	f.Add("subject", "Patient", "p1")
	f.Add("value-quantity", "", "ap5.4|http://unitsofmeasure.org|mg")
	f.Add("combo-code", "text", "glucose")
	body := []byte(`{"resourceType":"Observation","code":{"coding":[{"system":"s","code":"c"}]},"subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2020"},"valueQuantity":{"value":1}}`)
	f.Fuzz(func(t *testing.T, name, mod, value string) {
		c, err := Parse("Observation", store.Param{Name: name, Modifier: mod, Values: []string{value}})
		if err != nil {
			if _, ok := err.(*store.ParamError); !ok {
				t.Fatalf("error %T is not a ParamError", err)
			}
			return
		}
		c.Match(body)
		if rs, ok := c.Ranges(); ok {
			for _, r := range rs {
				if r.From > r.To {
					t.Fatalf("inverted range %q", r)
				}
			}
		}
	})
}
