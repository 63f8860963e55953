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
	root, valid := gjson.ParseBytes(body), gjson.ValidBytes(body)
	var out []Value
	var buf []gjson.Result
	for _, path := range def.Paths {
		buf = walkInto(buf[:0], root, path, valid)
		for _, n := range buf {
			out = appendValues(out, def, n, valid)
		}
	}
	return out
}

// Doc is a resource body with its top-level elements indexed once, for
// extracting many parameters from the same body.
type Doc struct {
	// top holds the top-level members in document order; a key given twice
	// counts with its last value (as a map would keep it).
	top   []member
	valid bool           // the body is valid JSON (see eachFlat)
	buf   []gjson.Result // reused by Values
	vals  []Value        // backs the results of Values
}

type member struct {
	key string
	val gjson.Result
}

// NewDoc indexes a resource body's top-level elements.
func NewDoc(body []byte) *Doc {
	d := new(Doc)
	d.Reset(body)
	return d
}

// Reset makes d index body instead, keeping its buffers (a writer indexing
// many bodies reuses one Doc): the values Values returned before are
// overwritten. Reset(nil) drops every reference to the previous body.
func (d *Doc) Reset(body []byte) { d.reset(body, body != nil && gjson.ValidBytes(body)) }

// ResetValid is Reset for a body the caller has already checked is valid
// JSON (gjson.ValidBytes), which spares a pass over it. The values of an
// invalid body given here may differ from those Reset finds.
func (d *Doc) ResetValid(body []byte) { d.reset(body, true) }

func (d *Doc) reset(body []byte, valid bool) {
	clear(d.top)
	clear(d.vals)
	clear(d.buf)
	d.top, d.vals, d.buf = d.top[:0], d.vals[:0], d.buf[:0]
	if body == nil {
		d.valid = false
		return
	}
	if d.top == nil {
		d.top = make([]member, 0, 24)
	}
	if d.vals == nil {
		// About one value per 32 bytes of a typical resource, capped
		// for large ones (which then grow the slice as usual).
		d.vals = make([]Value, 0, min(len(body)/32+8, 64))
	}
	d.valid = valid
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		d.top = append(d.top, member{k.Str, v})
		return true
	})
}

// Values returns the values of one parameter. A Doc is not safe for
// concurrent use.
func (d *Doc) Values(def Def) []Value {
	// The values of all parameters share d.vals; each result is capped at
	// its own end, so appending to it cannot reach the next one's.
	start := len(d.vals)
	for _, path := range def.Paths {
		d.buf = d.walk(d.buf[:0], path)
		for _, n := range d.buf {
			d.vals = appendValues(d.vals, def, n, d.valid)
		}
	}
	if len(d.vals) == start {
		return nil
	}
	return d.vals[start:len(d.vals):len(d.vals)]
}

// walk appends the elements path leads to, resolving the first segment
// from the top-level index.
func (d *Doc) walk(out []gjson.Result, path string) []gjson.Result {
	first, rest, more := strings.Cut(path, ".")
	emit := func(v gjson.Result) {
		if !more {
			out = appendFlat(out, v, d.valid)
			return
		}
		eachFlat(v, d.valid, func(e gjson.Result) { out = walkInto(out, e, rest, d.valid) })
	}
	if base, ok := strings.CutSuffix(first, "[x]"); ok {
		for i, m := range d.top {
			k := m.key
			if len(k) > len(base) && strings.HasPrefix(k, base) && k[len(base)] >= 'A' && k[len(base)] <= 'Z' && !d.redefined(i) {
				emit(m.val)
			}
		}
		return out
	}
	for i := len(d.top) - 1; i >= 0; i-- {
		if d.top[i].key == first {
			emit(d.top[i].val)
			break
		}
	}
	return out
}

