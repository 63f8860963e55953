package badgerstore

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store/searchparam"
)

// refKeys is indexer.keys as it was before keys were built in place (one
// string per term, copied into each key): the on-disk index depends on
// both giving the same bytes.
func refKeys(ix *indexer, typ, id string, body []byte) [][]byte {
	var out [][]byte
	doc := searchparam.NewDoc(body)
	for _, d := range ix.defsFor(typ) {
		if d.Name == "_lastUpdated" {
			continue
		}
		for _, term := range searchparam.Terms(d, doc.Values(d)) {
			out = append(out, indexKey(typ, d.Name, term, id))
		}
	}
	def, ok := searchparam.PatientCompartmentDef(typ)
	for _, pid := range searchparam.CompartmentPatients(typ, id, ok, doc.Values(def)) {
		out = append(out, compartmentKey(pid, typ, id))
	}
	slices.SortFunc(out, bytes.Compare)
	return dedupSorted(out)
}

var keyBodies = []string{
	`{"resourceType":"Patient","id":"p1","identifier":[{"system":"urn:oid:1.2","value":"MRN\u00001"},{"value":"MRN1"},{"value":"MRN1"}],"name":[{"family":"Müller","given":["José","José"]}],"birthDate":"1970-03-21","telecom":[{"system":"phone","value":"555"}],"address":[{"city":"` + strings.Repeat("Springfield ", 40) + `"}]}`,
	`{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}],"text":"HbA1c"},"subject":{"reference":"Patient/p1"},"effectivePeriod":{"start":"2020-01-01","end":"2020-02"},"valueQuantity":{"value":-6.1,"unit":"%"}}`,
	`{"resourceType":"Encounter","id":"e1","status":"finished","subject":{"reference":"Patient/p1"},"period":{"start":"2024-05-01T09:30:00-05:00"},"participant":[{"individual":{"reference":"Practitioner/pr1"}}]}`,
	`{"resourceType":"MessageHeader","id":"m1","eventCoding":{"code":"A01"}}`,
	`{"resourceType":"Group","id":"g1","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/p1"}}],"characteristic":[{"code":{"text":"x"},"valueBoolean":true,"exclude":false}]}`,
	`{"resourceType":"Observation","id":"o2","code":{"coding":[{"code":"` + strings.Repeat("x\u0000", 300) + `"}]},"valueQuantity":{"value":0}}`,
	`{"resourceType":"Patient","id":"p2"`,
}

// TestKeysMatchReference checks keys against refKeys over edge cases and
// the eCQM test resources of ../shared.
func TestKeysMatchReference(t *testing.T) {
	ix := newIndexer()
	bodies := keyBodies
	if root := repoRoot(t); root != "" {
		_ = filepath.WalkDir(filepath.Join(root, "..", "shared", "ecqm"), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil {
				bodies = append(bodies, string(b))
			}
			return nil
		})
	}
	if len(bodies) == len(keyBodies) {
		t.Log("../shared/ecqm absent: checked the built-in bodies only")
	}
	for _, b := range bodies {
		checkKeys(t, ix, []byte(b))
	}
}

func FuzzKeysMatchReference(f *testing.F) {
	for _, b := range keyBodies {
		f.Add(b)
	}
	ix := newIndexer()
	f.Fuzz(func(t *testing.T, body string) {
		checkKeys(t, ix, []byte(body))
	})
}

func checkKeys(t *testing.T, ix *indexer, body []byte) {
	t.Helper()
	typ := gjson.GetBytes(body, "resourceType").String()
	id := gjson.GetBytes(body, "id").String()
	// Twice: the second call reuses a pooled Doc.
	for range 2 {
		require.Equal(t, refKeys(ix, typ, id, body), ix.keys(typ, id, body), "%s", body)
	}
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
