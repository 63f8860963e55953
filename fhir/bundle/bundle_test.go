package bundle

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriter(t *testing.T) {
	total := 2
	tests := []struct {
		name    string
		header  Header
		entries []Entry
		check   func(t *testing.T, b map[string]any)
	}{
		{"empty searchset", Header{Type: "searchset", Total: new(int)}, nil, func(t *testing.T, b map[string]any) {
			assert.Equal(t, "searchset", b["type"])
			assert.EqualValues(t, 0, b["total"])
			assert.NotContains(t, b, "entry")
		}},
		{"entries keep stored bytes and links keep '&'", Header{ID: "b1", Type: "searchset", Total: &total, Time: time.Unix(0, 0),
			Links: []Link{{Relation: "next", URL: "http://h/fhir/Patient?a=1&_cursor=x"}}},
			[]Entry{
				{FullURL: "http://h/fhir/Patient/1", Resource: []byte(`{"resourceType":"Patient","id":"1","birthDate":"1970-01-01"}`), Search: &Search{Mode: "match"}},
				{FullURL: "http://h/fhir/Organization/2", Resource: []byte(`{"resourceType":"Organization","id":"2"}`), Search: &Search{Mode: "include"}},
			}, func(t *testing.T, b map[string]any) {
				assert.Equal(t, "b1", b["id"])
				assert.Len(t, b["entry"], 2)
				e0 := b["entry"].([]any)[0].(map[string]any)
				assert.Equal(t, "1970-01-01", e0["resource"].(map[string]any)["birthDate"])
				assert.Equal(t, "match", e0["search"].(map[string]any)["mode"])
			}},
		{"transaction response entries", Header{Type: "transaction-response"}, []Entry{
			{Response: &Response{Status: "201 Created", Location: "Patient/1/_history/1", Etag: `W/"1"`}},
			{Response: &Response{Status: "400 Bad Request", Outcome: json.RawMessage(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid"}]}`)}},
		}, func(t *testing.T, b map[string]any) {
			e := b["entry"].([]any)
			assert.Equal(t, "201 Created", e[0].(map[string]any)["response"].(map[string]any)["status"])
			assert.Equal(t, "OperationOutcome", e[1].(map[string]any)["response"].(map[string]any)["outcome"].(map[string]any)["resourceType"])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, tt.header)
			for _, e := range tt.entries {
				w.Entry(e)
			}
			require.NoError(t, w.Close())
			require.True(t, json.Valid(buf.Bytes()), buf.String())
			assert.NotContains(t, buf.String(), `\u0026`)
			assert.NotContains(t, buf.String(), "\n")
			var b map[string]any
			require.NoError(t, json.Unmarshal(buf.Bytes(), &b))
			assert.Equal(t, "Bundle", b["resourceType"])
			tt.check(t, b)
		})
	}
}