// redefined reports whether the key of top[i] is given again later.
func (d *Doc) redefined(i int) bool {
	for _, m := range d.top[i+1:] {
		if m.key == d.top[i].key {
			return true
		}
	}
	return false
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

// walkInto appends the elements a dot path leads to from n, flattening
// arrays and expanding choice elements ("value[x]"), depth first (which
// yields them in the order a level-by-level walk would).
func walkInto(out []gjson.Result, n gjson.Result, path string, valid bool) []gjson.Result {
	seg, rest, more := strings.Cut(path, ".")
	child := func(v gjson.Result) {
		if more {
			out = walkInto(out, v, rest, valid)
		} else {
			out = appendFlat(out, v, valid)
		}
	}
	base, choice := strings.CutSuffix(seg, "[x]")
	eachFlat(n, valid, func(e gjson.Result) {
		if !e.IsObject() {
			return
		}
		if choice {
			e.ForEach(func(k, v gjson.Result) bool {
				if len(k.Str) > len(base) && strings.HasPrefix(k.Str, base) && k.Str[len(base)] >= 'A' && k.Str[len(base)] <= 'Z' {
					child(v)
				}
				return true
			})
			return
		}
		if v := e.Get(gjson.Escape(seg)); v.Exists() {
			child(v)
		}
	})
	return out
}

// eachFlat calls fn with the elements of an array, or with n itself unless
// it is null or missing. valid tells whether the whole body is valid JSON:
// only then does ForEach (no allocation) see the same elements as Array.
func eachFlat(n gjson.Result, valid bool, fn func(gjson.Result)) {
	if n.IsArray() && !valid {
		for _, e := range n.Array() {
			fn(e)
		}
	} else if n.IsArray() {
		n.ForEach(func(_, e gjson.Result) bool {
			fn(e)
			return true
		})
	} else if n.Type != gjson.Null {
		fn(n)
	}
}

func appendFlat(out []gjson.Result, n gjson.Result, valid bool) []gjson.Result {
	eachFlat(n, valid, func(e gjson.Result) { out = append(out, e) })
	return out
}

func appendValues(out []Value, def Def, n gjson.Result, valid bool) []Value {
	switch def.Type {
	case Token:
		if n.Type == gjson.String && def.System != "" {
			return append(out, Value{System: def.System, Code: n.Str})
		}
		return appendTokens(out, n, valid)
	case String:
		return appendStrings(out, n, valid)
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
		buf := walkInto(nil, n, "code", valid)
		for _, c := range buf {
			codes = appendTokens(codes, c, valid)
		}
		for _, v := range walkInto(buf[:0], n, "value[x]", valid) {
			values = appendTokens(values, v, valid)
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
	i := strings.LastIndexByte(ref, '/')
	if i < 0 {
		return ref
	}
	j := strings.LastIndexByte(ref[:i], '/') // -1: ref is "Type/id"
	typ, id := ref[j+1:i], ref[i+1:]
	if typ == "" || id == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return ""
	}
	return ref[j+1:] // typ + "/" + id without a copy
}

// Members of the object datatypes appendTokens reads, in fields order.
var (
	tokenKeys  = []string{"coding", "text", "code", "system", "display", "value", "type", "reference"}
	codingKeys = []string{"display", "system", "code"}
)

const (
	tkCoding = iota
	tkText
	tkCode
	tkSystem
	tkDisplay
	tkValue
	tkType
	tkReference
)

func appendTokens(out []Value, n gjson.Result, valid bool) []Value {
	switch n.Type {
	case gjson.String:
		return append(out, Value{Code: n.Str})
	case gjson.True, gjson.False, gjson.Number:
		return append(out, Value{Code: n.Raw})
	}
	if !n.IsObject() {
		return out
	}
	var f [8]gjson.Result
	fields(f[:], n, valid, tokenKeys)
	if coding := f[tkCoding]; coding.Exists() || f[tkText].Exists() {
		text := f[tkText].String()
		added := false
		eachFlat(coding, valid, func(c gjson.Result) {
			var cf [3]gjson.Result
			fields(cf[:], c, valid, codingKeys)
			t := text
			if d := cf[0].String(); d != "" {
				t = strings.TrimSpace(t + " " + d)
			}
			out = append(out, Value{System: cf[1].String(), Code: cf[2].String(), Text: t})
			added = true
		})
		if !added && text != "" {
			out = append(out, Value{Text: text})
		}
		return out
	}
	if c := f[tkCode]; c.Exists() { // Coding, Quantity
		return append(out, Value{System: f[tkSystem].String(), Code: c.String(), Text: f[tkDisplay].String()})
	}
	if v := f[tkValue]; v.Exists() { // Identifier, ContactPoint
		text := n.Get("type.text")
		if typ := f[tkType]; valid && typ.IsObject() {
			text = typ.Get("text")
		}
		return append(out, Value{System: f[tkSystem].String(), Code: v.String(), Text: text.String()})
	}
	if r := f[tkReference]; r.Exists() { // Reference used as a composite value
		return append(out, Value{Code: NormalizeReference(r.String())})
	}
	return out
}

// fields sets dst[i] to n.Get(keys[i]) for plain member names, scanning an
// object once instead of once per key. gjson's Get finds the first of
// duplicate members, and so does the scan. Bodies that are not valid JSON
// take Get itself.
func fields(dst []gjson.Result, n gjson.Result, valid bool, keys []string) {
	if !valid || !n.IsObject() {
		for i, k := range keys {
			dst[i] = n.Get(k)
		}
		return
	}
	var seen, all uint32 = 0, 1<<len(keys) - 1
	n.ForEach(func(k, v gjson.Result) bool {
		for i, key := range keys {
			if seen&(1<<i) == 0 && k.Str == key {
				dst[i] = v
				seen |= 1 << i
				break
			}
		}
		return seen != all
	})
}

// stringParts are the components of HumanName and Address a string
// parameter on the whole datatype matches.
var stringParts = []string{"text", "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country"}

func appendStrings(out []Value, n gjson.Result, valid bool) []Value {
	if n.Type == gjson.String {
		return append(out, Value{Str: Fold(n.Str), Raw: n.Str})
	}
	if !n.IsObject() {
		return out
	}
	var f [11]gjson.Result
	fields(f[:], n, valid, stringParts)
	for _, v := range f {
		eachFlat(v, valid, func(v gjson.Result) {
			if v.Type == gjson.String {
				out = append(out, Value{Str: Fold(v.Str), Raw: v.Str})
			}
		})
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
