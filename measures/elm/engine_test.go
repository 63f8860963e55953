package elm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/elm/cql"
)

// elmLib wraps statements into an ELM library document.
func elmLib(t *testing.T, name, extra string, defs ...string) *elm.Library {
	t.Helper()
	src := fmt.Sprintf(`{"library":{"identifier":{"id":%q,"version":"1"},"usings":{"def":[{"localIdentifier":"FHIR","uri":"http://hl7.org/fhir"}]},%s"statements":{"def":[%s]}}}`,
		name, extra, strings.Join(defs, ","))
	lib, err := elm.ParseLibrary([]byte(src))
	require.NoError(t, err)
	return lib
}

func def(name, expr string) string {
	return fmt.Sprintf(`{"name":%q,"context":"Patient","expression":%s}`, name, expr)
}

const (
	sys  = "{urn:hl7-org:elm-types:r1}"
	fhir = "{http://hl7.org/fhir}"
)

func lit(typ, v string) string {
	return fmt.Sprintf(`{"type":"Literal","valueType":"%s%s","value":%q}`, sys, typ, v)
}

func retrieve(typ, extra string) string {
	return fmt.Sprintf(`{"type":"Retrieve","dataType":"%s%s"%s}`, fhir, typ, extra)
}

type memSource map[string][]string

func (m memSource) Retrieve(_ context.Context, t string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for _, s := range m[t] {
		out = append(out, json.RawMessage(s))
	}
	return out, nil
}

func ids(t *testing.T, v cql.Value) []string {
	t.Helper()
	lst, ok := v.(cql.List)
	require.True(t, ok, "want a list, got %T", v)
	out := []string{}
	for _, e := range lst {
		out = append(out, e.(*cql.FHIR).ID())
	}
	return out
}

func TestRetrieveFiltering(t *testing.T) {
	terms := elm.NewMemoryTerminology()
	terms.Add("http://example.org/vs/htn", "", cql.Code{System: "http://snomed.info/sct", Code: "59621000"})
	lib := elmLib(t, "R",
		`"codeSystems":{"def":[{"name":"LOINC","id":"http://loinc.org"}]},
		 "valueSets":{"def":[{"name":"HTN","id":"http://example.org/vs/htn"}]},
		 "codes":{"def":[{"name":"BP","id":"85354-9","codeSystem":{"name":"LOINC"}}]},`,
		def("BP", retrieve("Observation", `,"templateId":"http://hl7.org/fhir/StructureDefinition/bp"`)),
		def("HTN", retrieve("Condition", `,"codeProperty":"code","codeComparator":"in","codes":{"type":"ValueSetRef","name":"HTN"}`)),
		def("BPByCode", retrieve("Observation", `,"codeProperty":"code","codeComparator":"~","codes":{"type":"ToList","operand":{"type":"CodeRef","name":"BP"}}`)),
		def("EncIn2025", retrieve("Encounter", `,"dateProperty":"period","dateRange":{"type":"Interval","lowClosed":true,"highClosed":true,"low":`+lit("DateTime", "2025-01-01T00:00:00.000Z")+`,"high":`+lit("DateTime", "2025-12-31T23:59:59.999Z")+`}`)),
		def("Cond", retrieve("Condition", `,"templateId":"http://hl7.org/fhir/us/qicore/StructureDefinition/qicore-condition-encounter-diagnosis"`)),
	)
	data := memSource{
		"Observation": {
			`{"resourceType":"Observation","id":"tagged","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/bp"]},"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]}}`,
			`{"resourceType":"Observation","id":"untagged","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]}}`,
			`{"resourceType":"Observation","id":"other","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]}}`,
		},
		"Condition": {
			`{"resourceType":"Condition","id":"htn","category":[{"coding":[{"code":"encounter-diagnosis"}]}],"code":{"coding":[{"system":"http://snomed.info/sct","code":"59621000"}]}}`,
			`{"resourceType":"Condition","id":"other","category":[{"coding":[{"code":"problem-list-item"}]}],"code":{"coding":[{"system":"http://snomed.info/sct","code":"1"}]}}`,
		},
		"Encounter": {
			`{"resourceType":"Encounter","id":"in","period":{"start":"2025-03-01T10:00:00Z","end":"2025-03-01T11:00:00Z"}}`,
			`{"resourceType":"Encounter","id":"out","period":{"start":"2024-03-01T10:00:00Z","end":"2024-03-01T11:00:00Z"}}`,
		},
	}
	tests := []struct {
		mode elm.ProfileMode
		def  string
		want []string
	}{
		{elm.ProfileMetaTag, "BP", []string{"tagged"}},
		{elm.ProfileIgnore, "BP", []string{"tagged", "untagged", "other"}},
		{elm.ProfileInfer, "BP", []string{"tagged", "untagged"}},
		{elm.ProfileMetaTag, "HTN", []string{"htn"}},
		{elm.ProfileMetaTag, "BPByCode", []string{"tagged", "untagged"}},
		{elm.ProfileMetaTag, "EncIn2025", []string{"in"}},
		{elm.ProfileMetaTag, "Cond", []string{}},
		{elm.ProfileInfer, "Cond", []string{"htn"}},
	}
	for _, tc := range tests {
		prog, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), terms, elm.Options{Profiles: tc.mode})
		require.NoError(t, err)
		ectx := prog.NewContext()
		require.NoError(t, ectx.Reset(context.Background(), data, nil))
		v, err := ectx.Eval(tc.def)
		require.NoError(t, err)
		assert.Equal(t, tc.want, ids(t, v), "%s mode %d", tc.def, tc.mode)
	}
}

