package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/equitas/equitas/bulk/ingest"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store/badgerstore"
)

func newImportCmd() *cobra.Command {
	var (
		dataDir string
		server  string
		opts    ingest.Options
	)
	cmd := &cobra.Command{
		Use:   "import --data DIR FILE_OR_DIR...",
		Short: "Validate and load FHIR NDJSON files and Bundles into the store",
		Long: `import reads NDJSON files (one resource per line) and JSON files (a resource,
or a collection/transaction/batch Bundle whose entries are loaded) from the
given files and directories, validates every resource in parallel and stores
the valid ones. Invalid resources are reported as FILE:LINE: reason on stderr
and skipped; a resource is stored whole or not at all. Importing the same data
again writes no new versions. The exit status is non-zero when any resource
failed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if server != "" {
				// The server validates and stores; the files are offered to it
				// as a static Bulk Data manifest ($import ping and pull).
				return importViaServer(ctx, cmd.OutOrStdout(), importServerFromEnv(server), args...)
			}
			srcs, err := ingest.Files(args...)
			if err != nil {
				return err
			}
			v, err := validate.New()
			if err != nil {
				return err
			}
			st, err := badgerstore.Open(ctx, dataDir, badgerstore.Options{})
			if err != nil {
				return fmt.Errorf("import: open store %s: %w", dataDir, err)
			}
			defer st.Close()

			errOut := cmd.ErrOrStderr()
			bar := newProgressLine(errOut)
			opts.Progress = bar.update
			opts.OnError = func(le *ingest.LineError) {
				bar.clear()
				fmt.Fprintln(errOut, le.Error())
			}
			sum, err := ingest.New(st, v, opts).Load(ctx, srcs...)
			bar.clear()
			if sum != nil {
				printSummary(cmd.OutOrStdout(), sum)
			}
			if err != nil {
				return err
			}
			if sum.Failed > 0 {
				return fmt.Errorf("import: %d of %d resources failed validation or storage", sum.Failed, sum.Read)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "./data", "store directory")
	f.StringVar(&server, "server", "", "load through a running server's $import (FHIR base URL, e.g. http://127.0.0.1:8080/fhir; token from EQUITAS_TOKEN) instead of opening --data")
	f.IntVar(&opts.Workers, "workers", 0, "validation workers (default GOMAXPROCS)")
	f.IntVar(&opts.BatchSize, "batch", 0, "resources per commit (default 500)")
	return cmd
}

func printSummary(w io.Writer, s *ingest.Summary) {
	rate := float64(s.Read) / max(s.Elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "read %d resources from %d sources (%.1f MB) in %s (%.0f resources/s): %d written, %d unchanged, %d deleted, %d failed\n",
		s.Read, s.Sources, float64(s.Bytes)/1e6, s.Elapsed.Round(time.Millisecond), rate,
		total(s.Written), total(s.Unchanged), total(s.Deleted), s.Failed)
	types := map[string]bool{}
	for _, m := range []map[string]int64{s.Written, s.Unchanged, s.Deleted} {
		for t := range m {
			types[t] = true
		}
	}
	names := make([]string, 0, len(types))
	for t := range types {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		fmt.Fprintf(w, "  %-22s written %-8d unchanged %-8d deleted %d\n", t, s.Written[t], s.Unchanged[t], s.Deleted[t])
	}
}

func total(m map[string]int64) int64 {
	var n int64
	for _, c := range m {
		n += c
	}
	return n
}

// progressLine redraws one status line on a terminal, at most a few times
// a second; when the output is not a terminal it prints nothing, so logs
// and pipes get only the summary.
type progressLine struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	start time.Time
	last  time.Time
	drawn bool
}

func newProgressLine(w io.Writer) *progressLine {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressLine{w: w, tty: tty, start: time.Now()}
}

func (p *progressLine) update(pr ingest.Progress) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	rate := float64(pr.Resources+pr.Failed) / max(now.Sub(p.start).Seconds(), 1e-9)
	pct := ""
	if pr.TotalBytes > 0 {
		pct = fmt.Sprintf("%5.1f%% ", 100*float64(pr.Bytes)/float64(pr.TotalBytes))
	}
	fmt.Fprintf(p.w, "\r%s%d resources, %d failed, %.0f/s ", pct, pr.Resources, pr.Failed, rate)
	p.drawn = true
}

func (p *progressLine) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
