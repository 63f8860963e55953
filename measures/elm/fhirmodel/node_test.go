package fhirmodel_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm/fhirmodel"
)

func TestParse(t *testing.T) {
	var a fhirmodel.Arena
	for round := 0; round < 3; round++ {
		n, err := a.Parse([]byte(`{"resourceType":"Observation","id":"o1","valueQuantity":{"value":120.50,"unit":"mm[Hg]"},"component":[{"code":{"text":"a\u00e9\n"}},{}],"flag":true,"none":null,"arr":[]}`))
		require.NoError(t, err)
		assert.Equal(t, "o1", n.Get("id").Str)
		assert.Equal(t, "120.50", n.Get("valueQuantity").Get("value").Str)
		assert.Equal(t, fhirmodel.Number, n.Get("valueQuantity").Get("value").Kind)
		assert.Equal(t, "aé\n", n.Get("component").Vals[0].Get("code").Get("text").Str)
		assert.Len(t, n.Get("component").Vals, 2)
		assert.True(t, n.Get("flag").Bool)
		assert.Equal(t, fhirmodel.Null, n.Get("none").Kind)
		assert.Empty(t, n.Get("arr").Vals)
		assert.Nil(t, n.Get("missing"))
		a.Reset()
	}
	nums, err := a.Parse([]byte(`[0,-0,10,-0.5e+3,1E-2,2.50]`))
	require.NoError(t, err)
	var txt []string
	for _, v := range nums.Vals {
		txt = append(txt, v.Str)
	}
	assert.Equal(t, []string{"0", "-0", "10", "-0.5e+3", "1E-2", "2.50"}, txt)
	for _, bad := range []string{``, `{`, `{"a":}`, `[1,]`, `{"a":1}x`, `"\x"`, `{"a" 1}`, `tru`, `-`, "\"\x01\"", `00`, `[01]`, `1.`, `1.e5`, `1e`, `-a`, `1e999`} {
		_, err := a.Parse([]byte(bad))
		assert.ErrorIs(t, err, fhirmodel.ErrSyntax, bad)
	}
}

func TestModel(t *testing.T) {
	m := fhirmodel.R4()
	obs := m.Type("Observation")
	require.NotNil(t, obs)
	assert.True(t, obs.Resource)
	v := obs.Field("value")
	require.NotNil(t, v)
	assert.NotEmpty(t, v.Choices)
	assert.True(t, m.Type("Age").IsA("Quantity"))
	assert.True(t, m.Type("code").IsA("string"))
	assert.Equal(t, "date", m.Type("Patient").Field("birthDate").Type.Name)
	assert.True(t, obs.Field("component").List)
	assert.NotNil(t, obs.Field("id"), "inherited from Resource")
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"a":[1,2,{"b":"c\u0041"}],"d":null}`))
	f.Add([]byte(`{"a":1}x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a fhirmodel.Arena
		n, err := a.Parse(data)
		if err != nil {
			assert.ErrorIs(t, err, fhirmodel.ErrSyntax)
			return
		}
		assert.NotNil(t, n)
		assert.True(t, json.Valid(data), "accepted invalid JSON %q", data)
	})
}
