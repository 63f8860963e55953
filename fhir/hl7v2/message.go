// Package hl7v2 reads and writes HL7 version 2 messages in their ER7
// ("pipe and hat") encoding, versions 2.3 to 2.8, and builds the ACK
// (MSH, MSA, ERR) that answers one.
//
// Parse splits a message into segments (ended by \r, \n or \r\n) and keeps
// each segment's fields still escaped; the typed accessors
// (Segment, Field, Repetition, Component, Subcomponent) split further only
// when asked and String unescapes (\F\ \S\ \T\ \R\ \E\ \P\ \Xhh..\ \.br\ and
// the highlighting and character-set sequences). Separators come from MSH-1
// and MSH-2, so any legal choice of delimiters works. Segments the caller
// does not ask for, Z-segments included, are carried along untouched.
//
// Hostile input is bounded: Limits caps the message size and the number of
// segments, and every error is an *Error naming its location (PID-7,
// segment 3) with an HL7 table 0357 code that the ACK can carry.
package hl7v2

import (
	"bytes"
	"fmt"
	"strconv"
)

// Default limits. A large ADT_A01 with insurance, diagnoses and
// observations is a few tens of kilobytes and under 200 segments.
const (
	DefaultMaxSize     = 1 << 20
	DefaultMaxSegments = 2000
)

// Limits bound what Parse accepts; zero fields take the defaults.
type Limits struct {
	MaxSize     int // bytes
	MaxSegments int
}

// Delimiters are a message's separators, read from MSH-1 and MSH-2. A zero
// byte means the message does not use that separator (Truncation is new
// in 2.7 and usually absent).
type Delimiters struct {
	Field, Component, Repetition, Escape, Subcomponent, Truncation byte
}

// DefaultDelimiters returns the standard |^~\& separators.
func DefaultDelimiters() Delimiters {
	return Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}
}

// encodingChars renders MSH-2.
func (d Delimiters) encodingChars() string {
	b := make([]byte, 0, 5)
	for _, c := range []byte{d.Component, d.Repetition, d.Escape, d.Subcomponent, d.Truncation} {
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// Message is a parsed ER7 message. It is read-only after Parse and safe for
// concurrent readers.
type Message struct {
	Delims   Delimiters
	Segments []*Segment
}

// Segment is one segment. Fields[0] is the segment name; for MSH, Fields[1]
// is MSH-1 (the field separator) and Fields[2] MSH-2 (the encoding
// characters), so Fields[n] is always the field numbered n.
type Segment struct {
	Name   string
	Fields [][]byte // raw, still escaped
	d      *Delimiters
	seq    int // 1-based occurrence among segments of the same name
}

// Seq is the 1-based occurrence of the segment among those with its name,
// as used in ERR-2.2.
func (s *Segment) Seq() int { return s.seq }

// Parse reads one ER7 message with the default limits.
func Parse(raw []byte) (*Message, error) { return Limits{}.Parse(raw) }

// Parse reads one ER7 message. On error the returned Message is non-nil
// whenever the MSH segment could be read, so the caller can still address
// an ACK to the sender; the error is an *Error.
func (l Limits) Parse(raw []byte) (*Message, error) {
	maxSize, maxSegs := l.MaxSize, l.MaxSegments
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if maxSegs <= 0 {
		maxSegs = DefaultMaxSegments
	}
	if len(raw) > maxSize {
		return nil, &Error{Code: CodeApplicationError, Text: fmt.Sprintf("message of %d bytes exceeds the %d-byte limit", len(raw), maxSize)}
	}
	// Tolerate a UTF-8 byte order mark and blank lines around the message.
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	raw = bytes.TrimLeft(raw, " \t\r\n")
	raw = bytes.TrimRight(raw, "\r\n") // trailing spaces can be field content
	if len(raw) < 8 || string(raw[:3]) != "MSH" {
		return nil, &Error{Location: Location{Segment: "MSH", Seq: 1}, Code: CodeSegmentSequence, Text: "message does not start with an MSH segment"}
	}
	d, err := readDelimiters(raw)
	if err != nil {
		return nil, err
	}
	m := &Message{Delims: d}
	seqs := map[string]int{}
	for len(raw) > 0 {
		i := bytes.IndexAny(raw, "\r\n")
		line := raw
		if i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue // \r\n, or blank lines some senders add
		}
		if len(m.Segments) == maxSegs {
			return m, &Error{Code: CodeApplicationError, Text: fmt.Sprintf("message has more than %d segments", maxSegs)}
		}
		seg, err := m.segment(line, len(m.Segments)+1)
		if err != nil {
			if len(m.Segments) == 0 {
				return nil, err
			}
			return m, err
		}
		seqs[seg.Name]++
		seg.seq = seqs[seg.Name]
		m.Segments = append(m.Segments, seg)
	}
	return m, nil
}

// readDelimiters reads MSH-1 and MSH-2.
func readDelimiters(raw []byte) (Delimiters, error) {
	d := Delimiters{Field: raw[3]}
	bad := func(text string) error {
		return &Error{Location: Location{Segment: "MSH", Seq: 1, Field: 2}, Code: CodeDataType, Text: text}
	}
	end := bytes.IndexByte(raw[4:], d.Field)
	if end < 0 {
		return d, bad("MSH-2 encoding characters are not followed by a field separator")
	}
	enc := raw[4 : 4+end]
	if len(enc) < 4 || len(enc) > 5 {
		return d, bad("MSH-2 must hold 4 or 5 encoding characters")
	}
	d.Component, d.Repetition, d.Escape, d.Subcomponent = enc[0], enc[1], enc[2], enc[3]
	if len(enc) == 5 {
		d.Truncation = enc[4]
	}
	all := append([]byte{d.Field}, enc...)
	for i, c := range all {
		if c < 0x21 || c > 0x7e || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') {
			return d, bad(fmt.Sprintf("separator %q is not a printable non-alphanumeric ASCII character", c))
		}
		if bytes.IndexByte(all[:i], c) >= 0 {
			return d, bad(fmt.Sprintf("separator %q is used twice", c))
		}
	}
	return d, nil
}

