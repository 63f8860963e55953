// Package measuretest provides what the measure packages' tests share:
// locating the eCQM content that lives beside the repository.
package measuretest

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedDir returns ../shared relative to the repository root (the
// directory holding go.mod, found by walking up from the working
// directory), skipping the test when the eCQM content is absent there so
// that a checkout without it still runs the rest of the suite.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root (go.mod) not found")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(filepath.Join(shared, "ecqm", "measures")); err != nil {
		t.Skipf("eCQM content not found at %s (expected ../shared/ecqm relative to the repository root): %v", shared, err)
	}
	return shared
}
