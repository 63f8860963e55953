package ingest

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Format is how a source holds resources.
type Format int

const (
	// NDJSON holds one resource per line (Bulk Data files).
	NDJSON Format = iota + 1
	// JSON holds one resource; a Bundle of type collection, transaction,
	// batch, searchset or history is unpacked into its entries.
	JSON
)

// Source is one input stream. Open may be called more than once (Bundles
// are read twice: once to map their fullUrls, once to load).
type Source struct {
	Name   string
	Format Format
	// Type, when set, is the resource type every resource must have (the
	// type of a Bulk Data manifest entry).
	Type string
	Size int64 // bytes, for progress; 0 when unknown
	Open func() (io.ReadCloser, error)
}

// Files turns file and directory paths into sources: directories are walked
// for *.ndjson, *.jsonl and *.json files (in name order); files are taken
// as given, their format chosen by extension (.json is JSON, anything else
// NDJSON).
func Files(paths ...string) ([]Source, error) {
	var out []Source
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, fileSource(p, fi.Size()))
			continue
		}
		var found []Source
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !hasExt(path, ".ndjson", ".jsonl", ".json") {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			found = append(found, fileSource(path, info.Size()))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		slices.SortFunc(found, func(a, b Source) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, found...)
	}
	return out, nil
}

func hasExt(path string, exts ...string) bool {
	lower := strings.ToLower(path)
	for _, e := range exts {
		if strings.HasSuffix(lower, e) {
			return true
		}
	}
	return false
}

func fileSource(path string, size int64) Source {
	f := NDJSON
	if hasExt(path, ".json") {
		f = JSON
	}
	return Source{Name: path, Format: f, Size: size, Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}
