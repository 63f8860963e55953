package patientsource

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// NDJSONOptions tune the NDJSON source.
type NDJSONOptions struct {
	// MemoryBudget bounds the bytes of patient resources held in memory at
	// once; inputs larger than this are partitioned by patient into
	// temporary files first. Default 256 MiB.
	MemoryBudget int64
	// TempDir holds the partitions; default os.TempDir().
	TempDir string
	// Logger receives warnings about skipped lines; default slog.Default().
	Logger *slog.Logger
}

// NDJSON reads Bulk Data NDJSON files (one resource per line, any mix of
// types per file) and yields one patient at a time.
//
// Bulk output is grouped by type, not by patient, so a patient's resources
// are spread over every file. To keep memory flat in population size, the
// source hash-partitions lines by patient id into K temporary files (K =
// input size / MemoryBudget, at least 1; with K = 1 nothing is written) and
// then loads one partition at a time, grouping its lines by patient.
// Memory is therefore bounded by about MemoryBudget plus the resources
// outside any patient compartment (Organization, Practitioner, Medication,
// ...), which are kept in memory and handed to every patient.
type NDJSON struct {
	files []string
	opts  NDJSONOptions
}

// NewNDJSON returns a source over files.
func NewNDJSON(files []string, opts NDJSONOptions) *NDJSON {
	if opts.MemoryBudget <= 0 {
		opts.MemoryBudget = 256 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &NDJSON{files: files, opts: opts}
}

// patientRefPaths are the elements that place a resource in a patient's
// compartment, most common first.
var patientRefPaths = []string{"resourceType", "id", "subject.reference", "patient.reference", "beneficiary.reference", "for.reference", "individual.reference"}

// lineOwner returns the resource type and the id of the patient a line
// belongs to ("" when it belongs to none).
func lineOwner(line []byte) (resourceType, patient string) {
	res := gjson.GetManyBytes(line, patientRefPaths...)
	resourceType = res[0].String()
	if resourceType == "Patient" {
		return resourceType, res[1].String()
	}
	for _, r := range res[2:] {
		if id := patientFromRef(r.String()); id != "" {
			return resourceType, id
		}
	}
	return resourceType, ""
}

// patientFromRef extracts the id from "Patient/x", ".../Patient/x" or
// "Patient/x/_history/n".
func patientFromRef(ref string) string {
	i := bytes.LastIndex([]byte(ref), []byte("Patient/"))
	if i < 0 || (i > 0 && ref[i-1] != '/') {
		return ""
	}
	id := ref[i+len("Patient/"):]
	for j := 0; j < len(id); j++ {
		if id[j] == '/' {
			return id[:j]
		}
	}
	return id
}

// Each implements Source. Patients come partition by partition, sorted by
// id within a partition.
func (s *NDJSON) Each(ctx context.Context, fn func(*Patient) error) error {
	var total int64
	for _, f := range s.files {
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("patientsource: %w", err)
		}
		total += st.Size()
	}
	k := int((total + s.opts.MemoryBudget - 1) / s.opts.MemoryBudget)
	if k <= 1 {
		shared := map[string][]json.RawMessage{}
		group := newGrouping()
		err := s.scan(ctx, func(rt, pid string, line []byte) error {
			if pid == "" {
				shared[rt] = append(shared[rt], line)
				return nil
			}
			group.add(rt, pid, line)
			return nil
		})
		if err != nil {
			return err
		}
		return group.emit(ctx, shared, s.opts.Logger, fn)
	}
	return s.partitioned(ctx, k, fn)
}

