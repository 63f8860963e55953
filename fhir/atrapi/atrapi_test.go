package atrapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/atrapi"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

const (
	list1   = "atr-payer-clinic1"
	npiP1   = "1000000001"
	npiP2   = "1000000002"
	mbPrefx = "M-"
)

// env is the real server (rest + the ATR operations) on a real badger store,
// served on 127.0.0.1:0.
type env struct {
	t    testing.TB
	st   store.Store
	base string
	jobs *attribution.Jobs
	srv  *rest.Server
}

// clients maps bearer tokens to principals: "payer" may do anything,
// "clinic2" is bound to the other clinic's TIN.
var clients = map[string]access.Principal{
	"payer":   {ClientID: "payer-client", Scopes: []string{"system/*.*"}},
	"clinic2": {ClientID: "clinic2-client", Scopes: []string{"system/*.*"}, Organization: attribution.SystemTIN + "|222222222"},
	"reader":  {ClientID: "reader-client", Scopes: []string{"system/*.read"}},
}

// restricted are provider clients scoped the way fhir/access scopes them
// on the server: clinic one sees its list and members, clinic two nothing
// of clinic one's.
var restricted = map[string]access.Visibility{
	"clinic1r": {Patients: access.Set{"pt1": true, "pt2": true}, Groups: access.Set{list1: true}},
	"clinic2r": {Patients: access.Set{}, Groups: access.Set{"atr-payer-clinic2": true}},
}

func init() {
	clients["clinic1r"] = access.Principal{ClientID: "clinic1-client", Scopes: []string{"system/*.*"}, Organization: attribution.SystemTIN + "|111111111"}
	clients["clinic2r"] = access.Principal{ClientID: "clinic2r-client", Scopes: []string{"system/*.*"}, Organization: attribution.SystemTIN + "|222222222"}
}

func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, ok := clients[tok]
		if !ok {
			p = clients["payer"]
		}
		if v, ok := restricted[tok]; ok {
			p.Restrict(v)
		}
		next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), &p)))
	})
}

