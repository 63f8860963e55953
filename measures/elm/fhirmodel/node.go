package fhirmodel

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// unsafeBytes views an immutable string as bytes for scanning; the parser
// never writes to it.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// Kind is the JSON kind of a Node.
type Kind uint8

// JSON kinds.
const (
	Null Kind = iota
	Bool
	Number
	String
	Object
	Array
)

// Node is a parsed JSON value. Objects keep their keys in document order
// (FHIR objects are small, so lookups scan Keys); arrays use Vals only.
// Numbers keep their source text in Str so decimals keep their precision.
type Node struct {
	Kind Kind
	Bool bool
	Str  string
	Keys []string
	Vals []*Node
	// CacheWrap and CacheValue are reserved for the evaluation engine, which
	// memoises the typed wrapper of the node and its converted value there
	// (a node's FHIR type never changes within a tree).
	CacheWrap, CacheValue any
}

// Get returns the value of key in an object node, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != Object {
		return nil
	}
	for i, k := range n.Keys {
		if k == key {
			return n.Vals[i]
		}
	}
	return nil
}

// ErrSyntax is returned (wrapped) for malformed JSON.
var ErrSyntax = errors.New("fhirmodel: invalid JSON")

// Parse parses one JSON document into a Node tree.
func Parse(data []byte) (*Node, error) {
	var a Arena
	return a.Parse(data)
}

// Arena parses JSON documents with pooled allocation: nodes and key/value
// slices come from slabs and keys and string values share one copy of the
// input. Trees parsed by an Arena stay valid until Reset;
// strings taken from them stay valid forever. An Arena is not safe for
// concurrent use.
type Arena struct {
	nodes   []Node
	used    int
	keys    []string
	vals    []*Node
	scratch []scratchEntry
	pool    [][]Node
	// key/value slabs, reused after Reset
	keyPool [][]string
	valPool [][]*Node
	keyUsed int
	valUsed int
}

type scratchEntry struct {
	key string
	val *Node
}

// Reset makes the arena's memory reusable; trees parsed before are invalid.
func (a *Arena) Reset() {
	a.used = 0
	if len(a.pool) > 0 {
		a.nodes = a.pool[0]
	}
	a.keyUsed, a.valUsed = 0, 0
	a.keys, a.vals = nil, nil
	if len(a.keyPool) > 0 {
		a.keys = a.keyPool[0][:0]
	}
	if len(a.valPool) > 0 {
		a.vals = a.valPool[0][:0]
	}
}

func (a *Arena) growKeys(k int) {
	a.keyUsed++
	if a.keyUsed < len(a.keyPool) && cap(a.keyPool[a.keyUsed]) >= k {
		a.keys = a.keyPool[a.keyUsed][:0]
		return
	}
	a.keys = make([]string, 0, max(2048, k))
	if a.keyUsed < len(a.keyPool) {
		a.keyPool[a.keyUsed] = a.keys
	} else {
		a.keyPool = append(a.keyPool, a.keys)
		a.keyUsed = len(a.keyPool) - 1
	}
}

func (a *Arena) growVals(k int) {
	a.valUsed++
	if a.valUsed < len(a.valPool) && cap(a.valPool[a.valUsed]) >= k {
		a.vals = a.valPool[a.valUsed][:0]
		return
	}
	a.vals = make([]*Node, 0, max(2048, k))
	if a.valUsed < len(a.valPool) {
		a.valPool[a.valUsed] = a.vals
	} else {
		a.valPool = append(a.valPool, a.vals)
		a.valUsed = len(a.valPool) - 1
	}
}

// Parse parses one JSON document.
func (a *Arena) Parse(data []byte) (*Node, error) {
	// One private copy of the input backs every string of the tree.
	buf := string(data)
	p := parser{src: buf, data: unsafeBytes(buf), a: a}
	p.ws()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.data) {
		return nil, p.errf("trailing data")
	}
	return n, nil
}

type parser struct {
	src  string
	data []byte
	pos  int
	a    *Arena
}

const maxDepth = 512

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrSyntax, p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) node() *Node {
	a := p.a
	if len(a.nodes) == 0 {
		// Next pooled slab, or a new one (slabs grow to amortise).
		a.used++
		if a.used < len(a.pool) {
			a.nodes = a.pool[a.used]
		} else {
			size := 256
			if len(a.pool) > 0 {
				size = min(len(a.pool[len(a.pool)-1])*2, 8192)
			}
			slab := make([]Node, size)
			a.pool = append(a.pool, slab)
			a.used = len(a.pool) - 1
			a.nodes = slab
		}
	}
	n := &a.nodes[0]
	*n = Node{}
	a.nodes = a.nodes[1:]
	return n
}

