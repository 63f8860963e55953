package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

func TestServeRefusesAuthNoneOffLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		cmd := newServeCmd()
		cmd.SetArgs([]string{"--addr", addr, "--data", t.TempDir(), "--auth", "none", "--log-level", "error"})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.ExecuteContext(context.Background())
		require.Error(t, err, addr)
		assert.Contains(t, err.Error(), "loopback", addr)
	}
	cmd := newServeCmd()
	cmd.SetArgs([]string{"--data", t.TempDir(), "--auth", "basic"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	assert.ErrorContains(t, cmd.ExecuteContext(context.Background()), "--auth")
}

func runCmd(t *testing.T, args ...string) string {
	t.Helper()
	root := &strings.Builder{}
	cmd := newClientCmd()
	cmd.SetArgs(args)
	cmd.SetOut(root)
	cmd.SetErr(io.Discard)
	require.NoError(t, cmd.ExecuteContext(context.Background()))
	return root.String()
}

// TestServeSmartExport registers a client with `equitas client add`,
// starts `equitas serve --auth smart` and runs a whole export with an
// access token got through the token endpoint.
func TestServeSmartExport(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS384"}}})
	require.NoError(t, err)
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(jwksFile, jwks, 0o600))
	out := runCmd(t, "add", "--data", data, "--id", "payer", "--scope", "system/*.rs system/Patient.cud", "--jwks-file", jwksFile)
	assert.Contains(t, out, "registered client payer")
	assert.Contains(t, runCmd(t, "list", "--data", data), "payer")

	root, stop := startServe(t, data, "--auth", "smart", "--bulk-min-poll", "0s", "--admin-token", "adm")
	defer func() { require.NoError(t, stop()) }()

	disc := getJSON(t, root+"/.well-known/smart-configuration", "")
	tokenURL := disc.Get("token_endpoint").String()
	assert.Equal(t, root+"/auth/token", tokenURL)
	assert.Equal(t, tokenURL, getJSON(t, root+"/fhir/.well-known/smart-configuration", "").Get("token_endpoint").String())

	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS384, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(t, err)
	assertion, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "payer", Subject: "payer", Audience: jwt.Audience{tokenURL},
		Expiry: jwt.NewNumericDate(time.Now().Add(4 * time.Minute)), ID: "one"}).Serialize()
	require.NoError(t, err)
	res, err := http.PostForm(tokenURL, url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs system/Patient.cud"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	token := gjson.GetBytes(body, "access_token").String()

	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/fhir/Patient/p%d", root, i), strings.NewReader(fmt.Sprintf(`{"resourceType":"Patient","id":"p%d"}`, i)))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusCreated, res.StatusCode)
	}
	assert.Equal(t, http.StatusUnauthorized, status(t, "GET", root+"/fhir/Patient/p0", ""))

	req, _ := http.NewRequest("GET", root+"/fhir/Patient/$export", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Prefer", "respond-async")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	loc := res.Header.Get("Content-Location")
	var m gjson.Result
	require.Eventually(t, func() bool {
		m = getJSON(t, loc, token)
		return m.Get("transactionTime").Exists()
	}, 20*time.Second, 50*time.Millisecond)
	require.True(t, m.Get("requiresAccessToken").Bool())
	file := m.Get(`output.#(type=="Patient").url`).String()
	assert.Equal(t, http.StatusUnauthorized, status(t, "GET", file, ""))
	req, _ = http.NewRequest("GET", file, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/fhir+ndjson")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	n := 0
	for sc := bufio.NewScanner(res.Body); sc.Scan(); n++ {
	}
	assert.Equal(t, 3, n)
	assert.Equal(t, http.StatusUnauthorized, status(t, "GET", root+"/admin/clients", ""))
	assert.Equal(t, http.StatusOK, status(t, "GET", root+"/admin/clients", "adm"))

	// The same client commands against the running server's admin API.
	runCmd(t, "add", "--server", root, "--admin-token", "adm", "--id", "second", "--scope", "system/Patient.rs", "--jwks-url", "https://second.example/jwks.json")
	assert.Contains(t, runCmd(t, "list", "--server", root, "--admin-token", "adm"), "second\tsystem/Patient.rs\thttps://second.example/jwks.json")
	runCmd(t, "remove", "second", "--server", root, "--admin-token", "adm")
	assert.NotContains(t, runCmd(t, "list", "--server", root, "--admin-token", "adm"), "second")
}

func status(t *testing.T, method, u, token string) int {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

func getJSON(t *testing.T, u, token string) gjson.Result {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return gjson.ParseBytes(b)
}

// TestLoopback: --auth none is allowed only where loopback says yes, so
// every address that reaches other machines must say no.
func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true,
		"127.0.0.2:8080": true,
		"[::1]:8080":     true,
		"localhost:8080": true,
		":8080":          false,
		"0.0.0.0:8080":   false,
		"[::]:8080":      false,
		"192.0.2.1:8080": false,
		"example.org:80": false,
		"127.0.0.1":      false, // no port: not a listen address
	} {
		assert.Equal(t, want, loopback(addr), addr)
	}
}