// newEnv seeds a two-clinic network and patients pt1..pt4 (member ids
// M-pt1..M-pt4, covered by the payer); pt1 and pt2 pick p1 (clinic one)
// as PCP, and a prospective run makes list1 with the given status.
func newEnv(t testing.TB, status string) *env {
	t.Helper()
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	srv, err := rest.New(rest.Config{Store: st, Authenticate: authenticate})
	require.NoError(t, err)
	srv.Render("Group", func(ctx context.Context, res *store.Resource, w io.Writer, summary bool) error {
		return attribution.RenderGroup(ctx, st.KV(), res, w, summary)
	})
	lists := attribution.NewLists(st)
	jobs, err := attribution.NewJobs(ctx, lists, nil)
	require.NoError(t, err)
	t.Cleanup(jobs.Close)
	atrapi.New(atrapi.Config{Store: st, Lists: lists, Jobs: jobs, Base: srv.Base}).Mount(srv)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	e := &env{t: t, st: st, base: hs.URL + "/fhir", jobs: jobs, srv: srv}

	bodies := []string{
		`{"resourceType":"Organization","id":"payer","name":"Acme Health"}`,
		`{"resourceType":"Organization","id":"clinic1","name":"Clinic One","identifier":[{"system":"` + attribution.SystemNPI + `","value":"1111111111"},{"system":"` + attribution.SystemTIN + `","value":"111111111"}]}`,
		`{"resourceType":"Organization","id":"clinic2","name":"Clinic Two","identifier":[{"system":"` + attribution.SystemNPI + `","value":"2222222222"},{"system":"` + attribution.SystemTIN + `","value":"222222222"}]}`,
	}
	for i, org := range []string{"clinic1", "clinic2"} {
		bodies = append(bodies,
			fmt.Sprintf(`{"resourceType":"Practitioner","id":"p%d","identifier":[{"system":"%s","value":"100000000%d"}]}`, i+1, attribution.SystemNPI, i+1),
			fmt.Sprintf(`{"resourceType":"PractitionerRole","id":"r%d","active":true,"practitioner":{"reference":"Practitioner/p%d"},"organization":{"reference":"Organization/%s"}}`, i+1, i+1, org))
	}
	for i := 1; i <= 4; i++ {
		id := fmt.Sprintf("pt%d", i)
		gp := ""
		if i <= 2 {
			gp = `,"generalPractitioner":[{"reference":"Practitioner/p1"}]`
		}
		bodies = append(bodies,
			`{"resourceType":"Patient","id":"`+id+`","name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1960-04-02"`+gp+`}`,
			`{"resourceType":"Coverage","id":"cov-`+id+`","status":"active","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MB"}]},"system":"http://payer.example.org/member","value":"`+mbPrefx+id+`"}],"beneficiary":{"reference":"Patient/`+id+`"},"period":{"start":"2020-01-01"},"payor":[{"reference":"Organization/payer"}]}`)
	}
	var tx store.Tx
	for _, b := range bodies {
		r := gjson.Parse(b)
		tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: r.Get("resourceType").String(), ID: r.Get("id").String(), Body: []byte(b)})
	}
	_, err = st.Commit(ctx, tx)
	require.NoError(t, err)
	_, err = lists.Run(ctx, attribution.RunOptions{Options: attribution.Options{Method: attribution.Prospective, AsOf: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		Status: status, ContractStart: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), ContractEnd: time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	return e
}

type resp struct {
	status int
	header http.Header
	body   []byte
	json   gjson.Result
}

func (e *env) do(method, path, token, body string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	require.NoError(e.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return resp{res.StatusCode, res.Header, b, gjson.ParseBytes(b)}
}

// Parameters builders.
func params(parts ...string) string {
	return `{"resourceType":"Parameters","parameter":[` + strings.Join(parts, ",") + `]}`
}
func memberID(v string) string {
	return `{"name":"memberId","valueIdentifier":{"system":"http://payer.example.org/member","value":"` + v + `"}}`
}
func providerNPI(v string) string {
	return `{"name":"providerNpi","valueIdentifier":{"system":"` + attribution.SystemNPI + `","value":"` + v + `"}}`
}
func ref(name, v string) string {
	return `{"name":"` + name + `","valueReference":{"reference":"` + v + `"}}`
}
func period(start, end string) string {
	return `{"name":"attributionPeriod","valuePeriod":{"start":"` + start + `","end":"` + end + `"}}`
}

// members reads a Group and returns member state by patient reference:
// changeType[/inactive]@providerNPI[:start..end].
func (e *env) members(path string) (gjson.Result, map[string]string) {
	e.t.Helper()
	r := e.do(http.MethodGet, path, "", "")
	require.Equal(e.t, http.StatusOK, r.status, string(r.body))
	out := map[string]string{}
	for _, m := range r.json.Get("member").Array() {
		s := m.Get(`extension.#(url=="` + attribution.ExtChangeType + `").valueCode`).String()
		if m.Get("inactive").Bool() {
			s += "/inactive"
		}
		s += "@" + m.Get(`extension.#(url=="`+attribution.ExtAttributedProvider+`").valueReference.identifier.value`).String()
		if p := m.Get("period"); p.Exists() {
			s += ":" + p.Get("start").String() + ".." + p.Get("end").String()
		}
		out[m.Get("entity.reference").String()] = s
	}
	return r.json, out
}

func listStatus(g gjson.Result) string {
	return g.Get(`extension.#(url=="` + attribution.ExtAttributionListStatus + `").valueCode`).String()
}

func TestMemberAdd(t *testing.T) {
	today := time.Now().UTC().Format(time.DateOnly)
	tests := []struct {
		name       string
		status     string
		body       string
		wantStatus int
		wantMember string // state of Patient/pt3 afterwards ("" = absent)
	}{
		{"memberId+providerNpi", attribution.StatusOpen, params(memberID("M-pt3"), providerNPI(npiP2)), 200, "new@" + npiP2 + ":" + today + ".."},
		{"memberId+providerNpi+attributionPeriod", attribution.StatusDraft, params(memberID("M-pt3"), providerNPI(npiP2), period("2026-02-01", "2026-12-31")), 200, "new@" + npiP2 + ":2026-02-01..2026-12-31"},
		{"patientReference+providerReference", attribution.StatusOpen, params(ref("patientReference", "Patient/pt3"), ref("providerReference", "Practitioner/p1")), 200, "new@" + npiP1 + ":" + today + ".."},
		{"patientReference+providerReference+attributionPeriod", attribution.StatusOpen, params(ref("patientReference", "Patient/pt3"), ref("providerReference", "PractitionerRole/r2"), period("2026-03-01", "")), 200, "new@" + npiP2 + ":2026-03-01.."},
		{"providerId is accepted for providerNpi", attribution.StatusOpen, params(memberID("M-pt3"), `{"name":"providerId","valueIdentifier":{"value":"`+npiP1+`"}}`), 200, "new@" + npiP1 + ":" + today + ".."},
		{"final list rejects", attribution.StatusFinal, params(memberID("M-pt3"), providerNPI(npiP2)), 422, ""},
		{"no provider", attribution.StatusOpen, params(memberID("M-pt3")), 400, ""},
		{"no member", attribution.StatusOpen, params(providerNPI(npiP2)), 400, ""},
		{"unknown member id", attribution.StatusOpen, params(memberID("M-nobody"), providerNPI(npiP2)), 422, ""},
		{"unknown patient", attribution.StatusOpen, params(ref("patientReference", "Patient/nobody"), providerNPI(npiP2)), 422, ""},
		{"unknown NPI", attribution.StatusOpen, params(memberID("M-pt3"), providerNPI("9999999999")), 422, ""},
		{"bad period", attribution.StatusOpen, params(memberID("M-pt3"), providerNPI(npiP2), period("2026-05-01", "2026-01-01")), 400, ""},
		{"not a Parameters", attribution.StatusOpen, `{"resourceType":"Patient"}`, 400, ""},
		{"not JSON", attribution.StatusOpen, `{"resourceType":`, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.status)
			r := e.do(http.MethodPost, "/Group/"+list1+"/$member-add", "payer", tc.body)
			require.Equal(t, tc.wantStatus, r.status, string(r.body))
			if tc.wantStatus >= 400 {
				assert.Equal(t, "OperationOutcome", r.json.Get("resourceType").String())
				assert.Equal(t, "error", r.json.Get("issue.0.severity").String())
			} else {
				assert.Contains(t, r.header.Get("Location"), "/Group/"+list1+"/_history/2")
			}
			g, members := e.members("/Group/" + list1)
			assert.Equal(t, tc.wantMember, members["Patient/pt3"])
			assert.Len(t, members, 2+len(tc.wantMember[:min(len(tc.wantMember), 1)]))
			assert.Equal(t, tc.status, listStatus(g))
		})
	}
}

