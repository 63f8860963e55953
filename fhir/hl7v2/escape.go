package hl7v2

import (
	"bytes"
	"strings"
)

// Unescape decodes the escape sequences of one raw value:
//   - \F\ \S\ \T\ \R\ \E\ (and \P\ from 2.7) give the field, component,
//     subcomponent, repetition, escape (truncation) characters;
//   - \Xhhhh\ gives the bytes hh..;
//   - \.br\ and \.sp\ give a line break; other formatting commands
//     (\.in\ \.ti\ \.sk\ \.ce\ \.fi\ \.nf\), highlighting (\H\ \N\),
//     character-set switches (\Cxxyy\ \Mxxyyzz\) and local escapes (\Z..\)
//     are dropped: the text is kept, its presentation is not.
//
// An unknown or unterminated sequence is kept literally, since dropping
// text a sender meant is worse than showing a stray backslash. The result
// can contain any bytes (\X00\); callers that need UTF-8 check it.
func Unescape(d Delimiters, raw []byte) string {
	if d.Escape == 0 || bytes.IndexByte(raw, d.Escape) < 0 {
		return string(raw)
	}
	var b strings.Builder
	b.Grow(len(raw))
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, d.Escape)
		if i < 0 {
			b.Write(raw)
			break
		}
		b.Write(raw[:i])
		raw = raw[i+1:]
		j := bytes.IndexByte(raw, d.Escape)
		if j < 0 {
			b.WriteByte(d.Escape)
			b.Write(raw)
			break
		}
		seq := raw[:j]
		if !decodeEscape(&b, d, seq) {
			b.WriteByte(d.Escape)
			b.Write(seq)
			b.WriteByte(d.Escape)
		}
		raw = raw[j+1:]
	}
	return b.String()
}

// decodeEscape writes the meaning of one sequence; false means unknown.
func decodeEscape(b *strings.Builder, d Delimiters, seq []byte) bool {
	if len(seq) == 0 {
		return false
	}
	if len(seq) == 1 {
		switch seq[0] {
		case 'F':
			b.WriteByte(d.Field)
		case 'S':
			b.WriteByte(d.Component)
		case 'T':
			b.WriteByte(d.Subcomponent)
		case 'R':
			b.WriteByte(d.Repetition)
		case 'E':
			b.WriteByte(d.Escape)
		case 'P':
			if d.Truncation == 0 {
				return false
			}
			b.WriteByte(d.Truncation)
		case 'H', 'N':
		default:
			return false
		}
		return true
	}
	switch seq[0] {
	case 'X':
		hex := seq[1:]
		if len(hex)%2 != 0 {
			return false
		}
		for k := 0; k < len(hex); k += 2 {
			if _, ok := unhex(hex[k]); !ok {
				return false
			}
			if _, ok := unhex(hex[k+1]); !ok {
				return false
			}
		}
		for k := 0; k < len(hex); k += 2 {
			hi, _ := unhex(hex[k])
			lo, _ := unhex(hex[k+1])
			b.WriteByte(hi<<4 | lo)
		}
		return true
	case 'C', 'M', 'Z':
		return true
	case '.':
		cmd := string(seq[1:])
		switch {
		case cmd == "br", strings.HasPrefix(cmd, "sp"):
			b.WriteByte('\n')
		case strings.HasPrefix(cmd, "sk"):
			b.WriteByte(' ')
		case strings.HasPrefix(cmd, "in"), strings.HasPrefix(cmd, "ti"),
			cmd == "ce", cmd == "fi", cmd == "nf":
		default:
			return false
		}
		return true
	}
	return false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Escape encodes s for use as one value: separators become \F\ \S\ \T\ \R\
// \E\ (\P\), and CR and LF become \X0D\ and \X0A\ so they cannot end a
// segment. Unescape(d, Escape(d, s)) == s.
func Escape(d Delimiters, s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x80 && special(d, byte(r)) }) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !special(d, c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(d.Escape)
		switch c {
		case d.Field:
			b.WriteByte('F')
		case d.Component:
			b.WriteByte('S')
		case d.Subcomponent:
			b.WriteByte('T')
		case d.Repetition:
			b.WriteByte('R')
		case d.Escape:
			b.WriteByte('E')
		case d.Truncation:
			b.WriteByte('P')
		case '\r':
			b.WriteString("X0D")
		case '\n':
			b.WriteString("X0A")
		}
		b.WriteByte(d.Escape)
	}
	return b.String()
}

func special(d Delimiters, c byte) bool {
	return c == '\r' || c == '\n' || (c != 0 && (c == d.Field || c == d.Component || c == d.Subcomponent ||
		c == d.Repetition || c == d.Escape || c == d.Truncation))
}
