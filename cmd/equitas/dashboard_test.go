package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/dashboard"
	"github.com/equitas/equitas/store/badgerstore"
)

// needInCI skips a test whose outside dependency is missing on a developer
// machine, and fails it in CI, where .ci/run installs the dependency.
func needInCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	needInCI(t, "no Chromium on PATH (Debian package chromium)")
	return ""
}

// artifactDir is where browser tests leave screenshots: out/test-artifacts
// at the repository root (ignored by git), kept after the test for a look.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "go.mod not found above the test")
		dir = parent
	}
	out := filepath.Join(dir, "out", "test-artifacts")
	require.NoError(t, os.MkdirAll(out, 0o755))
	return out
}

// The dashboard page as a user sees it: a real server with a synthetic
// population and the official measures, the page loaded in headless
// Chromium, and every charted number checked against the API's own report.
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server with a synthetic population and a browser")
	}
	chrome := chromiumPath(t)
	if !dashboard.ChartLibraryBuilt() {
		needInCI(t, "the dashboard's chart library is not embedded: run `make ui` before `go test`")
	}
	ecqm := ecqmDir(t)
	const (
		hbp = "ControllingHighBloodPressureFHIR"
		gsd = "DiabetesGlycemicStatusAssessmentGreaterThan9PercentFHIR"
	)
	ctx := context.Background()
	dir := t.TempDir()
	pop, data := filepath.Join(dir, "pop"), filepath.Join(dir, "data")
	for _, args := range [][]string{
		{"synth", "--patients", "1500", "--seed", "1", "--out", pop, "--now", "2026-01-01"},
		{"import", "--data", data, pop},
		{"attribution", "run", "--data", data, "--method", "hybrid", "--as-of", "2025-12-31"},
	} {
		root := newRootCmd()
		root.SetArgs(args)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		require.NoError(t, root.ExecuteContext(ctx), args[0])
	}
	st, err := badgerstore.Open(ctx, data, badgerstore.Options{})
	require.NoError(t, err)
	require.NoError(t, catalog.LoadDir(ctx, st, ecqm, hbp, gsd))
	require.NoError(t, st.Close())

	base, stop := startServe(t, data, "--auth", "none")
	defer func() { assert.NoError(t, stop()) }()

	q := url.Values{
		"measure":     {hbp + "," + gsd},
		"periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"},
		"stratifier": {"race,ethnicity,language"},
		"reference":  {"best"},
	}
	// What the API says: the page must draw exactly this.
	api := url.Values{"output": {"dashboard"}}
	for k, v := range q {
		api[k] = v
	}
	res, err := http.Get(base + "/fhir/$equity-report?" + api.Encode())
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	var want dashboardReport
	require.NoError(t, json.Unmarshal(body, &want))
	require.Len(t, want.Measures, 2)

	alloc, cancel := chromedp.NewExecAllocator(ctx, append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		// This machine's network is closed: without these Chromium keeps
		// trying to reach Google's services.
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true))...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// The first action starts the browser, which lives as long as the
	// context of that call: no timeout on it, only on what follows.
	page := base + "/ui/?" + q.Encode()
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(page)))
	tctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	_, err = chromedp.Run(tctx, chromedp.Poll[bool](`["ready","error"].includes(document.querySelector("#status").dataset.state)`,
		chromedp.WithPollingTimeout(90*time.Second)))
	require.NoError(t, err, "page did not finish loading")
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	state, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector("#status").dataset.state`))
	require.NoError(t, err)
	status, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector("#status").textContent`))
	require.NoError(t, err)
	got, err := chromedp.Run(tctx, chromedp.Evaluate[[]pageChart](pageChartsJS))
	require.NoError(t, err)
	maskedCells, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("td.masked").length`))
	require.NoError(t, err)
	rows, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("table.strata tbody tr").length`))
	require.NoError(t, err)
	shot := filepath.Join(artifactDir(t), "dashboard.png")
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	t.Logf("dashboard screenshot: %s", shot)
	require.Equal(t, "ready", state, "page status: %s", status)

	// One chart per measure and stratifier, drawn (pixels on the canvas)
	// with the API's groups, rates, intervals and reference.
	var wantCharts, wantMasked, wantRows int
	for _, m := range want.Measures {
		for _, s := range m.Stratifiers {
			wantCharts++
			wantRows += len(s.Strata)
			var c *pageChart
			for i := range got {
				if got[i].Measure == m.ID && got[i].Stratifier == s.Code {
					c = &got[i]
				}
			}
			require.NotNil(t, c, "chart for %s by %s", m.ID, s.Code)
			assert.Greater(t, c.Painted, 2000, "%s by %s: canvas has drawn pixels", m.ID, s.Code)
			labels := []string{}
			var rates []float64
			for _, x := range s.Strata {
				if x.Suppression == "privacy-primary" || x.Suppression == "privacy-complementary" {
					wantMasked++
					continue
				}
				if x.Rate == nil {
					continue
				}
				labels = append(labels, x.label())
				rates = append(rates, 100**x.Rate)
			}
			assert.Equal(t, labels, c.Labels, "%s by %s: groups", m.ID, s.Code)
			require.Len(t, c.Data, len(rates))
			for i := range rates {
				assert.InDelta(t, rates[i], c.Data[i], 1e-9, "%s by %s: rate of %s", m.ID, s.Code, labels[i])
			}
			if s.Reference != nil {
				require.NotNil(t, c.Reference, "%s by %s: reference line", m.ID, s.Code)
				assert.InDelta(t, s.Reference.Rate, *c.Reference, 1e-12)
			} else {
				assert.Nil(t, c.Reference)
			}
		}
	}
	assert.Len(t, got, wantCharts)
	assert.Equal(t, wantRows, rows, "one table row per stratum")
	assert.Equal(t, 4*wantMasked, maskedCells, "suppressed strata mask their counts, rate and interval")
	assert.Contains(t, status, fmt.Sprintf("%d chart(s)", wantCharts))

	// The planted CMS165 disparity is what the page shows: Black patients'
	// control rate below White patients'.
	for _, c := range got {
		if c.Measure == hbp && strings.HasPrefix(c.Stratifier, "race") {
			white, black := c.rate("White"), c.rate("Black or African American")
			require.False(t, math.IsNaN(white) || math.IsNaN(black), "White and Black strata charted: %v", c.Labels)
			assert.Less(t, black, white)
		}
	}
	// The attribution lists as the API lists them, one table row each.
	groups := getJSON(t, base+"/fhir/Group?_summary=true&_count=200", "").Get("entry.#.resource").Array()
	require.NotEmpty(t, groups, "attribution run wrote lists")
	statuses, err := chromedp.Run(tctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#attribution tbody tr")].map((tr) => tr.children[3].textContent)`))
	require.NoError(t, err)
	for _, st := range statuses {
		assert.Contains(t, []string{"draft", "open", "final"}, st, "list status shown")
	}
	listed, err := chromedp.Run(tctx, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll("#attribution tbody tr")].map((tr) => [tr.dataset.group, tr.children[4].textContent]))`))
	require.NoError(t, err)
	require.Len(t, listed, len(groups))
	for _, g := range groups {
		assert.Equal(t, g.Get("quantity").String(), listed[g.Get("id").String()], "member count of %s", g.Get("id"))
	}

	// One provider's list: the report and the open gaps of its members.
	group := groups[0].Get("id").String()
	q.Set("subject", "Group/"+group)
	gq := url.Values{"periodStart": {"2025-01-01"}, "periodEnd": {"2025-12-31"}, "subject": {"Group/" + group},
		"status": {"open-gap"}, "measureId": {hbp, gsd}, "_format": {"text/csv"}}
	res, err = http.Get(base + "/fhir/Measure/$care-gaps?" + gq.Encode())
	require.NoError(t, err)
	csvBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(csvBody))
	gapRows, err := csv.NewReader(bytes.NewReader(csvBody)).ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, gapRows, "CSV header")
	require.NoError(t, chromedp.Do(tctx, chromedp.Navigate(base+"/ui/?"+q.Encode())))
	_, err = chromedp.Run(tctx, chromedp.Poll[bool](`["ready","error"].includes(document.querySelector("#status").dataset.state)`,
		chromedp.WithPollingTimeout(90*time.Second)))
	require.NoError(t, err)
	status, err = chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector("#status").textContent`))
	require.NoError(t, err)
	shown, err := chromedp.Run(tctx, chromedp.Evaluate[[][]string](
		`[...document.querySelectorAll("#gaps tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent))`))
	require.NoError(t, err)
	assert.Contains(t, status, "chart(s)", "report for Group/%s", group)
	assert.Equal(t, gapRows[1:], shown, "the page lists the API's open gaps of Group/%s", group)
	png, err = chromedp.Run(tctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(artifactDir(t), "dashboard-group.png"), png, 0o644))
}

