package badgerstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/equitas/equitas/store"
)

// FuzzSearch feeds client-controlled search input (a parameter, a sort and
// a paging cursor) to a real store: Search either answers within the page
// size or fails with a ParamError (a 400 for the REST layer), never another
// error or a panic.
func FuzzSearch(f *testing.F) {
	st := openStore(f, f.TempDir())
	f.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	if _, err := st.Commit(ctx, store.Tx{Writes: population(1, 3, 5)}); err != nil {
		f.Fatal(err)
	}
	first, err := st.Search(ctx, store.Query{Type: "Observation", Count: 2})
	if err != nil || first.NextCursor == "" {
		f.Fatalf("no second page to seed the cursor: %v", err)
	}
	f.Add("subject", "", "Patient/pat00001", first.NextCursor, "")
	f.Add("code", "", "http://loinc.org|718-7", first.NextCursor, "date")
	f.Add("date", "", "ge2020-01", "", "-date")
	f.Add("value-quantity", "", "ap5.4|http://unitsofmeasure.org|mg", "bm90IGpzb24", "")
	f.Add("_id", "not", "x", "e30", "code")
	f.Add("subject", "", "Patient/pat00001", "eyJrIjpbIiJdfQ", "date") // {"k":[""]}: a sort key without its presence byte
	f.Add("combo-code", "text", "glucose", "eyJrIjpbMV19", "nope")
	f.Fuzz(func(t *testing.T, name, mod, value, cursor, sort string) {
		q := store.Query{Type: "Observation", Count: 2, Cursor: cursor, Total: true,
			Params: []store.Param{{Name: name, Modifier: mod, Values: []string{value}}}}
		if sort != "" {
			q.Sort = []store.SortKey{{Param: sort}}
		}
		res, err := st.Search(ctx, q)
		if err != nil {
			var pe *store.ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T (%v) is not a ParamError", err, err)
			}
			return
		}
		if len(res.Resources) > q.Count {
			t.Fatalf("%d resources on a page of %d", len(res.Resources), q.Count)
		}
	})
}
