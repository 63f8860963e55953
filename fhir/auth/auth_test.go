package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/bulk/job"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/auth"
	"github.com/equitas/equitas/fhir/bulkapi"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// env is a FHIR server with SMART auth and the bulk endpoints on a real
// badger store, on 127.0.0.1, plus a JWKS host for clients that register
// a JWKS URL.
type env struct {
	t        *testing.T
	st       *badgerstore.Store
	as       *auth.Server
	http     *httptest.Server
	jwksHost *httptest.Server
	jwksHits atomic.Int64
	tokenURL string
	rsaKey   *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
}

func newEnv(t *testing.T, options ...func(*auth.Options)) *env {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	e := &env{t: t, st: st}
	e.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	e.ecKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)

	opts := auth.Options{TokenURL: func(*http.Request) string { return e.tokenURL },
		PublicPaths: []string{rest.BasePath + "/metadata"}}
	for _, o := range options {
		o(&opts)
	}
	e.as, err = auth.New(st.KV(), opts)
	require.NoError(t, err)
	srv, err := rest.New(rest.Config{Store: st, Authenticate: e.as.Authenticate})
	require.NoError(t, err)
	jobs, err := job.NewManager(st.KV(), job.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	jobs.Register(export.Kind, export.New(st, export.Options{}).Run)
	bulkapi.New(st, jobs, srv.Base, true).Mount(srv, e.as.Authenticate)
	srv.Router().Post("/auth/token", e.as.Token)
	srv.Router().Get("/.well-known/smart-configuration", e.as.Discovery)
	srv.Router().With(auth.AdminOnly("admin-secret")).Route("/admin", e.as.AdminRoutes)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, jobs.Start(ctx))
	e.http = httptest.NewServer(srv)
	e.tokenURL = e.http.URL + "/auth/token"

	ecSet := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: e.ecKey.Public(), KeyID: "e1", Algorithm: "ES384"}}}
	e.jwksHost = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.jwksHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ecSet)
	}))
	t.Cleanup(func() {
		e.http.Close()
		e.jwksHost.Close()
		cancel()
		jobs.Wait()
		_ = st.Close()
	})

	rsaSet := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: e.rsaKey.Public(), KeyID: "k1"}}}
	for _, c := range []*auth.Client{
		{ID: "payer", Scopes: []string{"system/*.read"}, JWKS: rsaSet},
		{ID: "es-client", Scopes: []string{"system/*.rs"}, JWKSURL: e.jwksHost.URL + "/jwks.json"},
		{ID: "narrow", Scopes: []string{"system/Patient.read"}, JWKS: rsaSet},
		{ID: "clinic", Scopes: []string{"system/*.read"}, JWKS: rsaSet, Organization: "http://hl7.org/fhir/sid/us-npi|1234567893"},
	} {
		require.NoError(t, e.as.Clients().Put(context.Background(), c))
	}
	_, err = st.Commit(context.Background(), store.Tx{Writes: []store.Write{
		{Op: store.OpPut, Type: "Patient", ID: "p1", Body: []byte(`{"resourceType":"Patient","id":"p1"}`)},
		{Op: store.OpPut, Type: "Observation", ID: "o1", Body: []byte(`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`)},
	}})
	require.NoError(t, err)
	return e
}

// assertion builds a client assertion; mutate changes claims or headers
// before signing.
type assertion struct {
	alg    jose.SignatureAlgorithm
	key    any
	kid    string
	typ    string
	claims map[string]any
}

func (e *env) assertion(client string) *assertion {
	now := time.Now()
	return &assertion{alg: jose.RS384, key: e.rsaKey, kid: "k1", typ: "JWT", claims: map[string]any{
		"iss": client, "sub": client, "aud": e.tokenURL, "exp": now.Add(4 * time.Minute).Unix(),
		"jti": fmt.Sprintf("jti-%d", now.UnixNano()),
	}}
}

func (a *assertion) sign(t *testing.T) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", a.kid)
	if a.kid == "" {
		opts = &jose.SignerOptions{}
	}
	if a.typ != "" {
		opts = opts.WithType(jose.ContentType(a.typ))
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: a.alg, Key: a.key}, opts)
	require.NoError(t, err)
	tok, err := jwt.Signed(sig).Claims(a.claims).Serialize()
	require.NoError(t, err)
	return tok
}