// pageChartsJS reads back every rendered chart: its data as Chart.js holds
// it and how many canvas pixels were painted.
const pageChartsJS = `[...document.querySelectorAll("canvas[data-chart-status=rendered]")].map((cv) => {
  const ch = Chart.getChart(cv);
  const px = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
  let painted = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
  return {
    measure: cv.closest("[data-measure]").dataset.measure,
    stratifier: cv.closest("[data-stratifier]").dataset.stratifier,
    labels: ch.data.labels, data: ch.data.datasets[0].data,
    reference: ch.options.plugins.equitasIntervals.reference,
    painted,
  };
})`

type pageChart struct {
	Measure    string    `json:"measure"`
	Stratifier string    `json:"stratifier"`
	Labels     []string  `json:"labels"`
	Data       []float64 `json:"data"`
	Reference  *float64  `json:"reference"`
	Painted    int       `json:"painted"`
}

func (c pageChart) rate(label string) float64 {
	for i, l := range c.Labels {
		if l == label {
			return c.Data[i]
		}
	}
	return math.NaN()
}

// dashboardReport is the part of the $equity-report dashboard JSON the
// page draws.
type dashboardReport struct {
	Measures []struct {
		ID          string `json:"id"`
		Stratifiers []struct {
			Code      string `json:"code"`
			Reference *struct {
				Rate float64 `json:"rate"`
			} `json:"reference"`
			Strata []dashboardStratum `json:"strata"`
		} `json:"stratifiers"`
	} `json:"measures"`
}

type dashboardStratum struct {
	Code        string   `json:"code"`
	Display     string   `json:"display"`
	Rate        *float64 `json:"rate"`
	Suppression string   `json:"suppression"`
}

func (s dashboardStratum) label() string {
	if s.Display != "" {
		return s.Display
	}
	return s.Code
}