func TestMemberRemove(t *testing.T) {
	p1 := "@" + npiP1 + ":2026-01-01.."
	tests := []struct {
		name       string
		status     string
		body       string
		wantStatus int
		wantPt1    string // state of Patient/pt1 afterwards
	}{
		{"open: memberId removes", attribution.StatusOpen, params(memberID("M-pt1")), 200, ""},
		{"open: memberId+providerNpi", attribution.StatusOpen, params(memberID("M-pt1"), providerNPI(npiP1)), 200, ""},
		{"open: patientReference", attribution.StatusOpen, params(ref("patientReference", "Patient/pt1")), 200, ""},
		{"open: patientReference+providerReference", attribution.StatusOpen, params(ref("patientReference", "Patient/pt1"), ref("providerReference", "Practitioner/p1")), 200, ""},
		{"open: patientReference+providerReference+coverageReference", attribution.StatusOpen, params(ref("patientReference", "Patient/pt1"), ref("providerReference", "Practitioner/p1"), ref("coverageReference", "Coverage/cov-pt1")), 200, ""},
		{"draft: memberId marks inactive", attribution.StatusDraft, params(memberID("M-pt1")), 200, "dropped/inactive@" + npiP1 + ":2026-01-01.." + time.Now().UTC().Format(time.DateOnly)},
		{"draft: patientReference+providerReference+coverageReference marks inactive", attribution.StatusDraft, params(ref("patientReference", "Patient/pt1"), ref("providerReference", "Practitioner/p1"), ref("coverageReference", "Coverage/cov-pt1")), 200, "dropped/inactive@" + npiP1 + ":2026-01-01.." + time.Now().UTC().Format(time.DateOnly)},
		{"final: rejected", attribution.StatusFinal, params(memberID("M-pt1")), 422, "new" + p1},
		{"another provider: not found", attribution.StatusOpen, params(memberID("M-pt1"), providerNPI(npiP2)), 404, "new" + p1},
		{"another coverage: not found", attribution.StatusOpen, params(ref("patientReference", "Patient/pt1"), ref("providerReference", "Practitioner/p1"), ref("coverageReference", "Coverage/cov-pt2")), 404, "new" + p1},
		{"not a member: not found", attribution.StatusOpen, params(memberID("M-pt3")), 404, "new" + p1},
		{"unknown member: not found", attribution.StatusOpen, params(memberID("M-nobody")), 404, "new" + p1},
		{"no member parameter", attribution.StatusOpen, params(providerNPI(npiP1)), 400, "new" + p1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.status)
			r := e.do(http.MethodPost, "/Group/"+list1+"/$member-remove", "payer", tc.body)
			require.Equal(t, tc.wantStatus, r.status, string(r.body))
			_, members := e.members("/Group/" + list1)
			assert.Equal(t, tc.wantPt1, members["Patient/pt1"])
			assert.Equal(t, "new"+p1, members["Patient/pt2"], "the other member is untouched")
		})
	}
}

