package adtapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/adtapi"
	"github.com/equitas/equitas/fhir/message"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// server runs the FHIR server with both operations on 127.0.0.1:0; who
// is the principal every request carries (nil: anonymous, all scopes).
func server(t *testing.T, who *access.Principal, cfg adtapi.Config) (string, store.Store) {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), t.TempDir(), badgerstore.Options{})
	require.NoError(t, err)
	rc := rest.Config{Store: st}
	if who != nil {
		rc.Authenticate = func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), who)))
			})
		}
	}
	srv, err := rest.New(rc)
	require.NoError(t, err)
	v, err := validate.New()
	require.NoError(t, err)
	cfg.HL7 = adt.New(st, adt.Options{})
	cfg.Messages = message.New(st, v, message.Options{})
	adtapi.Mount(srv, cfg)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		_ = st.Close()
	})
	return hs.URL + rest.BasePath, st
}

func post(t *testing.T, url, ctype string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

// adtMessage is an HL7 v2.5.1 ADT message with one patient and visit.
func adtMessage(trigger, control, mrn, visit string) []byte {
	structure := map[string]string{"A02": "ADT_A02", "A03": "ADT_A03"}[trigger]
	if structure == "" {
		structure = "ADT_A01"
	}
	return []byte(strings.Join([]string{
		fmt.Sprintf("MSH|^~\\&|HIEAPP|HIEFAC|EQUITAS|EQUITAS|20260301080000||ADT^%s^%s|%s|P|2.5.1", trigger, structure, control),
		"EVN|" + trigger + "|20260301080000",
		"PID|1||" + mrn + "^^^HOSP^MR||Doe^Jane^Q||19800101|F|||1 Main St^^Springfield^MA^01101",
		"PV1|1|I|W1^101^A^HOSP||||1234567893^Smith^John^^^^^^NPI||||||||||||" + visit + "|||||||||||||||||||||||||20260301075500",
	}, "\r") + "\r")
}

// msa returns MSA-1 and MSA-2 of an ACK.
func msa(ack []byte) (code, control string) {
	for _, seg := range strings.FieldsFunc(string(ack), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if f := strings.Split(seg, "|"); f[0] == "MSA" && len(f) > 2 {
			return f[1], f[2]
		}
	}
	return "", ""
}

func TestHL7v2(t *testing.T) {
	base, st := server(t, nil, adtapi.Config{MaxER7Bytes: 4096})
	for _, tc := range []struct {
		name    string
		ctype   string
		body    []byte
		status  int
		ack     string // MSA-1 ("" when the answer is an OperationOutcome)
		control string
	}{
		{"admit", adtapi.ER7ContentType, adtMessage("A01", "HTTP-1", "MRN-H1", "V-H1"), 200, "AA", "HTTP-1"},
		{"application/hl7-v2 with charset", "application/hl7-v2; charset=utf-8", adtMessage("A04", "HTTP-2", "MRN-H2", "V-H2"), 200, "AA", "HTTP-2"},
		{"content error is AE with 200", adtapi.ER7ContentType, bytes.Replace(adtMessage("A01", "HTTP-3", "MRN-H3", "V-H3"), []byte("|F|"), []byte("|Q|"), 1), 200, "AE", "HTTP-3"},
		{"unsupported type is AR with 200", adtapi.ER7ContentType, bytes.Replace(adtMessage("A01", "HTTP-4", "MRN-H4", "V-H4"), []byte("ADT^A01^ADT_A01"), []byte("ORU^R01^ORU_R01"), 1), 200, "AR", "HTTP-4"},
		{"byte order mark and blank lines are tolerated", adtapi.ER7ContentType, append([]byte("\xef\xbb\xbf\r\n"), adtMessage("A01", "HTTP-7", "MRN-H7", "V-H7")...), 200, "AA", "HTTP-7"},
		{"not HL7 at all is 400 with AE", adtapi.ER7ContentType, []byte("hello"), 400, "AE", ""},
		{"FHIR JSON is 415", "application/fhir+json", []byte(`{}`), 415, "", ""},
		{"no Content-Type is 415", "", adtMessage("A01", "HTTP-5", "MRN-H5", "V-H5"), 415, "", ""},
		{"empty body is 400", adtapi.ER7ContentType, []byte("\r\n"), 400, "", ""},
		{"oversize is 413", adtapi.ER7ContentType, append(adtMessage("A01", "HTTP-6", "MRN-H6", "V-H6"), bytes.Repeat([]byte("NTE|1||x\r"), 500)...), 413, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := st.Counts(context.Background())
			require.NoError(t, err)
			status, h, body := post(t, base+"/$hl7v2", tc.ctype, tc.body)
			assert.Equal(t, tc.status, status, string(body))
			if tc.ack == "" {
				assert.Equal(t, "OperationOutcome", gjson.GetBytes(body, "resourceType").String())
				return
			}
			assert.True(t, strings.HasPrefix(h.Get("Content-Type"), adtapi.ER7ContentType))
			code, control := msa(body)
			assert.Equal(t, tc.ack, code, string(body))
			assert.Equal(t, tc.control, control)
			after, err := st.Counts(context.Background())
			require.NoError(t, err)
			if code != "AA" {
				assert.Equal(t, before, after, "a refused message writes nothing")
			} else {
				assert.Equal(t, before["Patient"]+1, after["Patient"])
			}
		})
	}
}

