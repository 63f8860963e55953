package hl7v2

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const a01 = "MSH|^~\\&|EPIC|GOODHOSP^1.2.3^ISO|EQUITAS|HIE|20260101120000-0500||ADT^A01^ADT_A01|MSG0001|P|2.5.1\r" +
	"EVN|A01|20260101115500-0500\r" +
	"PID|1||MRN123^^^GOODHOSP^MR~999-99-9999^^^SSA^SS||O\\S\\Brien^Mary^Ann||19800214|F|||1 Main St\\F\\Apt 2^^Boston^MA^02110||^PRN^PH^^1^617^5551234\r" +
	"ZPI|custom|stuff^with^parts\r" +
	"PV1|1|I|ICU^101^A^GOODHOSP||||1234567890^Smith^John^^^Dr^^^NPI|||||||||||V100^^^GOODHOSP^VN\r"

func TestParseAccessors(t *testing.T) {
	for _, term := range []string{"\r", "\n", "\r\n"} {
		t.Run(strings.ReplaceAll(strings.ReplaceAll(term, "\r", "CR"), "\n", "LF"), func(t *testing.T) {
			m, err := Parse([]byte(strings.ReplaceAll(a01, "\r", term)))
			require.NoError(t, err)
			require.Len(t, m.Segments, 5)
			msh := m.Segment("MSH")
			assert.Equal(t, "|", msh.Field(1).String())
			assert.Equal(t, `^~\&`, msh.Field(2).String())
			assert.Equal(t, "EPIC", msh.Field(3).String())
			assert.Equal(t, "1.2.3", msh.Field(4).Component(2).String())
			assert.Equal(t, "A01", msh.Field(9).Component(2).String())
			assert.Equal(t, "MSG0001", msh.Field(10).String())
			pid := m.Segment("PID")
			require.Len(t, pid.Field(3).Repetitions(), 2)
			assert.Equal(t, "999-99-9999", pid.Field(3).Repetition(2).Component(1).String())
			assert.Equal(t, "SS", pid.Field(3).Repetition(2).Component(5).String())
			assert.Equal(t, "O^Brien", pid.Field(5).Component(1).String())
			assert.Equal(t, "1 Main St|Apt 2", pid.Field(11).Component(1).String())
			assert.Equal(t, "", pid.Field(99).String())
			assert.Nil(t, m.Segment("PV2"))
			assert.Equal(t, "", m.Segment("PV2").Field(3).String())
			assert.Equal(t, "stuff", m.Segment("ZPI").Field(2).String())
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		code     ErrorCode
		loc      string
	}{
		{"empty", "", CodeSegmentSequence, "MSH"},
		{"not MSH", "PID|1||x\r", CodeSegmentSequence, "MSH"},
		{"short MSH-2", "MSH|^~|A|B\r", CodeDataType, "MSH-2"},
		{"repeated separator", "MSH|^^\\&|A|B\r", CodeDataType, "MSH-2"},
		{"alnum separator", "MSH|^~a&|A|B\r", CodeDataType, "MSH-2"},
		{"bad segment name", "MSH|^~\\&|A\rpid|1\r", CodeSegmentSequence, "2"},
		{"second MSH", "MSH|^~\\&|A\rMSH|^~\\&|B\r", CodeSegmentSequence, "MSH(2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			var he *Error
			require.ErrorAs(t, err, &he)
			assert.Equal(t, tc.code, he.Code)
			assert.Equal(t, tc.loc, he.Location.String())
		})
	}
}

func TestLimits(t *testing.T) {
	big := a01 + strings.Repeat("OBX|1|ST|x||y\r", 50)
	_, err := Limits{MaxSegments: 10}.Parse([]byte(big))
	require.Error(t, err)
	_, err = Limits{MaxSize: 100}.Parse([]byte(big))
	require.Error(t, err)
	_, err = Limits{}.Parse([]byte(big))
	require.NoError(t, err)
}

func TestEscape(t *testing.T) {
	d := DefaultDelimiters()
	for _, tc := range []struct{ raw, want string }{
		{`a\F\b\S\c\T\d\R\e\E\f`, `a|b^c&d~e\f`},
		{`\X41424344\`, "ABCD"},
		{`line1\.br\line2`, "line1\nline2"},
		{`\H\bold\N\`, "bold"},
		{`\Cxxyy\text`, "text"},
		{`unterminated\F`, `unterminated\F`},
		{`\Q\`, `\Q\`},
		{`\X4\`, `\X4\`},
		{`\\`, `\\`},
	} {
		assert.Equal(t, tc.want, Unescape(d, []byte(tc.raw)), tc.raw)
	}
	for _, s := range []string{"plain", `a|b^c&d~e\f`, "cr\rlf\n", ""} {
		assert.Equal(t, s, Unescape(d, []byte(Escape(d, s))))
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		prec Precision
		want string
		zone bool
	}{
		{"1980", PrecisionYear, "1980-01-01T00:00:00Z", false},
		{"198002", PrecisionMonth, "1980-02-01T00:00:00Z", false},
		{"19800214", PrecisionDay, "1980-02-14T00:00:00Z", false},
		{"202601011200-0500", PrecisionMinute, "2026-01-01T12:00:00-05:00", true},
		{"20260101120030.25+0100", PrecisionSecond, "2026-01-01T12:00:30.25+01:00", true},
	} {
		got, err := ParseTime(tc.in, time.UTC)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.prec, got.Precision, tc.in)
		assert.Equal(t, tc.want, got.T.Format(time.RFC3339Nano), tc.in)
		assert.Equal(t, tc.zone, got.HasZone, tc.in)
	}
	for _, bad := range []string{"", "19801", "19800231", "1980021425", "abc", "20260101120000+05", "2026010112.5"} {
		_, err := ParseTime(bad, time.UTC)
		assert.Error(t, err, bad)
	}
}

func TestACK(t *testing.T) {
	m, err := Parse([]byte(a01))
	require.NoError(t, err)
	b := AckBuilder{Now: func() time.Time { return time.Date(2026, 1, 1, 12, 0, 1, 0, time.UTC) }, ControlID: func() string { return "ACK1" }}
	ack, err := Parse(b.ACK(m, AE, "bad date", Errorf(Location{Segment: "PID", Field: 7}, CodeDataType, "PID-7 is not a date")))
	require.NoError(t, err)
	msh := ack.Segment("MSH")
	assert.Equal(t, "EQUITAS", msh.Field(3).String())
	assert.Equal(t, "HIE", msh.Field(4).String())
	assert.Equal(t, "EPIC", msh.Field(5).String())
	assert.Equal(t, "1.2.3", msh.Field(6).Component(2).String())
	assert.Equal(t, "ACK^A01^ACK", string(msh.Field(9).Raw()))
	assert.Equal(t, "ACK1", msh.Field(10).String())
	assert.Equal(t, "2.5.1", msh.Field(12).String())
	assert.Equal(t, "AE", ack.Segment("MSA").Field(1).String())
	assert.Equal(t, "MSG0001", ack.Segment("MSA").Field(2).String())
	e := ack.Segment("ERR")
	assert.Equal(t, "PID", e.Field(2).Component(1).String())
	assert.Equal(t, "7", e.Field(2).Component(3).String())
	assert.Equal(t, "102", e.Field(3).Component(1).String())
	assert.Equal(t, "HL70357", e.Field(3).Component(3).String())
	assert.Equal(t, "E", e.Field(4).String())

	// Before 2.5 the location and code go to ERR-1.
	old, err := Parse([]byte(strings.Replace(a01, "|2.5.1", "|2.3", 1)))
	require.NoError(t, err)
	ack, err = Parse(b.ACK(old, AE, "", Errorf(Location{Segment: "PID", Field: 7}, CodeDataType, "x")))
	require.NoError(t, err)
	assert.Equal(t, "2.3", ack.Segment("MSH").Field(12).String())
	assert.Equal(t, "ACK^A01", string(ack.Segment("MSH").Field(9).Raw()))
	assert.Equal(t, "102", ack.Segment("ERR").Field(1).Component(4).Subcomponent(1).String())

	// Unreadable message: still an ACK.
	ack, err = Parse(b.ACK(nil, AR, "unreadable"))
	require.NoError(t, err)
	assert.Equal(t, "AR", ack.Segment("MSA").Field(1).String())
}

func TestEncodeRoundTrip(t *testing.T) {
	m, err := Parse([]byte(strings.ReplaceAll(a01, "\r", "\r\n")))
	require.NoError(t, err)
	assert.Equal(t, a01, string(m.Encode()))
}

func TestRejectHead(t *testing.T) {
	for _, tc := range []struct {
		name, head, control, receiver string
	}{
		{"MSH and a cut segment", a01[:strings.Index(a01, "\r")+20], "MSG0001", "EPIC"},
		{"only part of MSH", "MSH|^~\\&|EPIC|GOODHOSP", "", "EPIC"},
		{"not HL7", "GET / HTTP/1.1\r\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ack, err := Parse(RejectHead([]byte(tc.head), "message exceeds 4096 bytes"))
			require.NoError(t, err)
			assert.Equal(t, "AR", ack.Segment("MSA").Field(1).String())
			assert.Equal(t, tc.control, ack.Segment("MSA").Field(2).String())
			assert.Equal(t, tc.receiver, ack.Segment("MSH").Field(5).String())
		})
	}
}

func TestRepetitionsSplitAtSeparator(t *testing.T) {
	for _, field := range []string{"a", "a~b", "~", "a~~b~", "~x^y&z~"} {
		m, err := Parse([]byte("MSH|^~\\&|S|F|R|F|20260101||ADT^A01|1|P|2.5.1\rPID|1||" + field))
		require.NoError(t, err)
		var got []string
		for _, r := range m.Segment("PID").Field(3).Repetitions() {
			got = append(got, string(r.Raw()))
		}
		assert.Equal(t, strings.Split(field, "~"), got, field)
	}
}
