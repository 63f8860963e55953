package measure

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedDir locates /work/shared as ../shared from the repository root,
// skipping the test when it is absent.
func sharedDir(t testing.TB) string {
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
