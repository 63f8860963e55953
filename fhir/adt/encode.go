package adt

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Hand-written JSON encoders for the mapper's element types. encoding/json
// reflects over every value, which was the largest single cost of building
// resources; these append the identical bytes (same member order, same
// omitempty rules, same string escaping including HTML-safe escapes) without
// reflection. raw falls back to encoding/json for any other type, and
// TestEncodeMatchesEncodingJSON holds both to the same output.

// encode appends v's JSON to dst and reports whether it knew the type.
func encode(dst []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		return appendJSONString(dst, v), true
	case coding:
		return appendCoding(dst, v), true
	case []coding:
		return appendSlice(dst, v, appendCoding), true
	case codeableConcept:
		return appendConcept(dst, v), true
	case *codeableConcept:
		if v == nil {
			return append(dst, "null"...), true
		}
		return appendConcept(dst, *v), true
	case []codeableConcept:
		return appendSlice(dst, v, appendConcept), true
	case identifier:
		return appendIdentifier(dst, v), true
	case []identifier:
		return appendSlice(dst, v, appendIdentifier), true
	case reference:
		return appendReference(dst, v), true
	case []reference:
		return appendSlice(dst, v, appendReference), true
	case period:
		return appendPeriod(dst, v), true
	case humanName:
		return appendHumanName(dst, v), true
	case []humanName:
		return appendSlice(dst, v, appendHumanName), true
	case address:
		return appendAddress(dst, v), true
	case []address:
		return appendSlice(dst, v, appendAddress), true
	case contactPoint:
		return appendContactPoint(dst, v), true
	case []contactPoint:
		return appendSlice(dst, v, appendContactPoint), true
	case extension:
		return appendExtension(dst, v), true
	case []extension:
		return appendSlice(dst, v, appendExtension), true
	case link:
		return appendLink(dst, v), true
	case *coding:
		if v == nil {
			return append(dst, "null"...), true
		}
		return appendCoding(dst, *v), true
	case *reference:
		if v == nil {
			return append(dst, "null"...), true
		}
		return appendReference(dst, *v), true
	case header:
		return appendHeader(dst, v), true
	case prov:
		return appendProv(dst, v), true
	case participant:
		return appendParticipant(dst, v), true
	case []participant:
		return appendSlice(dst, v, appendParticipant), true
	case encounterDiagnosis:
		return appendEncounterDiagnosis(dst, v), true
	case []encounterDiagnosis:
		return appendSlice(dst, v, appendEncounterDiagnosis), true
	case []json.RawMessage:
		if v == nil {
			return append(dst, "null"...), true
		}
		for _, e := range v {
			if !compacted(e) {
				return dst, false
			}
		}
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, e...)
		}
		return append(dst, ']'), true
	case map[string]json.RawMessage:
		if v == nil {
			return append(dst, "null"...), true
		}
		keys := make([]string, 0, len(v))
		for k, e := range v {
			if !compacted(e) {
				return dst, false
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = append(dst, v[k]...)
		}
		return append(dst, '}'), true
	case map[string]any:
		if v == nil {
			return append(dst, "null"...), true
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		start := len(dst)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			var ok bool
			if dst, ok = encode(dst, v[k]); !ok {
				return dst[:start], false
			}
		}
		return append(dst, '}'), true
	}
	return dst, false
}

// compacted reports whether encoding/json would copy a json.RawMessage
// unchanged: it is not empty and holds no whitespace outside strings and
// none of the bytes its compaction escapes (<, >, &, and the lead byte of
// U+2028/U+2029, checked conservatively). Anything else takes the
// encoding/json path.
func compacted(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	in, esc := false, false
	for _, c := range b {
		switch c {
		case '<', '>', '&', 0xe2:
			return false
		}
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}

func appendEndpointNamed(dst []byte, e endpointNamed) []byte {
	m := openObject(dst)
	m.str("name", e.Name)
	m.key("endpoint")
	m.b = appendJSONString(m.b, e.Endpoint)
	return m.close()
}

func appendHeader(dst []byte, h header) []byte {
	m := openObject(dst)
	m.key("resourceType")
	m.b = appendJSONString(m.b, h.ResourceType)
	m.key("id")
	m.b = appendJSONString(m.b, h.ID)
	m.key("eventCoding")
	m.b = appendCoding(m.b, h.EventCoding)
	if len(h.Destination) > 0 {
		m.key("destination")
		m.b = appendSlice(m.b, h.Destination, appendEndpointNamed)
	}
	if h.Sender != nil {
		m.key("sender")
		m.b = appendReference(m.b, *h.Sender)
	}
	m.key("source")
	m.b = appendEndpointNamed(m.b, h.Source)
	if len(h.Focus) > 0 {
		m.key("focus")
		m.b = appendSlice(m.b, h.Focus, appendReference)
	}
	return m.close()
}

func appendAgent(dst []byte, a agent) []byte {
	m := openObject(dst)
	if a.Type != nil {
		m.key("type")
		m.b = appendConcept(m.b, *a.Type)
	}
	m.key("who")
	m.b = appendReference(m.b, a.Who)
	return m.close()
}

func appendEntity(dst []byte, e entity) []byte {
	m := openObject(dst)
	m.key("role")
	m.b = appendJSONString(m.b, e.Role)
	m.key("what")
	m.b = appendReference(m.b, e.What)
	return m.close()
}

func appendProv(dst []byte, p prov) []byte {
	m := openObject(dst)
	m.key("resourceType")
	m.b = appendJSONString(m.b, p.ResourceType)
	m.key("id")
	m.b = appendJSONString(m.b, p.ID)
	m.key("target")
	m.b = appendSlice(m.b, p.Target, appendReference)
	m.str("occurredDateTime", p.Occurred)
	m.key("recorded")
	m.b = appendJSONString(m.b, p.Recorded)
	if p.Activity != nil {
		m.key("activity")
		m.b = appendConcept(m.b, *p.Activity)
	}
	if len(p.Reason) > 0 {
		m.key("reason")
		m.b = appendSlice(m.b, p.Reason, appendConcept)
	}
	m.key("agent")
	m.b = appendSlice(m.b, p.Agent, appendAgent)
	if len(p.Entity) > 0 {
		m.key("entity")
		m.b = appendSlice(m.b, p.Entity, appendEntity)
	}
	return m.close()
}

func appendParticipant(dst []byte, p participant) []byte {
	m := openObject(dst)
	if len(p.Type) > 0 {
		m.key("type")
		m.b = appendSlice(m.b, p.Type, appendConcept)
	}
	if p.Individual != nil {
		m.key("individual")
		m.b = appendReference(m.b, *p.Individual)
	}
	return m.close()
}

func appendEncounterDiagnosis(dst []byte, d encounterDiagnosis) []byte {
	m := openObject(dst)
	m.key("condition")
	m.b = appendReference(m.b, d.Condition)
	if d.Use != nil {
		m.key("use")
		m.b = appendConcept(m.b, *d.Use)
	}
	if d.Rank != 0 {
		m.key("rank")
		m.b = strconv.AppendInt(m.b, int64(d.Rank), 10)
	}
	return m.close()
}

// appendSlice follows encoding/json: a nil slice is null.
func appendSlice[T any](dst []byte, s []T, f func([]byte, T) []byte) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, e := range s {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = f(dst, e)
	}
	return append(dst, ']')
}

