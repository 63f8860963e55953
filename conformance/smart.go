package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// RunSMART checks SMART App Launch 2.x Backend Services (discovery, the
// private_key_jwt client-credentials token endpoint, bearer enforcement and
// scopes) on a server started with authorization on. root is the server's
// root URL; adminToken the bearer of the Equitas client admin API
// (POST /admin/clients), used once to register the suite's client.
func RunSMART(t *testing.T, root, adminToken string) {
	root = strings.TrimRight(root, "/")
	rc := newClient(root)
	fc := newClient(root + "/fhir")

	var disco gjson.Result
	for _, path := range []string{".well-known/smart-configuration", "fhir/.well-known/smart-configuration"} {
		t.Run("discovery at /"+path, func(t *testing.T) {
			// The document is JSON whatever the client accepts.
			r := rc.do(t, http.MethodGet, path, nil, header{"Accept", "application/fhir+json"})
			require.Equal(t, http.StatusOK, r.Status, "%s", r)
			assert.Contains(t, r.Header.Get("Content-Type"), "json")
			d := gjson.ParseBytes(r.Body)
			assert.Regexp(t, absoluteURL, d.Get("token_endpoint").String(), "token_endpoint")
			assert.Contains(t, strs(d.Get("grant_types_supported")), "client_credentials")
			assert.Contains(t, strs(d.Get("token_endpoint_auth_methods_supported")), "private_key_jwt")
			algs := strs(d.Get("token_endpoint_auth_signing_alg_values_supported"))
			assert.True(t, slices.Contains(algs, "RS384") || slices.Contains(algs, "ES384"), "signing algs %v", algs)
			assert.Contains(t, strs(d.Get("capabilities")), "client-confidential-asymmetric")
			assert.NotContains(t, strs(d.Get("code_challenge_methods_supported")), "plain")
			disco = d
		})
	}
	tokenURL := disco.Get("token_endpoint").String()
	require.NotEmpty(t, tokenURL, "no token_endpoint discovered")

	t.Run("FHIR API without a token is 401, metadata stays public", func(t *testing.T) {
		r := fc.do(t, http.MethodGet, "Patient?_count=1", nil)
		requireOutcome(t, r, http.StatusUnauthorized)
		assert.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer")
		requireOutcome(t, fc.do(t, http.MethodGet, "Patient?_count=1", nil, header{"Authorization", "Bearer not-a-token"}), http.StatusUnauthorized)
		m := fc.do(t, http.MethodGet, "metadata", nil)
		assert.Equal(t, http.StatusOK, m.Status, "%s", m)
	})

	// The suite's client: an ES384 key, allowed to read and create Patients.
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	run := newRunID()
	clientID, kid := "conformance-"+string(run), "k-"+string(run)
	pub := jose.JSONWebKey{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.ES384), Use: "sig"}
	reg := map[string]any{"client_id": clientID, "name": "conformance suite", "scopes": []string{"system/Patient.rs", "system/Patient.c"}, "jwks": map[string]any{"keys": []any{pub}}}
	r := rc.do(t, http.MethodPost, "admin/clients", reg, header{"Authorization", "Bearer " + adminToken}, header{"Content-Type", "application/json"})
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, r.Status, "client registration: %s", r)

	claims := func() jwt.Claims {
		now := time.Now()
		return jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{tokenURL}, ID: string(newRunID()), Expiry: jwt.NewNumericDate(now.Add(4 * time.Minute)), IssuedAt: jwt.NewNumericDate(now)}
	}
	sign := func(t *testing.T, c jwt.Claims, k any, kid string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: k}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
		require.NoError(t, err)
		s, err := jwt.Signed(signer).Claims(c).Serialize()
		require.NoError(t, err)
		return s
	}
	token := func(t *testing.T, assertion, scope string) *response {
		form := url.Values{
			"grant_type":            {"client_credentials"},
			"scope":                 {scope},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {assertion},
		}
		return rc.do(t, http.MethodPost, tokenURL, []byte(form.Encode()), header{"Content-Type", "application/x-www-form-urlencoded"}, header{"Accept", "application/json"})
	}

	good := sign(t, claims(), key, kid)
	var access string
	t.Run("token endpoint issues a bearer token for a valid assertion", func(t *testing.T) {
		r := token(t, good, "system/Patient.rs system/Patient.c")
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		access = r.get("access_token").String()
		assert.NotEmpty(t, access)
		assert.True(t, strings.EqualFold(r.get("token_type").String(), "bearer"), "token_type %q", r.get("token_type").String())
		assert.LessOrEqual(t, r.get("expires_in").Int(), int64(300), "access tokens live at most 5 minutes")
		assert.Positive(t, r.get("expires_in").Int())
		assert.Contains(t, r.get("scope").String(), "system/Patient.rs")
	})
	require.NotEmpty(t, access, "no access token")
	bearer := header{"Authorization", "Bearer " + access}

	t.Run("granted scope allows, missing scope forbids", func(t *testing.T) {
		ok := fc.do(t, http.MethodGet, "Patient?_count=1", nil, bearer)
		assert.Equal(t, http.StatusOK, ok.Status, "Patient search with system/Patient.rs: %s", ok)
		created := fc.do(t, http.MethodPost, "Patient", patient(run.family("Smart")), bearer)
		assert.Equal(t, http.StatusCreated, created.Status, "Patient create with system/Patient.c: %s", created)
		requireOutcome(t, fc.do(t, http.MethodGet, "Observation?_count=1", nil, bearer), http.StatusForbidden)
		requireOutcome(t, fc.do(t, http.MethodPost, "Observation", minimalResource("Observation", "x"), bearer), http.StatusForbidden)
		requireOutcome(t, fc.do(t, http.MethodDelete, "Patient/"+created.get("id").String(), nil, bearer), http.StatusForbidden)
	})

	t.Run("bulk export under auth needs the token for status and files", func(t *testing.T) {
		k := fc.do(t, http.MethodGet, "$export?_type=Patient", nil, append(bulkAsync(), bearer)...)
		if k.Status == http.StatusNotFound {
			t.Skip("server does not serve $export")
		}
		require.Equal(t, http.StatusAccepted, k.Status, "%s", k)
		status := k.Header.Get("Content-Location")
		requireOutcome(t, fc.do(t, http.MethodGet, status, nil, header{"Accept", "application/json"}), http.StatusUnauthorized)
		m := pollJob(t, fc, "export", status, 30*time.Second, bearer)
		assert.True(t, m.get("requiresAccessToken").Bool(), "requiresAccessToken must be true under SMART auth")
		require.NotEmpty(t, m.get("output").Array(), "the Patient created above is not exported: %s", m)
		for _, o := range m.get("output").Array() {
			u := o.Get("url").String()
			f := fc.do(t, http.MethodGet, u, nil)
			assert.Equal(t, http.StatusUnauthorized, f.Status, "file without token: %s", f)
			f = fc.do(t, http.MethodGet, u, nil, bearer)
			assert.Equal(t, http.StatusOK, f.Status, "file with token: %s", f)
		}
	})

	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	expired := claims()
	expired.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	wrongAud := claims()
	wrongAud.Audience = jwt.Audience{"https://elsewhere.example/token"}
	tooLong := claims()
	tooLong.Expiry = jwt.NewNumericDate(time.Now().Add(time.Hour))
	stranger := claims()
	stranger.Issuer, stranger.Subject = "no-such-client-"+string(run), "no-such-client-"+string(run)
	bad := []struct {
		name, assertion string
	}{
		{"replayed jti", good},
		{"alg none", unsignedJWT(t, claims())},
		{"signed with another key", sign(t, claims(), other, kid)},
		{"expired", sign(t, expired, key, kid)},
		{"wrong audience", sign(t, wrongAud, key, kid)},
		{"expiry more than 5 minutes ahead", sign(t, tooLong, key, kid)},
		{"unknown client", sign(t, stranger, key, kid)},
		{"not a JWT", "not.a.jwt"},
	}
	for _, tc := range bad {
		t.Run("token endpoint refuses: "+tc.name, func(t *testing.T) {
			r := token(t, tc.assertion, "system/Patient.rs")
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusUnauthorized}, r.Status, "%s", r)
			assert.NotEmpty(t, r.get("error").String(), "OAuth error field: %s", r)
			assert.Empty(t, r.get("access_token").String(), "token issued: %s", r)
		})
	}

	t.Run("scope beyond the registration is refused or narrowed", func(t *testing.T) {
		r := token(t, sign(t, claims(), key, kid), "system/Observation.rs")
		if r.Status == http.StatusOK {
			assert.NotContains(t, r.get("scope").String(), "Observation", "granted an unregistered scope: %s", r)
			return
		}
		assert.Equal(t, http.StatusBadRequest, r.Status, "%s", r)
		assert.Equal(t, "invalid_scope", r.get("error").String(), "%s", r)
	})
}

// unsignedJWT builds an alg=none token, which a server must never accept.
func unsignedJWT(t *testing.T, c jwt.Claims) string {
	head, err := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	require.NoError(t, err)
	body, err := json.Marshal(c)
	require.NoError(t, err)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(head) + "." + enc.EncodeToString(body) + "."
}

// strs returns a JSON array of strings.
func strs(r gjson.Result) []string {
	var out []string
	for _, v := range r.Array() {
		out = append(out, v.String())
	}
	return out
}
