package validate

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// maxDepth bounds JSON nesting. Real FHIR resources stay far below it
// (nested Questionnaire items are the deepest common case); the limit keeps hostile input
// from exhausting the stack of the recursive scanners here and in google/fhir.
const maxDepth = 100

// scanError is a problem found by the pre-scan, located by a FHIRPath-like
// expression relative to the resource root.
type scanError struct {
	path string // e.g. "name[0].given"
	code string // OperationOutcome issue type
	msg  string
}

// segment is one step of the current path: an object key (a byte range
// into the input, so scanning allocates nothing) or an array index.
type segment struct {
	keyStart, keyEnd int
	index            int // -1 for object keys
}

// scanner is a single-pass JSON syntax checker that additionally enforces
// the FHIR JSON rules the google/fhir parser silently accepts: no empty
// objects, arrays or strings, no whitespace-only strings, no null property
// values (null is only allowed inside arrays, to align primitive values with
// their "_name" extension arrays) and no duplicate property names. It also
// picks up the root's resourceType and id.
type scanner struct {
	b     []byte
	i     int
	path  []segment
	err   *scanError
	rtype string
	id    string
}

func prescan(b []byte) (rtype, id string, err *scanError) {
	s := &scanner{b: b, path: make([]segment, 0, 16)}
	s.ws()
	if s.i >= len(b) {
		return "", "", &scanError{code: "structure", msg: "empty body: expected a JSON object"}
	}
	if b[s.i] != '{' {
		return "", "", &scanError{code: "structure", msg: "a FHIR resource must be a JSON object"}
	}
	if !s.value(0) {
		return "", "", s.err
	}
	s.ws()
	if s.i < len(b) {
		s.fail("structure", "unexpected data after the top-level object")
		return "", "", s.err
	}
	return s.rtype, s.id, nil
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// fail records the first error with the current path.
func (s *scanner) fail(code, format string, args ...any) bool {
	if s.err == nil {
		s.err = &scanError{path: s.pathString(), code: code, msg: fmt.Sprintf(format, args...)}
	}
	return false
}

func (s *scanner) syntax(what string) bool {
	if s.i >= len(s.b) {
		return s.fail("structure", "invalid JSON: unexpected end of input, expected %s", what)
	}
	return s.fail("structure", "invalid JSON at byte %d: expected %s, found %q", s.i, what, s.b[s.i])
}

func (s *scanner) pathString() string {
	var sb strings.Builder
	for _, p := range s.path {
		if p.index >= 0 {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(p.index))
			sb.WriteByte(']')
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.Write(s.b[p.keyStart:p.keyEnd])
	}
	return sb.String()
}

// value scans one JSON value at s.i (null is handled by the caller for
// array elements, the only place FHIR JSON allows it).
func (s *scanner) value(depth int) bool {
	if depth > maxDepth {
		return s.fail("too-costly", "JSON nested deeper than %d levels", maxDepth)
	}
	s.ws()
	if s.i >= len(s.b) {
		return s.syntax("a value")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		start := s.i
		if !s.str() {
			return false
		}
		if blank(s.b[start+1 : s.i-1]) {
			return s.fail("value", "empty or whitespace-only string (FHIR JSON requires non-whitespace content)")
		}
		return true
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		if !s.lit("null") {
			return false
		}
		s.i -= 4
		return s.fail("value", "null is not allowed as a property value")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		return s.syntax("a value")
	}
}

func (s *scanner) lit(word string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return s.syntax(word)
	}
	s.i += len(word)
	return true
}

func (s *scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		s.i = i
		return s.syntax("a digit")
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		s.i = i
		return s.syntax("a digit")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return s.syntax("a digit")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return s.syntax("a digit")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	s.i = i
	return true
}

