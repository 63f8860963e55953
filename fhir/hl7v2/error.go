package hl7v2

import (
	"strconv"
	"strings"
)

// ErrorCode is an HL7 table 0357 message error condition code, carried in
// ERR-3 (ERR-1.4 before 2.5).
type ErrorCode int

// Table 0357 codes.
const (
	CodeSegmentSequence    ErrorCode = 100
	CodeRequiredMissing    ErrorCode = 101
	CodeDataType           ErrorCode = 102
	CodeTableValue         ErrorCode = 103
	CodeUnsupportedType    ErrorCode = 200
	CodeUnsupportedEvent   ErrorCode = 201
	CodeUnsupportedProcID  ErrorCode = 202
	CodeUnsupportedVersion ErrorCode = 203
	CodeUnknownKey         ErrorCode = 204
	CodeDuplicateKey       ErrorCode = 205
	CodeApplicationError   ErrorCode = 207
)

var codeText = map[ErrorCode]string{
	CodeSegmentSequence:    "Segment sequence error",
	CodeRequiredMissing:    "Required field missing",
	CodeDataType:           "Data type error",
	CodeTableValue:         "Table value not found",
	CodeUnsupportedType:    "Unsupported message type",
	CodeUnsupportedEvent:   "Unsupported event code",
	CodeUnsupportedProcID:  "Unsupported processing id",
	CodeUnsupportedVersion: "Unsupported version id",
	CodeUnknownKey:         "Unknown key identifier",
	CodeDuplicateKey:       "Duplicate key identifier",
	CodeApplicationError:   "Application internal error",
}

// Text is the table 0357 display text.
func (c ErrorCode) Text() string {
	if t, ok := codeText[c]; ok {
		return t
	}
	return "Error " + strconv.Itoa(int(c))
}

// Location addresses a position in a message (ERR-2, type ERL). Zero
// fields are omitted; Segment alone names a segment.
type Location struct {
	Segment      string // segment id, e.g. PID
	Seq          int    // occurrence of that segment, 1-based (0 = 1)
	Field        int
	Repetition   int
	Component    int
	Subcomponent int
}

// String renders the conventional short form: PID-3[2].4.
func (l Location) String() string {
	if l.Segment == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString(l.Segment)
	if l.Seq > 1 {
		b.WriteString("(" + strconv.Itoa(l.Seq) + ")")
	}
	if l.Field > 0 {
		b.WriteString("-" + strconv.Itoa(l.Field))
		if l.Repetition > 1 {
			b.WriteString("[" + strconv.Itoa(l.Repetition) + "]")
		}
		if l.Component > 0 {
			b.WriteString("." + strconv.Itoa(l.Component))
			if l.Subcomponent > 0 {
				b.WriteString("." + strconv.Itoa(l.Subcomponent))
			}
		}
	}
	return b.String()
}

// Severity is ERR-4 (table 0516).
type Severity byte

const (
	SeverityError       Severity = 'E'
	SeverityWarning     Severity = 'W'
	SeverityInformation Severity = 'I'
)

// Error is a problem in a message, located and coded so that an ACK's ERR
// segment can report it. Err, when set, is the underlying cause.
type Error struct {
	Location Location
	Code     ErrorCode
	Severity Severity // zero means SeverityError
	Text     string   // human-readable; never PHI beyond identifiers
	Err      error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("hl7v2: ")
	if loc := e.Location.String(); loc != "" {
		b.WriteString(loc + ": ")
	}
	if e.Text != "" {
		b.WriteString(e.Text)
	} else {
		b.WriteString(e.Code.Text())
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf is a shorthand for a located error.
func Errorf(loc Location, code ErrorCode, text string) *Error {
	return &Error{Location: loc, Code: code, Text: text}
}

// At returns the location of field n of segment seg.
func At(seg string, field int) Location { return Location{Segment: seg, Field: field} }
