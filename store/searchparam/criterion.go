package searchparam

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/equitas/equitas/store"
)

// MaxTerm bounds the length of one index term; longer values are cut and
// matches re-checked against the resource.
const MaxTerm = 256

// Terms returns the index terms of extracted values. Terms never contain a
// NUL byte, so a store can use NUL as a key separator. Parameters without
// an index (number, quantity, composite) give no terms.
func Terms(def Def, vals []Value) []string {
	if len(vals) == 0 {
		return nil
	}
	n := len(vals)
	if def.Type == Date {
		n *= 2
	}
	out := make([]string, 0, n)
	add := func(t string) {
		out = append(out, cut(t))
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
			add(hexKey("l", dateBits(v.Lo)))
			if def.Name != "_lastUpdated" { // instants: hi is always lo+1µs
				add(hexKey("h", dateBits(v.Hi)))
			}
		case URI:
			add("u" + v.Str)
		case Number, Quantity:
			if v.HasNum {
				add(hexKey("n", numBits(v.Num)))
			}
		}
	}
	if len(out) == 0 {
		return nil // as before the slice was sized up front
	}
	return dedupe(out)
}

// AppendKeys appends to keys one key per index term of vals: prefix, the
// term and suffix, built in place at the end of buf (no string per term).
// The terms are those of Terms, in its order, but not de-duplicated (the
// store sorts and de-duplicates a resource's keys anyway). Each key is
// capped at its own end, so appending to one cannot overwrite another.
func AppendKeys(keys [][]byte, buf []byte, def Def, vals []Value, prefix, suffix string) ([][]byte, []byte) {
	for _, v := range vals {
		start := len(buf)
		buf = append(buf, prefix...)
		term := len(buf)
		switch def.Type {
		case Token:
			if v.Code == "" {
				buf = buf[:start]
				continue
			}
			buf = append(buf, 't')
			buf = append(buf, v.Code...)
			buf = append(buf, tokenSep...)
			buf = append(buf, v.System...)
		case String:
			buf = append(buf, 'v')
			buf = append(buf, v.Str...)
		case Reference:
			buf = append(buf, 'r')
			buf = append(buf, v.Str...)
		case Date:
			buf = appendHex(buf, 'l', dateBits(v.Lo))
			if def.Name != "_lastUpdated" {
				keys, buf = endKey(keys, buf, start, term, suffix)
				start = len(buf)
				buf = append(buf, prefix...)
				term = len(buf)
				buf = appendHex(buf, 'h', dateBits(v.Hi))
			}
		case URI:
			buf = append(buf, 'u')
			buf = append(buf, v.Str...)
		case Number, Quantity:
			if !v.HasNum {
				buf = buf[:start]
				continue
			}
			buf = appendHex(buf, 'n', numBits(v.Num))
		default:
			buf = buf[:start]
			continue
		}
		keys, buf = endKey(keys, buf, start, term, suffix)
	}
	return keys, buf
}

// endKey finishes the key begun at buf[start:] whose term starts at
// buf[term:] as cut would the term, and appends suffix.
func endKey(keys [][]byte, buf []byte, start, term int, suffix string) ([][]byte, []byte) {
	t := buf[term:]
	for i, c := range t {
		if c == 0 {
			t[i] = ' '
		}
	}
	if len(t) > MaxTerm {
		buf = buf[:term+MaxTerm]
	}
	buf = append(buf, suffix...)
	return append(keys, buf[start:len(buf):len(buf)]), buf
}

// appendHex appends tag and u as 16 lower-case hex digits (as hexKey).
func appendHex(buf []byte, tag byte, u uint64) []byte {
	buf = append(buf, tag)
	for i := 60; i >= 0; i -= 4 {
		buf = append(buf, "0123456789abcdef"[(u>>uint(i))&0xf])
	}
	return buf
}

func cut(t string) string {
	t = strings.ReplaceAll(t, "\x00", " ")
	if len(t) > MaxTerm {
		t = t[:MaxTerm]
	}
	return t
}