func TestAttributionStatus(t *testing.T) {
	e := newEnv(t, attribution.StatusOpen)
	for _, body := range []string{params(memberID("M-pt1")), params(ref("patientReference", "Patient/pt1"))} {
		r := e.do(http.MethodPost, "/Group/"+list1+"/$attribution-status", "reader", body)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		assert.Equal(t, "Bundle", r.json.Get("resourceType").String())
		var types []string
		for _, en := range r.json.Get("entry").Array() {
			types = append(types, en.Get("resource.resourceType").String())
			assert.True(t, strings.HasPrefix(en.Get("fullUrl").String(), e.base+"/"))
		}
		assert.Equal(t, []string{"Group", "Patient", "Coverage", "Practitioner"}, types)
		g := r.json.Get("entry.0.resource")
		assert.Len(t, g.Get("member").Array(), 1)
		assert.Equal(t, "Patient/pt1", g.Get("member.0.entity.reference").String())
		assert.Equal(t, "SUBSETTED", g.Get("meta.tag.0.code").String())
	}
	for _, body := range []string{params(memberID("M-pt3")), params(ref("patientReference", "Patient/nobody"))} {
		r := e.do(http.MethodPost, "/Group/"+list1+"/$attribution-status", "reader", body)
		assert.Equal(t, http.StatusNotFound, r.status, string(r.body))
		assert.Equal(t, "OperationOutcome", r.json.Get("resourceType").String())
	}
	r := e.do(http.MethodPost, "/Group/"+list1+"/$member-add", "reader", params(memberID("M-pt3"), providerNPI(npiP1)))
	assert.Equal(t, http.StatusForbidden, r.status, "a read-only client cannot change lists")
}

