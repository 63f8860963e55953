// Package equitasproc builds the equitas binary and runs `equitas serve` as
// a subprocess on a loopback port, for the black-box suites (conformance
// tests and load benchmarks) that must exercise the real binary.
package equitasproc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Build builds ./cmd/equitas of the enclosing module into dir and returns
// the binary's path.
func Build(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "equitas")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/equitas")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/equitas: %w\n%s", err, out)
	}
	return bin, nil
}

// RepoRoot is the nearest directory above the working directory holding
// go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the package directory")
		}
		dir = parent
	}
}

// Server is an `equitas serve` subprocess.
type Server struct {
	// Root is the server's root URL, e.g. http://127.0.0.1:41234.
	Root string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

// Start starts `equitas serve` on a free loopback port and waits for
// /healthz; the server's output is logged when the test fails.
func Start(tb testing.TB, bin, data string, flags ...string) *Server {
	tb.Helper()
	addr := freeAddr(tb)
	out := &lockedBuffer{}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--data", data}, flags...)...)
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	require.NoError(tb, cmd.Start(), "start %s", bin)
	s := &Server{cmd: cmd, Root: "http://" + addr, out: out, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		if tb.Failed() {
			tb.Logf("equitas serve output:\n%s", out.tail(8<<10))
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-s.done:
			s.done <- err
			require.FailNowf(tb, "equitas serve exited before becoming healthy", "%v\n%s", err, out.tail(8<<10))
		default:
		}
		res, err := hc.Get(s.Root + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		require.True(tb, time.Now().Before(deadline), "equitas serve not healthy after 30s:\n%s", out.tail(8<<10))
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and requires a clean exit within 15 seconds.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		assert.NoError(tb, err, "equitas serve exit after SIGTERM:\n%s", s.out.tail(4<<10))
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		assert.Fail(tb, "equitas serve ignored SIGTERM for 15s")
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	require.NoError(tb, s.cmd.Process.Kill())
	<-s.done
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	addr := l.Addr().String()
	require.NoError(tb, l.Close())
	return addr
}

// lockedBuffer collects subprocess output written from two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.b.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
