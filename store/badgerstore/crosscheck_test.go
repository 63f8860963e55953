package badgerstore_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/searchparam"
)

// TestSearchMatchesScan checks that index-driven search returns exactly the
// resources a full scan with the same criteria finds, over a generated
// population and a spread of parameters, prefixes and modifiers.
func TestSearchMatchesScan(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, t.TempDir())
	defer func() { _ = st.Close() }()
	_, err := st.Commit(ctx, store.Tx{Writes: population(1, 120, 20)})
	require.NoError(t, err)

	queries := []struct {
		typ    string
		params []store.Param
	}{
		{"Observation", nil},
		{"Observation", []store.Param{{Name: "code", Values: []string{"http://loinc.org|4548-4"}}}},
		{"Observation", []store.Param{{Name: "_lastUpdated", Values: []string{"gt2000"}}, {Name: "subject", Values: []string{"pat00011"}}}},
		{"Observation", []store.Param{{Name: "_id", Values: []string{"pat00001-2", "pat00001-3", "nope"}}, {Name: "code", Values: []string{"http://loinc.org|"}}}},
		{"Patient", []store.Param{{Name: "_id", Values: []string{"pat00001", "nope"}}}},
		{"Patient", []store.Param{{Name: "general-practitioner", Values: []string{"d7"}}, {Name: "gender", Values: []string{"http://hl7.org/fhir/administrative-gender|female"}}}},
		{"Observation", []store.Param{{Name: "code", Values: []string{"4548-4", "718-7"}}, {Name: "status", Values: []string{"final"}}}},
		{"Observation", []store.Param{{Name: "date", Values: []string{"2019"}}}},
		{"Observation", []store.Param{{Name: "date", Values: []string{"ge2019-06-15"}}, {Name: "date", Values: []string{"lt2020-02"}}}},
		{"Observation", []store.Param{{Name: "date", Values: []string{"sa2021-12-31T23:00:00Z"}}}},
		{"Observation", []store.Param{{Name: "date", Values: []string{"eb2015-03"}}}},
		{"Observation", []store.Param{{Name: "date", Values: []string{"le2016-01-01T05:00:00+05:00"}}}},
		{"Observation", []store.Param{{Name: "date", Values: []string{"gt2022"}}}},
		{"Observation", []store.Param{{Name: "date", Values: []string{"lt2016-02-03T04:05:06Z", "sa2022-03"}}}},
		{"Encounter", []store.Param{{Name: "date", Values: []string{"eb2017"}}, {Name: "date", Values: []string{"gt2016-06"}}}},
		{"Observation", []store.Param{{Name: "patient", Values: []string{"pat00007"}}, {Name: "code", Values: []string{"http://loinc.org|"}}}},
		{"Observation", []store.Param{{Name: "value-quantity", Values: []string{"gt150||mg/dL"}}, {Name: "status", Values: []string{"amended"}}}},
		{"Observation", []store.Param{{Name: "encounter", Values: []string{"Encounter/pat00003-0"}}}},
		{"Observation", []store.Param{{Name: "status", Modifier: "not", Values: []string{"final", "amended"}}}},
		{"Encounter", []store.Param{{Name: "date", Values: []string{"ge2018"}}, {Name: "service-provider", Values: []string{"o2"}}}},
		{"Encounter", []store.Param{{Name: "date", Values: []string{"2020-05"}}}},
		{"Condition", []store.Param{{Name: "onset-date", Values: []string{"ne2018"}}}},
		{"Condition", []store.Param{{Name: "code", Modifier: "text", Values: []string{"condition 3"}}}},
		{"Patient", []store.Param{{Name: "family", Values: []string{"mull"}}}},
		{"Patient", []store.Param{{Name: "name", Modifier: "contains", Values: []string{"RE"}}}},
		{"Patient", []store.Param{{Name: "given", Modifier: "exact", Values: []string{"Zoë"}}}},
		{"Patient", []store.Param{{Name: "gender", Modifier: "missing", Values: []string{"true"}}}},
		{"Patient", []store.Param{{Name: "birthdate", Values: []string{"ge1960", "lt1940"}}, {Name: "general-practitioner", Values: []string{"Practitioner/d3", "d4"}}}},
		{"Patient", []store.Param{{Name: "address-city", Values: []string{"spring"}}, {Name: "identifier", Values: []string{"urn:mrn|42"}}}},
	}
	for _, q := range queries {
		var crits []*searchparam.Criterion
		for _, p := range q.params {
			c, err := searchparam.Parse(q.typ, p)
			require.NoError(t, err)
			crits = append(crits, c)
		}
		want := []string{}
		require.NoError(t, st.Scan(ctx, q.typ, time.Time{}, func(r *store.Resource) error {
			for _, c := range crits {
				if !c.Match(r.Body) {
					return nil
				}
			}
			want = append(want, r.ID)
			return nil
		}))
		sort.Strings(want)
		got := []string{}
		sq := store.Query{Type: q.typ, Params: q.params, Count: 37, Total: true}
		for {
			res, err := st.Search(ctx, sq)
			require.NoError(t, err)
			if sq.Cursor == "" {
				assert.Equal(t, len(want), res.Total, "total of %s %+v", q.typ, q.params)
			}
			for _, r := range res.Resources {
				got = append(got, r.ID)
			}
			if res.NextCursor == "" {
				break
			}
			sq.Cursor = res.NextCursor
		}
		assert.Equal(t, want, got, "%s %+v", q.typ, q.params)
	}
}