type tokenResp struct {
	status int
	body   gjson.Result
}

func (e *env) token(form url.Values) tokenResp {
	e.t.Helper()
	res, err := http.PostForm(e.tokenURL, form)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return tokenResp{res.StatusCode, gjson.ParseBytes(b)}
}

func form(assertion, scope string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
		"scope":                 {scope},
	}
}

// accessToken gets a token for client with scope.
func (e *env) accessToken(client, scope string) string {
	e.t.Helper()
	r := e.token(form(e.assertion(client).sign(e.t), scope))
	require.Equal(e.t, http.StatusOK, r.status, r.body.Raw)
	return r.body.Get("access_token").String()
}

func TestTokenEndpoint(t *testing.T) {
	e := newEnv(t)
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tests := []struct {
		name      string
		form      func() url.Values
		status    int
		errorCode string
		scope     string
	}{
		{name: "valid RS384 with inline JWKS", status: 200, scope: "system/*.read",
			form: func() url.Values { return form(e.assertion("payer").sign(t), "system/*.read") }},
		{name: "valid ES384 with JWKS URL", status: 200, scope: "system/Patient.rs system/Observation.rs",
			form: func() url.Values {
				a := e.assertion("es-client")
				a.alg, a.key, a.kid = jose.ES384, e.ecKey, "e1"
				return form(a.sign(t), "system/Patient.rs system/Observation.rs")
			}},
		{name: "granted scope is narrowed to the pre-authorized ones", status: 200, scope: "system/Patient.read",
			form: func() url.Values {
				return form(e.assertion("narrow").sign(t), "system/Patient.read system/Observation.read")
			}},
		{name: "bad signature", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.key = otherRSA
				return form(a.sign(t), "system/*.read")
			}},
		{name: "wrong alg RS256", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.alg = jose.RS256
				return form(a.sign(t), "system/*.read")
			}},
		{name: "wrong alg HS384 (symmetric)", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.alg, a.key = jose.HS384, []byte(strings.Repeat("s", 48))
				return form(a.sign(t), "system/*.read")
			}},
		{name: "expired", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.claims["exp"] = time.Now().Add(-10 * time.Minute).Unix()
				return form(a.sign(t), "system/*.read")
			}},
		{name: "exp more than 5 minutes ahead", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.claims["exp"] = time.Now().Add(time.Hour).Unix()
				return form(a.sign(t), "system/*.read")
			}},
		{name: "wrong aud", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.claims["aud"] = "https://elsewhere.example/token"
				return form(a.sign(t), "system/*.read")
			}},
		{name: "unknown client", status: 400, errorCode: "invalid_client",
			form: func() url.Values { return form(e.assertion("stranger").sign(t), "system/*.read") }},
		{name: "iss differs from sub", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.claims["sub"] = "narrow"
				return form(a.sign(t), "system/*.read")
			}},
		{name: "no kid", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.kid = ""
				return form(a.sign(t), "system/*.read")
			}},
		{name: "unknown kid", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.kid = "k9"
				return form(a.sign(t), "system/*.read")
			}},
		{name: "typ is not JWT", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				a.typ = ""
				return form(a.sign(t), "system/*.read")
			}},
		{name: "no jti", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("payer")
				delete(a.claims, "jti")
				return form(a.sign(t), "system/*.read")
			}},
		{name: "jku not the registered JWKS URL", status: 400, errorCode: "invalid_client",
			form: func() url.Values {
				a := e.assertion("es-client")
				a.alg, a.key, a.kid = jose.ES384, e.ecKey, "e1"
				opts := (&jose.SignerOptions{}).WithHeader("kid", "e1").WithType("JWT").WithHeader("jku", "https://attacker.example/jwks")
				sig, err := jose.NewSigner(jose.SigningKey{Algorithm: a.alg, Key: a.key}, opts)
				require.NoError(t, err)
				tok, err := jwt.Signed(sig).Claims(a.claims).Serialize()
				require.NoError(t, err)
				return form(tok, "system/*.rs")
			}},
		{name: "not a JWT", status: 400, errorCode: "invalid_client",
			form: func() url.Values { return form("not.a.jwt", "system/*.read") }},
		{name: "invalid grant_type", status: 400, errorCode: "unsupported_grant_type",
			form: func() url.Values {
				f := form(e.assertion("payer").sign(t), "system/*.read")
				f.Set("grant_type", "password")
				return f
			}},
		{name: "invalid client_assertion_type", status: 400, errorCode: "invalid_request",
			form: func() url.Values {
				f := form(e.assertion("payer").sign(t), "system/*.read")
				f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
				return f
			}},
		{name: "scope outside the pre-authorized ones", status: 400, errorCode: "invalid_scope",
			form: func() url.Values { return form(e.assertion("narrow").sign(t), "system/Observation.read") }},
		{name: "write scope for a read-only client", status: 400, errorCode: "invalid_scope",
			form: func() url.Values { return form(e.assertion("payer").sign(t), "system/Patient.cud") }},
		{name: "malformed scope", status: 400, errorCode: "invalid_scope",
			form: func() url.Values { return form(e.assertion("payer").sign(t), "patient/*.read") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.token(tc.form())
			require.Equal(t, tc.status, r.status, r.body.Raw)
			if tc.status != 200 {
				assert.Equal(t, tc.errorCode, r.body.Get("error").String())
				assert.NotEmpty(t, r.body.Get("error_description").String())
				return
			}
			assert.NotEmpty(t, r.body.Get("access_token").String())
			assert.Equal(t, "bearer", r.body.Get("token_type").String())
			assert.LessOrEqual(t, r.body.Get("expires_in").Int(), int64(300))
			assert.Equal(t, tc.scope, r.body.Get("scope").String())
		})
	}
}

