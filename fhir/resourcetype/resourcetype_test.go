package resourcetype

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValid(t *testing.T) {
	for name, want := range map[string]bool{
		"Patient": true, "ExplanationOfBenefit": true, "MeasureReport": true, "Bundle": true,
		"patient": false, "Foo": false, "": false, "Patient/1": false,
	} {
		assert.Equal(t, want, Valid(name), name)
	}
	assert.Len(t, All(), 146)
}
