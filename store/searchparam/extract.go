package searchparam

import (
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Open ends of date ranges.
const (
	MinTime int64 = math.MinInt64
	MaxTime int64 = math.MaxInt64
)

// Value is one value of a search parameter extracted from a resource.
// Which fields are set depends on the parameter type.
type Value struct {
	// Token: System and Code (Code is the Identifier/ContactPoint value for
	// those types); Text holds CodeableConcept.text and Coding.display.
	System, Code, Text string
	// Str is the folded string (string), the "Type/id" (reference) or the
	// URI; Raw is the original string for :exact.
	Str, Raw string
	// Lo and Hi bound a date as a half-open range [Lo, Hi) in Unix
	// microseconds; MinTime/MaxTime mark an open end.
	Lo, Hi int64
	// Num, with Unit/System/Code, is a number or quantity.
	Num    float64
	HasNum bool
	// Parts are the components of a composite value.
	Parts []Value
}

// Extract returns the values of one parameter in a resource body.
func Extract(def Def, body []byte) []Value {
	root := gjson.ParseBytes(body)
	var out []Value
	for _, path := range def.Paths {
		for _, n := range walk(root, path) {
			out = appendValues(out, def, n)
		}
	}
	return out
}

// Doc is a resource body with its top-level elements indexed once, for
// extracting many parameters from the same body.
type Doc struct {
	top map[string]gjson.Result
}

// NewDoc indexes a resource body's top-level elements.
func NewDoc(body []byte) *Doc {
	d := &Doc{top: make(map[string]gjson.Result, 24)}
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		d.top[k.Str] = v
		return true
	})
	return d
}

// Values returns the values of one parameter.
func (d *Doc) Values(def Def) []Value {
	var out []Value
	for _, path := range def.Paths {
		for _, n := range d.walk(path) {
			out = appendValues(out, def, n)
		}
	}
	return out
}

// walk resolves the first path segment from the top-level index and the
// rest with gjson.
func (d *Doc) walk(path string) []gjson.Result {
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
		return flatten(cur)
	}
	var out []gjson.Result
	for _, n := range flatten(cur) {
		out = append(out, walk(n, rest)...)
	}
	return out
}

// ReferenceValues returns the "Type/id" references a reference parameter
// holds in a resource body (for _include); nil for unknown or non-reference
// parameters.
func ReferenceValues(resourceType, param string, body []byte) []string {
	def, ok := Lookup(resourceType, param)
	if !ok || def.Type != Reference {
		return nil
	}
	var out []string
	for _, v := range Extract(def, body) {
		if v.Str != "" && strings.Contains(v.Str, "/") && !strings.Contains(v.Str, ":") {
			out = append(out, v.Str)
		}
	}
	return out
}

