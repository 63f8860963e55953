package hl7v2

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// AckCode is MSA-1 (table 0008) in original acknowledgment mode.
type AckCode string

const (
	// AA: accepted and processed.
	AA AckCode = "AA"
	// AE: error in content; the sender must fix the message, not resend it.
	AE AckCode = "AE"
	// AR: rejected for reasons unrelated to content (unsupported type,
	// version or processing id, system unavailable); the sender may retry.
	AR AckCode = "AR"
)

// fallbackVersion is used to acknowledge a message whose MSH could not be
// read at all.
const fallbackVersion = "2.5.1"

// ACK builds the ER7 acknowledgment of msg: MSH (sender and receiver
// swapped, same version, a new control id), MSA (MSA-2 = the original
// MSH-10) and one ERR per error. msg may be nil when even its MSH could not
// be read. It uses the current time and a random control id; AckBuilder
// sets both.
func ACK(msg *Message, code AckCode, text string, errs ...*Error) []byte {
	return AckBuilder{}.ACK(msg, code, text, errs...)
}

// AckBuilder builds acknowledgments with a chosen clock and control-id
// source (zero fields: time.Now and 20 random hex digits).
type AckBuilder struct {
	Now       func() time.Time
	ControlID func() string
}

// ACK is the package-level ACK with b's clock and ids.
func (b AckBuilder) ACK(msg *Message, code AckCode, text string, errs ...*Error) []byte {
	d := DefaultDelimiters()
	var msh *Segment
	if msg != nil {
		d = msg.Delims
		msh = msg.Segment("MSH")
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	id := randomControlID
	if b.ControlID != nil {
		id = b.ControlID
	}
	version := msh.Field(12).Repetition(1).Component(1).String()
	if version == "" {
		version = fallbackVersion
	}
	procID := msh.Field(11)
	sep := string(d.Field)
	esc := func(s string) string { return Escape(d, s) }

	var out strings.Builder
	// MSH: the original's fields are copied raw: they are already escaped
	// with the same delimiters.
	out.WriteString("MSH" + sep + d.encodingChars())
	for _, f := range []string{
		string(msh.Field(5).Raw()), string(msh.Field(6).Raw()), // we are now the sender
		string(msh.Field(3).Raw()), string(msh.Field(4).Raw()),
		now().Format("20060102150405-0700"),
		"",
		ackType(d, msh, version),
		esc(id()),
		orDefault(string(procID.Raw()), "P"),
		esc(version),
	} {
		out.WriteString(sep + f)
	}
	out.WriteString("\rMSA" + sep + string(code) + sep + string(msh.Field(10).Raw()))
	if text != "" {
		out.WriteString(sep + esc(text))
	}
	out.WriteByte('\r')
	for _, e := range errs {
		if e != nil {
			out.WriteString(errSegment(d, e, version))
			out.WriteByte('\r')
		}
	}
	return []byte(out.String())
}

// ackType is MSH-9: ACK^<trigger>^ACK (the structure component exists from
// 2.3.1 on).
func ackType(d Delimiters, msh *Segment, version string) string {
	trigger := string(msh.Field(9).Component(2).Raw())
	s := "ACK"
	if trigger != "" || VersionAtLeast(version, "2.3.1") {
		s += string(d.Component) + trigger
	}
	if VersionAtLeast(version, "2.3.1") {
		s += string(d.Component) + "ACK"
	}
	return s
}

// errSegment renders one ERR: ERR-2 location, ERR-3 code and ERR-4
// severity from 2.5 on, ERR-1 (ELD) before.
func errSegment(d Delimiters, e *Error, version string) string {
	sep, cmp, sub := string(d.Field), string(d.Component), string(d.Subcomponent)
	esc := func(s string) string { return Escape(d, s) }
	num := func(n int) string {
		if n <= 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	loc := e.Location
	seq := loc.Seq
	if loc.Segment != "" && seq == 0 {
		seq = 1
	}
	code := e.Code
	if code == 0 {
		code = CodeApplicationError
	}
	text := e.Text
	if text == "" {
		text = code.Text()
	}
	if !VersionAtLeast(version, "2.5") {
		// ERR-1 ELD: segment^sequence^field^code&text&HL70357
		return "ERR" + sep + esc(loc.Segment) + cmp + num(seq) + cmp + num(loc.Field) + cmp +
			strconv.Itoa(int(code)) + sub + esc(code.Text()) + sub + "HL70357"
	}
	sev := e.Severity
	if sev == 0 {
		sev = SeverityError
	}
	erl := ""
	if loc.Segment != "" {
		erl = strings.TrimRight(esc(loc.Segment)+cmp+num(seq)+cmp+num(loc.Field)+cmp+num(loc.Repetition)+cmp+
			num(loc.Component)+cmp+num(loc.Subcomponent), cmp)
	}
	// ERR-1 (empty) | ERR-2 location | ERR-3 code | ERR-4 severity |
	// ERR-5 application error code | ERR-6 parameter | ERR-7 diagnostic
	// information | ERR-8 user message.
	return "ERR" + sep + sep + erl + sep + strconv.Itoa(int(code)) + cmp + esc(code.Text()) + cmp + "HL70357" +
		sep + string(sev) + sep + sep + sep + sep + esc(text)
}

// VersionAtLeast compares HL7 version ids (2.3, 2.3.1, 2.5.1, 2.8.2)
// numerically, component by component.
func VersionAtLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := 0; i < len(a) || i < len(b); i++ {
		x, y := 0, 0
		if i < len(a) {
			x, _ = strconv.Atoi(a[i])
		}
		if i < len(b) {
			y, _ = strconv.Atoi(b[i])
		}
		if x != y {
			return x > y
		}
	}
	return true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func randomControlID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// RejectHead is the AR acknowledgement of a message refused before it was
// read whole (too large for the transport), of which only the first bytes
// are at hand: it is addressed to the sender, and names the message's
// MSH-10, when the MSH segment can be read from head.
func RejectHead(head []byte, reason string) []byte {
	if i := bytes.IndexAny(head, "\r\n"); i >= 0 {
		head = head[:i]
	}
	msg, err := Parse(head)
	if err != nil {
		msg = nil // an unreadable MSH: the ACK falls back to defaults
	}
	return ACK(msg, AR, "", &Error{Code: CodeApplicationError, Text: reason})
}
