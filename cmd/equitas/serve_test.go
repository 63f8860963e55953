package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startServe runs `equitas serve` in-process, configured through the
// environment, and returns its root URL and a stop function that cancels
// the context (what SIGINT/SIGTERM do) and returns the command's error.
func startServe(t *testing.T, data string, args ...string) (string, func() error) {
	t.Helper()
	addr := freeAddr(t)
	t.Setenv("EQUITAS_ADDR", addr)
	t.Setenv("EQUITAS_DATA", data)
	t.Setenv("EQUITAS_LOG_LEVEL", "warn")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newServeCmd()
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	root := "http://" + addr
	require.Eventually(t, func() bool {
		res, err := http.Get(root + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "server did not come up")
	return root, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not shut down")
			return nil
		}
	}
}

func TestServeFromEnvAndRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "not", "yet", "there")
	root, stop := startServe(t, data, "--base-url", "https://fhir.example.org/fhir")
	res, err := http.Post(root+"/fhir/Patient", "application/fhir+json", strings.NewReader(`{"resourceType":"Patient","gender":"other"}`))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	loc := res.Header.Get("Location")
	assert.True(t, strings.HasPrefix(loc, "https://fhir.example.org/fhir/Patient/"), "base URL flag used: %s", loc)
	require.NoError(t, stop(), "graceful shutdown")
	_, err = os.Stat(data)
	require.NoError(t, err, "data directory created")

	root, stop = startServe(t, data)
	path := strings.TrimPrefix(loc, "https://fhir.example.org")
	path = path[:strings.Index(path, "/_history")]
	res, err = http.Get(root + path)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "write kept across restart")
	require.NoError(t, stop())
}

func TestServeBadEnv(t *testing.T) {
	t.Setenv("EQUITAS_MAX_BODY", "lots")
	cmd := newServeCmd()
	cmd.SetArgs(nil)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.ExecuteContext(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "EQUITAS_MAX_BODY")
}
