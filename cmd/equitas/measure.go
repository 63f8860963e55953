package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/measures/patientsource"
	"github.com/equitas/equitas/measures/report"
	"github.com/equitas/equitas/store/badgerstore"
)

func newMeasureCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "measure",
		Short: "Evaluate eCQMs (FHIR Measures with ELM libraries) over patients",
	}
	cmd.AddCommand(newMeasureEvalCmd(), newMeasureListCmd(), newMeasureLoadCmd())
	return cmd
}

func newMeasureListCmd() *cobra.Command {
	var content string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the measures of a measure package with their canonical, scoring and population basis",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := measure.Content{Dir: content}
			names, err := c.Measures()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, name := range names {
				def, _, err := c.Definition(name)
				if err != nil {
					return err
				}
				for _, g := range def.Groups {
					fmt.Fprintf(w, "%s\t%s\tgroup %d\t%s\t%s\t%s\n", name, def.Canonical(), g.Index+1, g.Scoring, g.Basis, g.ImprovementNotation)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&content, "content", "", "measure package directory (libraries/, measures/)")
	_ = cmd.MarkFlagRequired("content")
	return cmd
}

func newMeasureLoadCmd() *cobra.Command {
	var content, data, server string
	var names []string
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Load measures (Measure, Library closure, ValueSets) into a store or a running server",
		Long: `Load measures of a measure package into the server's store, where
$evaluate-measure, $data-requirements and $care-gaps find them. Each measure is
checked first (library closure resolved, value sets present), then written
with its Libraries and ValueSets, keeping their ids: loading again changes
nothing. With --server the resources go through the REST API as one
transaction Bundle per measure (bearer token from EQUITAS_TOKEN).`,
		Example: `  equitas measure load --content ../shared/ecqm --server http://127.0.0.1:8080/fhir
  equitas measure load --content ../shared/ecqm --measure ControllingHighBloodPressureFHIR --data ./data`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if len(names) == 0 {
				var err error
				if names, err = (measure.Content{Dir: content}).Measures(); err != nil {
					return err
				}
			}
			if data != "" {
				// Content is checked before the store is opened: a bad
				// package leaves the store untouched.
				rs, err := catalog.ContentResources(ctx, content, names...)
				if err != nil {
					return err
				}
				st, err := badgerstore.Open(ctx, data, badgerstore.Options{})
				if err != nil {
					return fmt.Errorf("measure load: open store %s: %w", data, err)
				}
				defer st.Close()
				if err := catalog.Write(ctx, st, rs); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "loaded %d measures into %s: %s\n", len(names), data, strings.Join(names, ", "))
				return nil
			}
			c := &serverClient{base: strings.TrimRight(server, "/"), token: os.Getenv("EQUITAS_TOKEN"), http: &http.Client{Timeout: 10 * time.Minute}}
			for _, name := range names {
				rs, err := catalog.ContentResources(ctx, content, name)
				if err != nil {
					return err
				}
				b, err := catalog.TransactionBundle(rs)
				if err != nil {
					return err
				}
				res, err := c.do(ctx, http.MethodPost, c.base, string(b))
				if err != nil {
					return fmt.Errorf("measure load %s: %w", name, err)
				}
				if res.status != http.StatusOK {
					return fmt.Errorf("measure load %s: server answered %d: %s", name, res.status, res.diagnostics())
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d resources loaded\n", name, len(rs))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&content, "content", "", "measure package directory (libraries/, measures/NAME/{Measure.json,valuesets.json})")
	f.StringSliceVar(&names, "measure", nil, "measure names (folders under measures/); default all")
	f.StringVar(&data, "data", "", "write into this store (the server's --data directory, server stopped)")
	f.StringVar(&server, "server", "", "load through a running server's REST API (FHIR base URL, e.g. http://127.0.0.1:8080/fhir)")
	_ = cmd.MarkFlagRequired("content")
	cmd.MarkFlagsOneRequired("data", "server")
	cmd.MarkFlagsMutuallyExclusive("data", "server")
	return cmd
}

type measureEvalFlags struct {
	content, measure, patients string
	data                       string
	period, reportType, out    string
	reporter, profiles         string
	workers                    int
}

func newMeasureEvalCmd() *cobra.Command {
	var f measureEvalFlags
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate one measure over a patient population and write MeasureReports",
		Long: `Evaluate one measure of a measure package over patients read from files.

The content directory holds libraries/*.json (FHIR Libraries with ELM) and
measures/NAME/{Measure.json,valuesets.json}. Patients are either one folder
per patient of resource JSON files (a single patient folder works too) or
Bulk Data NDJSON files. Reports: individual (a collection Bundle with one
MeasureReport per patient), subject-list or summary (one MeasureReport).`,
		Example: `  equitas measure eval --content ../shared/ecqm --measure ControllingHighBloodPressureFHIR \
      --patients ../shared/ecqm/measures/ControllingHighBloodPressureFHIR/tests --report summary`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMeasureEval(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.content, "content", "", "measure package directory (libraries/, measures/)")
	fl.StringVar(&f.measure, "measure", "", "measure name (folder under measures/)")
	fl.StringVar(&f.patients, "patients", "", "patient folder(s) or NDJSON directory/file")
	fl.StringVar(&f.data, "data", "", "evaluate the patients of this store (the server's --data directory, server stopped) instead of --patients")
	fl.StringVar(&f.period, "period", "", "measurement period START/END (dates or dateTimes); default the Measure's effectivePeriod")
	fl.StringVar(&f.reportType, "report", report.TypeSummary, "report type: individual, subject-list or summary")
	fl.StringVar(&f.out, "out", "", "output file (default stdout)")
	fl.StringVar(&f.reporter, "reporter", "", "reporter reference for the reports, e.g. Organization/123")
	fl.StringVar(&f.profiles, "profiles", "meta", "profile matching of retrieves: meta (meta.profile tags), ignore, or infer")
	fl.IntVar(&f.workers, "workers", 0, "parallel evaluators (default GOMAXPROCS)")
	cmd.MarkFlagsOneRequired("patients", "data")
	cmd.MarkFlagsMutuallyExclusive("patients", "data")
	for _, name := range []string{"content", "measure"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func runMeasureEval(cmd *cobra.Command, f measureEvalFlags) error {
	ctx := cmd.Context()
	switch f.reportType {
	case report.TypeIndividual, report.TypeSubjectList, report.TypeSummary:
	case "subject", "population":
		// $evaluate-measure reportType spellings.
		f.reportType = map[string]string{"subject": report.TypeIndividual, "population": report.TypeSummary}[f.reportType]
	default:
		return fmt.Errorf("--report %q: want individual, subject-list or summary", f.reportType)
	}
	opts := elm.Options{}
	switch f.profiles {
	case "meta":
		opts.Profiles = elm.ProfileMetaTag
	case "ignore":
		opts.Profiles = elm.ProfileIgnore
	case "infer":
		opts.Profiles = elm.ProfileInfer
	default:
		return fmt.Errorf("--profiles %q: want meta, ignore or infer", f.profiles)
	}
	var period measure.Period
	var err error
	if f.period != "" {
		if period, err = measure.ParsePeriod(f.period); err != nil {
			return fmt.Errorf("--period: %w", err)
		}
	}
	if os.Getenv("GOGC") == "" {
		// A batch run keeps a small live heap (tens of MiB) and produces
		// garbage fast, so collecting less often pays: in BenchmarkCMS165
		// (12,000 patients, 2 cores) GOGC=400 took ~15.6k to ~21.9k
		// patients per CPU-second (~30 % less CPU per patient) for a peak
		// heap of ~87 MiB instead of ~38 MiB, still flat in population size.
		debug.SetGCPercent(400)
	}
	start := time.Now()
	content := measure.Content{Dir: f.content}
	pkg, err := content.Load(ctx, f.measure)
	if err != nil {
		return err
	}
	m, err := measure.Compile(ctx, pkg, opts)
	if err != nil {
		return err
	}
	// Findings that do not stop evaluation (e.g. property paths missing
	// from the FHIR model, which can only yield null) are worth seeing once.
	for _, w := range m.Program.Warnings() {
		slog.Warn("measure compile warning", "measure", m.Def.Name, "warning", w)
	}
	if f.period == "" {
		if period, err = measure.DefaultPeriod(m.Def); err != nil {
			return err
		}
	}
	var src patientsource.Source
	if f.data != "" {
		st, err := badgerstore.Open(ctx, f.data, badgerstore.Options{})
		if err != nil {
			return fmt.Errorf("measure eval: open store %s: %w", f.data, err)
		}
		defer st.Close()
		src = patientsource.NewStore(st)
	} else if src, err = patientsource.Open(f.patients); err != nil {
		return err
	}
	compiled := time.Since(start)

	ropts := report.Options{Period: report.Period{Start: period.StartText, End: period.EndText}, Reporter: f.reporter}
	runOpts := measure.RunOptions{Period: period, Workers: f.workers}
	logFailure := func(r *measure.PatientResult) {
		if r.Err != nil {
			// Identifiers only: errors name the patient id and the expression.
			slog.Warn("patient evaluation failed", "measure", m.Def.Name, "patient", r.PatientID, "error", r.Err)
		}
	}
	evalStart := time.Now()
	var stats measure.Stats
	err = writeWhole(f.out, cmd.OutOrStdout(), func(w io.Writer) error {
		var err error
		switch f.reportType {
		case report.TypeIndividual:
			bw := report.NewBundleWriter(w)
			stats, err = m.Run(ctx, src, runOpts, func(r *measure.PatientResult) error {
				logFailure(r)
				return bw.Add(report.Individual(m.Def, ropts, r))
			})
			if err != nil {
				return err
			}
			return bw.Close()
		default:
			agg := report.NewSummary(m.Def, ropts)
			if f.reportType == report.TypeSubjectList {
				agg = report.NewSubjectList(m.Def, ropts)
			}
			stats, err = m.Run(ctx, src, runOpts, func(r *measure.PatientResult) error {
				logFailure(r)
				agg.Add(r)
				return nil
			})
			if err != nil {
				return err
			}
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(agg.Report())
		}
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(evalStart)
	rate := float64(stats.Patients) / elapsed.Seconds()
	fmt.Fprintf(cmd.ErrOrStderr(), "measure %s: %d patients evaluated (%d failed) in %s (%.0f patients/s; load and compile %s)\n",
		m.Def.Name, stats.Patients, stats.Failed, elapsed.Round(time.Millisecond), rate, compiled.Round(time.Millisecond))
	if stats.Patients == 0 {
		return errors.New("no patients found in " + f.patients + f.data)
	}
	return nil
}

// writeWhole runs write into a temporary file and, only if it succeeds,
// moves the file to path or, when path is "", copies it to stdout, so a
// failed run leaves neither a half-written file nor half an output.
func writeWhole(path string, stdout io.Writer, write func(io.Writer) error) error {
	dir := os.TempDir()
	if path != "" {
		dir = filepath.Dir(path)
	}
	tmp, err := os.CreateTemp(dir, ".equitas-output-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if path != "" {
		return os.Rename(tmp.Name(), path)
	}
	in, err := os.Open(tmp.Name())
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = io.Copy(stdout, in)
	return err
}
