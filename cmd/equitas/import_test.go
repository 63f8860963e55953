package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/bulk/synth"
)

// TestCLIHelperProcess runs the real main when started by runCLI, so the
// exit-code tests see exactly what a shell would.
func TestCLIHelperProcess(t *testing.T) {
	args := os.Getenv("EQUITAS_CLI_ARGS")
	if args == "" {
		t.Skip("runs only as the child process of the CLI exit-code tests")
	}
	os.Args = append([]string{"equitas"}, strings.Split(args, "\x1f")...)
	main()
	os.Exit(0)
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLIHelperProcess$")
	cmd.Env = append(os.Environ(), "EQUITAS_CLI_ARGS="+strings.Join(args, "\x1f"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run CLI: %v", err)
	}
	return code, out.String(), errb.String()
}

func TestImportExitCodes(t *testing.T) {
	dir := t.TempDir()
	pop := filepath.Join(dir, "pop")
	code, out, errOut := runCLI(t, "synth", "--patients", "30", "--seed", "4", "--out", pop)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "wrote 30 patients")

	data := filepath.Join(dir, "data")
	code, out, errOut = runCLI(t, "import", "--data", data, pop)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "0 failed")
	assert.Empty(t, errOut, "no progress output when stderr is not a terminal")

	code, out, _ = runCLI(t, "import", "--data", data, pop)
	require.Equal(t, 0, code)
	assert.Contains(t, out, " 0 written")

	bad := filepath.Join(dir, "bad.ndjson")
	require.NoError(t, os.WriteFile(bad, []byte("{\"resourceType\":\"Patient\",\"id\":\"ok\"}\n{not json\n"), 0o644))
	code, out, errOut = runCLI(t, "import", "--data", data, bad)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, bad+":2: ")
	assert.Contains(t, errOut, "1 of 2 resources failed")
	assert.Contains(t, out, "1 written")

	code, _, errOut = runCLI(t, "import", "--data", data, filepath.Join(dir, "missing"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no such file")
}

func TestSynthCommandTruth(t *testing.T) {
	dir := t.TempDir()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	truth := filepath.Join(dir, "truth.json")
	root.SetArgs([]string{"synth", "--patients", "50", "--seed", "8", "--out", filepath.Join(dir, "pop"), "--truth", truth, "--now", "2026-01-01"})
	require.NoError(t, root.ExecuteContext(context.Background()))
	b, err := os.ReadFile(truth)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"measurementPeriod": "2025"`)
	for _, typ := range synth.ResourceTypes() {
		_, err := os.Stat(filepath.Join(dir, "pop", typ+".ndjson"))
		assert.NoError(t, err, typ)
	}
	root.SetArgs([]string{"synth", "--patients", "5", "--out", filepath.Join(dir, "x"), "--now", "01/01/2026"})
	assert.Error(t, root.ExecuteContext(context.Background()))
}
