package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/equitas/equitas/bulk/synth"
)

func newSynthCmd() *cobra.Command {
	var (
		opts    synth.Options
		out     string
		now     string
		truthTo string
	)
	cmd := &cobra.Command{
		Use:   "synth --patients N --seed S --out DIR",
		Short: "Generate a deterministic synthetic population as FHIR NDJSON (one file per resource type)",
		Long: `synth writes DIR/<ResourceType>.ndjson for a synthetic population: patients with
US Core race, ethnicity, birth sex and preferred language, providers and payers,
coverage, encounters, claims, hypertension and diabetes with blood-pressure and
HbA1c results. The same --seed and --now give byte-identical output. The data
covers the two years before --now; the measurement period is the calendar year
before it. Planted disparities are documented in bulk/synth/DISPARITIES.md; --truth
writes the measure results the data implies (JSON).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("synth: --out is required")
			}
			t, err := time.Parse(time.DateOnly, now)
			if err != nil {
				return fmt.Errorf("synth: --now: %w", err)
			}
			opts.Now = t
			start := time.Now()
			sum, err := synth.GenerateDir(cmd.Context(), opts, out)
			if err != nil {
				return err
			}
			elapsed := time.Since(start)
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %d patients, %d resources to %s in %s\n", sum.Patients, sum.Total(), out, elapsed.Round(time.Millisecond))
			for _, typ := range synth.ResourceTypes() {
				if n := sum.Resources[typ]; n > 0 {
					fmt.Fprintf(w, "  %-22s %d\n", typ, n)
				}
			}
			t165, t122 := sum.Truth.CMS165.Overall, sum.Truth.CMS122.Overall
			fmt.Fprintf(w, "measurement period %s: CMS165 %d/%d (%.1f%%), CMS122 %d/%d (%.1f%%)\n", sum.Truth.MeasurementPeriod,
				t165.Numerator, t165.Denominator, 100*t165.Value(), t122.Numerator, t122.Denominator, 100*t122.Value())
			if truthTo != "" {
				b, err := json.MarshalIndent(sum.Truth, "", "  ")
				if err != nil {
					return fmt.Errorf("synth: %w", err)
				}
				if err := os.WriteFile(truthTo, append(b, '\n'), 0o644); err != nil {
					return fmt.Errorf("synth: %w", err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Patients, "patients", 100, "number of patients")
	f.Uint64Var(&opts.Seed, "seed", 1, "random seed (also part of every id)")
	f.StringVar(&out, "out", "", "output directory")
	f.StringVar(&now, "now", synth.DefaultNow, "reference date (YYYY-MM-DD); data covers the two years before it")
	f.StringVar(&truthTo, "truth", "", "write the expected measure results (JSON) to this file (keep it out of --out: import loads every .json file of a directory)")
	return cmd
}
