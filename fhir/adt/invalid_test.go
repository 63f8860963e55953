package adt

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/validate"
)

// TestInvalidAtKeepsPatientDataOut: the error of a mapped resource failing
// validation is logged, so it names the element but not the value at fault.
func TestInvalidAtKeepsPatientDataOut(t *testing.T) {
	v, err := validate.New()
	require.NoError(t, err)
	_, _, verr := v.Resource([]byte(`{"resourceType":"Patient","id":"p1","birthDate":"1980-02-31X","gender":"female"}`))
	require.Error(t, verr)
	require.Contains(t, verr.Error(), "1980-02-31X", "the validator quotes the value (what invalidAt must drop)")

	at := invalidAt(verr)
	assert.NotContains(t, at, "1980-02-31X")
	assert.Contains(t, at, "birthDate")
	assert.Equal(t, "an unlocated element", invalidAt(errors.New("boom")))
}
