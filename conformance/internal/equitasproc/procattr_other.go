//go:build !linux

package equitasproc

import "os/exec"

// dieWithParent is a no-op where the kernel offers no parent-death signal;
// the tests' cleanups still stop the server.
func dieWithParent(*exec.Cmd) {}
