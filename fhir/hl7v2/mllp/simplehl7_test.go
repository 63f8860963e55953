package mllp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/hl7v2/mllp"
)

// nodePeer returns the node binary and the simple-hl7 sender script, or
// skips (fails under CI, which installs them with npm ci).
func nodePeer(t *testing.T) (node, script string) {
	t.Helper()
	dir, err := filepath.Abs("testdata/npm")
	require.NoError(t, err)
	node, lookErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "simple-hl7"))
	if lookErr != nil || modErr != nil {
		msg := "the npm peer is not installed: run npm ci in fhir/hl7v2/mllp/testdata/npm (needs node)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node, filepath.Join(dir, "send.js")
}

// TestSimpleHL7Client: an independent MLLP client (simple-hl7 from npm)
// sends over one kept-alive connection: messages it parsed and re-encoded,
// one it built with its own Message API, a resend and a bad message. It
// parses our ACKs with its own parser.
func TestSimpleHL7Client(t *testing.T) {
	node, script := nodePeer(t)
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	ts := startServer(t, st, mllp.Config{})
	host, port, err := net.SplitHostPort(ts.addr)
	require.NoError(t, err)

	type item struct {
		Raw   *string           `json:"raw,omitempty"`
		Build map[string]string `json:"build,omitempty"`
	}
	raw := func(b []byte) item { s := string(b); return item{Raw: &s} }
	bad := bytes.Replace(adtMessage("A01", "NODE-BAD", "MRN-N9", "V-N9"), []byte("|F|"), []byte("|Q|"), 1)
	items := []item{
		raw(adtMessage("A01", "NODE-1", "MRN-N1", "V-N1")),
		raw(adtMessage("A03", "NODE-2", "MRN-N1", "V-N1")),
		{Build: map[string]string{"control": "NODE-3", "trigger": "A01", "mrn": "MRN-N2", "family": "Rivera", "given": "Ana", "visit": "V-N2"}},
		raw(adtMessage("A01", "NODE-1", "MRN-N1", "V-N1")), // a resend
		raw(bad),
	}
	in, err := json.Marshal(items)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, host, port)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())

	var got [][2]string
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		r := gjson.ParseBytes(line)
		require.False(t, r.Get("error").Exists(), "client error: %s", line)
		got = append(got, [2]string{r.Get("ack").String(), r.Get("control").String()})
	}
	assert.Equal(t, [][2]string{{"AA", "NODE-1"}, {"AA", "NODE-2"}, {"AA", "NODE-3"}, {"AA", "NODE-1"}, {"AE", "NODE-BAD"}}, got)

	encs := encounterByVisit(t, st, "V-N1")
	require.Len(t, encs, 1)
	assert.Equal(t, "finished", gjson.GetBytes(encs[0].Body, "status").String())
	built := patientByMRN(t, st, "MRN-N2")
	require.Len(t, built, 1)
	assert.Equal(t, "Rivera", gjson.GetBytes(built[0].Body, "name.0.family").String())
	assert.Empty(t, patientByMRN(t, st, "MRN-N9"))
	assert.Equal(t, int64(3), counts(t, st)["MessageHeader"], "the resend was not applied again")
	assert.Equal(t, 3, ts.ev.count())
}