func (m *Message) segment(line []byte, n int) (*Segment, error) {
	if len(line) < 3 || !segmentName(line[:3]) || (len(line) > 3 && line[3] != m.Delims.Field) {
		return nil, &Error{Location: Location{Segment: strconv.Itoa(n)}, Code: CodeSegmentSequence,
			Text: fmt.Sprintf("segment %d does not start with a three-character segment name", n)}
	}
	s := &Segment{Name: string(line[:3]), d: &m.Delims}
	if s.Name == "MSH" {
		if n != 1 {
			return nil, &Error{Location: Location{Segment: "MSH", Seq: 2}, Code: CodeSegmentSequence, Text: "a second MSH segment (batches are not supported)"}
		}
		// MSH-1 is the separator itself and MSH-2 holds escape and
		// separator characters literally; neither is split.
		rest := line[4:]
		enc := rest
		if i := bytes.IndexByte(rest, m.Delims.Field); i >= 0 {
			enc, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		s.Fields = [][]byte{line[:3], line[3:4], enc}
		if rest != nil {
			s.Fields = append(s.Fields, bytes.Split(rest, []byte{m.Delims.Field})...)
		}
		return s, nil
	}
	s.Fields = bytes.Split(line, []byte{m.Delims.Field})
	return s, nil
}

func segmentName(b []byte) bool {
	if b[0] < 'A' || b[0] > 'Z' {
		return false
	}
	for _, c := range b[1:] {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Segment returns the first segment named name, or nil. Methods on a nil
// *Segment return empty values, so chains like
// m.Segment("PV1").Field(19).String() need no checks.
func (m *Message) Segment(name string) *Segment {
	for _, s := range m.Segments {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// All returns every segment named name, in order.
func (m *Message) All(name string) []*Segment {
	var out []*Segment
	for _, s := range m.Segments {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Encode writes the message in ER7 with \r segment terminators. Parsed
// fields are written as they were read (still escaped), so
// Parse(Encode(m)) reproduces m.
func (m *Message) Encode() []byte {
	n := 0
	for _, s := range m.Segments {
		for _, f := range s.Fields {
			n += len(f) + 1
		}
	}
	out := make([]byte, 0, n)
	for _, s := range m.Segments {
		out = s.appendTo(out)
		out = append(out, '\r')
	}
	return out
}

func (s *Segment) appendTo(out []byte) []byte {
	for i, f := range s.Fields {
		// MSH-1 is the field separator itself and MSH-2 follows it
		// directly; every other field is preceded by the separator.
		if i > 0 && !(s.Name == "MSH" && i <= 2) {
			out = append(out, s.d.Field)
		}
		out = append(out, f...)
	}
	return out
}

// Len is the number of the segment's last field present.
func (s *Segment) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Fields) - 1
}

// Field returns field n (1-based, as in PID-3).
func (s *Segment) Field(n int) Field {
	if s == nil || n < 1 || n >= len(s.Fields) {
		return Field{}
	}
	if s.Name == "MSH" && n <= 2 {
		// Literal: never split or unescaped.
		return Field{raw: s.Fields[n], d: s.d, literal: true}
	}
	return Field{raw: s.Fields[n], d: s.d}
}

// Field is one field, possibly repeating.
type Field struct {
	raw     []byte
	d       *Delimiters
	literal bool
}

// Raw is the field as it appears in the message, still escaped.
func (f Field) Raw() []byte { return f.raw }

// Empty reports whether the field is absent or empty.
func (f Field) Empty() bool { return len(f.raw) == 0 }

// Null reports whether the field holds the explicit null "" (the sender
// asks the receiver to delete the value), as opposed to being empty (no
// information).
func (f Field) Null() bool { return string(f.raw) == `""` }

// Repetitions returns the field's repetitions (one for a non-repeating
// field, none when empty).
func (f Field) Repetitions() []Repetition {
	if len(f.raw) == 0 {
		return nil
	}
	if f.literal {
		return []Repetition{{raw: f.raw, d: f.d, literal: true}}
	}
	if f.d == nil {
		return nil
	}
	// One allocation: the repetitions are sub-slices of the field.
	out := make([]Repetition, 0, bytes.Count(f.raw, []byte{f.d.Repetition})+1)
	raw := f.raw
	for {
		i := bytes.IndexByte(raw, f.d.Repetition)
		if i < 0 {
			return append(out, Repetition{raw: raw, d: f.d})
		}
		out = append(out, Repetition{raw: raw[:i:i], d: f.d})
		raw = raw[i+1:]
	}
}

// Repetition returns repetition n (1-based).
func (f Field) Repetition(n int) Repetition {
	if f.literal {
		if n == 1 {
			return Repetition{raw: f.raw, d: f.d, literal: true}
		}
		return Repetition{}
	}
	if f.d == nil {
		return Repetition{}
	}
	return Repetition{raw: nth(f.raw, f.d, f.d.Repetition, n), d: f.d}
}

// Component is Repetition(1).Component(n).
func (f Field) Component(n int) Component { return f.Repetition(1).Component(n) }

// String is the unescaped first repetition's first component: the value of
// a simple field.
func (f Field) String() string { return f.Repetition(1).String() }

// Repetition is one occurrence of a field.
type Repetition struct {
	raw     []byte
	d       *Delimiters
	literal bool
}

// Raw is the repetition still escaped.
func (r Repetition) Raw() []byte { return r.raw }

// Empty reports whether the repetition has no content.
func (r Repetition) Empty() bool { return len(r.raw) == 0 }

// Null reports an explicit "".
func (r Repetition) Null() bool { return string(r.raw) == `""` }

// Component returns component n (1-based).
func (r Repetition) Component(n int) Component {
	if r.literal {
		if n == 1 {
			return Component{raw: r.raw, d: r.d, literal: true}
		}
		return Component{}
	}
	if r.d == nil {
		return Component{}
	}
	return Component{raw: nth(r.raw, r.d, r.d.Component, n), d: r.d}
}

// String is the unescaped first component.
func (r Repetition) String() string { return r.Component(1).String() }

// Component is one component.
type Component struct {
	raw     []byte
	d       *Delimiters
	literal bool
}

// Raw is the component still escaped.
func (c Component) Raw() []byte { return c.raw }

// Empty reports whether the component has no content.
func (c Component) Empty() bool { return len(c.raw) == 0 }

// Subcomponent returns subcomponent n (1-based).
func (c Component) Subcomponent(n int) Component {
	if c.literal {
		if n == 1 {
			return c
		}
		return Component{}
	}
	if c.d == nil {
		return Component{}
	}
	return Component{raw: nth(c.raw, c.d, c.d.Subcomponent, n), d: c.d}
}

// String is the unescaped value of the whole component (subcomponents
// included, separated by the subcomponent separator as sent).
func (c Component) String() string {
	if c.literal || c.d == nil {
		return string(c.raw)
	}
	return Unescape(*c.d, c.raw)
}

// nth returns the n-th (1-based) part of raw split at sep, without
// allocating.
func nth(raw []byte, d *Delimiters, sep byte, n int) []byte {
	if d == nil || n < 1 {
		return nil
	}
	for i := 1; ; i++ {
		j := bytes.IndexByte(raw, sep)
		if i == n {
			if j < 0 {
				return raw
			}
			return raw[:j]
		}
		if j < 0 {
			return nil
		}
		raw = raw[j+1:]
	}
}
