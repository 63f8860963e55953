package searchparam

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// edgeBodies are resources with the shapes the extractor must treat exactly
// as the reference does: duplicate keys, nested arrays, nulls, several
// choice elements, scalars where objects are expected.
var edgeBodies = []string{
	`{"resourceType":"Observation","id":"a","id":"b","code":{"coding":[{"code":"x"},null,[{"code":"y"}]],"text":"t","text":"u"},"valueString":"s","valueQuantity":{"value":1},"valueString":"s2"}`,
	`{"resourceType":"Patient","name":[[{"family":"A"}],{"given":["B",["C"],null,7]}],"address":null,"telecom":"x","identifier":[{"system":"s","value":1},{"type":{"text":"T"},"value":"v"}]}`,
	`{"resourceType":"Group","characteristic":[{"code":{"coding":[{"system":"s","code":"c"}]},"valueCodeableConcept":{"text":"v"},"valueBoolean":true},{"code":"k","valueReference":{"reference":"Patient/p"}}]}`,
	`{"resourceType":"Encounter","period":{"start":"2020-02","end":"2019"},"subject":[{"reference":"http://x/fhir/Patient/p/_history/2"},{"reference":"#c"},{"reference":"urn:uuid:1"}],"meta":{"tag":[{"system":"s","code":"c","display":" d "}],"lastUpdated":"2020-01-01T00:00:00Z","profile":["u",null]}}`,
	`{"resourceType":"Observation","effectivePeriod":{"start":"bad"},"effectiveDateTime":"2020","component":[{"code":{"text":"c"},"valueQuantity":{"value":"1"},"valueCodeableConcept":{"coding":{"code":"single"}}}],"subject":"Patient/p","a\"b":{"c.d":1}}`,
	`{"resourceType":"Observation","code":[],"category":{},"subject":{"reference":""},"effectiveDateTime":null,"valueQuantity":{"value":5.0e2,"code":"mg","system":"u","unit":"milligram"}}`,
	`{"resourceType":"Patient","identifier":[{"type":[{"text":"a"}],"value":"1"},{"type":"x","value":"2"},{"type":{"text":"b"},"type":{"text":"c"},"value":"3","value":"4","system":"s"},{"type":{"coding":[]},"value":{"v":1}}],"name":[{"family":"A","family":"B","given":"G","text":null,"line":[["x"]]}],"telecom":[{"system":"a","system":"b","value":"v"}]}`,
	`{"resourceType":"Observation","code":{"coding":[{"code":"a","code":"b","display":"d","display":"e","system":"s","system":"t"},"str",5,{"display":" x "}],"text":""},"category":[{"text":"only"},{"code":"c","system":"s","display":"d"},{"reference":"Patient/p/_history/1"},{"value":"v","type":{"text":"t"}},{}]}`,
	`[1,2]`, `"x"`, `null`, `{}`, `{"resourceType":"Patient","birthDate":1990}`, `{"a":`, ``,
}

// sharedResources returns the test resources of ../shared/ecqm (relative to
// the module root), or nil when the directory is absent.
func sharedResources(t testing.TB) [][]byte {
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
	var out [][]byte
	_ = filepath.WalkDir(filepath.Join(dir, "..", "shared", "ecqm"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && gjson.GetBytes(b, "resourceType").Exists() {
			out = append(out, b)
		}
		return nil
	})
	return out
}

func allDefs() []Def {
	var out []Def
	for _, typ := range Types() {
		out = append(out, For(typ)...)
		if d, ok := PatientCompartmentDef(typ); ok {
			out = append(out, d)
		}
	}
	return out
}

func defsOf(typ string) []Def {
	out := For(typ)
	if d, ok := PatientCompartmentDef(typ); ok {
		out = append(out, d)
	}
	return out
}

// sameValues compares as multisets: the reference walks top-level choice
// elements in map order.
func sameValues(t *testing.T, want, got []Value, msg string) {
	t.Helper()
	key := func(vs []Value) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = fmt.Sprintf("%#v", v)
		}
		slices.Sort(out)
		return out
	}
	require.Equal(t, key(want), key(got), msg)
}

