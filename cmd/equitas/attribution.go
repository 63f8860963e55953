package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

func newAttributionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attribution",
		Short: "Compute member attribution and publish Da Vinci ATR lists",
	}
	cmd.AddCommand(newAttributionRunCmd(), newAttributionShowCmd())
	return cmd
}

func newAttributionShowCmd() *cobra.Command {
	var (
		data    string
		version uint64
		summary bool
	)
	cmd := &cobra.Command{
		Use:   "show GROUP-ID --data DIR [--version N] [--summary]",
		Short: "Print an ATR Group as the server serves it (members rendered from the index)",
		Long: `show prints one version of an attribution list's Group (the current one unless
--version is given) with the members it had at that version, as read and vread
serve it. --summary leaves the members out.`,
		Example: `  equitas attribution show atr-payer-clinic1 --data ./data --version 2`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := badgerstore.Open(ctx, data, badgerstore.Options{})
			if err != nil {
				return fmt.Errorf("attribution: open store %s: %w", data, err)
			}
			defer st.Close()
			var res *store.Resource
			if version > 0 {
				res, err = st.VRead(ctx, "Group", args[0], version)
			} else {
				res, err = st.Read(ctx, "Group", args[0])
			}
			if err != nil {
				return fmt.Errorf("attribution: Group/%s: %w", args[0], err)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if err := attribution.RenderGroup(ctx, st.KV(), res, w, summary); err != nil {
				return err
			}
			if err := w.WriteByte('\n'); err != nil {
				return err
			}
			return w.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&data, "data", "./data", "store directory")
	fl.Uint64Var(&version, "version", 0, "Group version (default: the current one)")
	fl.BoolVar(&summary, "summary", false, "leave the members out (as _summary=true)")
	return cmd
}

type attributionRunFlags struct {
	data, method, asOf, csv, status, emCodes string
	contractStart, contractEnd               string
	mostRecent                               bool
}

func newAttributionRunCmd() *cobra.Command {
	var f attributionRunFlags
	cmd := &cobra.Command{
		Use:   "run --data DIR --method prospective|retrospective|hybrid --as-of DATE",
		Short: "Attribute every patient of the store and write one ATR Group per payer–provider contract",
		Long: `run attributes every patient of the store to a provider and writes one Da Vinci
ATR Group (atr-group profile) per payer and provider organization (TIN) as a new
version, with each member's changeType computed against the previous run.

Methods: prospective uses the selected PCP (Patient.generalPractitioner, else
the Coverage's ext-attributedProvider plan assignment); retrospective counts
outpatient E&M services (ExplanationOfBenefit and Claim lines with E&M CPT
codes) in the 12 months before --as-of and picks the clinician with the most,
ties broken by the most recent service and then the highest allowed amount
(--most-recent picks the latest visit instead); hybrid is prospective where a
PCP is selected and retrospective otherwise. Members need coverage in force on
--as-of.`,
		Example: `  equitas attribution run --data ./data --method hybrid --as-of 2026-01-01 --csv attribution.csv`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runAttribution(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "./data", "store directory")
	fl.StringVar(&f.method, "method", string(attribution.Hybrid), "prospective, retrospective or hybrid")
	fl.StringVar(&f.asOf, "as-of", "", "attribution date (YYYY-MM-DD)")
	fl.BoolVar(&f.mostRecent, "most-recent", false, "retrospective: attribute to the most recent visit instead of the plurality of visits")
	fl.StringVar(&f.csv, "csv", "", "also write the lists as CSV to this file (- for stdout)")
	fl.StringVar(&f.status, "status", attribution.StatusOpen, "attributionListStatus of the lists: draft, open or final")
	fl.StringVar(&f.emCodes, "em-codes", "", "comma-separated E&M codes counted retrospectively (default: outpatient office, home, preventive and wellness visits)")
	fl.StringVar(&f.contractStart, "contract-start", "", "contract validity start (default January 1 of the as-of year)")
	fl.StringVar(&f.contractEnd, "contract-end", "", "contract validity end (default December 31 of the as-of year)")
	_ = cmd.MarkFlagRequired("as-of")
	return cmd
}

func runAttribution(cmd *cobra.Command, f attributionRunFlags) error {
	ctx := cmd.Context()
	method, err := attribution.ParseMethod(f.method)
	if err != nil {
		return err
	}
	opts := attribution.RunOptions{
		Options: attribution.Options{Method: method, MostRecent: f.mostRecent},
		Status:  f.status,
	}
	for _, d := range []struct {
		flag, value string
		dst         *time.Time
	}{{"--as-of", f.asOf, &opts.AsOf}, {"--contract-start", f.contractStart, &opts.ContractStart}, {"--contract-end", f.contractEnd, &opts.ContractEnd}} {
		if d.value == "" {
			continue
		}
		if *d.dst, err = time.Parse(time.DateOnly, d.value); err != nil {
			return fmt.Errorf("%s %q: want YYYY-MM-DD", d.flag, d.value)
		}
	}
	if f.emCodes != "" {
		opts.EMCodes = map[string]bool{}
		for _, c := range strings.Split(f.emCodes, ",") {
			if c = strings.TrimSpace(c); c != "" {
				opts.EMCodes[c] = true
			}
		}
	}
	st, err := badgerstore.Open(ctx, f.data, badgerstore.Options{})
	if err != nil {
		return fmt.Errorf("attribution: open store %s: %w", f.data, err)
	}
	defer st.Close()
	res, err := attribution.Run(ctx, st, opts)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	for _, g := range res.Groups {
		fmt.Fprintf(w, "Group/%s version %d: %d active, %d inactive members\n", g.ID, g.Version, g.Active, g.Inactive)
	}
	fmt.Fprintf(w, "attributed %d of %d patients (%s) in %s (%.0f patients/s): %d new, %d changed, %d nochange, %d dropped\n",
		res.Attributed, res.Patients, method, res.Elapsed.Round(time.Millisecond),
		float64(res.Patients)/max(res.Elapsed.Seconds(), 1e-9),
		res.Changes[attribution.ChangeNew], res.Changes[attribution.ChangeChanged],
		res.Changes[attribution.ChangeNoChange], res.Changes[attribution.ChangeDropped])
	if f.csv == "" {
		return nil
	}
	if f.csv == "-" {
		return attribution.WriteCSV(ctx, st.KV(), w)
	}
	err = writeWhole(f.csv, w, func(out io.Writer) error { return attribution.WriteCSV(ctx, st.KV(), out) })
	if err != nil {
		return fmt.Errorf("attribution: %w", err)
	}
	return nil
}