// scan calls fn for every non-empty line of every file. line is owned by fn.
func (s *NDJSON) scan(ctx context.Context, fn func(resourceType, patient string, line []byte) error) error {
	for _, f := range s.files {
		if err := s.scanFile(ctx, f, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *NDJSON) scanFile(ctx context.Context, name string, fn func(resourceType, patient string, line []byte) error) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("patientsource: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSpace(line)
			if len(line) > 0 {
				if !gjson.ValidBytes(line) {
					return fmt.Errorf("patientsource: %s line %d: malformed JSON", name, n)
				}
				rt, pid := lineOwner(line)
				if rt == "" {
					return fmt.Errorf("patientsource: %s line %d: not a FHIR resource (no resourceType)", name, n)
				}
				// Neither a resource type nor a FHIR id has control characters;
				// a tab or newline in them would also break the framing of the
				// partition records and mix one patient's data into another's.
				if hasControl(rt) || hasControl(pid) {
					return fmt.Errorf("patientsource: %s line %d: control character in resourceType or patient reference %q", name, n, rt+" "+pid)
				}
				if err := fn(rt, pid, line); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("patientsource: %s: %w", name, err)
		}
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
}

// partitioned spills lines to k partition files by patient id, then
// groups each partition in memory.
func (s *NDJSON) partitioned(ctx context.Context, k int, fn func(*Patient) error) error {
	dir, err := os.MkdirTemp(s.opts.TempDir, "equitas-patients-")
	if err != nil {
		return fmt.Errorf("patientsource: %w", err)
	}
	defer os.RemoveAll(dir)
	parts := make([]*os.File, k)
	writers := make([]*bufio.Writer, k)
	for i := range parts {
		parts[i], err = os.Create(fmt.Sprintf("%s/part-%d", dir, i))
		if err != nil {
			return fmt.Errorf("patientsource: %w", err)
		}
		defer parts[i].Close()
		writers[i] = bufio.NewWriterSize(parts[i], 256<<10)
	}
	shared := map[string][]json.RawMessage{}
	err = s.scan(ctx, func(rt, pid string, line []byte) error {
		if pid == "" {
			shared[rt] = append(shared[rt], line)
			return nil
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(pid))
		return writeRecord(writers[int(h.Sum32()%uint32(k))], rt, pid, line)
	})
	if err != nil {
		return err
	}
	for i, w := range writers {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("patientsource: %w", err)
		}
		if _, err := parts[i].Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("patientsource: %w", err)
		}
	}
	for i := range parts {
		group := newGrouping()
		r := bufio.NewReaderSize(parts[i], 1<<20)
		for {
			rec, err := r.ReadBytes('\n')
			if len(rec) > 1 {
				rt, pid, line, perr := parseRecord(rec[:len(rec)-1])
				if perr != nil {
					return perr
				}
				group.add(rt, pid, line)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("patientsource: %w", err)
			}
		}
		if err := group.emit(ctx, shared, s.opts.Logger, fn); err != nil {
			return err
		}
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// writeRecord writes one partition record, "<len(rt)> rt pid\tline\n":
// the length prefix splits rt from pid without a separator that either
// might contain, which keeps parseRecord trivial.
func writeRecord(w *bufio.Writer, rt, pid string, line []byte) error {
	w.WriteString(strconv.Itoa(len(rt)))
	w.WriteByte(' ')
	w.WriteString(rt)
	w.WriteString(pid)
	w.WriteByte('\t')
	w.Write(line)
	return w.WriteByte('\n')
}

func parseRecord(rec []byte) (rt, pid string, line []byte, err error) {
	sp := bytes.IndexByte(rec, ' ')
	tab := bytes.IndexByte(rec, '\t')
	if sp < 0 || tab < sp {
		return "", "", nil, errors.New("patientsource: corrupt partition record")
	}
	n, err := strconv.Atoi(string(rec[:sp]))
	if err != nil || n < 0 || sp+1+n > tab {
		return "", "", nil, errors.New("patientsource: corrupt partition record")
	}
	return string(rec[sp+1 : sp+1+n]), string(rec[sp+1+n : tab]), rec[tab+1:], nil
}

// grouping collects one partition's patients.
type grouping struct {
	patients map[string]*Patient
}

func newGrouping() *grouping { return &grouping{patients: map[string]*Patient{}} }

func (g *grouping) add(rt, pid string, line []byte) {
	p := g.patients[pid]
	if p == nil {
		p = &Patient{ID: pid, Resources: map[string][]json.RawMessage{}}
		g.patients[pid] = p
	}
	p.Add(rt, line)
}

func (g *grouping) emit(ctx context.Context, shared map[string][]json.RawMessage, log *slog.Logger, fn func(*Patient) error) error {
	ids := make([]string, 0, len(g.patients))
	for id := range g.patients {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := g.patients[id]
		delete(g.patients, id)
		if len(p.Resources["Patient"]) == 0 {
			log.Warn("patientsource: resources reference a patient that is not in the input; skipped", "patient", id)
			continue
		}
		for rt, rs := range shared {
			own := p.Resources[rt]
			if len(own) == 0 {
				// Shared slices are read-only; the cap stops appends from aliasing.
				p.Resources[rt] = rs[:len(rs):len(rs)]
				continue
			}
			p.Resources[rt] = append(own[:len(own):len(own)], rs...)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}
