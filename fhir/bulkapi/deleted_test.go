package bulkapi_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// TestPatientExportReadPathsAgree: an export of every compartment type
// (read as whole compartments) and one of a few types (read type by type)
// hold the same resources of those types.
func TestPatientExportReadPathsAgree(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.seed(8)
	all := e.download(e.wait(e.kickoff("GET", "/Patient/$export", "")).Get("output"))
	few := e.download(e.wait(e.kickoff("GET", "/Patient/$export?_type=Patient,Observation,Encounter", "")).Get("output"))
	for _, typ := range []string{"Patient", "Observation", "Encounter"} {
		want, got := ids(few[typ]), ids(all[typ])
		sort.Strings(want)
		sort.Strings(got)
		require.NotEmpty(t, want, typ)
		assert.Equal(t, want, got, typ)
	}
	assert.Equal(t, int(e.count("Observation")), len(all["Observation"]))
}
