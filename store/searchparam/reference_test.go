package searchparam

// This file keeps the original, straightforward extractor (as of the
// optimisation of Doc) so TestDocMatchesReference can check that the fast
// path extracts exactly the same values: the on-disk index depends on it.

import (
	"fmt"
	"math"
	"strings"
	"unicode"

	"github.com/tidwall/gjson"
)

func refExtract(def Def, body []byte) []Value {
	root := gjson.ParseBytes(body)
	var out []Value
	for _, path := range def.Paths {
		for _, n := range refWalk(root, path) {
			out = refAppendValues(out, def, n)
		}
	}
	return out
}

// Doc is a resource body with its top-level elements indexed once, for
// extracting many parameters from the same body.
type refDoc struct {
	top map[string]gjson.Result
}

// NewDoc indexes a resource body's top-level elements.
func refNewDoc(body []byte) *refDoc {
	d := &refDoc{top: make(map[string]gjson.Result, 24)}
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		d.top[k.Str] = v
		return true
	})
	return d
}

// Values returns the values of one parameter.
func (d *refDoc) Values(def Def) []Value {
	var out []Value
	for _, path := range def.Paths {
		for _, n := range d.refWalk(path) {
			out = refAppendValues(out, def, n)
		}
	}
	return out
}

// walk resolves the first path segment from the top-level index and the
// rest with gjson.
func (d *refDoc) refWalk(path string) []gjson.Result {
	first, rest, _ := strings.Cut(path, ".")
	var cur []gjson.Result
	if base, ok := strings.CutSuffix(first, "[x]"); ok {
		for k, v := range d.top {
			if len(k) > len(base) && strings.HasPrefix(k, base) && k[len(base)] >= 'A' && k[len(base)] <= 'Z' {
				cur = append(cur, v)
			}
		}
	} else if v, ok := d.top[first]; ok {
		cur = append(cur, v)
	}
	if rest == "" || len(cur) == 0 {
		return refFlatten(cur)
	}
	var out []gjson.Result
	for _, n := range refFlatten(cur) {
		out = append(out, refWalk(n, rest)...)
	}
	return out
}

// walk resolves a dot path, flattening arrays and expanding choice
// elements ("value[x]").
func refWalk(root gjson.Result, path string) []gjson.Result {
	cur := []gjson.Result{root}
	for _, seg := range strings.Split(path, ".") {
		var next []gjson.Result
		for _, n := range refFlatten(cur) {
			if !n.IsObject() {
				continue
			}
			if base, ok := strings.CutSuffix(seg, "[x]"); ok {
				n.ForEach(func(k, v gjson.Result) bool {
					if len(k.Str) > len(base) && strings.HasPrefix(k.Str, base) && k.Str[len(base)] >= 'A' && k.Str[len(base)] <= 'Z' {
						next = append(next, v)
					}
					return true
				})
				continue
			}
			if v := n.Get(gjson.Escape(seg)); v.Exists() {
				next = append(next, v)
			}
		}
		cur = next
	}
	return refFlatten(cur)
}

func refFlatten(in []gjson.Result) []gjson.Result {
	var out []gjson.Result
	for _, n := range in {
		if n.IsArray() {
			out = append(out, n.Array()...)
		} else if n.Type != gjson.Null {
			out = append(out, n)
		}
	}
	return out
}

func refAppendValues(out []Value, def Def, n gjson.Result) []Value {
	switch def.Type {
	case Token:
		if n.Type == gjson.String && def.System != "" {
			return append(out, Value{System: def.System, Code: n.Str})
		}
		return refAppendTokens(out, n)
	case String:
		return refAppendStrings(out, n)
	case Date:
		if lo, hi, ok := refDateRange(n); ok {
			out = append(out, Value{Lo: lo, Hi: hi})
		}
	case Reference:
		ref := n.Get("reference").String()
		if n.Type == gjson.String { // a canonical used as a reference
			ref = n.Str
		}
		if r := NormalizeReference(ref); r != "" && targetOK(def.Targets, r) {
			out = append(out, Value{Str: r, Raw: ref})
		}
	case URI:
		if n.Type == gjson.String {
			out = append(out, Value{Str: n.Str, Raw: n.Str})
		}
	case Number:
		if n.Type == gjson.Number {
			out = append(out, Value{Num: n.Num, HasNum: true, Raw: n.Raw})
		}
	case Quantity:
		if v := n.Get("value"); v.Type == gjson.Number {
			out = append(out, Value{Num: v.Num, HasNum: true, Raw: v.Raw,
				System: n.Get("system").String(), Code: n.Get("code").String(), Text: n.Get("unit").String()})
		}
	case Composite:
		// Group.characteristic: code × value[x], paired within one element.
		var codes, values []Value
		for _, c := range refWalk(n, "code") {
			codes = refAppendTokens(codes, c)
		}
		for _, v := range refWalk(n, "value[x]") {
			values = refAppendTokens(values, v)
		}
		for _, c := range codes {
			for _, v := range values {
				out = append(out, Value{Parts: []Value{c, v}})
			}
		}
	}
	return out
}

