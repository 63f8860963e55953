package patientsource

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dir reads one patient per folder: every *.json file in the folder is a
// FHIR resource (or a Bundle of them) of that patient. MeasureReport
// resources (the expected results of test cases) are ignored.
type Dir struct {
	folders []string
}

// NewDir returns a source over root: root itself when it directly holds a
// Patient resource file, else each of its sub-directories in name order.
func NewDir(root string) (*Dir, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("patientsource: %w", err)
	}
	var subdirs []string
	hasJSON := false
	for _, e := range entries {
		switch {
		case e.IsDir():
			subdirs = append(subdirs, filepath.Join(root, e.Name()))
		case strings.HasSuffix(e.Name(), ".json"):
			hasJSON = true
		}
	}
	if hasJSON {
		return &Dir{folders: []string{root}}, nil
	}
	if len(subdirs) == 0 {
		return nil, fmt.Errorf("patientsource: %s: %w (no *.json, *.ndjson or patient folders)", root, ErrNoPatients)
	}
	sort.Strings(subdirs)
	return &Dir{folders: subdirs}, nil
}

// Len returns the number of patient folders.
func (d *Dir) Len() int { return len(d.folders) }

// Each implements Source.
func (d *Dir) Each(ctx context.Context, fn func(*Patient) error) error {
	for _, f := range d.folders {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := ReadFolder(f)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// ReadFolder reads one patient folder.
func ReadFolder(folder string) (*Patient, error) {
	files, err := filepath.Glob(filepath.Join(folder, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("patientsource: %w", err)
	}
	sort.Strings(files)
	p := &Patient{Resources: map[string][]json.RawMessage{}}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("patientsource: %w", err)
		}
		if err := addResource(p, raw); err != nil {
			return nil, fmt.Errorf("patientsource: %s: %w", f, err)
		}
	}
	pats := p.Resources["Patient"]
	if len(pats) != 1 {
		return nil, fmt.Errorf("patientsource: %s: want exactly one Patient resource, found %d", folder, len(pats))
	}
	var id struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(pats[0], &id); err != nil || id.ID == "" {
		return nil, fmt.Errorf("patientsource: %s: Patient resource has no id", folder)
	}
	p.ID = id.ID
	return p, nil
}

func addResource(p *Patient, raw []byte) error {
	var head struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	switch head.ResourceType {
	case "":
		return fmt.Errorf("not a FHIR resource (no resourceType)")
	case "MeasureReport":
		return nil
	case "Bundle":
		for _, e := range head.Entry {
			if len(e.Resource) == 0 {
				continue
			}
			if err := addResource(p, e.Resource); err != nil {
				return err
			}
		}
		return nil
	}
	p.Add(head.ResourceType, json.RawMessage(raw))
	return nil
}
