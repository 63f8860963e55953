package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

func TestCareGapsNotationFlag(t *testing.T) {
	for _, tt := range []struct {
		name   string
		values []string
		want   map[string]string
		bad    bool
	}{
		{"none", nil, map[string]string{}, false},
		{"url and url|version", []string{"https://x/Measure/a=increase", "https://x/Measure/b|1.0=decrease"},
			map[string]string{"https://x/Measure/a": "increase", "https://x/Measure/b|1.0": "decrease"}, false},
		{"unknown direction", []string{"https://x/Measure/a=up"}, nil, true},
		{"no direction", []string{"https://x/Measure/a"}, nil, true},
		{"no url", []string{"=increase"}, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := careGapsOptions{notations: tt.values}.notationMap()
			if tt.bad {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "--care-gaps-notation")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// careGapsToken signs a client assertion for a client
// registered with the JWKS of key and exchanges it for an access token.
func careGapsToken(t *testing.T, root, client, scope string, key *rsa.PrivateKey) string {
	t.Helper()
	tokenURL := root + "/auth/token"
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS384, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", client))
	require.NoError(t, err)
	assertion, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: client, Subject: client, Audience: jwt.Audience{tokenURL},
		Expiry: jwt.NewNumericDate(time.Now().Add(4 * time.Minute)), ID: client + "-jti"}).Serialize()
	require.NoError(t, err)
	res, err := http.PostForm(tokenURL, url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	return gjson.GetBytes(body, "access_token").String()
}

// TestServeCareGapsProviderScoped runs `equitas serve --auth smart` over a
// store holding CMS165, twelve of its test patients attributed to two
// clinics, and checks that a provider client bound to clinic1 gets the
// gap list of its own patients only, while the payer sees both clinics.
func TestServeCareGapsProviderScoped(t *testing.T) {
	ecqm := ecqmDir(t)
	const name = "ControllingHighBloodPressureFHIR"
	data := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()

	// Prepare the store offline: the measure, patients, attribution.
	st, err := badgerstore.Open(ctx, data, badgerstore.Options{})
	require.NoError(t, err)
	require.NoError(t, catalog.LoadDir(ctx, st, ecqm, name))
	cases, err := filepath.Glob(filepath.Join(ecqm, "measures", name, "tests", "*"))
	require.NoError(t, err)
	sort.Strings(cases)
	cases = cases[:12]
	var tx store.Tx
	putJSON := func(typ, id, body string) {
		tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: typ, ID: id, Body: []byte(body)})
	}
	putJSON("Organization", "payer", `{"resourceType":"Organization","id":"payer","name":"Acme Health"}`)
	for k := 1; k <= 2; k++ {
		putJSON("Organization", fmt.Sprintf("clinic%d", k), fmt.Sprintf(`{"resourceType":"Organization","id":"clinic%d","name":"Clinic %d"}`, k, k))
		putJSON("Practitioner", fmt.Sprintf("p%d", k), fmt.Sprintf(`{"resourceType":"Practitioner","id":"p%d","identifier":[{"system":"%s","value":"100000000%d"}]}`, k, attribution.SystemNPI, k))
		putJSON("PractitionerRole", fmt.Sprintf("r%d", k), fmt.Sprintf(`{"resourceType":"PractitionerRole","id":"r%d","active":true,"practitioner":{"reference":"Practitioner/p%d"},"organization":{"reference":"Organization/clinic%d"}}`, k, k, k))
	}
	clinic := map[string]int{}
	for i, dir := range cases {
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		require.NoError(t, err)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			var res map[string]any
			require.NoError(t, json.Unmarshal(raw, &res))
			typ, id := res["resourceType"].(string), res["id"].(string)
			if typ == "MeasureReport" {
				continue
			}
			if typ == "Patient" {
				clinic[id] = i%2 + 1
				res["generalPractitioner"] = []any{map[string]any{"reference": fmt.Sprintf("Practitioner/p%d", i%2+1)}}
				putJSON("Coverage", "cov-"+id, `{"resourceType":"Coverage","id":"cov-`+id+`","status":"active","beneficiary":{"reference":"Patient/`+id+`"},"period":{"start":"2020-01-01"},"payor":[{"reference":"Organization/payer"}]}`)
			} else {
				id = fmt.Sprintf("c%d-%s", i, id)
				res["id"] = id
			}
			b, err := json.Marshal(res)
			require.NoError(t, err)
			s := string(b)
			if typ != "Patient" {
				// References to the case's own resources follow the rename.
				for _, g := range []string{"Encounter", "Condition", "Observation", "Procedure"} {
					s = strings.ReplaceAll(s, `"`+g+`/`, `"`+g+`/`+fmt.Sprintf("c%d-", i))
				}
			}
			putJSON(typ, id, s)
		}
	}
	_, err = st.Commit(ctx, tx)
	require.NoError(t, err)
	_, err = attribution.Run(ctx, st, attribution.RunOptions{Options: attribution.Options{Method: attribution.Prospective, AsOf: time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)},
		ContractStart: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), ContractEnd: time.Now().AddDate(1, 0, 0)})
	require.NoError(t, err)
	require.NoError(t, st.Close())

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	keys := jose.JSONWebKeySet{}
	for _, c := range []string{"payer", "clinic1-portal"} {
		keys.Keys = append(keys.Keys, jose.JSONWebKey{Key: key.Public(), KeyID: c, Algorithm: "RS384"})
	}
	jwks, err := json.Marshal(keys)
	require.NoError(t, err)
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(jwksFile, jwks, 0o600))
	runCmd(t, "add", "--data", data, "--id", "payer", "--scope", "system/*.rs", "--jwks-file", jwksFile)
	runCmd(t, "add", "--data", data, "--id", "clinic1-portal", "--scope", "system/*.rs", "--organization", "clinic1", "--jwks-file", jwksFile)

	root, stop := startServe(t, data, "--auth", "smart", "--bulk-min-poll", "0s")
	defer func() { require.NoError(t, stop()) }()
	payer := careGapsToken(t, root, "payer", "system/*.rs", key)
	portal := careGapsToken(t, root, "clinic1-portal", "system/*.rs", key)

	gapList := func(token, path string) (int, map[string]string) {
		req, err := http.NewRequest("GET", root+"/fhir"+path, nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "text/csv")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		if res.StatusCode != http.StatusOK {
			return res.StatusCode, nil
		}
		rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		require.NoError(t, err)
		out := map[string]string{}
		for _, r := range rows[1:] {
			out[r[0]] = r[3] // patient_id → provider_npi
		}
		return res.StatusCode, out
	}
	q := "periodStart=2025-01-01&periodEnd=2025-12-31&status=open-gap&status=closed-gap&status=not-applicable"
	g1 := attribution.GroupID("payer", attribution.Provider{OrganizationID: "clinic1"})
	g2 := attribution.GroupID("payer", attribution.Provider{OrganizationID: "clinic2"})

	code, rows := gapList("", "/Group/"+g1+"/$care-gaps?"+q)
	assert.Equal(t, http.StatusUnauthorized, code, "no token")
	code, rows = gapList(portal, "/Group/"+g1+"/$care-gaps?"+q)
	require.Equal(t, http.StatusOK, code)
	code2, all := gapList(payer, "/Measure/$care-gaps?"+q+"&organization=Organization/clinic1")
	require.Equal(t, http.StatusOK, code2)
	assert.Equal(t, all, rows, "the portal's list equals the payer's view of clinic1")
	require.Len(t, rows, 6)
	for p, npi := range rows {
		assert.Equal(t, 1, clinic[p], "patient %s belongs to clinic1", p)
		assert.Equal(t, "1000000001", npi)
	}
	code, _ = gapList(portal, "/Group/"+g2+"/$care-gaps?"+q)
	assert.Equal(t, http.StatusNotFound, code, "another organization's list")
	code, rows = gapList(portal, "/Measure/$care-gaps?"+q+"&organization=Organization/clinic2")
	require.Equal(t, http.StatusOK, code)
	assert.Empty(t, rows, "another organization's patients are invisible")
	code, rows = gapList(payer, "/Group/"+g2+"/$care-gaps?"+q)
	require.Equal(t, http.StatusOK, code)
	assert.Len(t, rows, 6, "the payer sees clinic2's list")
}
