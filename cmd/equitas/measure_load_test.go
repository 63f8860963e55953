package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/measureapi"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/measures/catalog"
	"github.com/equitas/equitas/measures/measure"
	"github.com/equitas/equitas/store/badgerstore"
)

func TestMeasureLoadIntoStore(t *testing.T) {
	ecqm := ecqmDir(t)
	data := filepath.Join(t.TempDir(), "data")
	const name = "ControllingHighBloodPressureFHIR"
	out, _, err := runMeasureCLI(t, "measure", "load", "--content", ecqm, "--measure", name, "--data", data)
	require.NoError(t, err)
	assert.Contains(t, out, name)
	// Loading again is idempotent.
	_, _, err = runMeasureCLI(t, "measure", "load", "--content", ecqm, "--measure", name, "--data", data)
	require.NoError(t, err)

	ctx := context.Background()
	st, err := badgerstore.Open(ctx, data, badgerstore.Options{})
	require.NoError(t, err)
	m, err := st.Read(ctx, "Measure", name)
	require.NoError(t, err)
	assert.EqualValues(t, 1, m.Version, "an unchanged reload writes nothing")
	compiled, err := catalog.New(st, catalog.Options{}).Measure(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, name, compiled.Def.ID)
	require.NoError(t, st.Close())

	_, _, err = runMeasureCLI(t, "measure", "load", "--content", t.TempDir(), "--data", data)
	assert.Error(t, err, "an empty content directory is refused")
	_, _, err = runMeasureCLI(t, "measure", "load", "--content", ecqm, "--measure", "Nope", "--data", data)
	assert.ErrorContains(t, err, `"Nope"`)
}

func TestMeasureLoadThroughServer(t *testing.T) {
	ecqm := ecqmDir(t)
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	srv, err := rest.New(rest.Config{Store: st})
	require.NoError(t, err)
	h, err := measureapi.New(measureapi.Options{Catalog: catalog.New(st, catalog.Options{}), Store: st, Base: srv.Base})
	require.NoError(t, err)
	h.Mount(srv)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	out, _, err := runMeasureCLI(t, "measure", "load", "--content", ecqm, "--server", hs.URL+"/fhir")
	require.NoError(t, err)
	names, err := (measureContent(ecqm)).Measures()
	require.NoError(t, err)
	for _, name := range names {
		assert.Contains(t, out, name)
		res, err := http.Get(hs.URL + "/fhir/Measure/" + name + "/$data-requirements")
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, "%s compiles from what was loaded", name)
	}
}

func measureContent(dir string) measure.Content { return measure.Content{Dir: dir} }
