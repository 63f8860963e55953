package hl7v2

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse: Parse never panics; whatever it accepts encodes and parses
// back to the same segments and fields; every accessor is safe on it; and
// its ACK is itself a valid message echoing MSH-10.
func FuzzParse(f *testing.F) {
	f.Add([]byte(a01))
	f.Add([]byte(strings.ReplaceAll(a01, "\r", "\n")))
	f.Add([]byte(strings.ReplaceAll(a01, "\r", "\r\n")))
	f.Add([]byte("MSH|^~\\&#|A|B|C|D|20260101||ADT^A01|1|P|2.7\rPID|1||x\\P\\y\r"))
	f.Add([]byte("MSH#!*$%#A\rPID#1##a!b*c%d$F$\r"))
	f.Add([]byte("MSH|^~\\&|\\X0D0A\\|\\.br\\|\\H\\x\\N\\|\\Cxxyy\\|\\"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Limits{MaxSize: 1 << 16, MaxSegments: 200}.Parse(raw)
		if err != nil {
			var he *Error
			require.ErrorAs(t, err, &he)
			_ = he.Error()
			if m == nil {
				return
			}
		}
		enc := m.Encode()
		m2, err2 := Parse(enc)
		if err == nil {
			require.NoError(t, err2, "re-parse of %q", enc)
			require.Equal(t, len(m.Segments), len(m2.Segments))
			for i, s := range m.Segments {
				require.Equal(t, s.Name, m2.Segments[i].Name)
				require.Equal(t, len(s.Fields), len(m2.Segments[i].Fields), "segment %d", i)
				for j := range s.Fields {
					require.True(t, bytes.Equal(s.Fields[j], m2.Segments[i].Fields[j]), "segment %d field %d", i, j)
				}
			}
			require.Equal(t, enc, m2.Encode())
		}
		for _, s := range m.Segments {
			for n := 0; n <= s.Len()+1; n++ {
				fld := s.Field(n)
				_ = fld.String()
				for _, r := range fld.Repetitions() {
					for c := 1; c <= 3; c++ {
						comp := r.Component(c)
						_ = comp.String()
						_ = comp.Subcomponent(2).String()
					}
				}
			}
		}
		ack, err := Parse(ACK(m, AE, "x", &Error{Location: Location{Segment: "PID", Field: 3}, Code: CodeDataType, Text: "t|^~\\&\r"}))
		require.NoError(t, err)
		require.Equal(t, string(m.Segment("MSH").Field(10).Raw()), string(ack.Segment("MSA").Field(2).Raw()))
	})
}

// FuzzEscape: Escape then Unescape is the identity.
func FuzzEscape(f *testing.F) {
	f.Add("a|b^c~d\\e&f\r\ng")
	f.Add(`\X41\`)
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(DefaultDelimiters(), s)
		require.NotContains(t, e, "|")
		require.NotContains(t, e, "\r")
		require.Equal(t, s, Unescape(DefaultDelimiters(), []byte(e)))
	})
}