// walk resolves a dot path, flattening arrays and expanding choice
// elements ("value[x]").
func walk(root gjson.Result, path string) []gjson.Result {
	cur := []gjson.Result{root}
	for _, seg := range strings.Split(path, ".") {
		var next []gjson.Result
		for _, n := range flatten(cur) {
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
	return flatten(cur)
}

func flatten(in []gjson.Result) []gjson.Result {
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

func appendValues(out []Value, def Def, n gjson.Result) []Value {
	switch def.Type {
	case Token:
		if n.Type == gjson.String && def.System != "" {
			return append(out, Value{System: def.System, Code: n.Str})
		}
		return appendTokens(out, n)
	case String:
		return appendStrings(out, n)
	case Date:
		if lo, hi, ok := dateRange(n); ok {
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
		for _, c := range walk(n, "code") {
			codes = appendTokens(codes, c)
		}
		for _, v := range walk(n, "value[x]") {
			values = appendTokens(values, v)
		}
		for _, c := range codes {
			for _, v := range values {
				out = append(out, Value{Parts: []Value{c, v}})
			}
		}
	}
	return out
}

func targetOK(targets []string, ref string) bool {
	if len(targets) == 0 {
		return true
	}
	typ, _, ok := strings.Cut(ref, "/")
	if !ok {
		return false
	}
	for _, t := range targets {
		if t == typ {
			return true
		}
	}
	return false
}

// NormalizeReference reduces a reference to "Type/id": relative references
// lose a trailing _history, absolute URLs keep their last two segments.
// urn:uuid/urn:oid references are kept whole; contained (#x) references and
// empty strings give "".
func NormalizeReference(ref string) string {
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

func appendTokens(out []Value, n gjson.Result) []Value {
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
		for _, c := range flatten([]gjson.Result{coding}) {
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

// stringParts are the components of HumanName and Address a string
// parameter on the whole datatype matches.
var stringParts = []string{"text", "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country"}

func appendStrings(out []Value, n gjson.Result) []Value {
	if n.Type == gjson.String {
		return append(out, Value{Str: Fold(n.Str), Raw: n.Str})
	}
	if !n.IsObject() {
		return out
	}
	for _, k := range stringParts {
		for _, v := range flatten([]gjson.Result{n.Get(k)}) {
			if v.Type == gjson.String {
				out = append(out, Value{Str: Fold(v.Str), Raw: v.Str})
			}
		}
	}
	return out
}

func dateRange(n gjson.Result) (lo, hi int64, ok bool) {
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
func ParseDate(s string) (lo, hi int64, ok bool) {
	num := func(from, n int) (int, bool) {
		if len(s) < from+n {
			return 0, false
		}
		v, err := strconv.Atoi(s[from : from+n])
		return v, err == nil && s[from] != '-' && s[from] != '+'
	}
	year, ok := num(0, 4)
	if !ok {
		return 0, 0, false
	}
	month, day, hour, minute, sec, nsec := 1, 1, 0, 0, 0, 0
	precision := "year"
	rest := s[4:]
	if len(rest) > 0 {
		if rest[0] != '-' {
			return 0, 0, false
		}
		if month, ok = num(5, 2); !ok || month < 1 || month > 12 {
			return 0, 0, false
		}
		precision, rest = "month", s[7:]
	}
	if len(rest) > 0 {
		if rest[0] != '-' {
			return 0, 0, false
		}
		if day, ok = num(8, 2); !ok || day < 1 || day > daysIn(year, month) {
			return 0, 0, false
		}
		precision, rest = "day", s[10:]
	}
	offset := 0
	fracDigits := 0
	if len(rest) > 0 {
		if rest[0] != 'T' || len(rest) < 6 || rest[3] != ':' {
			return 0, 0, false
		}
		h, err1 := strconv.Atoi(rest[1:3])
		m, err2 := strconv.Atoi(rest[4:6])
		if err1 != nil || err2 != nil || h > 23 || m > 59 {
			return 0, 0, false
		}
		hour, minute, precision, rest = h, m, "minute", rest[6:]
		if len(rest) > 0 && rest[0] == ':' {
			if len(rest) < 3 {
				return 0, 0, false
			}
			sv, err := strconv.Atoi(rest[1:3])
			if err != nil || sv > 60 {
				return 0, 0, false
			}
			sec, precision, rest = sv, "second", rest[3:]
			if len(rest) > 0 && rest[0] == '.' {
				i := 1
				for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
					i++
				}
				if i == 1 {
					return 0, 0, false
				}
				frac := rest[1:i]
				fracDigits = len(frac)
				if len(frac) > 9 {
					frac = frac[:9]
				}
				f, _ := strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
				nsec, precision, rest = f, "fraction", rest[i:]
			}
		}
		switch {
		case rest == "" || rest == "Z":
		case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
			oh, err1 := strconv.Atoi(rest[1:3])
			om, err2 := strconv.Atoi(rest[4:6])
			if err1 != nil || err2 != nil || oh > 14 || om > 59 {
				return 0, 0, false
			}
			offset = oh*3600 + om*60
			if rest[0] == '-' {
				offset = -offset
			}
		default:
			return 0, 0, false
		}
	}
	start := civil(year, month, day) + int64(hour*3600+minute*60+sec-offset)
	startMicro := start*1e6 + int64(nsec/1000)
	var end int64
	switch precision {
	case "year":
		end = civil(year+1, 1, 1) * 1e6
	case "month":
		y, m := year, month+1
		if m > 12 {
			y, m = y+1, 1
		}
		end = civil(y, m, 1) * 1e6
	case "day":
		end = startMicro + 86400*1e6
	case "minute":
		end = startMicro + 60*1e6
	case "second":
		end = startMicro + 1e6
	default:
		step := int64(1)
		for d := fracDigits; d < 6; d++ {
			step *= 10
		}
		end = startMicro + step
	}
	return startMicro, end, true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// civil returns the Unix seconds of midnight UTC of a proleptic Gregorian
// date (Howard Hinnant's days_from_civil).
func civil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097+doe-719468) * 86400
}
