package adt_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/hl7v2"
	"github.com/equitas/equitas/fhir/validate"
	"github.com/equitas/equitas/store/badgerstore"
)

// FuzzHandleER7: any input gets a parseable ACK (AA, AE or AR) echoing
// MSH-10; whatever the mapper produces passes fhir/validate (the
// Processor validates every resource here, and a failure would be an AR
// with code 207); a message not answered AA writes nothing.
func FuzzHandleER7(f *testing.F) {
	pv1Dis := strings.Replace(pv1Admit, "|||||||||||||||||||||||||20260301073000-0500",
		"|||||||||||||||||01^Home^HL70112||||||||20260301073000-0500|20260303100000-0500", 1)
	for _, s := range []string{
		msg("A01", "F1", pidMary, pv1Admit),
		msg("A02", "F2", pidMary, strings.Replace(pv1Admit, "ICU^101^A", "WARD^5^B", 1)),
		msg("A03", "F3", pidMary, pv1Dis),
		msg("A04", "F4", pidMary, strings.Replace(pv1Admit, "PV1|1|I|", "PV1|1|E|", 1)),
		msg("A08", "F5", "PID|1||MRN123^^^GOODHOSP^MR||\"\"||\"\"|\"\"|||\"\""),
		msg("A11", "F6", pidMary, pv1Admit),
		msg("A13", "F7", pidMary, pv1Admit),
		msg("A40", "F8", pidMary, "MRG|OLD9^^^GOODHOSP^MR"),
		msg("A01", "F9", "PID|1||A1^^^&2.16.840.1.113883.19.5&ISO^PI~C3^^^^MR||Doe\\T\\Roe^Jane\\S\\Q~Janie^^^^^^N||1980|U||W~B~2108-9^European^CDCREC|Line\\F\\1\\.br\\More^^Town^ST^00001||||SPA|||||||H|||||||200101011200|Y", pv1Admit),
		strings.ReplaceAll(msg("A01", "F10", pidMary, "ZPI|x", pv1Admit), "\r", "\n"),
		msg("A01", "F12", pidMary, "NK1|1|O'Brien^Sean|SPO^Spouse^HL70063|1 Main St^^Boston^MA^02110|^PRN^PH^^1^617^5550000||C^Emergency Contact^HL70131", pv1Admit),
		msg("A01", "F11", pidMary, pv1Admit, "DG1|1||I10^Essential hypertension^I10||20260301|A|||||||||1",
			segment("IN1", map[int]string{1: "1", 2: "HMO1^Gold HMO", 3: "PAYER9^^^GOODHOSP", 4: "Acme Health", 12: "20260101", 13: "20261231", 17: "SEL", 36: "MEM777"})),
	} {
		f.Add([]byte(s))
	}
	st, err := badgerstore.Open(context.Background(), f.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(f, err)
	f.Cleanup(func() { _ = st.Close() })
	v, err := validate.New()
	require.NoError(f, err)
	p := adt.New(st, adt.Options{Validator: v})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw []byte) {
		before, err := st.Counts(ctx)
		require.NoError(t, err)
		ackRaw := p.HandleER7(ctx, raw)
		ack, err := hl7v2.Parse(ackRaw)
		require.NoError(t, err, "ACK %q", ackRaw)
		code := ack.Segment("MSA").Field(1).String()
		require.Contains(t, []string{"AA", "AE", "AR"}, code)
		for _, e := range ack.All("ERR") {
			require.NotEqual(t, "207", e.Field(3).Component(1).String(), "internal error: %q", ackRaw)
		}
		if m, err := hl7v2.Parse(raw); err == nil {
			require.Equal(t, string(m.Segment("MSH").Field(10).Raw()), string(ack.Segment("MSA").Field(2).Raw()))
		}
		if code != "AA" {
			after, err := st.Counts(ctx)
			require.NoError(t, err)
			require.Equal(t, before, after, "a message answered %s wrote something", code)
		}
	})
}
