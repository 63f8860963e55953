package adt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tricky holds strings that exercise every escaping rule of encoding/json.
var tricky = []string{"", "plain", `q"b\s`, "<a&b>", "\b\f\n\r\t\x00\x1f\x7f", "caf\xe9", "é ü 日本", "\u2028\u2029", "\xff\xfe", "a\u0085b"}

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	s := func(i int) string { return tricky[i%len(tricky)] }
	cc := &codeableConcept{Coding: []coding{{System: s(1), Code: s(2), Display: s(3)}}, Text: s(4)}
	id := &identifier{Use: s(5), Type: cc, System: s(6), Value: s(7)}
	values := []any{
		"resourceType", s(2), s(3), s(4), s(5), s(6), s(7), s(8), s(9),
		coding{}, coding{Code: s(3)}, []coding(nil), []coding{}, []coding{{System: s(8)}},
		codeableConcept{}, *cc, cc, (*codeableConcept)(nil), []codeableConcept{*cc, {}}, []codeableConcept(nil),
		identifier{}, *id, []identifier{*id, {Value: s(9)}},
		reference{}, reference{Reference: s(1), Type: s(2), Identifier: id, Display: s(3)}, []reference{{Display: s(4)}},
		period{}, period{Start: s(5)}, period{Start: s(6), End: s(7)},
		humanName{}, humanName{Use: s(1), Text: s(2), Family: s(3), Given: []string{s(4), s(5)}, Prefix: []string{}, Suffix: []string{s(6)}}, []humanName{{Family: s(7)}},
		address{}, address{Use: s(1), Type: s(2), Line: []string{s(3), s(4)}, City: s(5), District: s(6), State: s(7), PostalCode: s(8), Country: s(9)}, []address{{}},
		contactPoint{}, contactPoint{System: s(1), Value: s(2), Use: s(3)}, []contactPoint{{Value: s(4)}},
		extension{}, extension{URL: s(1), Extension: []extension{{URL: s(2), ValueString: s(3)}}, ValueCoding: &coding{Code: s(4)}}, []extension{{URL: s(5)}},
		link{}, link{Other: reference{Reference: s(6)}, Type: s(7)},
		(*coding)(nil), &coding{Code: s(1)}, (*reference)(nil), &reference{Display: s(2)},
		participant{}, []participant{{Type: []codeableConcept{*cc}, Individual: &reference{Display: s(3)}}},
		encounterDiagnosis{}, []encounterDiagnosis{{Condition: reference{Reference: s(4)}, Use: cc, Rank: 2}, {Rank: -1}},
		[]json.RawMessage(nil), []json.RawMessage{}, []json.RawMessage{json.RawMessage(`{"a":"x y","b":[1,2]}`), json.RawMessage(`"q\"<"`)},
		[]json.RawMessage{json.RawMessage(`{ "a" : 1 }`)}, []json.RawMessage{json.RawMessage("\"\u2028\xe2\x80\xa8\"")},
		map[string]json.RawMessage(nil), map[string]json.RawMessage{"z": json.RawMessage(`1`), "a": json.RawMessage(`{"k":"v w"}`), s(3): json.RawMessage(`"\\"`)},
		map[string]json.RawMessage{"a": json.RawMessage(`[1, 2]`)},
		map[string]any{"status": s(1), "location": reference{Display: s(2)}, "period": period{Start: s(3)}},
		map[string]any{"b": 1, "a": "x"},
		header{}, header{ResourceType: s(1), ID: s(2), EventCoding: coding{Code: s(3)}, Destination: []endpointNamed{{Endpoint: s(4)}, {Name: s(5), Endpoint: s(6)}},
			Sender: &reference{Display: s(7)}, Source: endpointNamed{Name: s(8)}, Focus: []reference{{Reference: s(9)}}},
		prov{}, prov{ResourceType: s(1), ID: s(2), Target: []reference{{Reference: s(3)}}, Occurred: s(4), Recorded: s(5), Activity: cc,
			Reason: []codeableConcept{*cc}, Agent: []agent{{Type: cc, Who: reference{Display: s(6)}}, {}}, Entity: []entity{{Role: s(7), What: reference{Identifier: id}}}},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		require.NoError(t, err)
		// encode may decline (raw then uses encoding/json); when it
		// answers, the bytes must be json.Marshal's.
		if got, ok := encode(nil, v); ok {
			require.Equal(t, string(want), string(got), "%T %#v", v, v)
		}
		require.Equal(t, string(want), string(raw(v)), "%T %#v", v, v)
	}
	for _, v := range []any{"x", []json.RawMessage{json.RawMessage(`{"a":"b c"}`)}, map[string]any{"status": "active"}} {
		_, ok := encode(nil, v)
		require.True(t, ok, "%T takes the fast path", v)
	}
	_, ok := encode(nil, map[string]int{})
	require.False(t, ok, "unknown types fall back to encoding/json")
	require.JSONEq(t, `{"a":1}`, string(raw(map[string]int{"a": 1})))
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range tricky {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendJSONString(nil, s)))
	})
}

// FuzzCompacted checks that a RawMessage compacted accepts is one
// encoding/json copies unchanged.
func FuzzCompacted(f *testing.F) {
	for _, s := range []string{`{"a":"x y"}`, `[1, 2]`, `"<"`, `{"k":"\u2028"}`, "\"\xe2\x80\xa8\"", `"a\"b"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) || !compacted(b) {
			return
		}
		got, err := json.Marshal([]json.RawMessage{b})
		require.NoError(t, err)
		require.Equal(t, "["+string(b)+"]", string(got))
	})
}

func TestParseObjectKeepsMembers(t *testing.T) {
	for _, body := range []string{`{"a":1,"b":{"c":[1,2]},"d":"x"}`, ` { "a" : "y" , "b" : [ 1 ] } `, `{"a":1,"a":2}`} {
		o, err := parseObject([]byte(body))
		require.NoError(t, err)
		var want map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(body), &want))
		require.Len(t, o.keys, len(want), body)
		for k, v := range want {
			require.Equal(t, string(v), string(o.vals[k]), body)
		}
	}
}

func TestHashIDIsSHA256OfZeroTerminatedParts(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, parts := range [][]string{{}, {"a"}, {"Patient", "urn:oid:1.2.3", "12345"}, {long, "b"}} {
		h := sha256.New()
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
		assert.Equal(t, hex.EncodeToString(h.Sum(nil)[:16]), hashID(parts...))
	}
}