func TestReusedJTIIsRejected(t *testing.T) {
	e := newEnv(t)
	signed := e.assertion("payer").sign(t)
	first := e.token(form(signed, "system/*.read"))
	require.Equal(t, http.StatusOK, first.status, first.body.Raw)
	again := e.token(form(signed, "system/*.read"))
	assert.Equal(t, http.StatusBadRequest, again.status)
	assert.Equal(t, "invalid_client", again.body.Get("error").String())
	assert.Contains(t, again.body.Get("error_description").String(), "jti")
}

func TestJWKSURLIsCached(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 3; i++ {
		a := e.assertion("es-client")
		a.alg, a.key, a.kid = jose.ES384, e.ecKey, "e1"
		a.claims["jti"] = fmt.Sprintf("cache-%d", i)
		r := e.token(form(a.sign(t), "system/*.rs"))
		require.Equal(t, http.StatusOK, r.status, r.body.Raw)
	}
	assert.Equal(t, int64(1), e.jwksHits.Load())
}

type apiResp struct {
	status int
	header http.Header
	body   gjson.Result
}

func (e *env) api(method, path, token string, headers ...string) apiResp {
	e.t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = e.http.URL + path
	}
	req, err := http.NewRequest(method, path, nil)
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return apiResp{res.StatusCode, res.Header, gjson.ParseBytes(b)}
}

func TestAPIRequiresTokenAndScope(t *testing.T) {
	e := newEnv(t)
	payer := e.accessToken("payer", "system/*.read")
	narrow := e.accessToken("narrow", "system/Patient.read")
	tests := []struct {
		name, method, path, token string
		status                    int
	}{
		{"no token", "GET", "/fhir/Patient/p1", "", 401},
		{"unknown token", "GET", "/fhir/Patient/p1", "bogus", 401},
		{"read in scope", "GET", "/fhir/Patient/p1", narrow, 200},
		{"read outside scope", "GET", "/fhir/Observation/o1", narrow, 403},
		{"search outside scope", "GET", "/fhir/Observation?subject=Patient/p1", narrow, 403},
		{"write with a read scope", "DELETE", "/fhir/Patient/p1", payer, 403},
		{"export kick-off without token", "GET", "/fhir/$export", "", 401},
		{"export of types outside scope", "GET", "/fhir/$export?_type=Observation", narrow, 403},
		{"metadata is public", "GET", "/fhir/metadata", "", 200},
		{"a resource called metadata is not", "GET", "/fhir/Patient/metadata", "", 401},
		{"discovery is public", "GET", "/.well-known/smart-configuration", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.api(tc.method, tc.path, tc.token)
			assert.Equal(t, tc.status, r.status, r.body.Raw)
			if tc.status >= 400 {
				assert.Equal(t, "OperationOutcome", r.body.Get("resourceType").String())
			}
			if tc.status == 401 {
				assert.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")
			}
		})
	}
}

