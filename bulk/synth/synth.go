// Package synth generates deterministic synthetic populations as FHIR R4
// NDJSON in the Bulk Data layout (one file per resource type): patients with
// US Core race, ethnicity, birth sex and preferred language; provider and
// payer organizations, practitioners and roles; coverage; outpatient, ED
// and inpatient encounters with professional claims (ExplanationOfBenefit);
// hypertension and diabetes with blood-pressure and HbA1c observations
// coded from the CMS165 and CMS122 value sets and tagged with QI-Core
// profiles.
//
// The population carries planted disparities by race, ethnicity and
// preferred language (see DISPARITIES.md), and Generate returns the
// measure results the planted data implies (Truth), so equity reports built
// on it have a known answer.
//
// Output depends only on Options: each patient draws from its own PCG
// stream seeded by (Seed, patient index), nothing iterates a map, and
// dates are relative to Options.Now rather than the wall clock. Memory does
// not grow with the number of patients; Generate streams into a Sink.
package synth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// DefaultNow is the reference date used when Options.Now is zero: data
// covers the two years before it, so the default measurement year is 2025,
// the period of the shipped CMS165 and CMS122 test cases.
const DefaultNow = "2026-01-01"

// Options control one generation run.
type Options struct {
	Patients int
	Seed     uint64
	// Now is the reference instant; data covers [Now-2y, Now) and the
	// measurement period is the calendar year before Now's year.
	// Zero means DefaultNow.
	Now time.Time
}

// Sink receives one NDJSON line (without the newline) per resource. Write
// must not retain line after it returns.
type Sink interface {
	Write(resourceType string, line []byte) error
}

// Summary describes a generated population.
type Summary struct {
	Patients  int              `json:"patients"`
	Resources map[string]int64 `json:"resources"`
	Truth     *Truth           `json:"truth"`
}

// Total is the number of resources written.
func (s *Summary) Total() int64 {
	var n int64
	for _, c := range s.Resources {
		n += c
	}
	return n
}

// ResourceTypes lists the types Generate emits, referenced types first.
func ResourceTypes() []string {
	return []string{
		"Organization", "Practitioner", "PractitionerRole", "Patient", "Coverage",
		"Condition", "Encounter", "Observation", "ExplanationOfBenefit",
	}
}

// Generate writes a population of opts.Patients patients to sink.
func Generate(ctx context.Context, opts Options, sink Sink) (*Summary, error) {
	if opts.Patients < 0 {
		return nil, errors.New("synth: negative patient count")
	}
	g := newGen(opts, sink)
	if err := g.directory(); err != nil {
		return nil, err
	}
	for i := 0; i < opts.Patients; i++ {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := g.patient(i); err != nil {
			return nil, err
		}
	}
	return &Summary{Patients: opts.Patients, Resources: g.counts, Truth: g.truth}, nil
}

// DirSink writes DIR/<Type>.ndjson files.
type DirSink struct {
	dir   string
	files map[string]*os.File
	bufs  map[string]*bufio.Writer
}

// NewDirSink creates dir if needed; files are created on first write.
func NewDirSink(dir string) (*DirSink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return &DirSink{dir: dir, files: map[string]*os.File{}, bufs: map[string]*bufio.Writer{}}, nil
}

// Write appends line and a newline to the type's file.
func (d *DirSink) Write(typ string, line []byte) error {
	w, ok := d.bufs[typ]
	if !ok {
		f, err := os.Create(filepath.Join(d.dir, typ+".ndjson"))
		if err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		d.files[typ] = f
		w = bufio.NewWriterSize(f, 256<<10)
		d.bufs[typ] = w
	}
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("synth: write %s: %w", typ, err)
	}
	return w.WriteByte('\n')
}

// Close flushes and closes every file.
func (d *DirSink) Close() error {
	var errs []error
	for typ, w := range d.bufs {
		if err := w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("synth: flush %s: %w", typ, err))
		}
		if err := d.files[typ].Close(); err != nil {
			errs = append(errs, fmt.Errorf("synth: close %s: %w", typ, err))
		}
	}
	return errors.Join(errs...)
}

// GenerateDir generates a population into dir (Bulk Data NDJSON layout).
func GenerateDir(ctx context.Context, opts Options, dir string) (*Summary, error) {
	sink, err := NewDirSink(dir)
	if err != nil {
		return nil, err
	}
	sum, err := Generate(ctx, opts, sink)
	if cerr := sink.Close(); err == nil {
		err = cerr
	}
	return sum, err
}

// gen holds the run-wide state: sizes of the provider directory derived
// from the patient count, the reusable encode buffer and the tallies.
type gen struct {
	opts     Options
	sink     Sink
	prefix   string
	now      time.Time
	winStart time.Time
	mpStart  time.Time // measurement period, [mpStart, mpEnd)
	mpEnd    time.Time
	mpYear   int

	nClinics, nHospitals, nPCP int

	buf    []byte
	counts map[string]int64
	truth  *Truth
}