func TestCompileFailsLoudly(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		wantErr error
		mention string
	}{
		{"unknown node", `{"type":"FancyNewOperator","locator":"3:5-3:9"}`, elm.ErrUnsupported, "FancyNewOperator"},
		{"unknown definition", `{"type":"ExpressionRef","name":"Nope"}`, elm.ErrInvalidELM, "Nope"},
		{"unknown alias", `{"type":"AliasRef","name":"X"}`, elm.ErrInvalidELM, "X"},
		{"retrieve of non-FHIR model", `{"type":"Retrieve","dataType":"{urn:other}Thing"}`, elm.ErrUnsupported, "Thing"},
		{"retrieve include", retrieve("Encounter", `,"include":[{"relatedDataType":"x"}]`), elm.ErrUnsupported, "include"},
		{"bad literal", lit("Integer", "12x"), elm.ErrInvalidELM, "12x"},
		{"code from unknown code system", `{"type":"Code","code":"1","system":{"name":"NoSuchCS"}}`, elm.ErrInvalidELM, "NoSuchCS"},
	}
	for _, tc := range tests {
		lib := elmLib(t, "Bad", "", def("X", tc.expr))
		_, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{})
		require.Error(t, err, tc.name)
		assert.ErrorIs(t, err, tc.wantErr, tc.name)
		assert.Contains(t, err.Error(), tc.mention, tc.name)
		assert.Contains(t, err.Error(), "Bad|1", tc.name)
		var ce *elm.CompileError
		assert.True(t, errors.As(err, &ce), tc.name)
	}
	// Missing value sets fail unless allowed.
	lib := elmLib(t, "VS", `"valueSets":{"def":[{"name":"X","id":"http://missing"}]},`, def("Y", lit("Boolean", "true")))
	_, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{})
	assert.ErrorIs(t, err, elm.ErrValueSetNotFound)
	_, err = elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{AllowMissingValueSets: true})
	assert.NoError(t, err)
}

