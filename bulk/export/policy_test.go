package export_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/bulk/export"
	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
)

// TestParseDaVinci follows the ATR 2.1.0 $davinci-data-export rules: the
// exportType is required and only hl7.fhir.us.davinci-atr is accepted,
// _type (or its alias resourceTypes) must hold Group, Patient and
// Coverage, and invalid patient references are ignored with a note.
func TestParseDaVinci(t *testing.T) {
	const atr = "exportType=hl7.fhir.us.davinci-atr"
	for _, tc := range []struct {
		name        string
		query       string
		post        bool
		errParam    string
		types, refs []string
		patients    []string
		ignored     int
	}{
		{name: "no exportType", query: "_type=Group,Patient,Coverage", errParam: "exportType"},
		{name: "other exportType", query: "exportType=hl7.fhir.us.davinci-pdex%23payertopayer&_type=Group,Patient,Coverage", errParam: "exportType"},
		{name: "minimum missing Coverage", query: atr + "&_type=Group,Patient", errParam: "_type"},
		{name: "minimum missing Group via alias", query: atr + "&resourceTypes=Patient,Coverage", errParam: "_type"},
		{name: "minimum", query: atr + "&_type=Group,Patient,Coverage", types: []string{"Group", "Patient", "Coverage"}},
		{name: "alias with the IG's spelling", query: atr + "&resourceTypes=GRoup,Patient,Coverage,Practitioner", types: []string{"Group", "Patient", "Coverage"}, refs: []string{"Practitioner"}},
		{name: "repeated _type joined", query: atr + "&_type=Group&_type=Patient,Coverage,Location,RelatedPerson", types: []string{"Group", "Patient", "Coverage", "RelatedPerson"}, refs: []string{"Location"}},
		{name: "no _type: everything supported", query: atr, types: []string{"Group", "Patient", "Coverage", "RelatedPerson"}, refs: []string{"Practitioner", "PractitionerRole", "Organization", "Location"}},
		{name: "unknown type", query: atr + "&_type=Group,Patient,Coverage,Nope", errParam: "_type"},
		{name: "patient on GET", query: atr + "&_type=Group,Patient,Coverage&patient=Patient/p1,Patient/p2", types: []string{"Group", "Patient", "Coverage"}, patients: []string{"p1", "p2"}},
		{name: "invalid patient ignored", query: atr + "&_type=Group,Patient,Coverage&patient=Practitioner/x&patient=Patient/p1", types: []string{"Group", "Patient", "Coverage"}, patients: []string{"p1"}, ignored: 1},
		{name: "_until before _since", query: atr + "&_since=2026-01-02T00:00:00Z&_until=2026-01-01T00:00:00Z", errParam: "_until"},
		{name: "_since and _until", query: atr + "&_since=2026-01-01T00:00:00Z&_until=2026-02-01T00:00:00Z", types: []string{"Group", "Patient", "Coverage", "RelatedPerson"}, refs: []string{"Practitioner", "PractitionerRole", "Organization", "Location"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := url.ParseQuery(tc.query)
			require.NoError(t, err)
			p, err := export.ParseDaVinci(export.Kickoff{Level: export.Group, GroupID: "g1", Values: vals, IsPOST: tc.post})
			if tc.errParam != "" {
				var pe *export.ParamError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, tc.errParam, pe.Param)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.types, p.Types)
			assert.Equal(t, tc.refs, p.Referenced)
			assert.Equal(t, tc.patients, p.Patients)
			assert.Len(t, p.Ignored, tc.ignored)
			assert.True(t, p.RequiresAccessToken, "files of an ATR export require a token")
			assert.Equal(t, export.ATRExportType, p.ExportType)
		})
	}
}

// TestAuthorize: the kick-off policy answers a Group the caller may not
// see exactly as a missing one, and checks every type against scopes.
func TestAuthorize(t *testing.T) {
	ctx := context.Background()
	st, err := badgerstore.Open(ctx, t.TempDir(), badgerstore.Options{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	_, err = st.Commit(ctx, store.Tx{Writes: []store.Write{
		{Op: store.OpPut, Type: "Group", ID: "mine", Body: []byte(`{"resourceType":"Group","id":"mine","type":"person","actual":true}`)},
		{Op: store.OpPut, Type: "Group", ID: "theirs", Body: []byte(`{"resourceType":"Group","id":"theirs","type":"person","actual":true}`)},
	}})
	require.NoError(t, err)
	provider := &access.Principal{ClientID: "c", Scopes: []string{"system/*.read"}, Organization: "o"}
	provider.Restrict(access.Visibility{Patients: access.Set{}, Groups: access.Set{"mine": true}})
	payer := &access.Principal{ClientID: "p", Scopes: []string{"system/Patient.read", "system/Group.read"}}
	for _, tc := range []struct {
		name     string
		who      *access.Principal
		p        export.Params
		notFound bool
		denied   bool
	}{
		{name: "own group", who: provider, p: export.Params{Level: export.Group, GroupID: "mine"}},
		{name: "other's group is not found", who: provider, p: export.Params{Level: export.Group, GroupID: "theirs"}, notFound: true},
		{name: "missing group", who: payer, p: export.Params{Level: export.Group, GroupID: "nope"}, notFound: true},
		{name: "payer any group", who: payer, p: export.Params{Level: export.Group, GroupID: "theirs"}},
		{name: "type outside scopes", who: payer, p: export.Params{Level: export.Patient, Types: []string{"Patient", "Observation"}}, denied: true},
		{name: "referenced type outside scopes", who: payer, p: export.Params{Level: export.Group, GroupID: "mine", Types: []string{"Group", "Patient"}, Referenced: []string{"Practitioner"}}, denied: true},
		{name: "nobody", who: nil, p: export.Params{Level: export.System}, denied: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := export.Authorize(ctx, st, tc.who, &tc.p)
			var d *export.Denied
			switch {
			case tc.notFound:
				require.ErrorAs(t, err, &d)
				assert.True(t, d.NotFound)
			case tc.denied:
				require.ErrorAs(t, err, &d)
				assert.False(t, d.NotFound)
			default:
				assert.NoError(t, err)
			}
		})
	}
}
