package main

import (
	"context"
	"net/http"

	"github.com/spf13/pflag"

	"github.com/equitas/equitas/measures/dashboard"
)

// dashboardOptions are the serve flags of the /ui/ dashboard (issue 8).
type dashboardOptions struct {
	disabled bool
}

func (o *dashboardOptions) flags(f *pflag.FlagSet) {
	f.BoolVar(&o.disabled, "no-ui", false, "do not serve the /ui/ dashboard")
}

// mountDashboard serves the dashboard at /ui/. The page is static: it reads
// the FHIR API with the user's own token, so it needs no access rules here.
func mountDashboard(_ context.Context, env *serveEnv, o dashboardOptions) (stop func(), err error) {
	if o.disabled {
		return nil, nil
	}
	if !dashboard.ChartLibraryBuilt() {
		env.log.Warn("the dashboard's chart library is not in this build (run `make ui` before building): /ui/ shows no charts")
	}
	root := env.srv.Router()
	root.Handle("/ui/*", http.StripPrefix("/ui", dashboard.Handler()))
	root.Get("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently).ServeHTTP)
	return nil, nil
}