func newGen(opts Options, sink Sink) *gen {
	now := opts.Now
	if now.IsZero() {
		now, _ = time.Parse(time.DateOnly, DefaultNow)
	}
	now = now.UTC()
	mpYear := now.Year() - 1
	n := opts.Patients
	g := &gen{
		opts:     opts,
		sink:     sink,
		prefix:   fmt.Sprintf("s%d-", opts.Seed),
		now:      now,
		winStart: now.AddDate(-2, 0, 0),
		mpStart:  time.Date(mpYear, 1, 1, 0, 0, 0, 0, time.UTC),
		mpEnd:    time.Date(mpYear+1, 1, 1, 0, 0, 0, 0, time.UTC),
		mpYear:   mpYear,
		// A clinic per ~1,000 patients, a hospital per ~5,000, a primary
		// care practitioner per ~400: panels stay realistic at any size.
		nClinics:   clamp(n/1000, 3, 500),
		nHospitals: clamp(n/5000, 1, 100),
		counts:     map[string]int64{},
		truth:      newTruth(mpYear),
	}
	g.nPCP = clamp(n/400, 2*g.nClinics, 5000)
	return g
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

func (g *gen) emit(typ string, o obj) error {
	g.buf = appendJSON(g.buf[:0], o)
	g.counts[typ]++
	return g.sink.Write(typ, g.buf)
}

func (g *gen) rngFor(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.opts.Seed, stream))
}

// Ids. Every id carries the seed so populations of different seeds can be
// loaded into one store side by side.
func (g *gen) payerID(k int) string    { return fmt.Sprintf("%sorg-payer-%s", g.prefix, payers[k].key) }
func (g *gen) clinicID(k int) string   { return fmt.Sprintf("%sorg-clinic-%03d", g.prefix, k) }
func (g *gen) hospitalID(k int) string { return fmt.Sprintf("%sorg-hosp-%03d", g.prefix, k) }
func (g *gen) practID(k int) string    { return fmt.Sprintf("%spract-%04d", g.prefix, k) }
func (g *gen) roleID(k int) string     { return fmt.Sprintf("%srole-%04d", g.prefix, k) }
func (g *gen) patientID(i int) string  { return fmt.Sprintf("%spat-%07d", g.prefix, i) }

func ref(typ, id string) obj { return obj{{"reference", typ + "/" + id}} }

func meta(profiles ...string) obj {
	a := make(arr, len(profiles))
	for i, p := range profiles {
		a[i] = p
	}
	return obj{{"profile", a}}
}

func ident(system, value string) obj { return obj{{"system", system}, {"value", value}} }

// npi returns a valid 10-digit NPI (Luhn check over the 80840 prefix) for
// base, a 9-digit number starting with 1 (individuals) or 2 (organizations).
func npi(base int) string {
	s := fmt.Sprintf("%09d", base)
	sum := 24 // the digits of the 80840 prefix, doubled as Luhn requires
	for i := 0; i < 9; i++ {
		d := int(s[i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return s + string(rune('0'+(10-sum%10)%10))
}

// Practitioner NPIs are a bijection of the index (104729 is prime and
// coprime to 10^8), so they never collide within a run and differ by seed.
func (g *gen) practNPI(k int) string {
	return npi(100000000 + int((g.opts.Seed*7919+uint64(k)*104729)%100000000))
}

func (g *gen) orgNPI(k int) string {
	return npi(200000000 + int((g.opts.Seed*7919+uint64(k)*104729)%100000000))
}

func (g *gen) tin(k int) string {
	return fmt.Sprintf("%09d", 100000000+int((g.opts.Seed*15485863+uint64(k)*2750159)%800000000))
}

const (
	dtLayout   = "2006-01-02T15:04:05Z"
	dateLayout = time.DateOnly
)

func dt(t time.Time) string   { return t.UTC().Format(dtLayout) }
func date(t time.Time) string { return t.UTC().Format(dateLayout) }

func money(v float64) obj { return obj{{"value", dec(v, 2)}, {"currency", "USD"}} }

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func pickWeighted[T any](r *rand.Rand, xs []weighted[T]) T {
	total := 0
	for _, x := range xs {
		total += x.w
	}
	n := r.IntN(total)
	for _, x := range xs {
		if n < x.w {
			return x.v
		}
		n -= x.w
	}
	return xs[len(xs)-1].v
}

func pickIndex(r *rand.Rand, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

// poisson draws from a Poisson distribution (Knuth; lambda is small here).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func normal(r *rand.Rand, mean, sd, lo, hi float64) float64 {
	return max(lo, min(hi, mean+sd*r.NormFloat64()))
}

func between(r *rand.Rand, a, b time.Time) time.Time {
	if !b.After(a) {
		return a
	}
	return a.Add(time.Duration(r.Int64N(int64(b.Sub(a)))))
}