// TestHL7v2AcceptsER7: an HL7-over-HTTP client asking for ER7 gets it.
func TestHL7v2AcceptsER7(t *testing.T) {
	base, _ := server(t, nil, adtapi.Config{})
	req, err := http.NewRequest(http.MethodPost, base+"/$hl7v2", bytes.NewReader(adtMessage("A01", "ACC-1", "MRN-ACC", "V-ACC")))
	require.NoError(t, err)
	req.Header.Set("Content-Type", adtapi.ER7ContentType)
	req.Header.Set("Accept", adtapi.ER7ContentType)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	code, control := msa(body)
	assert.Equal(t, "AA", code)
	assert.Equal(t, "ACC-1", control)
}

func TestProcessMessage(t *testing.T) {
	admit, err := os.ReadFile("../message/testdata/admit.json")
	require.NoError(t, err)
	base, st := server(t, nil, adtapi.Config{MaxMessageBytes: 64 << 10})
	for _, tc := range []struct {
		name   string
		query  string
		ctype  string
		body   []byte
		status int
		want   string // resourceType of the answer
	}{
		{"admit", "", "application/fhir+json", admit, 200, "Bundle"},
		{"resend is answered ok again", "", "application/fhir+json; charset=utf-8", admit, 200, "Bundle"},
		{"async=false is synchronous", "?async=false", "application/json", admit, 200, "Bundle"},
		{"async=true is refused", "?async=true", "application/fhir+json", admit, 400, "OperationOutcome"},
		{"invalid message", "", "application/fhir+json", []byte(`{"resourceType":"Bundle","type":"message"}`), 400, "OperationOutcome"},
		{"unsupported event", "", "application/fhir+json", bytes.Replace(admit, []byte("notification-admit"), []byte("notification-lab-report"), 1), 422, "OperationOutcome"},
		{"ER7 is 415", "", adtapi.ER7ContentType, adtMessage("A01", "X", "M", "V"), 415, "OperationOutcome"},
		{"oversize is 413", "", "application/fhir+json", bytes.Repeat([]byte(" "), 65<<10), 413, "OperationOutcome"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := post(t, base+"/$process-message"+tc.query, tc.ctype, tc.body)
			assert.Equal(t, tc.status, status, string(body))
			assert.Equal(t, tc.want, gjson.GetBytes(body, "resourceType").String(), string(body))
			if tc.want == "Bundle" {
				assert.Equal(t, "ok", gjson.GetBytes(body, "entry.0.resource.response.code").String())
			}
		})
	}
	c, err := st.Counts(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(1), c["MessageHeader"], "applied once whatever the resends")

	resp, err := http.Get(base + "/$process-message")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	resp, err = http.Get(base + "/metadata")
	require.NoError(t, err)
	meta, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, gjson.GetBytes(meta, "instantiates").String(), adtapi.NotificationReceiver)
	var ops []string
	for _, op := range gjson.GetBytes(meta, "rest.0.operation.#.name").Array() {
		ops = append(ops, op.String())
	}
	assert.Subset(t, ops, []string{"process-message", "hl7v2"})
}

// TestScopes: intake needs create and update on what it writes, and
// provider-bound clients may not submit.
func TestScopes(t *testing.T) {
	admit, err := os.ReadFile("../message/testdata/admit.json")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		who    *access.Principal
		status int
	}{
		{"read-only client", &access.Principal{ClientID: "ro", Scopes: []string{"system/*.read"}}, 403},
		{"Patient writes only", &access.Principal{ClientID: "p", Scopes: []string{"system/Patient.cu"}}, 403},
		{"organization-bound client", &access.Principal{ClientID: "prov", Scopes: []string{"system/*.*"}, Organization: "npi|1", Patients: access.NoPatients{}}, 403},
		{"feed with write scopes", &access.Principal{ClientID: "hie", Scopes: []string{"system/*.cu"}}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _ := server(t, tc.who, adtapi.Config{})
			status, _, body := post(t, base+"/$process-message", "application/fhir+json", admit)
			assert.Equal(t, tc.status, status, string(body))
			status, _, body = post(t, base+"/$hl7v2", adtapi.ER7ContentType, adtMessage("A01", "S-1", "MRN-S", "V-S"))
			assert.Equal(t, tc.status, status, string(body))
		})
	}
}
