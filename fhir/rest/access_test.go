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
		{"provider no system history", "provider", "GET", "_history", nil, 403},
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
		assert.EqualValues(t, 1, r.get("total").Int())
		assert.Equal(t, o1, r.get("entry.0.resource.id").String())
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
