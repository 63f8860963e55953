package main

import (
	"bufio"
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

	"github.com/equitas/equitas/store/searchparam"
)

// tenant is one client of the cross-tenant matrix with what it owns.
type tenant struct {
	id, org  string
	token    string
	patients map[string]bool // members of its active lists
	groups   map[string]bool // its lists
}

// tenantWorld is a real `equitas serve --auth smart` over a synthetic
// population attributed by `equitas attribution run`, with two provider
// clients bound to two clinics and a payer client.
type tenantWorld struct {
	root           string
	a, b, payer    *tenant
	allGroups      []string
	memberOfGroups map[string]map[string]bool // group -> members
}

func newTenantWorld(t *testing.T) *tenantWorld {
	t.Helper()
	dir := t.TempDir()
	pop, data := filepath.Join(dir, "pop"), filepath.Join(dir, "data")
	code, _, errOut := runCLI(t, "synth", "--patients", "150", "--seed", "11", "--out", pop)
	require.Equal(t, 0, code, errOut)
	code, _, errOut = runCLI(t, "import", "--data", data, pop)
	require.Equal(t, 0, code, errOut)
	today := time.Now().UTC().Format(time.DateOnly)
	lists := filepath.Join(dir, "lists.csv")
	code, _, errOut = runCLI(t, "attribution", "run", "--data", data, "--method", "prospective", "--as-of", today, "--csv", lists)
	require.Equal(t, 0, code, errOut)

	w := &tenantWorld{memberOfGroups: map[string]map[string]bool{}}
	w.a = &tenant{id: "clinic-a", org: "s11-org-clinic-000", patients: map[string]bool{}, groups: map[string]bool{}}
	w.b = &tenant{id: "clinic-b", org: "s11-org-clinic-001", patients: map[string]bool{}, groups: map[string]bool{}}
	w.payer = &tenant{id: "payer"}
	for i, row := range readCSV(t, lists) {
		if i == 0 {
			continue
		}
		group, patient := row[0], row[2]
		if w.memberOfGroups[group] == nil {
			w.memberOfGroups[group] = map[string]bool{}
			w.allGroups = append(w.allGroups, group)
		}
		w.memberOfGroups[group][patient] = true
		for _, tn := range []*tenant{w.a, w.b} {
			if strings.HasSuffix(group, "-"+tn.org) {
				tn.patients[patient], tn.groups[group] = true, true
			}
		}
	}
	require.NotEmpty(t, w.a.patients, "clinic A has members")
	require.NotEmpty(t, w.b.patients, "clinic B has members")
	require.NotEmpty(t, w.b.only(w.a), "clinic B has members clinic A does not have")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS384"}}})
	require.NoError(t, err)
	jwksFile := filepath.Join(dir, "jwks.json")
	require.NoError(t, os.WriteFile(jwksFile, jwks, 0o600))
	for _, tn := range []*tenant{w.a, w.b, w.payer} {
		args := []string{"add", "--data", data, "--id", tn.id, "--scope", "system/*.read system/Group.cud", "--jwks-file", jwksFile}
		if tn.org != "" {
			args = append(args, "--organization", tn.org)
		}
		runCmd(t, args...)
	}
	root, stop := startServe(t, data, "--auth", "smart", "--bulk-min-poll", "0s")
	t.Cleanup(func() { require.NoError(t, stop()) })
	w.root = root
	for _, tn := range []*tenant{w.a, w.b, w.payer} {
		tn.token = smartToken(t, root+"/auth/token", tn.id, key, "system/*.read system/Group.cud")
	}
	return w
}

// only returns the members of tn that other does not have.
func (tn *tenant) only(other *tenant) []string {
	var out []string
	for p := range tn.patients {
		if !other.patients[p] {
			out = append(out, p)
		}
	}
	return out
}

