package rest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store/badgerstore"
)

type patientSet map[string]bool

func (p patientSet) Contains(id string) bool { return p[id] }

// TestScopes runs a server whose Authenticate maps a test header to a
// principal, and checks that scopes and patient scoping are enforced by
// every interaction.
func TestScopes(t *testing.T) {
	open := newEnv(t) // anonymous server on its own store, to seed data
	p1 := open.create(patient("Scope", "One")).Get("id").String()
	p2 := open.create(patient("Scope", "Two")).Get("id").String()
	o1 := open.create(observation("Patient/" + p1)).Get("id").String()
	o2 := open.create(observation("Patient/" + p2)).Get("id").String()
	org := open.create(map[string]any{"resourceType": "Organization", "name": "Org"}).Get("id").String()
	open.close()

	st, err := badgerstore.Open(context.Background(), open.dir, badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	principals := map[string]*access.Principal{
		"reader":   {ClientID: "reader", Scopes: []string{"system/*.read"}},
		"provider": {ClientID: "provider", Scopes: []string{"system/*.rs"}, Patients: patientSet{p1: true}},
		"writer":   {ClientID: "writer", Scopes: []string{"system/*.*"}, Patients: patientSet{p1: true}},
	}
	srv, err := rest.New(rest.Config{Store: st, Authenticate: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := principals[r.Header.Get("X-Test-Client")]; p != nil {
				r = r.WithContext(access.WithPrincipal(r.Context(), p))
			}
			next.ServeHTTP(w, r)
		})
	}})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	e := &env{t: t, srv: srv, base: hs.URL + "/fhir"}

	as := func(client string) []string { return []string{"X-Test-Client", client} }
	tests := []struct {
		name, client, method, path string
		body                       any
		status                     int
	}{
		{"no principal", "", "GET", "Patient/" + p1, nil, 401},
		{"reader reads", "reader", "GET", "Patient/" + p2, nil, 200},
		{"reader cannot create", "reader", "POST", "Patient", patient("X"), 403},
		{"reader cannot delete", "reader", "DELETE", "Patient/" + p1, nil, 403},
		{"reader transaction write", "reader", "POST", "", txBundle("transaction", txEntry("", patient("X"), "POST", "Patient")), 403},
		{"reader system history", "reader", "GET", "_history", nil, 200},
		{"provider reads own patient", "provider", "GET", "Patient/" + p1, nil, 200},
		{"provider cannot read other patient", "provider", "GET", "Patient/" + p2, nil, 404},
		{"provider cannot read other patient's data", "provider", "GET", "Observation/" + o2, nil, 404},
		{"provider reads own patient's data", "provider", "GET", "Observation/" + o1, nil, 200},
		{"provider reads non-patient data", "provider", "GET", "Organization/" + org, nil, 200},
		{"provider system history", "provider", "GET", "_history", nil, 200},
		{"provider cannot update other patient", "writer", "PUT", "Patient/" + p2, map[string]any{"resourceType": "Patient", "id": p2}, 403},
		{"provider update of unknown id with other's data answers alike", "writer", "PUT", "Observation/no-such-id", map[string]any{"resourceType": "Observation", "id": "no-such-id", "status": "final", "code": map[string]any{"text": "x"}, "subject": map[string]any{"reference": "Patient/" + p2}}, 403},
		{"provider delete of other patient's data does nothing", "writer", "DELETE", "Observation/" + o2, nil, 204},
		{"provider cannot write into other patient", "writer", "POST", "Observation", observation("Patient/" + p2), 403},
		{"provider writes own patient's data", "writer", "POST", "Observation", observation("Patient/" + p1), 201},
		{"provider conditional update refused", "writer", "PUT", "Patient?name=Scope", patient("Scope"), 403},
		{"provider transaction refused", "writer", "POST", "", txBundle("transaction", txEntry("", observation("Patient/"+p1), "POST", "Observation")), 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body, as(tc.client)...)
			assert.Equal(t, tc.status, r.Status, "%s", r)
			if tc.status >= 400 {
				isOutcome(t, r)
			}
		})
	}
	t.Run("provider search is filtered", func(t *testing.T) {
		r := e.do("GET", "Observation?code=http://loinc.org|4548-4", nil, as("provider")...)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.False(t, r.get("total").Exists(), "a restricted caller's total is computed only when asked for")
		r = e.do("GET", "Observation?code=http://loinc.org|4548-4&_total=accurate", nil, as("provider")...)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		entries := r.get("entry").Array()
		assert.EqualValues(t, len(entries), r.get("total").Int(), "the total counts only visible matches")
		var ids []string
		for _, en := range entries {
			ids = append(ids, en.Get("resource.id").String())
			assert.Equal(t, "Patient/"+p1, en.Get("resource.subject.reference").String())
		}
		assert.Contains(t, ids, o1)
	})
	t.Run("other patient's data survived the provider's delete", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, e.do("GET", "Observation/"+o2, nil, as("reader")...).Status)
	})
	t.Run("provider system history is filtered", func(t *testing.T) {
		r := e.do("GET", "_history", nil, as("provider")...)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		var got []string
		for _, en := range r.get("entry").Array() {
			got = append(got, en.Get("resource.resourceType").String()+"/"+en.Get("resource.id").String())
			if en.Get("resource.resourceType").String() == "Observation" {
				assert.Equal(t, "Patient/"+p1, en.Get("resource.subject.reference").String())
			}
		}
		assert.Subset(t, got, []string{"Patient/" + p1, "Observation/" + o1, "Organization/" + org})
		assert.NotContains(t, got, "Patient/"+p2)
		assert.NotContains(t, got, "Observation/"+o2)
	})
	t.Run("batch entries are checked one by one", func(t *testing.T) {
		r := e.do("POST", "", txBundle("batch",
			txEntry("", nil, "GET", "Patient/"+p1),
			txEntry("", patient("X"), "POST", "Patient")), as("reader")...)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.True(t, strings.HasPrefix(r.get("entry.0.response.status").String(), "200"))
		assert.True(t, strings.HasPrefix(r.get("entry.1.response.status").String(), "403"))
	})
	assert.Zero(t, srv.Panics())
}