func TestFunctionsParametersAndIncludes(t *testing.T) {
	fn := func(name, opType, body string) string {
		return fmt.Sprintf(`{"type":"FunctionDef","name":%q,"context":"Patient","operand":[{"name":"x","operandTypeSpecifier":{"type":"NamedTypeSpecifier","name":%q}}],"expression":%s}`, name, opType, body)
	}
	common := elmLib(t, "Common",
		`"parameters":{"def":[{"name":"Period","default":`+lit("Integer", "1")+`}]},`,
		fn("Describe", sys+"Integer", lit("String", "integer")),
		fn("Describe", sys+"String", lit("String", "string")),
		fn("Describe", fhir+"Period", lit("String", "period")),
		fn("Double", sys+"Integer", `{"type":"Multiply","operand":[{"type":"OperandRef","name":"x"},`+lit("Integer", "2")+`]}`),
		def("Seen", `{"type":"ParameterRef","name":"Period"}`),
	)
	root := elmLib(t, "Root",
		`"includes":{"def":[{"localIdentifier":"C","path":"Common","version":"1"}]},
		 "parameters":{"def":[{"name":"Period","default":`+lit("Integer", "7")+`}]},`,
		def("Int", `{"type":"FunctionRef","libraryName":"C","name":"Describe","operand":[`+lit("Integer", "5")+`]}`),
		def("Str", `{"type":"FunctionRef","libraryName":"C","name":"Describe","operand":[`+lit("String", "s")+`]}`),
		def("Per", `{"type":"FunctionRef","libraryName":"C","name":"Describe","operand":[{"type":"Property","path":"period","source":{"type":"SingletonFrom","operand":`+retrieve("Encounter", "")+`}}]}`),
		def("Doubled", `{"type":"FunctionRef","libraryName":"C","name":"Double","operand":[{"type":"ParameterRef","name":"Period"}]}`),
		def("Inherited", `{"type":"ExpressionRef","libraryName":"C","name":"Seen"}`),
		fn("Observe", sys+"Integer", `{"type":"Add","operand":[{"type":"OperandRef","name":"x"},`+lit("Integer", "1")+`]}`),
	)
	set := elm.NewLibrarySet(common, root)
	prog, err := elm.Compile(context.Background(), root.ID, set, elm.NewMemoryTerminology(), elm.Options{})
	require.NoError(t, err)
	assert.Equal(t, []string{"Int", "Str", "Per", "Doubled", "Inherited"}, prog.Definitions())
	assert.Equal(t, []string{"Period"}, prog.Parameters())
	data := memSource{"Encounter": {`{"resourceType":"Encounter","id":"e","period":{"start":"2025-01-01"}}`}}

	ectx := prog.NewContext()
	res, err := ectx.Evaluate(context.Background(), data, nil)
	require.NoError(t, err)
	for name, want := range map[string]cql.Value{
		"Int": cql.String("integer"), "Str": cql.String("string"), "Per": cql.String("period"),
		"Doubled": cql.Integer(14), "Inherited": cql.Integer(7),
	} {
		got, ok := res.Get(name)
		require.True(t, ok, name)
		assert.Equal(t, want, got, name)
	}
	// Parameters override defaults, and included libraries inherit them.
	res, err = ectx.Evaluate(context.Background(), data, map[string]cql.Value{"Period": cql.Integer(10)})
	require.NoError(t, err)
	v, _ := res.Get("Inherited")
	assert.Equal(t, cql.Integer(10), v)
	_, err = ectx.Evaluate(context.Background(), data, map[string]cql.Value{"Nope": cql.Integer(1)})
	assert.Error(t, err)

	out, err := ectx.Call("Observe", cql.Integer(41))
	require.NoError(t, err)
	assert.Equal(t, cql.Integer(42), out)
	_, err = ectx.Call("Nope")
	assert.Error(t, err)
}

func TestRuntimeErrors(t *testing.T) {
	lib := elmLib(t, "E", "",
		def("Many", `{"type":"SingletonFrom","operand":{"type":"List","element":[`+lit("Integer", "1")+`,`+lit("Integer", "2")+`]}}`),
		def("Msg", `{"type":"Message","source":`+lit("Integer", "1")+`,"condition":`+lit("Boolean", "true")+`,"code":`+lit("String", "X1")+`,"severity":`+lit("String", "Error")+`,"message":`+lit("String", "boom")+`}`),
		def("Warn", `{"type":"Message","source":`+lit("Integer", "1")+`,"condition":`+lit("Boolean", "true")+`,"code":`+lit("String", "X1")+`,"severity":`+lit("String", "Warning")+`,"message":`+lit("String", "careful")+`}`),
		def("Fine", lit("Integer", "3")),
	)
	prog, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{})
	require.NoError(t, err)
	ectx := prog.NewContext()
	require.NoError(t, ectx.Reset(context.Background(), memSource{}, nil))
	_, err = ectx.Eval("Many")
	assert.ErrorContains(t, err, "SingletonFrom")
	_, err = ectx.Eval("Msg")
	var ee *elm.EvalError
	require.ErrorAs(t, err, &ee)
	assert.Contains(t, err.Error(), "boom")
	v, err := ectx.Eval("Warn")
	require.NoError(t, err)
	assert.Equal(t, cql.Integer(1), v)
	v, err = ectx.Eval("Fine")
	require.NoError(t, err, "the context stays usable after an error")
	assert.Equal(t, cql.Integer(3), v)
}