func refAppendTokens(out []Value, n gjson.Result) []Value {
	switch n.Type {
	case gjson.String:
		return append(out, Value{Code: n.Str})
	case gjson.True, gjson.False, gjson.Number:
		return append(out, Value{Code: n.Raw})
	}
	if !n.IsObject() {
		return out
	}
	if coding := n.Get("coding"); coding.Exists() || n.Get("text").Exists() {
		text := n.Get("text").String()
		added := false
		for _, c := range refFlatten([]gjson.Result{coding}) {
			t := text
			if d := c.Get("display").String(); d != "" {
				t = strings.TrimSpace(t + " " + d)
			}
			out = append(out, Value{System: c.Get("system").String(), Code: c.Get("code").String(), Text: t})
			added = true
		}
		if !added && text != "" {
			out = append(out, Value{Text: text})
		}
		return out
	}
	if c := n.Get("code"); c.Exists() { // Coding, Quantity
		return append(out, Value{System: n.Get("system").String(), Code: c.String(), Text: n.Get("display").String()})
	}
	if v := n.Get("value"); v.Exists() { // Identifier, ContactPoint
		return append(out, Value{System: n.Get("system").String(), Code: v.String(), Text: n.Get("type.text").String()})
	}
	if r := n.Get("reference"); r.Exists() { // Reference used as a composite value
		return append(out, Value{Code: NormalizeReference(r.String())})
	}
	return out
}

// refStringParts are the components of HumanName and Address a string
// parameter on the whole datatype matches.
var refStringParts = []string{"text", "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country"}

func refAppendStrings(out []Value, n gjson.Result) []Value {
	if n.Type == gjson.String {
		return append(out, Value{Str: Fold(n.Str), Raw: n.Str})
	}
	if !n.IsObject() {
		return out
	}
	for _, k := range refStringParts {
		for _, v := range refFlatten([]gjson.Result{n.Get(k)}) {
			if v.Type == gjson.String {
				out = append(out, Value{Str: Fold(v.Str), Raw: v.Str})
			}
		}
	}
	return out
}

func refDateRange(n gjson.Result) (lo, hi int64, ok bool) {
	if n.Type == gjson.String {
		return ParseDate(n.Str)
	}
	if !n.IsObject() {
		return 0, 0, false
	}
	// Period; other structured types (Timing, Age) are not indexed.
	s, e := n.Get("start"), n.Get("end")
	if !s.Exists() && !e.Exists() {
		return 0, 0, false
	}
	lo, hi = MinTime, MaxTime
	var sHi, eLo int64
	if s.Exists() {
		if lo, sHi, ok = ParseDate(s.String()); !ok {
			return 0, 0, false
		}
	}
	if e.Exists() {
		if eLo, hi, ok = ParseDate(e.String()); !ok {
			return 0, 0, false
		}
	}
	if s.Exists() && e.Exists() && lo >= hi {
		// An inverted period (invalid, but seen in the wild) is taken as
		// the span of both ends so every index range stays a superset.
		lo, hi = min(lo, eLo), max(hi, sHi)
	}
	return lo, hi, true
}

// ParseDate parses a FHIR date, dateTime or instant (partial dates
// allowed) into the half-open range [lo, hi) in Unix microseconds its
// precision implies. Values without a zone are taken as UTC.

func refTerms(def Def, vals []Value) []string {
	var out []string
	add := func(t string) {
		out = append(out, refCut(t))
	}
	for _, v := range vals {
		switch def.Type {
		case Token:
			// One term per coding, code first: "code" and "system|code"
			// searches are both prefix/exact scans of it.
			if v.Code != "" {
				add("t" + v.Code + tokenSep + v.System)
			}
		case String:
			add("v" + v.Str)
		case Reference:
			add("r" + v.Str)
		case Date:
			add("l" + refDateKey(v.Lo))
			if def.Name != "_lastUpdated" { // instants: hi is always lo+1µs
				add("h" + refDateKey(v.Hi))
			}
		case URI:
			add("u" + v.Str)
		case Number, Quantity:
			if v.HasNum {
				add("n" + refNumKey(v.Num))
			}
		}
	}
	return refDedupe(out)
}

func refCut(t string) string {
	t = strings.ReplaceAll(t, "\x00", " ")
	if len(t) > MaxTerm {
		t = t[:MaxTerm]
	}
	return t
}

func refDedupe(in []string) []string {
	if len(in) < 2 {
		return in
	}
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, t := range in {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// DateKey encodes a Unix-microsecond time as 16 hex digits that sort like
// the times.
func refDateKey(t int64) string {
	return fmt.Sprintf("%016x", uint64(t)^(1<<63))
}

// NumKey encodes a number as 16 hex digits that sort like the numbers.
func refNumKey(f float64) string {
	if f == 0 {
		f = 0 // -0 sorts with +0
	}
	u := math.Float64bits(f)
	if f < 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return fmt.Sprintf("%016x", u)
}
func refFold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || r == 0 {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		if unicode.Is(unicode.Mn, r) { // combining marks of decomposed input
			continue
		}
		r = unicode.ToLower(r)
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		if f, ok := foldTable[r]; ok {
			b.WriteString(f)
			continue
		}
		b.WriteRune(r)
	}
	return strings.TrimRight(b.String(), " ")
}
func refNormalizeReference(ref string) string {
	if ref == "" || strings.HasPrefix(ref, "#") {
		return ""
	}
	if strings.HasPrefix(ref, "urn:") {
		return ref
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	ref = strings.TrimSuffix(ref, "/")
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return ref
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	if typ == "" || id == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return ""
	}
	return typ + "/" + id
}
