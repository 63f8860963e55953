package adt

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/equitas/equitas/fhir/hl7v2"
)

// clean turns an unescaped v2 value into a FHIR string: bytes that are not
// UTF-8 are read as Latin-1 (the usual v2 default character set), control
// characters other than tab and line breaks are dropped, and surrounding
// space is trimmed. "" means absent (FHIR forbids empty strings).
func clean(s string) string {
	if !utf8.ValidString(s) {
		var b strings.Builder
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				r = rune(s[i])
				n = 1
			}
			b.WriteRune(r)
			i += n
		}
		s = b.String()
	}
	if strings.ContainsFunc(s, isControl) {
		s = strings.Map(func(r rune) rune {
			if isControl(r) {
				return -1
			}
			return r
		}, s)
	}
	return strings.TrimSpace(s)
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}

// codeRe is the FHIR code grammar.
var codeRe = regexp.MustCompile(`^[^\s]+( [^\s]+)*$`)

// code turns a value into a FHIR code, or "" when it cannot be one.
func code(s string) string {
	s = strings.Join(strings.Fields(clean(s)), " ")
	if s == "" || !codeRe.MatchString(s) {
		return ""
	}
	return s
}

// str reads a component as a FHIR string.
func str(c hl7v2.Component) string { return clean(c.String()) }

// hdSub resolves an HD held in subcomponents (CX.4, XCN.9, PL.4).
func hdSub(c hl7v2.Component, authorities map[string]string) string {
	return resolveHD(str(c.Subcomponent(1)), str(c.Subcomponent(2)), str(c.Subcomponent(3)), authorities)
}

// hdField resolves an HD held in components (MSH-3, MSH-4).
func hdField(f hl7v2.Field, authorities map[string]string) string {
	return resolveHD(str(f.Component(1)), str(f.Component(2)), str(f.Component(3)), authorities)
}

var oidRe = regexp.MustCompile(`^[0-2](\.(0|[1-9][0-9]*))+$`)

// AuthorityBase is the prefix of Identifier.system for an assigning
// authority that has only a namespace id (no OID, UUID or URI) and no
// entry in Options.Authorities: the namespace, percent-encoded, follows.
const AuthorityBase = "urn:equitas:hl7v2:authority:"

// resolveHD turns an HD (assigning authority, facility) into a URI:
// ISO OIDs become urn:oid:, UUIDs urn:uuid:, URIs are used as they are, a
// namespace listed in authorities maps to its configured system, and any
// other namespace gets AuthorityBase + namespace.
func resolveHD(ns, uid, typ string, authorities map[string]string) string {
	switch strings.ToUpper(typ) {
	case "ISO":
		if oidRe.MatchString(uid) {
			return "urn:oid:" + uid
		}
	case "UUID", "GUID":
		if u := strings.ToLower(uid); uuidRe.MatchString(u) {
			return "urn:uuid:" + u
		}
	case "URI", "URL":
		if uid != "" && !strings.ContainsAny(uid, " \t\r\n") {
			return uid
		}
	}
	if ns == "" {
		if uid != "" && oidRe.MatchString(uid) {
			return "urn:oid:" + uid
		}
		ns = uid
	}
	if ns == "" {
		return ""
	}
	if s, ok := authorities[ns]; ok {
		return s
	}
	return AuthorityBase + url.PathEscape(ns)
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// hashID derives a FHIR id (32 hex digits) from parts, so the same visit
// or message always maps to the same resource.
func hashID(parts ...string) string {
	// One stack buffer and Sum256 instead of a streaming hash: the
	// parts are short identifiers, and this runs several times a message.
	var buf [256]byte
	b := buf[:0]
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// fhirDate renders a v2 date as a FHIR date at the precision sent.
func fhirDate(t hl7v2.Time) string {
	switch t.Precision {
	case hl7v2.PrecisionYear:
		return t.T.Format("2006")
	case hl7v2.PrecisionMonth:
		return t.T.Format("2006-01")
	}
	return t.T.Format("2006-01-02")
}

// fhirDateTime renders a v2 date/time as a FHIR dateTime: dates keep their
// precision; times get seconds and a UTC offset, as FHIR requires.
func fhirDateTime(t hl7v2.Time) string {
	if t.Precision <= hl7v2.PrecisionDay {
		return fhirDate(t)
	}
	return fhirInstant(t.T)
}

// fhirInstant renders an instant with seconds and offset.
func fhirInstant(t time.Time) string {
	if t.Nanosecond() != 0 {
		return t.Format("2006-01-02T15:04:05.999999999Z07:00")
	}
	return t.Format(time.RFC3339)
}
