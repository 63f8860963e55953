package bulkapi_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

// TestPatientAndGroupExportListDeletions: with _since, Patient- and
// Group-level manifests list the deletions in the exported patients'
// compartments (found from each resource's last live version), and only
// those.
func TestPatientAndGroupExportListDeletions(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(6) // Group g1 holds p0, p1, p2
	before := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	_, err := e.st.Commit(context.Background(), store.Tx{Writes: []store.Write{
		{Op: store.OpDelete, Type: "Observation", ID: "p1-o1"},
		{Op: store.OpDelete, Type: "Observation", ID: "p4-o1"},
		{Op: store.OpDelete, Type: "Encounter", ID: "p2-e1"},
		{Op: store.OpDelete, Type: "Patient", ID: "p2"},
		{Op: store.OpPut, Type: "Observation", ID: "p0-o1", Body: []byte(`{"resourceType":"Observation","id":"p0-o1","status":"amended","code":{"text":"x"},"subject":{"reference":"Patient/p0"}}`)},
	}})
	require.NoError(t, err)
	since := urlq(before.Format(time.RFC3339Nano))
	patientParam := func(id string) string {
		return `{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":"` + before.Format(time.RFC3339Nano) +
			`"},{"name":"patient","valueReference":{"reference":"Patient/` + id + `"}}]}`
	}
	for _, tc := range []struct {
		name, method, path, body string
		deleted                  []string
	}{
		{name: "Group", method: "GET", path: "/Group/g1/$export?_since=" + since,
			deleted: []string{"Encounter/p2-e1", "Observation/p1-o1", "Patient/p2"}},
		{name: "Group with _type", method: "GET", path: "/Group/g1/$export?_type=Observation&_since=" + since,
			deleted: []string{"Observation/p1-o1"}},
		{name: "Patient", method: "GET", path: "/Patient/$export?_since=" + since,
			deleted: []string{"Encounter/p2-e1", "Observation/p1-o1", "Observation/p4-o1", "Patient/p2"}},
		{name: "Patient with patient", method: "POST", path: "/Patient/$export", body: patientParam("p4"),
			deleted: []string{"Observation/p4-o1"}},
		{name: "Group without _since lists none", method: "GET", path: "/Group/g1/$export"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.body != "" {
				headers = []string{"Content-Type", "application/fhir+json"}
			}
			m := e.wait(e.kickoff(tc.method, tc.path, tc.body, headers...))
			var got []string
			for _, b := range e.download(m.Get("deleted"))["Bundle"] {
				assert.Equal(t, "DELETE", b.Get("entry.0.request.method").String())
				got = append(got, b.Get("entry.0.request.url").String())
			}
			sort.Strings(got)
			assert.Equal(t, tc.deleted, got)
			if tc.body == "" && len(tc.deleted) > 0 {
				out := e.download(m.Get("output"))
				assert.Contains(t, ids(out["Observation"]), "p0-o1", "changes since _since are exported too")
			}
		})
	}
}

// TestPatientExportReadPathsAgree: the three ways a Patient-level export
// reads data (scanning the types for every patient, reading whole
// compartments for listed patients, reading them type by type for a few
// types) give the same resources.
func TestPatientExportReadPathsAgree(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(8)
	var params []string
	for i := range 8 {
		params = append(params, fmt.Sprintf(`{"name":"patient","valueReference":{"reference":"Patient/p%d"}}`, i))
	}
	listed := `{"resourceType":"Parameters","parameter":[` + strings.Join(params, ",") + `]}`
	listedFew := `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient,Observation,Encounter"},` + strings.Join(params, ",") + `]}`
	exports := map[string]map[string][]gjson.Result{
		"every patient, scanned":              e.download(e.wait(e.kickoff("GET", "/Patient/$export", "")).Get("output")),
		"every patient, few types, scanned":   e.download(e.wait(e.kickoff("GET", "/Patient/$export?_type=Patient,Observation,Encounter", "")).Get("output")),
		"listed patients, whole compartments": e.download(e.wait(e.kickoff("POST", "/Patient/$export", listed)).Get("output")),
		"listed patients, type by type":       e.download(e.wait(e.kickoff("POST", "/Patient/$export", listedFew)).Get("output")),
	}
	for _, typ := range []string{"Patient", "Observation", "Encounter"} {
		var want []string
		for name, got := range exports {
			ids := ids(got[typ])
			sort.Strings(ids)
			if want == nil {
				want = ids
				require.Len(t, want, int(e.count(typ)), "%s %s", name, typ)
				continue
			}
			assert.Equal(t, want, ids, "%s %s", name, typ)
		}
	}
}