func dedupe(in []string) []string {
	if len(in) < 2 {
		return in
	}
	out := in[:0]
	if len(in) <= 16 { // a scan beats a map for the few terms of one value set
		for _, t := range in {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
		return out
	}
	seen := make(map[string]bool, len(in))
	for _, t := range in {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// tokenSep separates code and system in a token term.
const tokenSep = "\x1f"

// DateKey encodes a Unix-microsecond time as 16 hex digits that sort like
// the times.
func DateKey(t int64) string {
	return hexKey("", dateBits(t))
}

func dateBits(t int64) uint64 { return uint64(t) ^ (1 << 63) }

// hexKey returns prefix followed by u as 16 lower-case hex digits (as
// %016x formats it), in one allocation.
func hexKey(prefix string, u uint64) string {
	var b [24]byte
	n := copy(b[:], prefix)
	for i := 15; i >= 0; i-- {
		b[n+i] = "0123456789abcdef"[u&0xf]
		u >>= 4
	}
	return string(b[:n+16])
}

// NumKey encodes a number as 16 hex digits that sort like the numbers.
func NumKey(f float64) string {
	return hexKey("", numBits(f))
}

func numBits(f float64) uint64 {
	if f == 0 {
		f = 0 // -0 sorts with +0
	}
	u := math.Float64bits(f)
	if f < 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return u
}

// Range is a run of index terms [From, To) of one parameter; when Contains
// is set only terms containing it qualify. A term is followed by NUL in
// the key, so an exact term t is the range [t+"\x00", t+"\x01").
type Range struct {
	From, To string
	Contains string
	Suffix   string // when set, only terms ending with it qualify
}

func exact(t string) Range {
	t = cut(t)
	if len(t) == MaxTerm { // cut: the stored term may be longer than the query
		return Range{From: t, To: t + "\xff"}
	}
	return Range{From: t + "\x00", To: t + "\x01"}
}

func prefix(t string) Range {
	t = cut(t)
	return Range{From: t, To: t + "\xff"}
}

// Criterion is one parsed search parameter occurrence.
type Criterion struct {
	Def      Def
	Modifier string
	missing  int // 0 = not :missing, 1 = missing=true, 2 = missing=false
	values   []query
}

// query is one parsed search value.
type query struct {
	prefix       string // date/number/quantity comparator
	system, code string // token; code also the reference id or the uri
	hasSystem    bool
	str          string // folded string / :text
	ref          string // reference "Type/id" or bare id
	lo, hi       int64  // date range
	num, half    float64
	parts        []query // composite
}

// resultParams are FHIR result parameters; the REST layer handles them, so
// a Query that still carries one ignores it rather than failing.
var resultParams = map[string]bool{
	"_count": true, "_sort": true, "_total": true, "_include": true, "_revinclude": true,
	"_elements": true, "_summary": true, "_format": true, "_pretty": true, "_contained": true,
	"_containedType": true,
}

// IsResultParam reports whether name is a FHIR result parameter (_count,
// _sort, _include, ...) rather than a filter.
func IsResultParam(name string) bool { return resultParams[name] }

// Parse validates one parameter occurrence against the registry; errors
// are *store.ParamError.
func Parse(resourceType string, p store.Param) (*Criterion, error) {
	def, ok := Lookup(resourceType, p.Name)
	if !ok {
		return nil, &store.ParamError{Param: p.Name, Reason: "unknown search parameter for " + resourceType}
	}
	c := &Criterion{Def: def, Modifier: p.Modifier}
	perr := func(format string, args ...any) error {
		name := p.Name
		if p.Modifier != "" {
			name += ":" + p.Modifier
		}
		return &store.ParamError{Param: name, Reason: fmt.Sprintf(format, args...)}
	}
	if len(p.Values) == 0 {
		return nil, perr("no value")
	}
	if p.Modifier == "missing" {
		if len(p.Values) != 1 || (p.Values[0] != "true" && p.Values[0] != "false") {
			return nil, perr("value must be true or false")
		}
		c.missing = 1
		if p.Values[0] == "false" {
			c.missing = 2
		}
		return c, nil
	}
	if err := c.checkModifier(); err != nil {
		return nil, perr("%v", err)
	}
	for _, raw := range p.Values {
		if raw == "" {
			return nil, perr("empty value")
		}
		q, err := c.parseValue(raw)
		if err != nil {
			return nil, perr("%q: %v", raw, err)
		}
		c.values = append(c.values, q)
	}
	return c, nil
}

func (c *Criterion) checkModifier() error {
	m := c.Modifier
	if m == "" {
		return nil
	}
	ok := false
	switch c.Def.Type {
	case Token:
		ok = m == "not" || m == "text"
	case String:
		ok = m == "exact" || m == "contains"
	case URI:
		ok = m == "below"
	case Reference:
		if strings.Contains(m, ".") {
			return fmt.Errorf("chained parameters (%s) are not supported", m)
		}
		// A type modifier (subject:Patient=123).
		ok = isTypeName(m) && (len(c.Def.Targets) == 0 || targetOK(c.Def.Targets, m+"/x"))
	}
	if !ok {
		return fmt.Errorf("modifier :%s is not supported for a %s parameter", m, c.Def.Type)
	}
	return nil
}

func splitPrefix(raw string) (string, string) {
	if len(raw) > 2 {
		switch raw[:2] {
		case "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap":
			return raw[:2], raw[2:]
		}
	}
	return "eq", raw
}

func (c *Criterion) parseValue(raw string) (query, error) {
	switch c.Def.Type {
	case Token:
		return parseToken(raw, c.Modifier == "text"), nil
	case String:
		return query{str: Fold(raw), code: raw}, nil
	case URI:
		return query{code: raw}, nil
	case Reference:
		if c.Modifier != "" {
			if strings.Contains(raw, "/") {
				return query{}, fmt.Errorf("a type modifier takes a bare id")
			}
			raw = c.Modifier + "/" + raw
		}
		if strings.HasPrefix(raw, "urn:") {
			return query{ref: raw}, nil
		}
		if !strings.Contains(raw, "/") {
			if len(c.Def.Targets) == 1 {
				return query{ref: c.Def.Targets[0] + "/" + raw}, nil
			}
			return query{code: raw}, nil // bare id, any target type
		}
		ref := NormalizeReference(raw)
		if ref == "" {
			return query{}, fmt.Errorf("not a reference")
		}
		if !targetOK(c.Def.Targets, ref) {
			return query{}, fmt.Errorf("%s is not a target type of this parameter", strings.Split(ref, "/")[0])
		}
		return query{ref: ref}, nil
	case Date:
		pfx, v := splitPrefix(raw)
		lo, hi, ok := ParseDate(v)
		if !ok {
			return query{}, fmt.Errorf("not a FHIR date, dateTime or instant")
		}
		return query{prefix: pfx, lo: lo, hi: hi}, nil
	case Number, Quantity:
		pfx, v := splitPrefix(raw)
		numStr, unit, hasUnit := strings.Cut(v, "|")
		n, err := strconv.ParseFloat(numStr, 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return query{}, fmt.Errorf("not a number")
		}
		q := query{prefix: pfx, num: n, half: halfUnit(numStr)}
		if hasUnit {
			if c.Def.Type == Number {
				return query{}, fmt.Errorf("a number takes no unit")
			}
			sys, code, ok := strings.Cut(unit, "|")
			if !ok {
				code, sys = sys, ""
			}
			q.system, q.code, q.hasSystem = sys, code, sys != ""
		}
		return q, nil
	case Composite:
		a, b, ok := strings.Cut(raw, "$")
		if !ok || a == "" || b == "" {
			return query{}, fmt.Errorf("a composite value is code$value")
		}
		return query{parts: []query{parseToken(a, false), parseToken(b, false)}}, nil
	}
	return query{}, fmt.Errorf("parameter type %s is not searchable", c.Def.Type)
}

func parseToken(raw string, text bool) query {
	if text {
		return query{str: Fold(raw)}
	}
	sys, code, ok := strings.Cut(raw, "|")
	if !ok {
		return query{code: raw}
	}
	return query{system: sys, code: code, hasSystem: true}
}

// halfUnit is half the unit of the last significant digit of a number as
// written (FHIR number equality is by implied precision).
func halfUnit(s string) float64 {
	s = strings.TrimLeft(s, "+-")
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	e := 0
	if exp != "" {
		e, _ = strconv.Atoi(exp)
	}
	dec := 0
	if _, frac, ok := strings.Cut(mant, "."); ok {
		dec = len(frac)
	}
	return 0.5 * math.Pow(10, float64(e-dec))
}

// IDs returns the ids of an _id criterion without modifier.
func (c *Criterion) IDs() ([]string, bool) {
	if c.Def.Name != "_id" || c.Modifier != "" || c.missing != 0 {
		return nil, false
	}
	out := make([]string, len(c.values))
	for i, v := range c.values {
		out[i] = v.code
		if v.hasSystem {
			out[i] = v.system + "|" + v.code // never an id: matches nothing
		}
	}
	return out, true
}

// Ranges returns the index term ranges whose union holds every match of
// the criterion (a superset: Match decides). ok is false when the
// criterion cannot use the index (:missing, :not, ne, number, quantity,
// composite).
func (c *Criterion) Ranges() (rs []Range, ok bool) {
	if c.missing != 0 || c.Modifier == "not" {
		return nil, false
	}
	for _, q := range c.values {
		switch c.Def.Type {
		case Token:
			switch {
			case c.Modifier == "text":
				return nil, false // display text is not indexed
			case !q.hasSystem:
				rs = append(rs, prefix("t"+q.code+tokenSep))
			case q.code == "":
				rs = append(rs, Range{From: "t", To: "t\xff", Suffix: cut(tokenSep + q.system)})
			default:
				rs = append(rs, exact("t"+q.code+tokenSep+q.system))
			}
		case String:
			switch c.Modifier {
			case "contains":
				rs = append(rs, Range{From: "v", To: "v\xff", Contains: cut(q.str)})
			default:
				rs = append(rs, prefix("v"+q.str))
			}
		case URI:
			if c.Modifier == "below" {
				rs = append(rs, prefix("u"+q.code))
			} else {
				rs = append(rs, exact("u"+q.code))
			}
		case Reference:
			switch {
			case q.ref != "":
				rs = append(rs, exact("r"+q.ref))
			case len(c.Def.Targets) > 0:
				for _, t := range c.Def.Targets {
					rs = append(rs, exact("r"+t+"/"+q.code))
				}
			default:
				// A bare id with any target type: scan the parameter's
				// references for the id (keys only).
				rs = append(rs, Range{From: "r", To: "r\xff", Suffix: cut("/" + q.code)})
			}
		case Date:
			slo, shi := q.lo, q.hi
			if c.Def.Name == "_lastUpdated" {
				// Only lo is indexed; hi = lo+1µs turns hi conditions into lo ones.
				switch q.prefix {
				case "gt":
					rs = append(rs, Range{From: "l" + DateKey(shi), To: "l\xff"})
				case "ge":
					rs = append(rs, Range{From: "l" + DateKey(slo), To: "l\xff"})
				case "eb":
					rs = append(rs, Range{From: "l", To: "l" + DateKey(slo)})
				case "eq", "lt", "le", "sa":
				default:
					return nil, false
				}
				if q.prefix == "gt" || q.prefix == "ge" || q.prefix == "eb" {
					continue
				}
			}
			switch q.prefix {
			case "eq":
				rs = append(rs, Range{From: "l" + DateKey(slo), To: "l" + DateKey(shi)})
			case "gt":
				rs = append(rs, Range{From: "h" + DateKey(shi+1), To: "h\xff"})
			case "ge":
				rs = append(rs, Range{From: "h" + DateKey(shi+1), To: "h\xff"},
					Range{From: "l" + DateKey(slo), To: "l" + DateKey(shi)})
			case "lt":
				rs = append(rs, Range{From: "l", To: "l" + DateKey(slo)})
			case "le":
				rs = append(rs, Range{From: "l", To: "l" + DateKey(shi)})
			case "sa":
				rs = append(rs, Range{From: "l" + DateKey(shi), To: "l\xff"})
			case "eb":
				rs = append(rs, Range{From: "h", To: "h" + DateKey(slo+1)})
			default:
				return nil, false
			}
		case Number, Quantity:
			n := q.num
			switch q.prefix {
			case "eq":
				rs = append(rs, Range{From: "n" + NumKey(n-q.half), To: "n" + NumKey(n+q.half)})
			case "gt", "sa":
				rs = append(rs, Range{From: "n" + NumKey(math.Nextafter(n, math.Inf(1))), To: "n\xff"})
			case "ge":
				rs = append(rs, Range{From: "n" + NumKey(n), To: "n\xff"})
			case "lt", "eb":
				rs = append(rs, Range{From: "n", To: "n" + NumKey(n)})
			case "le":
				rs = append(rs, Range{From: "n", To: "n" + NumKey(math.Nextafter(n, math.Inf(1)))})
			default:
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return rs, true
}

// Match reports whether a resource body satisfies the criterion.
func (c *Criterion) Match(body []byte) bool {
	vals := Extract(c.Def, body)
	switch c.missing {
	case 1:
		return len(vals) == 0
	case 2:
		return len(vals) > 0
	}
	if c.Modifier == "not" {
		// Spec: resources that have no value matching any of the values.
		for _, q := range c.values {
			for _, v := range vals {
				if c.matchOne(q, v) {
					return false
				}
			}
		}
		return true
	}
	for _, q := range c.values {
		for _, v := range vals {
			if c.matchOne(q, v) {
				return true
			}
		}
	}
	return false
}

func (c *Criterion) matchOne(q query, v Value) bool {
	switch c.Def.Type {
	case Token:
		if c.Modifier == "text" {
			t := Fold(v.Text)
			return t != "" && (strings.HasPrefix(t, q.str) || strings.Contains(t, " "+q.str))
		}
		return matchToken(q, v)
	case String:
		switch c.Modifier {
		case "exact":
			return v.Raw == q.code
		case "contains":
			return strings.Contains(v.Str, q.str)
		}
		return strings.HasPrefix(v.Str, q.str)
	case URI:
		if c.Modifier == "below" {
			return strings.HasPrefix(v.Str, q.code)
		}
		return v.Str == q.code
	case Reference:
		if q.ref != "" {
			return v.Str == q.ref
		}
		_, id, _ := strings.Cut(v.Str, "/")
		return id == q.code
	case Date:
		return matchDate(q.prefix, q.lo, q.hi, v.Lo, v.Hi)
	case Number, Quantity:
		if !v.HasNum {
			return false
		}
		if q.code != "" && !(v.Code == q.code || (!q.hasSystem && v.Text == q.code)) {
			return false
		}
		if q.hasSystem && v.System != q.system {
			return false
		}
		return matchNumber(q.prefix, q.num, q.half, v.Num)
	case Composite:
		return len(v.Parts) == 2 && matchToken(q.parts[0], v.Parts[0]) && matchToken(q.parts[1], v.Parts[1])
	}
	return false
}

func matchToken(q query, v Value) bool {
	if !q.hasSystem {
		return v.Code == q.code
	}
	if q.code == "" {
		return v.System == q.system
	}
	return v.System == q.system && v.Code == q.code
}

// matchDate applies the prefix table of FHIR R4 §3.1.1.4.2 to the search
// range [slo, shi) and the target range [lo, hi).
func matchDate(prefix string, slo, shi, lo, hi int64) bool {
	eq := lo >= slo && hi <= shi
	switch prefix {
	case "eq":
		return eq
	case "ne":
		return !eq
	case "gt":
		return hi > shi
	case "lt":
		return lo < slo
	case "ge":
		return hi > shi || eq
	case "le":
		return lo < slo || eq
	case "sa":
		return lo >= shi
	case "eb":
		return hi <= slo
	case "ap":
		// Approximately: overlaps the search range widened by 10% of the
		// distance from now, at least a day (the spec leaves it open).
		w := (shi - slo) / 10
		if w < 86400*1e6 {
			w = 86400 * 1e6
		}
		return lo < shi+w && hi > slo-w
	}
	return false
}

func matchNumber(prefix string, n, half, v float64) bool {
	switch prefix {
	case "eq":
		return v >= n-half && v < n+half
	case "ne":
		return v < n-half || v >= n+half
	case "gt", "sa":
		return v > n
	case "lt", "eb":
		return v < n
	case "ge":
		return v >= n
	case "le":
		return v <= n
	case "ap":
		d := math.Abs(n) / 10
		return v >= n-d && v <= n+d
	}
	return false
}

// SortKey returns a string that orders resources by a sortable parameter
// (date, string, token, uri, number, reference): the smallest value
// ascending, the largest descending. ok is false when the resource has no
// value.
func SortKey(def Def, body []byte, descending bool) (key string, ok bool) {
	vals := Extract(def, body)
	for _, v := range vals {
		var k string
		switch def.Type {
		case Date:
			if descending {
				k = DateKey(v.Hi)
			} else {
				k = DateKey(v.Lo)
			}
		case String, URI, Reference:
			k = v.Str
		case Token:
			k = v.Code
		case Number, Quantity:
			k = NumKey(v.Num)
		default:
			return "", false
		}
		if !ok || (descending && k > key) || (!descending && k < key) {
			key, ok = k, true
		}
	}
	return key, ok
}

// Exact reports whether the index ranges of the criterion hold exactly its
// matches (no re-check against the resource needed), so a store can count
// matches from the index alone.
func (c *Criterion) Exact() bool {
	if _, ok := c.IDs(); ok {
		return true
	}
	if _, ok := c.Ranges(); !ok {
		return false
	}
	for _, q := range c.values {
		switch c.Def.Type {
		case Token:
			if len(q.code)+len(q.system)+2 >= MaxTerm {
				return false
			}
		case String:
			if c.Modifier != "" || len(q.str)+2 >= MaxTerm {
				return false
			}
		case Reference:
			if len(q.ref)+len(q.code)+2 >= MaxTerm || strings.Contains(q.code, "/") {
				return false
			}
		case URI:
			if len(q.code)+2 >= MaxTerm {
				return false
			}
		case Date:
			// gt, lt, sa and eb test one end of the range, which one index
			// term holds; eq, ge, le and ne need both ends.
			switch q.prefix {
			case "gt", "lt", "sa", "eb":
			default:
				if c.Def.Name != "_lastUpdated" {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

func isTypeName(s string) bool {
	if len(s) < 2 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') {
			return false
		}
	}
	return true
}
