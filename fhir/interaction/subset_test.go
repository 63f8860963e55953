package interaction

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/tidwall/gjson"
)

func TestSubset(t *testing.T) {
	body := []byte(`{"resourceType":"Observation","id":"o1","meta":{"versionId":"2"},"text":{"status":"generated"},"status":"final","valueQuantity":{"value":1},"_status":{"id":"s"},"subject":{"reference":"Patient/p"}}`)
	tests := []struct {
		name     string
		q        Search
		kept     []string
		dropped  []string
		untagged bool
	}{
		{name: "no shaping keeps the stored bytes", untagged: true, kept: []string{"text", "status", "subject"}},
		{name: "_elements keeps listed, mandatory and underscore siblings", q: Search{Elements: []string{"status"}},
			kept: []string{"resourceType", "id", "meta", "status", "_status"}, dropped: []string{"text", "subject", "valueQuantity"}},
		{name: "_elements names a choice element by its base", q: Search{Elements: []string{"value"}},
			kept: []string{"valueQuantity"}, dropped: []string{"status", "subject"}},
		{name: "_summary=data drops only the narrative", q: Search{SummaryData: true},
			kept: []string{"status", "subject", "valueQuantity"}, dropped: []string{"text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.q.Subset(body)
			assert.True(t, gjson.ValidBytes(got), string(got))
			if tt.untagged {
				assert.Equal(t, body, got)
			} else {
				assert.Equal(t, "SUBSETTED", gjson.GetBytes(got, "meta.tag.0.code").String())
				assert.Equal(t, "2", gjson.GetBytes(got, "meta.versionId").String())
			}
			for _, k := range tt.kept {
				assert.True(t, gjson.GetBytes(got, k).Exists(), "%s kept", k)
			}
			for _, k := range tt.dropped {
				assert.False(t, gjson.GetBytes(got, k).Exists(), "%s dropped", k)
			}
		})
	}
}
