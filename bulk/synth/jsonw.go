package synth

import (
	"strconv"
	"unicode/utf8"
)

// The generator builds resources as ordered trees and encodes them itself:
// FHIR readers expect resourceType first and id next, maps would lose that
// order, and reflection-based encoding was the bulk of the generation cost.

// obj is a JSON object whose members keep their insertion order.
type obj []kv

type kv struct {
	k string
	v any
}

// arr is a JSON array.
type arr []any

// num is a JSON number written verbatim, so decimals keep the precision the
// generator chose (FHIR decimals are lexical: 7.40 and 7.4 differ).
type num string

// add appends a member unless v is empty, so optional elements need no
// branching at the call sites and no empty arrays or strings are emitted
// (FHIR JSON forbids them).
func (o obj) add(k string, v any) obj {
	switch x := v.(type) {
	case nil:
		return o
	case string:
		if x == "" {
			return o
		}
	case obj:
		if len(x) == 0 {
			return o
		}
	case arr:
		if len(x) == 0 {
			return o
		}
	}
	return append(o, kv{k, v})
}

func dec(f float64, prec int) num { return num(strconv.FormatFloat(f, 'f', prec, 64)) }

func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case obj:
		b = append(b, '{')
		for i, m := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m.k)
			b = append(b, ':')
			b = appendJSON(b, m.v)
		}
		return append(b, '}')
	case arr:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case string:
		return appendString(b, x)
	case num:
		return append(b, x...)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case bool:
		return strconv.AppendBool(b, x)
	case nil:
		return append(b, "null"...)
	default:
		panic("synth: cannot encode " + strconv.Quote(typeName(v)))
	}
}

func typeName(v any) string {
	switch v.(type) {
	case float64, float32:
		return "float (use dec)"
	default:
		return "unsupported type"
	}
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Generated text is valid UTF-8;
// only quotes, backslashes and control characters need escaping.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			i++
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
