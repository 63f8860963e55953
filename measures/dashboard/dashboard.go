// Package dashboard serves the quality and equity dashboard: one static page,
// embedded in the binary, that draws measure rates by group with confidence
// intervals, disparity tables, provider gap lists and attribution summaries
// from the server's own FHIR API ($equity-report, $care-gaps, Group search).
//
// The page holds no data of its own and needs no server-side rendering, so
// the same access rules apply to what it shows as to any other API client:
// it calls the API with the bearer token the user gives it (none when the
// server runs with --auth none).
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The chart library in web/vendor is copied from npm by `make ui`; it is
// embedded when present at build time.
//
//go:embed web/index.html web/app.js web/style.css web/vendor
var assets embed.FS

// contentSecurityPolicy allows only the page's own scripts and API calls:
// the dashboard shows PHI-adjacent data, so nothing is loaded from elsewhere
// and no inline script can run.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Handler serves the dashboard's files. Mount it with the prefix stripped,
// e.g. http.StripPrefix("/ui", dashboard.Handler()) at /ui/.
func Handler() http.Handler {
	web, err := fs.Sub(assets, "web")
	if err != nil {
		// Sub fails only for an invalid directory name, a constant here.
		panic(err)
	}
	files := http.FileServerFS(web)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// No directory listings: the page is index.html, the rest are its files.
		if r.URL.Path != "/" && r.URL.Path != "" && strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// ChartLibraryBuilt reports whether the chart library was embedded, i.e.
// whether `make ui` ran before the build.
func ChartLibraryBuilt() bool {
	_, err := fs.Stat(assets, "web/vendor/chart.umd.min.js")
	return err == nil
}