func checkBody(t *testing.T, body []byte, defs []Def) {
	t.Helper()
	doc, ref := NewDoc(body), refNewDoc(body)
	// A Doc reused after another (larger) body must give the same values.
	reused := NewDoc([]byte(benchBodies[0]))
	for _, d := range defs {
		reused.Values(d)
	}
	reused.Reset(body)
	if gjson.ValidBytes(body) {
		// What a store that validated body itself uses.
		reused.ResetValid(body)
	}
	var keys [][]byte
	var buf []byte
	for _, d := range defs {
		msg := fmt.Sprintf("%s %v in %s", d.Name, d.Paths, body)
		vals := doc.Values(d)
		sameValues(t, ref.Values(d), vals, msg)
		require.Equal(t, vals, reused.Values(d), msg)
		terms := Terms(d, vals)
		require.Equal(t, refTerms(d, vals), terms, msg)
		sameValues(t, refExtract(d, body), Extract(d, body), msg)
		// AppendKeys builds prefix+term+suffix for the same terms, in
		// order, repeats allowed.
		prefix, suffix := "x\x00T\x00"+d.Name+"\x00", "\x00id"
		from := len(keys)
		keys, buf = AppendKeys(keys, buf, d, vals, prefix, suffix)
		var got []string
		for _, k := range keys[from:] {
			s := string(k)
			if !slices.Contains(got, s) {
				got = append(got, s)
			}
		}
		var want []string
		for _, term := range terms {
			want = append(want, prefix+term+suffix)
		}
		require.Equal(t, want, got, msg)
	}
	// Keys built earlier in the shared buffer are intact.
	var again [][]byte
	for _, d := range defs {
		again, _ = AppendKeys(again, nil, d, doc.Values(d), "x\x00T\x00"+d.Name+"\x00", "\x00id")
	}
	require.Equal(t, again, keys)
}

// TestDocMatchesReference checks that Doc.Values and Extract extract
// exactly the values of the reference extractor (reference_test.go) from
// edge cases (with every parameter of every type) and from the eCQM test
// resources (with their own type's parameters).
func TestDocMatchesReference(t *testing.T) {
	all := allDefs()
	for _, b := range edgeBodies {
		checkBody(t, []byte(b), all)
	}
	for _, b := range benchBodies {
		checkBody(t, []byte(b), all)
	}
	res := sharedResources(t)
	if res == nil {
		t.Log("../shared/ecqm absent: checked the built-in bodies only")
	}
	for _, b := range res {
		checkBody(t, b, defsOf(gjson.GetBytes(b, "resourceType").String()))
	}
}

func FuzzDocMatchesReference(f *testing.F) {
	for _, b := range append(slices.Clone(edgeBodies), benchBodies...) {
		f.Add(b)
	}
	defs := append(defsOf("Observation"), defsOf("Patient")...)
	f.Fuzz(func(t *testing.T, body string) {
		checkBody(t, []byte(body), defs)
	})
}