// smartToken gets an access token through the SMART Backend Services
// token endpoint with an RS384 client assertion.
func smartToken(t *testing.T, tokenURL, clientID string, key *rsa.PrivateKey, scope string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS384, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(t, err)
	assertion, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{tokenURL},
		Expiry: jwt.NewNumericDate(time.Now().Add(4 * time.Minute)), ID: clientID + "-" + fmt.Sprint(time.Now().UnixNano())}).Serialize()
	require.NoError(t, err)
	res, err := http.PostForm(tokenURL, url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	return gjson.GetBytes(body, "access_token").String()
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (w *tenantWorld) call(t *testing.T, tn *tenant, method, path, body string, hdr ...string) reply {
	t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = w.root + "/fhir/" + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tn.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return reply{status: res.StatusCode, header: res.Header, body: b}
}

// resources lists every resource in a response: the resource itself, or
// a Bundle's entries (searchset, history, collection), recursively.
func resources(b []byte) []gjson.Result {
	r := gjson.ParseBytes(b)
	if r.Get("resourceType").String() != "Bundle" {
		if r.Get("resourceType").Exists() {
			return []gjson.Result{r}
		}
		return nil
	}
	var out []gjson.Result
	for _, e := range r.Get("entry").Array() {
		if res := e.Get("resource"); res.Exists() {
			out = append(out, resources([]byte(res.Raw))...)
		}
	}
	return out
}

// foreign reports why res belongs to the other tenant's members and not
// to tn's ("" when it does not): a Patient of the other's members, the
// other's list, or a resource in the compartments of the other's members
// and of none of tn's.
func (w *tenantWorld) foreign(tn, other *tenant, res gjson.Result) string {
	typ, id := res.Get("resourceType").String(), res.Get("id").String()
	switch typ {
	case "Patient":
		if other.patients[id] && !tn.patients[id] {
			return "Patient/" + id + " is the other clinic's member"
		}
		return ""
	case "Group":
		if !tn.groups[id] {
			return "Group/" + id + " is not the caller's list"
		}
		for _, m := range res.Get("member").Array() {
			pid := strings.TrimPrefix(m.Get("entity.reference").String(), "Patient/")
			if !tn.patients[pid] && other.patients[pid] {
				return "Group/" + id + " lists the other clinic's member " + pid
			}
		}
		return ""
	case "OperationOutcome":
		return ""
	}
	def, ok := searchparam.PatientCompartmentDef(typ)
	if !ok {
		return ""
	}
	var theirs []string
	for _, v := range searchparam.Extract(def, []byte(res.Raw)) {
		pid := strings.TrimPrefix(v.Str, "Patient/")
		if tn.patients[pid] {
			return ""
		}
		if other.patients[pid] {
			theirs = append(theirs, pid)
		}
	}
	if len(theirs) > 0 {
		return typ + "/" + id + " is in the compartment of the other clinic's member " + theirs[0]
	}
	return ""
}

// exportResources kicks off an export, polls it to completion and
// downloads every file of the manifest (output, deleted and error).
func (w *tenantWorld) exportResources(t *testing.T, tn *tenant, method, path, body string) (int, []gjson.Result) {
	t.Helper()
	kick := w.call(t, tn, method, path, body, "Prefer", "respond-async", "Accept", "application/fhir+json")
	if kick.status != http.StatusAccepted {
		return kick.status, resources(kick.body)
	}
	loc := kick.header.Get("Content-Location")
	var manifest reply
	require.Eventually(t, func() bool {
		manifest = w.call(t, tn, "GET", loc, "")
		return manifest.status != http.StatusAccepted
	}, 60*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusOK, manifest.status, string(manifest.body))
	m := gjson.ParseBytes(manifest.body)
	assert.True(t, m.Get("requiresAccessToken").Bool())
	var out []gjson.Result
	for _, kind := range []string{"output", "deleted", "error"} {
		for _, f := range m.Get(kind).Array() {
			r := w.call(t, tn, "GET", f.Get("url").String(), "", "Accept", "application/fhir+ndjson")
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			sc := bufio.NewScanner(strings.NewReader(string(r.body)))
			sc.Buffer(nil, 64<<20)
			for sc.Scan() {
				out = append(out, resources(sc.Bytes())...)
			}
		}
	}
	return http.StatusOK, out
}

// TestCrossTenantMatrix: two provider clients bound to two clinics and a
// payer client call every endpoint; a provider gets zero resources of the
// other clinic's members (read, vread, search with _include, _revinclude,
// chained parameters and _summary=count, history at the three levels,
// every export flavour through file download, $davinci-data-export and
// the attribution operations), while the payer gets them (so the matrix
// is not vacuous).
func TestCrossTenantMatrix(t *testing.T) {
	w := newTenantWorld(t)
	theirs := func(tn, other *tenant) string { return other.only(tn)[0] }
	ownGroup := func(tn *tenant) string {
		for g := range tn.groups {
			return g
		}
		return ""
	}
	// An Encounter and a Coverage of one of B's members, found as payer.
	bOnly := w.b.only(w.a)[0]
	enc := gjson.ParseBytes(w.call(t, w.payer, "GET", "Encounter?patient=Patient/"+bOnly, "").body).Get("entry.0.resource.id").String()
	cov := gjson.ParseBytes(w.call(t, w.payer, "GET", "Coverage?beneficiary=Patient/"+bOnly, "").body).Get("entry.0.resource.id").String()
	require.NotEmpty(t, cov, "B's member has a Coverage")

	type request struct {
		name         string
		method, path string
		body         string
		export       bool
		want         int // expected status, when the endpoint has one answer
	}
	requests := func(tn, other *tenant) []request {
		p := theirs(tn, other)
		g := ownGroup(other)
		cov := gjson.ParseBytes(w.call(t, w.payer, "GET", "Coverage?beneficiary=Patient/"+p, "").body).Get("entry.0.resource.id").String()
		require.NotEmpty(t, cov, "the other clinic's member has a Coverage")
		reqs := []request{
			{name: "read other's Patient", method: "GET", path: "Patient/" + p, want: 404},
			{name: "vread other's Patient", method: "GET", path: "Patient/" + p + "/_history/1", want: 404},
			{name: "read other's Coverage", method: "GET", path: "Coverage/" + cov, want: 404},
			{name: "read other's Group", method: "GET", path: "Group/" + g, want: 404},
			{name: "vread other's Group", method: "GET", path: "Group/" + g + "/_history/1", want: 404},
			{name: "search Patient", method: "GET", path: "Patient?_count=500"},
			{name: "search Patient by other's id", method: "GET", path: "Patient?_id=" + p},
			{name: "search Coverage", method: "GET", path: "Coverage?_count=500"},
			{name: "search Encounter of other's member", method: "GET", path: "Encounter?patient=Patient/" + p},
			{name: "search Encounter _include patient", method: "GET", path: "Encounter?_count=500&_include=Encounter:patient"},
			{name: "search Coverage _include beneficiary", method: "GET", path: "Coverage?_count=500&_include=Coverage:beneficiary&_include=Coverage:payor"},
			{name: "search Patient _revinclude", method: "GET", path: "Patient?_count=500&_revinclude=Encounter:patient&_revinclude=Coverage:beneficiary&_revinclude=Provenance:target"},
			{name: "search Organization _revinclude iterate", method: "GET", path: "Organization?_revinclude=Coverage:payor&_include:iterate=Coverage:beneficiary"},
			{name: "search chained", method: "GET", path: "Encounter?patient.family=Smith"},
			{name: "search Group", method: "GET", path: "Group?_count=500"},
			{name: "search Group _summary=true", method: "GET", path: "Group?_summary=true"},
			{name: "search Provenance", method: "GET", path: "Provenance?_count=500"},
			{name: "search POST _search", method: "POST", path: "Patient/_search?_count=500"},
			{name: "history of other's Patient", method: "GET", path: "Patient/" + p + "/_history", want: 404},
			{name: "history of other's Group", method: "GET", path: "Group/" + g + "/_history", want: 404},
			{name: "type history Patient", method: "GET", path: "Patient/_history?_count=1000"},
			{name: "type history Group", method: "GET", path: "Group/_history?_count=1000"},
			{name: "system history", method: "GET", path: "_history?_count=1000"},
			{name: "batch read", method: "POST", path: "", body: `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/` + p + `"}},{"request":{"method":"GET","url":"Coverage?_count=500"}}]}`},
			{name: "$everything of other's Patient", method: "GET", path: "Patient/" + p + "/$everything"},
			{name: "system export", method: "GET", path: "$export", export: true},
			{name: "Patient export", method: "GET", path: "Patient/$export", export: true},
			{name: "Patient export naming other's member", method: "POST", path: "Patient/$export", export: true,
				body: `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/` + p + `"}}]}`},
			{name: "Group export of other's list", method: "GET", path: "Group/" + g + "/$export", export: true, want: 404},
			{name: "davinci-data-export of other's list", method: "GET", path: "Group/" + g + "/$davinci-data-export?exportType=hl7.fhir.us.davinci-atr", export: true, want: 404},
			{name: "$attribution-status of other's list", method: "POST", path: "Group/" + g + "/$attribution-status",
				body: `{"resourceType":"Parameters","parameter":[{"name":"patientReference","valueReference":{"reference":"Patient/` + p + `"}}]}`},
			{name: "$attribution-status of other's member on own list", method: "POST", path: "Group/" + ownGroup(tn) + "/$attribution-status",
				body: `{"resourceType":"Parameters","parameter":[{"name":"patientReference","valueReference":{"reference":"Patient/` + p + `"}}]}`},
			{name: "$import refused", method: "POST", path: "$import", want: 403,
				body: `{"resourceType":"Parameters","parameter":[{"name":"exportUrl","valueUrl":"http://127.0.0.1:1/fhir/$export"}]}`},
			{name: "$bulk-submit refused", method: "POST", path: "$bulk-submit", want: 403,
				body: `{"resourceType":"Parameters","parameter":[{"name":"submitter","valueIdentifier":{"value":"x"}},{"name":"submissionId","valueString":"s1"},{"name":"manifestUrl","valueString":"http://127.0.0.1:1/m.json"}]}`},
			{name: "update of other's Group refused", method: "PUT", path: "Group/" + g, want: 403,
				body: `{"resourceType":"Group","id":"` + g + `","type":"person","actual":true}`},
			{name: "create a list naming the other clinic", method: "POST", path: "Group", want: 403,
				body: `{"resourceType":"Group","type":"person","actual":true,"characteristic":[{"code":{"text":"organization"},"valueReference":{"reference":"Organization/` + other.org + `"},"exclude":false}]}`},
			{name: "create own list holding the other's member", method: "POST", path: "Group", want: 403,
				body: `{"resourceType":"Group","type":"person","actual":true,"characteristic":[{"code":{"text":"organization"},"valueReference":{"reference":"Organization/` + tn.org + `"},"exclude":false}],"member":[{"entity":{"reference":"Patient/` + p + `"}}]}`},
			{name: "$member-add of the other's member to own list", method: "POST", path: "Group/" + ownGroup(tn) + "/$member-add",
				body: `{"resourceType":"Parameters","parameter":[{"name":"patientReference","valueReference":{"reference":"Patient/` + p + `"}},{"name":"providerReference","valueReference":{"reference":"Organization/` + tn.org + `"}}]}`},
			{name: "read other's Patient after $member-add", method: "GET", path: "Patient/" + p, want: 404},
			{name: "$member-remove on other's list", method: "POST", path: "Group/" + g + "/$member-remove",
				body: `{"resourceType":"Parameters","parameter":[{"name":"patientReference","valueReference":{"reference":"Patient/` + p + `"}}]}`},
		}
		for og := range tn.groups {
			reqs = append(reqs,
				request{name: "Group export of own list " + og, method: "GET", path: "Group/" + og + "/$export", export: true},
				request{name: "davinci-data-export of own list " + og, method: "GET", export: true,
					path: "Group/" + og + "/$davinci-data-export?exportType=hl7.fhir.us.davinci-atr&_type=Group,Patient,Coverage,Practitioner,PractitionerRole,Organization,Location"})
		}
		return reqs
	}
	for _, pair := range []struct{ tn, other *tenant }{{w.a, w.b}, {w.b, w.a}} {
		for _, rq := range requests(pair.tn, pair.other) {
			t.Run(pair.tn.id+"/"+rq.name, func(t *testing.T) {
				var status int
				var got []gjson.Result
				if rq.export {
					status, got = w.exportResources(t, pair.tn, rq.method, rq.path, rq.body)
				} else {
					r := w.call(t, pair.tn, rq.method, rq.path, rq.body)
					status, got = r.status, resources(r.body)
				}
				t.Logf("status %d, %d resources", status, len(got))
				assert.Less(t, status, 500, "no server error")
				if rq.want != 0 {
					assert.Equal(t, rq.want, status)
				}
				for _, res := range got {
					if why := w.foreign(pair.tn, pair.other, res); why != "" {
						t.Errorf("%s leaked: %s", rq.name, why)
					}
				}
			})
		}
	}

	// What a provider does see: its members and its lists, whole.
	t.Run("provider sees its own", func(t *testing.T) {
		for _, tn := range []*tenant{w.a, w.b} {
			var ids []string
			for _, res := range resources(w.call(t, tn, "GET", "Patient?_count=500", "").body) {
				ids = append(ids, res.Get("id").String())
			}
			assert.ElementsMatch(t, keys(tn.patients), ids, tn.id)
			count := gjson.ParseBytes(w.call(t, tn, "GET", "Patient?_summary=count", "").body).Get("total").Int()
			assert.EqualValues(t, len(tn.patients), count, "%s: _summary=count counts only its members", tn.id)
			for g := range tn.groups {
				r := w.call(t, tn, "GET", "Group/"+g, "")
				require.Equal(t, http.StatusOK, r.status, string(r.body))
				var members []string
				for _, m := range gjson.GetBytes(r.body, "member").Array() {
					members = append(members, strings.TrimPrefix(m.Get("entity.reference").String(), "Patient/"))
				}
				assert.ElementsMatch(t, keys(w.memberOfGroups[g]), members, "Group/%s rendered with its members", g)
				assert.False(t, gjson.GetBytes(w.call(t, tn, "GET", "Group?_id="+g+"&_summary=true", "").body, "entry.0.resource.member").Exists(),
					"_summary=true leaves members out")
			}
		}
	})
	t.Run("davinci-data-export parameters", func(t *testing.T) {
		g := ownGroup(w.a)
		op := "Group/" + g + "/$davinci-data-export"
		for _, tc := range []struct{ name, query string }{
			{"no exportType", "?_type=Group,Patient,Coverage"},
			{"other exportType", "?exportType=hl7.fhir.us.davinci-pdex%23payertopayer"},
			{"minimum types missing", "?exportType=hl7.fhir.us.davinci-atr&_type=Group,Patient"},
			{"alias missing the minimum", "?exportType=hl7.fhir.us.davinci-atr&resourceTypes=Patient,Coverage"},
		} {
			r := w.call(t, w.payer, "GET", op+tc.query, "", "Prefer", "respond-async")
			assert.Equal(t, http.StatusBadRequest, r.status, "%s: %s", tc.name, r.body)
			assert.Equal(t, "OperationOutcome", gjson.GetBytes(r.body, "resourceType").String(), tc.name)
		}
		var member string
		for p := range w.memberOfGroups[g] {
			member = p
			break
		}
		body := `{"resourceType":"Parameters","parameter":[
			{"name":"exportType","valueCanonical":"hl7.fhir.us.davinci-atr"},
			{"name":"resourceTypes","valueString":"Group,Patient,Coverage"},
			{"name":"patient","valueReference":{"reference":"Patient/` + member + `"}},
			{"name":"patient","valueReference":{"reference":"Patient/` + bOnly + `"}},
			{"name":"patient","valueReference":{"reference":"Organization/x"}}]}`
		status, got := w.exportResources(t, w.a, "POST", op, body)
		require.Equal(t, http.StatusOK, status)
		var patients []string
		outcomes, groups := 0, 0
		for _, res := range got {
			switch res.Get("resourceType").String() {
			case "Patient":
				patients = append(patients, res.Get("id").String())
			case "OperationOutcome":
				outcomes++
			case "Group":
				groups++
				assert.Len(t, res.Get("member").Array(), len(w.memberOfGroups[g]), "the Group is exported whole")
			}
		}
		assert.Equal(t, []string{member}, patients, "only the named member")
		assert.Equal(t, 1, groups)
		assert.GreaterOrEqual(t, outcomes, 2, "a non-member and an invalid reference are each reported")

		status, got = w.exportResources(t, w.a, "GET", op+"?exportType=hl7.fhir.us.davinci-atr&_since="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), "")
		require.Equal(t, http.StatusOK, status)
		types := map[string]int{}
		for _, res := range got {
			types[res.Get("resourceType").String()]++
		}
		assert.Equal(t, 1, types["Group"], "the list is exported whatever _since")
		assert.Zero(t, types["Patient"], "_since leaves out unchanged members")

		cs := gjson.ParseBytes(w.call(t, w.payer, "GET", "metadata", "").body)
		assert.Equal(t, w.root+"/auth/token", cs.Get(`rest.0.security.extension.#(url=="http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris").extension.#(url=="token").valueUri`).String())
		assert.Equal(t, "SMART-on-FHIR", cs.Get("rest.0.security.service.0.coding.0.code").String())
		assert.Equal(t, "http://hl7.org/fhir/us/davinci-atr/OperationDefinition/davinci-data-export",
			cs.Get(`rest.0.resource.#(type=="Group").operation.#(name=="davinci-data-export").definition`).String())
	})
	t.Run("invisible and unknown patients answer alike", func(t *testing.T) {
		diag := func(ref string) string {
			status, got := w.exportResources(t, w.a, "POST", "Patient/$export",
				`{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"`+ref+`"}}]}`)
			require.Equal(t, http.StatusOK, status)
			for _, res := range got {
				if res.Get("resourceType").String() == "OperationOutcome" {
					return strings.ReplaceAll(res.Get("issue.0.diagnostics").String(), ref, "REF")
				}
			}
			return ""
		}
		unknown := diag("Patient/no-such-patient")
		assert.NotEmpty(t, unknown)
		assert.Equal(t, unknown, diag("Patient/"+bOnly))
	})
	// Last: it changes the lists.
	defer t.Run("deleting a list ends the access it granted", func(t *testing.T) {
		var g, m string
		for cand := range w.a.groups {
			for p := range w.memberOfGroups[cand] {
				only := true
				for other := range w.a.groups {
					only = only && (other == cand || !w.memberOfGroups[other][p])
				}
				if only {
					g, m = cand, p
				}
			}
		}
		require.NotEmpty(t, m, "clinic A has a member on one list only")
		require.Equal(t, http.StatusOK, w.call(t, w.a, "GET", "Patient/"+m, "").status)
		require.Equal(t, http.StatusNoContent, w.call(t, w.payer, "DELETE", "Group/"+g, "").status)
		assert.Equal(t, http.StatusNotFound, w.call(t, w.a, "GET", "Patient/"+m, "").status, "the member is no longer attributed")
		assert.Equal(t, http.StatusNotFound, w.call(t, w.a, "GET", "Group/"+g, "").status)
		assert.Equal(t, http.StatusGone, w.call(t, w.payer, "GET", "Group/"+g, "").status)
	})
	t.Run("payer sees everyone", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, w.call(t, w.payer, "GET", "Patient/"+bOnly, "").status)
		assert.Equal(t, http.StatusOK, w.call(t, w.payer, "GET", "Coverage/"+cov, "").status)
		if enc != "" {
			assert.Equal(t, http.StatusOK, w.call(t, w.payer, "GET", "Encounter/"+enc, "").status)
		}
		leaks := 0
		for _, res := range resources(w.call(t, w.payer, "GET", "Patient?_count=500&_revinclude=Coverage:beneficiary", "").body) {
			if w.foreign(w.a, w.b, res) != "" {
				leaks++
			}
		}
		assert.Positive(t, leaks, "the payer's view holds B's members (the matrix's check is not vacuous)")
		status, got := w.exportResources(t, w.payer, "GET", "Group/"+ownGroup(w.b)+"/$davinci-data-export?exportType=hl7.fhir.us.davinci-atr", "")
		require.Equal(t, http.StatusOK, status)
		types := map[string]int{}
		for _, res := range got {
			types[res.Get("resourceType").String()]++
		}
		for _, typ := range []string{"Group", "Patient", "Coverage", "Organization", "Practitioner", "PractitionerRole"} {
			assert.Positive(t, types[typ], "$davinci-data-export writes %s", typ)
		}
	})
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