func TestExportStatusAndFilesNeedTheOwnersToken(t *testing.T) {
	e := newEnv(t)
	payer := e.accessToken("payer", "system/*.read")
	narrow := e.accessToken("narrow", "system/Patient.read")
	r := e.api("GET", "/fhir/$export", payer, "Prefer", "respond-async")
	require.Equal(t, http.StatusAccepted, r.status, r.body.Raw)
	status := r.header.Get("Content-Location")
	assert.Equal(t, http.StatusUnauthorized, e.api("GET", status, "").status)
	assert.Equal(t, http.StatusNotFound, e.api("GET", status, narrow).status, "another client's job is not found")
	var manifest gjson.Result
	require.Eventually(t, func() bool {
		r := e.api("GET", status, payer)
		manifest = r.body
		return r.status == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)
	assert.True(t, manifest.Get("requiresAccessToken").Bool())
	file := manifest.Get("output.0.url").String()
	require.NotEmpty(t, file)
	assert.Equal(t, http.StatusUnauthorized, e.api("GET", file, "").status)
	assert.Equal(t, http.StatusNotFound, e.api("GET", file, narrow).status)
	assert.Equal(t, http.StatusOK, e.api("GET", file, payer, "Accept", "application/fhir+ndjson").status)

	// A later token of the same client whose scopes no longer cover the
	// file's type cannot download it.
	narrowed := e.accessToken("payer", "system/Encounter.read")
	obs := manifest.Get(`output.#(type=="Observation").url`).String()
	require.NotEmpty(t, obs)
	r = e.api("GET", obs, narrowed)
	assert.Equal(t, http.StatusForbidden, r.status)
	assert.Equal(t, "OperationOutcome", r.body.Get("resourceType").String())
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	r := e.api("GET", "/.well-known/smart-configuration", "", "Accept", "text/html")
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.header.Get("Content-Type"), "application/json")
	assert.Equal(t, e.tokenURL, r.body.Get("token_endpoint").String())
	assert.Contains(t, r.body.Get("grant_types_supported").Raw, "client_credentials")
	assert.Contains(t, r.body.Get("capabilities").Raw, "client-confidential-asymmetric")
	assert.Contains(t, r.body.Get("token_endpoint_auth_methods_supported").Raw, "private_key_jwt")
	assert.Contains(t, r.body.Get("token_endpoint_auth_signing_alg_values_supported").Raw, "RS384")
	assert.Contains(t, r.body.Get("token_endpoint_auth_signing_alg_values_supported").Raw, "ES384")
	assert.NotContains(t, r.body.Get("code_challenge_methods_supported").Raw, "plain")
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t)
	pub, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: e.rsaKey, KeyID: "k2"}}}) // private on purpose
	require.NoError(t, err)
	body := fmt.Sprintf(`{"client_id":"new-client","scopes":["system/*.rs"],"jwks":%s}`, pub)
	post := func(token, body string) *http.Response {
		req, _ := http.NewRequest("POST", e.http.URL+"/admin/clients", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res
	}
	assert.Equal(t, http.StatusUnauthorized, post("", body).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, post("wrong", body).StatusCode)
	assert.Equal(t, http.StatusCreated, post("admin-secret", body).StatusCode)
	for _, bad := range []string{
		`{"client_id":"x","scopes":["system/*.rs"]}`,
		`{"client_id":"bad id","scopes":["system/*.rs"],"jwks_url":"https://x/jwks"}`,
		`{"client_id":"x","scopes":["user/*.rs"],"jwks_url":"https://x/jwks"}`,
		`{"client_id":"x","scopes":[],"jwks_url":"https://x/jwks"}`,
		`not json`,
	} {
		assert.Equal(t, http.StatusBadRequest, post("admin-secret", bad).StatusCode, bad)
	}
	c, err := e.as.Clients().Get(context.Background(), "new-client")
	require.NoError(t, err)
	require.Len(t, c.JWKS.Keys, 1)
	assert.True(t, c.JWKS.Keys[0].IsPublic(), "private key material is never stored")

	list := e.api("GET", "/admin/clients", "admin-secret")
	assert.Equal(t, http.StatusOK, list.status)
	assert.Len(t, list.body.Array(), 5)
	assert.Equal(t, http.StatusNoContent, e.api("DELETE", "/admin/clients/narrow", "admin-secret").status)
	assert.Equal(t, http.StatusNotFound, e.api("GET", "/admin/clients/narrow", "admin-secret").status)
}

