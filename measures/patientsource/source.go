// Package patientsource streams patients, each with all of its FHIR
// resources, from files (a folder per patient, the layout of eCQM test
// cases, or Bulk Data NDJSON files) or from a store's patient compartments. Sources hand out one patient at a time
// so evaluation memory stays flat in population size.
package patientsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Patient is one patient and its resources grouped by resource type. The
// Patient resource itself is under "Patient".
type Patient struct {
	ID        string
	Resources map[string][]json.RawMessage
}

// Add files one resource under its type.
func (p *Patient) Add(resourceType string, raw json.RawMessage) {
	if p.Resources == nil {
		p.Resources = map[string][]json.RawMessage{}
	}
	p.Resources[resourceType] = append(p.Resources[resourceType], raw)
}

// Source yields patients one at a time.
type Source interface {
	// Each calls fn for every patient in a stable order, stopping at the
	// first error (fn's or the source's) or when ctx is done. fn must not
	// keep the Patient after returning unless the source says otherwise:
	// every source here allocates a fresh Patient per call, so keeping it is safe.
	Each(ctx context.Context, fn func(*Patient) error) error
}

// ErrNoPatients is returned when a location holds no patient data.
var ErrNoPatients = errors.New("no patient data found")

// Open picks a source for path: a directory holding *.ndjson files is read
// as Bulk Data output; a directory holding resource JSON files with a
// Patient is one patient; otherwise each sub-directory is one patient.
// A single .ndjson file is read as Bulk Data output too.
func Open(path string) (Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("patientsource: %w", err)
	}
	if !st.IsDir() {
		if strings.HasSuffix(path, ".ndjson") {
			return NewNDJSON([]string{path}, NDJSONOptions{}), nil
		}
		return nil, fmt.Errorf("patientsource: %s is neither a directory nor an .ndjson file", path)
	}
	nd, err := filepath.Glob(filepath.Join(path, "*.ndjson"))
	if err != nil {
		return nil, fmt.Errorf("patientsource: %w", err)
	}
	if len(nd) > 0 {
		sort.Strings(nd)
		return NewNDJSON(nd, NDJSONOptions{}), nil
	}
	return NewDir(path)
}

// Retrieve returns the patient's resources of one type; it makes a Patient
// an elm.DataSource. Resources outside the patient compartment found with
// the patient (Organization, Medication, ...) are returned the same way.
func (p *Patient) Retrieve(_ context.Context, resourceType string) ([]json.RawMessage, error) {
	return p.Resources[resourceType], nil
}