func TestConfirmAndListStatusRules(t *testing.T) {
	e := newEnv(t, attribution.StatusDraft)
	r := e.do(http.MethodPost, "/Group/"+list1+"/$member-remove", "payer", params(memberID("M-pt1")))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = e.do(http.MethodPost, "/Group/"+list1+"/$confirm-attribution-list", "payer", "")
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	g, members := e.members("/Group/" + list1)
	assert.Equal(t, attribution.StatusFinal, listStatus(g))
	assert.Equal(t, map[string]string{"Patient/pt2": "new@" + npiP1 + ":2026-01-01.."}, members, "inactive members are dropped when final")
	for _, op := range []string{"$member-add", "$member-remove", "$confirm-attribution-list"} {
		r := e.do(http.MethodPost, "/Group/"+list1+"/"+op, "payer", params(memberID("M-pt2"), providerNPI(npiP1)))
		assert.Equal(t, http.StatusUnprocessableEntity, r.status, op)
		assert.Equal(t, "business-rule", r.json.Get("issue.0.code").String(), op)
	}
	meta := e.do(http.MethodGet, "/metadata", "", "")
	assert.Contains(t, meta.json.Get("instantiates").String(), atrapi.ProducerCapabilityStatement)
	for _, op := range []string{"member-add", "member-remove", "attribution-status", "confirm-attribution-list", "attribute"} {
		assert.True(t, meta.json.Get(`rest.0.resource.#(type=="Group").operation.#(name=="`+op+`")`).Exists(), op)
	}
	r = e.do(http.MethodGet, "/Group/"+list1+"/$confirm-attribution-list", "payer", "")
	assert.Equal(t, http.StatusMethodNotAllowed, r.status)
	r = e.do(http.MethodPost, "/Group/nolist/$confirm-attribution-list", "payer", "")
	assert.Equal(t, http.StatusNotFound, r.status)
}

func TestVersionHistoryRendersOldMembership(t *testing.T) {
	e := newEnv(t, attribution.StatusOpen)
	steps := []string{
		params(memberID("M-pt3"), providerNPI(npiP1), period("2026-02-01", "")),
		params(ref("patientReference", "Patient/pt4"), ref("providerReference", "Practitioner/p2"), period("2026-02-01", "")),
	}
	for _, b := range steps {
		r := e.do(http.MethodPost, "/Group/"+list1+"/$member-add", "payer", b)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
	}
	r := e.do(http.MethodPost, "/Group/"+list1+"/$member-remove", "payer", params(memberID("M-pt1")))
	require.Equal(t, http.StatusOK, r.status, string(r.body))

	want := []map[string]string{
		1: {"Patient/pt1": "new@" + npiP1 + ":2026-01-01..", "Patient/pt2": "new@" + npiP1 + ":2026-01-01.."},
		2: {"Patient/pt1": "new@" + npiP1 + ":2026-01-01..", "Patient/pt2": "new@" + npiP1 + ":2026-01-01..", "Patient/pt3": "new@" + npiP1 + ":2026-02-01.."},
		3: {"Patient/pt1": "new@" + npiP1 + ":2026-01-01..", "Patient/pt2": "new@" + npiP1 + ":2026-01-01..", "Patient/pt3": "new@" + npiP1 + ":2026-02-01..", "Patient/pt4": "new@" + npiP2 + ":2026-02-01.."},
		4: {"Patient/pt2": "new@" + npiP1 + ":2026-01-01..", "Patient/pt3": "new@" + npiP1 + ":2026-02-01..", "Patient/pt4": "new@" + npiP2 + ":2026-02-01.."},
	}
	v, err := validate.New()
	require.NoError(t, err)
	for ver := 1; ver <= 4; ver++ {
		g, members := e.members(fmt.Sprintf("/Group/%s/_history/%d", list1, ver))
		assert.Equal(t, want[ver], members, "version %d", ver)
		assert.EqualValues(t, len(want[ver]), g.Get("quantity").Int(), "version %d", ver)
		_, _, err := v.Resource([]byte(g.Raw))
		assert.NoError(t, err, "version %d is valid R4", ver)
	}
	_, cur := e.members("/Group/" + list1)
	assert.Equal(t, want[4], cur)

	h := e.do(http.MethodGet, "/Group/"+list1+"/_history", "", "")
	require.Equal(t, http.StatusOK, h.status)
	entries := h.json.Get("entry").Array()
	require.Len(t, entries, 4)
	assert.Len(t, entries[3].Get("resource.member").Array(), 2, "history renders each version's own members")

	s := e.do(http.MethodGet, "/Group/"+list1+"?_summary=true", "", "")
	require.Equal(t, http.StatusOK, s.status)
	assert.False(t, s.json.Get("member").Exists(), "_summary=true omits members")
	assert.EqualValues(t, 3, s.json.Get("quantity").Int())

	stored, err := e.st.Read(context.Background(), "Group", list1)
	require.NoError(t, err)
	assert.False(t, gjson.GetBytes(stored.Body, "member").Exists(), "the stored Group carries no member array")

	// Every change is a Provenance on its Group version, found by target.
	p := e.do(http.MethodGet, "/Provenance?target=Group/"+list1+"&_count=50", "", "")
	require.Equal(t, http.StatusOK, p.status, string(p.body))
	var ops []string
	for _, en := range p.json.Get("entry").Array() {
		pr := en.Get("resource")
		ops = append(ops, pr.Get("activity.text").String())
		_, _, err := v.Resource([]byte(pr.Raw))
		assert.NoError(t, err, "Provenance is valid R4")
		if pr.Get("activity.text").String() != "attribute" {
			assert.Equal(t, "payer-client", pr.Get("agent.0.who.identifier.value").String())
			assert.NotEmpty(t, pr.Get("recorded").String())
		}
	}
	assert.ElementsMatch(t, []string{"attribute", "member-add", "member-add", "member-remove"}, ops)
	p = e.do(http.MethodGet, "/Provenance?target=Patient/pt4", "", "")
	assert.EqualValues(t, 1, len(p.json.Get("entry").Array()))
}