func TestDeletedClientsTokensStopWorking(t *testing.T) {
	e := newEnv(t)
	tok := e.accessToken("narrow", "system/Patient.read")
	require.Equal(t, http.StatusOK, e.api("GET", "/fhir/Patient/p1", tok).status)
	require.NoError(t, e.as.Clients().Delete(context.Background(), "narrow"))
	assert.Equal(t, http.StatusUnauthorized, e.api("GET", "/fhir/Patient/p1", tok).status)
}

func TestSweepRemovesOnlyExpired(t *testing.T) {
	e := newEnv(t)
	e.accessToken("payer", "system/*.read")
	n, err := e.as.Sweep(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 0, n, "a fresh token and jti are kept")
}

// TestOrganizationBoundClient: a client bound to an organization sees only
// patients attributed to it (none without a resolver), in search and in
// every export level.
func TestOrganizationBoundClient(t *testing.T) {
	e := newEnv(t)
	clinic := e.accessToken("clinic", "system/*.read")
	r := e.api("GET", "/fhir/Patient", clinic)
	require.Equal(t, http.StatusOK, r.status, r.body.Raw)
	assert.Empty(t, r.body.Get("entry").Array(), "no attributed patients")
	for _, kick := range []string{"/fhir/$export", "/fhir/Patient/$export"} {
		r = e.api("GET", kick, clinic)
		require.Equal(t, http.StatusAccepted, r.status, r.body.Raw)
		status := r.header.Get("Content-Location")
		var m gjson.Result
		require.Eventually(t, func() bool {
			r := e.api("GET", status, clinic)
			m = r.body
			return r.status == http.StatusOK
		}, 10*time.Second, 20*time.Millisecond)
		for _, out := range m.Get("output").Array() {
			assert.NotEqual(t, "Patient", out.Get("type").String(), "%s: no patient data exported", kick)
		}
	}
}

// TestPrincipalFollowsTheClientsBinding: the organization a request is
// scoped to is the client's registration now (rebinding takes effect at
// the next request, not at the next token), and the Visibility resolver
// decides what it sees.
func TestPrincipalFollowsTheClientsBinding(t *testing.T) {
	var asked []string
	e := newEnv(t, func(o *auth.Options) {
		o.Visibility = func(_ context.Context, org string) (access.Visibility, error) {
			asked = append(asked, org)
			return access.Visibility{Patients: access.Set{"p1": true}}, nil
		}
	})
	tok := e.accessToken("clinic", "system/*.read")
	ctx := context.Background()
	p, err := e.as.Principal(ctx, tok)
	require.NoError(t, err)
	assert.True(t, p.Restricted())
	assert.True(t, p.SeesPatient("p1"))
	assert.False(t, p.SeesPatient("p2"))
	assert.False(t, p.SeesGroup("g1"), "no Groups resolved: none")
	c, err := e.as.Clients().Get(ctx, "clinic")
	require.NoError(t, err)
	c.Organization = "http://hl7.org/fhir/sid/us-npi|1111111111"
	require.NoError(t, e.as.Clients().Put(ctx, c))
	p, err = e.as.Principal(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, c.Organization, p.Organization)
	assert.Equal(t, []string{"http://hl7.org/fhir/sid/us-npi|1234567893", c.Organization}, asked)
}