// str scans a string starting at the opening quote and leaves s.i after the
// closing quote.
func (s *scanner) str() bool {
	b := s.b
	i := s.i + 1
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return true
		case c == '\\':
			if i+1 >= len(b) {
				s.i = len(b)
				return s.syntax("an escape sequence")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					s.i = i
					return s.syntax("a \\uXXXX escape")
				}
				i += 6
			default:
				s.i = i
				return s.syntax("a valid escape sequence")
			}
		case c < 0x20:
			s.i = i
			return s.fail("structure", "invalid JSON at byte %d: control character in string", i)
		default:
			i++
		}
	}
	s.i = len(b)
	return s.syntax("a closing quote")
}

func isHex4(h []byte) bool {
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// blank reports whether the raw (still escaped) string content has no
// non-whitespace character.
func blank(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case ' ', '\t', '\n', '\r':
		case '\\':
			if i+1 >= len(raw) {
				return false
			}
			switch raw[i+1] {
			case 'n', 'r', 't':
				i++
			case 'u':
				if i+6 > len(raw) {
					return false
				}
				switch strings.ToLower(string(raw[i+2 : i+6])) {
				case "0020", "0009", "000a", "000d":
					i += 5
				default:
					return false
				}
			default:
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (s *scanner) object(depth int) bool {
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		return s.fail("value", "empty object (FHIR JSON does not allow {})")
	}
	type span struct{ a, b int }
	var small [16]span
	keys := small[:0]
	var seen map[string]struct{}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.syntax("a property name")
		}
		ks := s.i
		if !s.str() {
			return false
		}
		k := span{ks + 1, s.i - 1}
		if k.a == k.b {
			return s.fail("structure", "empty property name")
		}
		dup := false
		if seen != nil {
			_, dup = seen[string(s.b[k.a:k.b])]
			seen[string(s.b[k.a:k.b])] = struct{}{}
		} else {
			for _, o := range keys {
				if bytes.Equal(s.b[o.a:o.b], s.b[k.a:k.b]) {
					dup = true
					break
				}
			}
			keys = append(keys, k)
			// Linear search is cheapest for ordinary FHIR objects; switch
			// to a set so a hostile object with many keys stays linear.
			if len(keys) == 64 {
				seen = make(map[string]struct{}, 128)
				for _, o := range keys {
					seen[string(s.b[o.a:o.b])] = struct{}{}
				}
			}
		}
		if dup {
			s.path = append(s.path, segment{keyStart: k.a, keyEnd: k.b, index: -1})
			return s.fail("structure", "duplicate property %q", s.b[k.a:k.b])
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.syntax("':'")
		}
		s.i++
		s.ws()
		s.path = append(s.path, segment{keyStart: k.a, keyEnd: k.b, index: -1})
		vs := s.i
		if !s.value(depth + 1) {
			return false
		}
		if depth == 0 {
			s.root(s.b[k.a:k.b], s.b[vs:s.i])
		}
		s.path = s.path[:len(s.path)-1]
		s.ws()
		if s.i >= len(s.b) {
			return s.syntax("',' or '}'")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return s.syntax("',' or '}'")
		}
	}
}

// root remembers resourceType and id of the top-level object; both are
// plain strings in valid FHIR, so they are only unquoted when escape-free.
func (s *scanner) root(key, val []byte) {
	if len(val) < 2 || val[0] != '"' || bytes.IndexByte(val, '\\') >= 0 {
		return
	}
	switch string(key) {
	case "resourceType":
		s.rtype = string(val[1 : len(val)-1])
	case "id":
		s.id = string(val[1 : len(val)-1])
	}
}

func (s *scanner) array(depth int) bool {
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		return s.fail("value", "empty array (FHIR JSON does not allow [])")
	}
	s.path = append(s.path, segment{index: 0})
	for n := 0; ; n++ {
		s.path[len(s.path)-1].index = n
		s.ws()
		if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
			// Allowed: aligns primitive arrays with their extensions.
			s.i += 4
		} else if !s.value(depth + 1) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.syntax("',' or ']'")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			s.path = s.path[:len(s.path)-1]
			return true
		default:
			return s.syntax("',' or ']'")
		}
	}
}