// children copies collected object members or array items into slab-backed
// slices of exact length.
func (p *parser) finishObject(n *Node, mark int) {
	a := p.a
	items := a.scratch[mark:]
	k := len(items)
	if a.keys == nil || cap(a.keys)-len(a.keys) < k {
		a.growKeys(k)
	}
	if a.vals == nil || cap(a.vals)-len(a.vals) < k {
		a.growVals(k)
	}
	start := len(a.keys)
	for _, it := range items {
		a.keys = append(a.keys, it.key)
	}
	n.Keys = a.keys[start:len(a.keys):len(a.keys)]
	vstart := len(a.vals)
	for _, it := range items {
		a.vals = append(a.vals, it.val)
	}
	n.Vals = a.vals[vstart:len(a.vals):len(a.vals)]
	a.scratch = a.scratch[:mark]
}

func (p *parser) finishArray(n *Node, mark int) {
	a := p.a
	items := a.scratch[mark:]
	k := len(items)
	if a.vals == nil || cap(a.vals)-len(a.vals) < k {
		a.growVals(k)
	}
	vstart := len(a.vals)
	for _, it := range items {
		a.vals = append(a.vals, it.val)
	}
	n.Vals = a.vals[vstart:len(a.vals):len(a.vals)]
	a.scratch = a.scratch[:mark]
}

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (*Node, error) {
	if depth > maxDepth {
		return nil, p.errf("nesting too deep")
	}
	if p.pos >= len(p.data) {
		return nil, p.errf("unexpected end")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		p.pos++
		n := p.node()
		n.Kind = Object
		p.ws()
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			return n, nil
		}
		mark := len(p.a.scratch)
		for {
			p.ws()
			if p.pos >= len(p.data) || p.data[p.pos] != '"' {
				return nil, p.errf("expected object key")
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.ws()
			if p.pos >= len(p.data) || p.data[p.pos] != ':' {
				return nil, p.errf("expected ':'")
			}
			p.pos++
			p.ws()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			p.a.scratch = append(p.a.scratch, scratchEntry{key: k, val: v})
			p.ws()
			if p.pos >= len(p.data) {
				return nil, p.errf("unexpected end in object")
			}
			if p.data[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.data[p.pos] == '}' {
				p.pos++
				p.finishObject(n, mark)
				return n, nil
			}
			return nil, p.errf("expected ',' or '}'")
		}
	case c == '[':
		p.pos++
		n := p.node()
		n.Kind = Array
		p.ws()
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return n, nil
		}
		mark := len(p.a.scratch)
		for {
			p.ws()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			p.a.scratch = append(p.a.scratch, scratchEntry{val: v})
			p.ws()
			if p.pos >= len(p.data) {
				return nil, p.errf("unexpected end in array")
			}
			if p.data[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.data[p.pos] == ']' {
				p.pos++
				p.finishArray(n, mark)
				return n, nil
			}
			return nil, p.errf("expected ',' or ']'")
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		n := p.node()
		n.Kind = String
		n.Str = s
		return n, nil
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(p.data)-p.pos >= len(lit) && string(p.data[p.pos:p.pos+len(lit)]) == lit {
				p.pos += len(lit)
				n := p.node()
				switch lit {
				case "true":
					n.Kind, n.Bool = Bool, true
				case "false":
					n.Kind = Bool
				}
				return n, nil
			}
		}
		return nil, p.errf("invalid literal")
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		p.pos = jsonNumberEnd(p.data, p.pos)
		txt := p.src[start:p.pos]
		// The grammar check alone would let 1e999 through: ParseFloat
		// rejects what float64 cannot hold.
		if _, err := strconv.ParseFloat(txt, 64); p.pos == start || err != nil {
			return nil, p.errf("invalid number %q", txt)
		}
		n := p.node()
		n.Kind = Number
		n.Str = txt
		return n, nil
	default:
		return nil, p.errf("unexpected character %q", c)
	}
}

func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.src[start:p.pos]
			p.pos++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errf("control character in string")
		}
		p.pos++
	}
	buf := append([]byte(nil), p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !utf8.Valid(buf) {
				return string(buf), nil
			}
			return string(buf), nil
		case c == '\\':
			if p.pos+1 >= len(p.data) {
				return "", p.errf("bad escape")
			}
			e := p.data[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errf("bad \\u escape")
				}
				if utf16.IsSurrogate(r) {
					if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
						p.pos += 2
						r2, ok := p.hex4()
						if !ok {
							return "", p.errf("bad \\u escape")
						}
						r = utf16.DecodeRune(r, r2)
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", p.errf("bad escape")
			}
		case c < 0x20:
			return "", p.errf("control character in string")
		default:
			buf = append(buf, c)
			p.pos++
		}
	}
	return "", p.errf("unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.pos += 4
	return rune(v), true
}

// jsonNumberEnd returns the end of the JSON number (RFC 8259 §6) starting at
// i, or i if there is none. strconv.ParseFloat alone would also take "00",
// "1." and "1.e5", which are not JSON.
func jsonNumberEnd(b []byte, i int) int {
	start := i
	digits := func() int {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return start
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return start
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return start
		}
	}
	return i
}