// benchBodies are a realistic Patient, Encounter and Observation as the
// HL7 v2 ADT mapping and a lab feed write them.
var benchBodies = []string{
	`{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2024-05-01T10:00:00Z","profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],"tag":[{"system":"urn:equitas:source","code":"adt"}]},` +
		`"identifier":[{"use":"usual","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}],"text":"MRN"},"system":"urn:oid:1.2.3.4","value":"MRN12345"},{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-12-3456"}],` +
		`"active":true,"name":[{"use":"official","family":"Müller","given":["José","Q"],"prefix":["Dr"]},{"use":"maiden","family":"Smith","given":["Joe"]}],` +
		`"telecom":[{"system":"phone","value":"555-555-1234","use":"home"},{"system":"phone","value":"555-555-9876","use":"work"},{"system":"email","value":"jose@example.org"}],` +
		`"gender":"male","birthDate":"1970-03-21","deceasedBoolean":false,` +
		`"address":[{"use":"home","line":["123 Main St","Apt 4"],"city":"Springfield","state":"IL","postalCode":"62701","country":"USA"},{"use":"old","line":["9 Elm Rd"],"city":"Chicago","state":"IL","postalCode":"60601"}],` +
		`"maritalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus","code":"M"}]},` +
		`"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"es"}]}}],"generalPractitioner":[{"reference":"Practitioner/pr1"}],"managingOrganization":{"reference":"Organization/o1"}}`,
	`{"resourceType":"Encounter","id":"e1","meta":{"lastUpdated":"2024-05-01T10:00:00Z"},"identifier":[{"system":"urn:oid:1.2.3.5","value":"V1001"}],"status":"in-progress",` +
		`"class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP","display":"inpatient encounter"},` +
		`"type":[{"coding":[{"system":"http://snomed.info/sct","code":"183452005","display":"Emergency hospital admission"}]}],"subject":{"reference":"Patient/p1"},` +
		`"participant":[{"type":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"ATND"}]}],"individual":{"reference":"Practitioner/pr1"}}],` +
		`"period":{"start":"2024-05-01T09:30:00-05:00"},"reasonCode":[{"text":"chest pain"}],"hospitalization":{"admitSource":{"coding":[{"code":"7"}]}},` +
		`"location":[{"location":{"reference":"Location/l1","display":"4 West"},"status":"active"}],"serviceProvider":{"reference":"Organization/o1"}}`,
	`{"resourceType":"Observation","id":"o1","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c/Hemoglobin.total in Blood"}],"text":"HbA1c"},"subject":{"reference":"Patient/p1"},` +
		`"encounter":{"reference":"Encounter/e1"},"effectiveDateTime":"2020-01-01T10:00:00-05:00","issued":"2020-01-01T12:00:00.000-05:00",` +
		`"valueQuantity":{"value":6.1,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`,
}

// BenchmarkDocTerms extracts the terms of every parameter (and the patient
// compartment) of a Patient, an Encounter and an Observation, as a write
// indexes them.
func BenchmarkDocTerms(b *testing.B) {
	type input struct {
		body []byte
		defs []Def
	}
	var in []input
	for _, s := range benchBodies {
		body := []byte(s)
		in = append(in, input{body, defsOf(gjson.GetBytes(body, "resourceType").String())})
	}
	b.ReportAllocs()
	terms := 0
	for b.Loop() {
		for _, x := range in {
			doc := NewDoc(x.body)
			for _, d := range x.defs {
				terms += len(Terms(d, doc.Values(d)))
			}
		}
	}
	b.ReportMetric(float64(terms)/float64(b.N), "terms/op")
	b.ReportMetric(float64(b.N*len(in))/b.Elapsed().Seconds(), "resources/s")
}

func TestKeysMatchReference(t *testing.T) {
	for _, v := range []int64{MinTime, MaxTime, 0, -1, 1, 1577872800000000, -62135596800000000} {
		require.Equal(t, refDateKey(v), DateKey(v))
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 6.1, -1e300, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN()} {
		require.Equal(t, refNumKey(f), NumKey(f))
	}
}

func FuzzFoldMatchesReference(f *testing.F) {
	for _, s := range []string{"", " ", "a  b", "abc", "Abc", "a b ", " a", "62701", "555-555-1234", "jose@example.org", "x\ty", "\x00a", "é", "cafe\u0301", "a\u00a0b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Fold(s), refFold(s); got != want {
			t.Fatalf("Fold(%q) = %q, want %q", s, got, want)
		}
	})
}

func FuzzNormalizeReferenceMatchesReference(f *testing.F) {
	for _, s := range []string{"", "#x", "urn:uuid:1", "Patient/p", "Patient/p/_history/2", "http://x/fhir/Patient/p/", "p", "/", "//", "a/b/c", "Patient/", "/p", "x/Patient/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := NormalizeReference(s), refNormalizeReference(s); got != want {
			t.Fatalf("NormalizeReference(%q) = %q, want %q", s, got, want)
		}
	})
}