func TestFHIRPrimitivesAndChoices(t *testing.T) {
	prop := func(path, src string) string {
		return fmt.Sprintf(`{"type":"Property","path":%q,"source":%s}`, path, src)
	}
	patient := `{"type":"SingletonFrom","operand":` + retrieve("Patient", "") + `}`
	obs := `{"type":"SingletonFrom","operand":` + retrieve("Observation", "") + `}`
	lib := elmLib(t, "P", "",
		def("BirthDate", prop("value", prop("birthDate", patient))),
		def("BirthExt", `{"type":"Count","source":`+prop("extension", prop("birthDate", patient))+`}`),
		def("Value", prop("value", obs)),
		def("Effective", prop("effective", obs)),
		def("Given", prop("value", `{"type":"First","source":`+prop("given", `{"type":"First","source":`+prop("name", patient)+`}`)+`}`)),
		def("IsQuantity", `{"type":"Is","operand":`+prop("value", obs)+`,"isTypeSpecifier":{"type":"NamedTypeSpecifier","name":"`+fhir+`Quantity"}}`),
	)
	prog, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{})
	require.NoError(t, err)
	data := memSource{
		"Patient":     {`{"resourceType":"Patient","id":"p","birthDate":"1960-06-15","_birthDate":{"extension":[{"url":"x","valueDateTime":"1960-06-15T08:00:00Z"}]},"name":[{"given":["Ann","B"]}]}`},
		"Observation": {`{"resourceType":"Observation","id":"o","valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"},"effectiveDateTime":"2025-02-03T04:05:06Z"}`},
	}
	ectx := prog.NewContext()
	res, err := ectx.Evaluate(context.Background(), data, nil)
	require.NoError(t, err)
	get := func(n string) cql.Value { v, _ := res.Get(n); return v }
	assert.Equal(t, cql.Date{Year: 1960, Month: 6, Day: 15, Precision: cql.Day}, get("BirthDate"))
	assert.Equal(t, cql.Integer(1), get("BirthExt"))
	f, ok := get("Value").(*cql.FHIR)
	require.True(t, ok)
	assert.Equal(t, "Quantity", f.Type.Name)
	assert.Equal(t, cql.Quantity{Value: 120, Unit: "mm[Hg]"}, cql.ToCQLValue(f))
	e, ok := get("Effective").(*cql.FHIR)
	require.True(t, ok)
	assert.Equal(t, "dateTime", e.Type.Name)
	assert.Equal(t, cql.String("Ann"), get("Given"))
	assert.Equal(t, cql.Boolean(true), get("IsQuantity"))
}

func TestResourceSetOperators(t *testing.T) {
	var obs []string
	for i := 0; i < 20; i++ {
		obs = append(obs, fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final"}`, i))
	}
	all := retrieve("Observation", "")
	firstTen := `{"type":"Take","operand":[` + all + `,` + lit("Integer", "10") + `]}`
	lib := elmLib(t, "S", "",
		def("Union", `{"type":"Union","operand":[`+all+`,`+all+`]}`),
		def("Intersect", `{"type":"Intersect","operand":[`+firstTen+`,`+all+`]}`),
		def("Except", `{"type":"Except","operand":[`+all+`,`+firstTen+`]}`),
	)
	prog, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{})
	require.NoError(t, err)
	res, err := prog.NewContext().Evaluate(context.Background(), memSource{"Observation": obs}, nil)
	require.NoError(t, err)
	for name, want := range map[string]int{"Union": 20, "Intersect": 10, "Except": 10} {
		v, _ := res.Get(name)
		assert.Len(t, ids(t, v), want, name)
	}
	v, _ := res.Get("Except")
	assert.Equal(t, "o10", ids(t, v)[0])
}

func TestWarningsForUnknownElements(t *testing.T) {
	q := func(path string) string {
		return `{"type":"Query","source":[{"alias":"E","expression":` + retrieve("Encounter", "") + `}],"where":{"type":"IsNull","operand":{"type":"Property","scope":"E","path":"` + path + `"}}}`
	}
	lib := elmLib(t, "W", "", def("Good", q("period")), def("Bad", q("perod")), def("Deep", q("period.strat")))
	prog, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{})
	require.NoError(t, err)
	w := prog.Warnings()
	require.Len(t, w, 2)
	assert.Contains(t, w[0]+w[1], `"perod"`)
	assert.Contains(t, w[0]+w[1], `"strat"`)
}

func TestWarningsAreDeduplicated(t *testing.T) {
	inner := `{"type":"Property","scope":"E","path":"perod"}`
	q := `{"type":"Query","source":[{"alias":"E","expression":` + retrieve("Encounter", "") + `}],"where":{"type":"IsNull","operand":{"type":"Property","path":"start","source":` + inner + `}}}`
	lib := elmLib(t, "W2", "", def("Bad", q))
	prog, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{})
	require.NoError(t, err)
	assert.Len(t, prog.Warnings(), 1)
}