// members writes object members in order, with the separators.
type members struct {
	b     []byte
	first bool
}

func openObject(dst []byte) members { return members{b: append(dst, '{'), first: true} }

func (m *members) key(name string) {
	if !m.first {
		m.b = append(m.b, ',')
	}
	m.first = false
	m.b = append(m.b, '"')
	m.b = append(m.b, name...)
	m.b = append(m.b, '"', ':')
}

func (m *members) str(name, v string) {
	if v == "" {
		return
	}
	m.key(name)
	m.b = appendJSONString(m.b, v)
}

func (m *members) strs(name string, v []string) {
	if len(v) == 0 {
		return
	}
	m.key(name)
	m.b = appendSlice(m.b, v, appendJSONString)
}

func (m *members) close() []byte { return append(m.b, '}') }

func appendCoding(dst []byte, c coding) []byte {
	m := openObject(dst)
	m.str("system", c.System)
	m.str("code", c.Code)
	m.str("display", c.Display)
	return m.close()
}

func appendConcept(dst []byte, c codeableConcept) []byte {
	m := openObject(dst)
	if len(c.Coding) > 0 {
		m.key("coding")
		m.b = appendSlice(m.b, c.Coding, appendCoding)
	}
	m.str("text", c.Text)
	return m.close()
}

func appendIdentifier(dst []byte, id identifier) []byte {
	m := openObject(dst)
	m.str("use", id.Use)
	if id.Type != nil {
		m.key("type")
		m.b = appendConcept(m.b, *id.Type)
	}
	m.str("system", id.System)
	m.str("value", id.Value)
	return m.close()
}

func appendReference(dst []byte, r reference) []byte {
	m := openObject(dst)
	m.str("reference", r.Reference)
	m.str("type", r.Type)
	if r.Identifier != nil {
		m.key("identifier")
		m.b = appendIdentifier(m.b, *r.Identifier)
	}
	m.str("display", r.Display)
	return m.close()
}

func appendPeriod(dst []byte, p period) []byte {
	m := openObject(dst)
	m.str("start", p.Start)
	m.str("end", p.End)
	return m.close()
}

func appendHumanName(dst []byte, n humanName) []byte {
	m := openObject(dst)
	m.str("use", n.Use)
	m.str("text", n.Text)
	m.str("family", n.Family)
	m.strs("given", n.Given)
	m.strs("prefix", n.Prefix)
	m.strs("suffix", n.Suffix)
	return m.close()
}

func appendAddress(dst []byte, a address) []byte {
	m := openObject(dst)
	m.str("use", a.Use)
	m.str("type", a.Type)
	m.strs("line", a.Line)
	m.str("city", a.City)
	m.str("district", a.District)
	m.str("state", a.State)
	m.str("postalCode", a.PostalCode)
	m.str("country", a.Country)
	return m.close()
}

func appendContactPoint(dst []byte, c contactPoint) []byte {
	m := openObject(dst)
	m.str("system", c.System)
	m.str("value", c.Value)
	m.str("use", c.Use)
	return m.close()
}

func appendExtension(dst []byte, e extension) []byte {
	m := openObject(dst)
	m.key("url")
	m.b = appendJSONString(m.b, e.URL)
	if len(e.Extension) > 0 {
		m.key("extension")
		m.b = appendSlice(m.b, e.Extension, appendExtension)
	}
	if e.ValueCoding != nil {
		m.key("valueCoding")
		m.b = appendCoding(m.b, *e.ValueCoding)
	}
	m.str("valueString", e.ValueString)
	return m.close()
}

func appendLink(dst []byte, l link) []byte {
	m := openObject(dst)
	m.key("other")
	m.b = appendReference(m.b, l.Other)
	m.key("type")
	m.b = appendJSONString(m.b, l.Type)
	return m.close()
}

const hexDigits = "0123456789abcdef"

// appendJSONString escapes s exactly as encoding/json does (HTML-safe:
// <, > and & as \u00XX; invalid UTF-8 as \ufffd; U+2028 and U+2029
// escaped), so stored bodies are byte-for-byte what json.Marshal made.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
