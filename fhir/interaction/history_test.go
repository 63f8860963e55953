package interaction

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

func TestParseHistory(t *testing.T) {
	ref := &store.VersionRef{Type: "Patient", ID: "p1", Version: 3, LastUpdated: time.Date(2024, 5, 1, 10, 0, 0, 123, time.UTC)}
	tests := []struct {
		name    string
		q       url.Values
		lenient bool
		want    HistoryRequest
		bad     []string // expressions of the expected issues
	}{
		{name: "defaults", want: HistoryRequest{Count: DefaultCount}},
		{name: "count is capped", q: url.Values{"_count": {"100000"}}, want: HistoryRequest{Count: MaxCount}},
		{name: "since with an unescaped offset", q: url.Values{"_since": {"2024-01-01T00:00:00 01:00"}},
			want: HistoryRequest{Count: DefaultCount, Since: time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600))}},
		{name: "cursor round-trips", q: url.Values{CursorParam: {historyCursor(ref)}}, want: HistoryRequest{Count: DefaultCount, Before: ref}},
		{name: "negative count", q: url.Values{"_count": {"-1"}}, bad: []string{"_count"}},
		{name: "bad since and cursor", q: url.Values{"_since": {"yesterday"}, CursorParam: {"!!"}}, bad: []string{"_since", CursorParam}},
		{name: "unknown parameter refused", q: url.Values{"_elements": {"id"}}, bad: []string{"_elements"}},
		{name: "unknown parameter ignored when lenient", q: url.Values{"_elements": {"id"}}, lenient: true, want: HistoryRequest{Count: DefaultCount}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHistory("", "", tt.q, tt.lenient)
			if tt.bad != nil {
				var he *outcome.HTTPError
				require.ErrorAs(t, err, &he)
				assert.Equal(t, 400, he.Status)
				var exprs []string
				for _, is := range he.Issues {
					exprs = append(exprs, is.Expression...)
				}
				assert.ElementsMatch(t, tt.bad, exprs)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want.Count, got.Count)
			assert.True(t, tt.want.Since.Equal(got.Since), "since %v, want %v", got.Since, tt.want.Since)
			if tt.want.Before == nil {
				assert.Nil(t, got.Before)
			} else {
				require.NotNil(t, got.Before)
				assert.Equal(t, *tt.want.Before, *got.Before)
			}
		})
	}
}