func TestGroupSearch(t *testing.T) {
	e := newEnv(t, attribution.StatusOpen)
	// A provider-made list (ATR scenario 2) with a coded characteristic.
	made := `{"resourceType":"Group","id":"made","meta":{"profile":["` + attribution.ProfileATRGroup + `"]},
"extension":[{"url":"` + attribution.ExtAttributionListStatus + `","valueCode":"draft"}],
"identifier":[{"system":"` + attribution.SystemNPI + `","value":"2222222222"},{"system":"` + attribution.SystemTIN + `","value":"222222222"},{"system":"http://example.org/contracts","value":"C-77"}],
"active":true,"type":"person","actual":true,"name":"Clinic Two self-made list",
"characteristic":[{"code":{"coding":[{"system":"` + attribution.CharacteristicSystem + `","code":"attributed-to"}]},"valueCodeableConcept":{"coding":[{"system":"http://example.org/programs","code":"aco-reach"}]},"exclude":false}],
"managingEntity":{"reference":"Organization/payer"}}`
	r := e.do(http.MethodPut, "/Group/made", "payer", made)
	require.Contains(t, []int{200, 201}, r.status, string(r.body))

	tests := []struct {
		query string
		want  []string
	}{
		{"identifier=" + attribution.SystemNPI + "|1111111111", []string{list1}},
		{"identifier=" + attribution.SystemTIN + "|111111111", []string{list1}},
		{"identifier=" + attribution.DefaultContractSystem + "|" + list1, []string{list1}},
		{"identifier=http://example.org/contracts|C-77", []string{"made"}},
		{"identifier=" + attribution.SystemNPI + "|2222222222", []string{"made"}},
		{"characteristic=" + attribution.CharacteristicSystem + "|organization", []string{list1}},
		{"characteristic=attributed-to", []string{"made"}},
		{"characteristic-value=attributed-to$http://example.org/programs|aco-reach", []string{"made"}},
		{"characteristic-value=attributed-to$other", nil},
		{"name=Clinic%20Two", []string{"made"}},
		{"name=acme", []string{list1}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := e.do(http.MethodGet, "/Group?"+tc.query+"&_summary=true", "", "")
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			var ids []string
			for _, en := range r.json.Get("entry").Array() {
				ids = append(ids, en.Get("resource.id").String())
				assert.False(t, en.Get("resource.member").Exists())
			}
			assert.Equal(t, tc.want, ids)
		})
	}

	// Scenario 2 goes on: the provider adds members to its own list.
	r = e.do(http.MethodPost, "/Group/made/$member-add", "clinic2", params(memberID("M-pt3"), providerNPI(npiP2)))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	g, members := e.members("/Group/made")
	assert.Equal(t, map[string]string{"Patient/pt3": "new@" + npiP2 + ":" + time.Now().UTC().Format(time.DateOnly) + ".."}, members)
	assert.Equal(t, "Clinic Two self-made list", g.Get("name").String(), "the client's Group is kept")
	assert.Equal(t, "aco-reach", g.Get("characteristic.0.valueCodeableConcept.coding.0.code").String())
	// ... but not to another organization's.
	r = e.do(http.MethodPost, "/Group/"+list1+"/$member-add", "clinic2", params(memberID("M-pt3"), providerNPI(npiP2)))
	assert.Equal(t, http.StatusNotFound, r.status, string(r.body))
	r = e.do(http.MethodPost, "/Group/"+list1+"/$attribution-status", "clinic2", params(memberID("M-pt1")))
	assert.Equal(t, http.StatusNotFound, r.status, string(r.body))
}