func TestFHIRHelpersExternals(t *testing.T) {
	ext := func(name string, ops ...string) string {
		var parts []string
		for i, o := range ops {
			parts = append(parts, fmt.Sprintf(`{"name":"a%d","operandTypeSpecifier":{"type":"NamedTypeSpecifier","name":%q}}`, i, o))
		}
		return fmt.Sprintf(`{"type":"FunctionDef","name":%q,"context":"Patient","external":true,"operand":[%s]}`, name, strings.Join(parts, ","))
	}
	helpers := elmLib(t, "FHIRHelpers", "",
		ext("resolve", fhir+"Reference"), ext("memberOf", fhir+"CodeableConcept", sys+"String"),
		ext("conformsTo", fhir+"Resource", sys+"String"), ext("reference", fhir+"Resource"))
	call := func(name string, args ...string) string {
		return fmt.Sprintf(`{"type":"FunctionRef","libraryName":"FH","name":%q,"operand":[%s]}`, name, strings.Join(args, ","))
	}
	obs := `{"type":"SingletonFrom","operand":` + retrieve("Observation", "") + `}`
	root := elmLib(t, "X", `"includes":{"def":[{"localIdentifier":"FH","path":"FHIRHelpers","version":"1"}]},`,
		def("Enc", call("resolve", `{"type":"Property","path":"encounter","source":`+obs+`}`)),
		def("Member", call("memberOf", `{"type":"Property","path":"code","source":`+obs+`}`, lit("String", "http://vs"))),
		def("Conforms", call("conformsTo", obs, lit("String", "http://hl7.org/fhir/StructureDefinition/bp"))),
		def("Ref", `{"type":"Property","path":"value","source":{"type":"Property","path":"reference","source":`+call("reference", obs)+`}}`),
	)
	terms := elm.NewMemoryTerminology()
	terms.Add("http://vs", "", cql.Code{System: "http://loinc.org", Code: "85354-9"})
	prog, err := elm.Compile(context.Background(), root.ID, elm.NewLibrarySet(helpers, root), terms, elm.Options{})
	require.NoError(t, err)
	data := memSource{
		"Observation": {`{"resourceType":"Observation","id":"o1","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/bp"]},"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"encounter":{"reference":"Encounter/e2"}}`},
		"Encounter":   {`{"resourceType":"Encounter","id":"e1"}`, `{"resourceType":"Encounter","id":"e2"}`},
	}
	res, err := prog.NewContext().Evaluate(context.Background(), data, nil)
	require.NoError(t, err)
	enc, _ := res.Get("Enc")
	require.IsType(t, &cql.FHIR{}, enc)
	assert.Equal(t, "e2", enc.(*cql.FHIR).ID())
	for name, want := range map[string]cql.Value{"Member": cql.Boolean(true), "Conforms": cql.Boolean(true), "Ref": cql.String("Observation/o1")} {
		v, _ := res.Get(name)
		assert.Equal(t, want, v, name)
	}
}

func TestCancelledContext(t *testing.T) {
	lib := elmLib(t, "C", "", def("Encs", retrieve("Encounter", "")))
	prog, err := elm.Compile(context.Background(), lib.ID, elm.NewLibrarySet(lib), elm.NewMemoryTerminology(), elm.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = prog.NewContext().Evaluate(ctx, memSource{}, nil)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestConceptLiteral compiles a Concept whose codes carry no "type" (the
// translator leaves it implicit) from several goroutines at once: the
// compiler must not write into the shared parsed library (go test -race
// reports it if it does) and every program must see the same codes.
func TestConceptLiteral(t *testing.T) {
	lib := elmLib(t, "C", `"codeSystems":{"def":[{"name":"LOINC","id":"http://loinc.org","version":"2.76"}]},`,
		def("BP", `{"type":"Concept","display":"Blood pressure","code":[`+
			`{"code":"85354-9","system":{"name":"LOINC"},"display":"BP panel"},`+
			`{"code":"8480-6","system":{"name":"LOINC"}}]}`),
	)
	set := elm.NewLibrarySet(lib)
	want := &cql.Concept{Display: "Blood pressure", Codes: []cql.Code{
		{Code: "85354-9", System: "http://loinc.org", Version: "2.76", Display: "BP panel"},
		{Code: "8480-6", System: "http://loinc.org", Version: "2.76"},
	}}
	const compiles = 4
	got := make([]cql.Value, compiles)
	errs := make([]error, compiles)
	var wg sync.WaitGroup
	for i := range compiles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prog, err := elm.Compile(context.Background(), lib.ID, set, elm.NewMemoryTerminology(), elm.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			ectx := prog.NewContext()
			if errs[i] = ectx.Reset(context.Background(), memSource{}, nil); errs[i] == nil {
				got[i], errs[i] = ectx.Eval("BP")
			}
		}()
	}
	wg.Wait()
	for i := range compiles {
		require.NoError(t, errs[i], "compile %d", i)
		assert.Equal(t, want, got[i], "compile %d", i)
	}
}