func TestAttribute(t *testing.T) {
	e := newEnv(t, attribution.StatusOpen)
	// pt3 picks a PCP at clinic two; the run puts it in that clinic's list.
	ctx := context.Background()
	_, err := e.st.Commit(ctx, store.Tx{Writes: []store.Write{{Op: store.OpPut, Type: "Patient", ID: "pt3",
		Body: []byte(`{"resourceType":"Patient","id":"pt3","generalPractitioner":[{"reference":"Practitioner/p2"}]}`)}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		body string
		want int
	}{
		{params(`{"name":"method","valueCode":"sideways"}`), 400},
		{params(`{"name":"asOf","valueDate":"2026-13-45"}`), 400},
		{params(`{"name":"status","valueCode":"closed"}`), 400},
		{params(`{"name":"period","valuePeriod":{"start":"2026-12-01","end":"2026-01-01"}}`), 400},
	} {
		r := e.do(http.MethodPost, "/Group/$attribute", "payer", tc.body)
		assert.Equal(t, tc.want, r.status, tc.body)
	}
	r := e.do(http.MethodPost, "/Group/$attribute", "clinic2", params())
	assert.Equal(t, http.StatusForbidden, r.status, "providers do not compute lists")

	r = e.do(http.MethodPost, "/Group/$attribute", "payer", params(
		`{"name":"method","valueCode":"prospective"}`, `{"name":"asOf","valueDate":"2026-02-01"}`,
		`{"name":"period","valuePeriod":{"start":"2026-01-01","end":"2026-12-31"}}`, `{"name":"status","valueCode":"draft"}`))
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	loc := r.header.Get("Content-Location")
	require.True(t, strings.HasPrefix(loc, e.base+"/attribution-jobs/"), loc)
	var done resp
	for range 200 {
		done = e.do(http.MethodGet, strings.TrimPrefix(loc, e.base), "payer", "")
		if done.status != http.StatusAccepted {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, http.StatusOK, done.status, string(done.body))
	assert.Equal(t, "Parameters", done.json.Get("resourceType").String())
	assert.EqualValues(t, 4, done.json.Get(`parameter.#(name=="patients").valueInteger`).Int())
	assert.EqualValues(t, 3, done.json.Get(`parameter.#(name=="attributed").valueInteger`).Int())
	g, members := e.members("/Group/" + list1)
	assert.Equal(t, attribution.StatusDraft, listStatus(g))
	assert.Equal(t, "2026-12-31", g.Get(`extension.#(url=="`+attribution.ExtContractValidity+`").valuePeriod.end`).String())
	assert.Equal(t, map[string]string{"Patient/pt1": "nochange@" + npiP1 + ":2026-01-01..", "Patient/pt2": "nochange@" + npiP1 + ":2026-01-01.."}, members)
	_, members = e.members("/Group/atr-payer-clinic2")
	assert.Equal(t, map[string]string{"Patient/pt3": "new@" + npiP2 + ":2026-02-01.."}, members)

	d := e.do(http.MethodDelete, strings.TrimPrefix(loc, e.base), "payer", "")
	assert.Equal(t, http.StatusAccepted, d.status)
	d = e.do(http.MethodGet, strings.TrimPrefix(loc, e.base), "payer", "")
	assert.Equal(t, http.StatusNotFound, d.status)
}

func TestProviderScopedOperations(t *testing.T) {
	e := newEnv(t, attribution.StatusDraft)
	path := "/Group/" + list1 + "/"
	tests := []struct {
		name, token, op, body string
		want                  int
	}{
		{"own list: status of an own member", "clinic1r", "$attribution-status", params(memberID("M-pt1")), 200},
		{"own list: cannot claim a patient not attributed to it", "clinic1r", "$member-add", params(memberID("M-pt3"), providerNPI(npiP1)), 422},
		{"own list: re-attribute an own member", "clinic1r", "$member-add", params(ref("patientReference", "Patient/pt2"), ref("providerReference", "Practitioner/p1"), period("2026-02-01", "")), 200},
		{"own list: remove an own member", "clinic1r", "$member-remove", params(memberID("M-pt1")), 200},
		{"other list: status is not found", "clinic2r", "$attribution-status", params(memberID("M-pt1")), 404},
		{"other list: add is not found", "clinic2r", "$member-add", params(memberID("M-pt4"), providerNPI(npiP2)), 404},
		{"other list: remove is not found", "clinic2r", "$member-remove", params(memberID("M-pt2")), 404},
		{"other list: confirm is not found", "clinic2r", "$confirm-attribution-list", "", 404},
		{"own list: confirm", "clinic1r", "$confirm-attribution-list", "", 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(http.MethodPost, path+tc.op, tc.token, tc.body)
			assert.Equal(t, tc.want, r.status, string(r.body))
			if tc.want == 404 {
				assert.NotContains(t, string(r.body), "Patient/", "no member is revealed")
			}
		})
	}
	r := e.do(http.MethodPost, "/Group/$attribute", "clinic1r", params())
	assert.Equal(t, http.StatusForbidden, r.status)
	_, members := e.members("/Group/" + list1)
	assert.Equal(t, map[string]string{"Patient/pt2": "changed@" + npiP1 + ":2026-02-01.."}, members)
}

// FuzzOperations posts arbitrary bodies to the list operations: every
// answer is a FHIR response, never a 500.
func FuzzOperations(f *testing.F) {
	for _, seed := range []string{
		params(memberID("M-pt3"), providerNPI(npiP2), period("2026-02-01", "2026-12-31")),
		params(ref("patientReference", "Patient/pt1"), ref("providerReference", "Practitioner/p1"), ref("coverageReference", "Coverage/cov-pt1")),
		params(`{"name":"memberId","valueString":"M-pt1"}`),
		params(`{"name":"attributionPeriod","valuePeriod":{"start":"2026-02-01T10:00:00Z"}}`),
		`{"resourceType":"Parameters","parameter":{"name":"memberId"}}`,
		`[]`, `null`, ``,
	} {
		for op := range 4 {
			f.Add(uint8(op), seed)
		}
	}
	e := newEnv(f, attribution.StatusDraft)
	ops := []string{"$member-add", "$member-remove", "$attribution-status", "$confirm-attribution-list"}
	f.Fuzz(func(t *testing.T, op uint8, body string) {
		req := httptest.NewRequest(http.MethodPost, "/fhir/Group/"+list1+"/"+ops[int(op)%len(ops)], strings.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d for %q: %s", rec.Code, body, rec.Body.String())
		}
		if !gjson.Valid(rec.Body.String()) {
			t.Fatalf("not JSON: %q", rec.Body.String())
		}
	})
}
