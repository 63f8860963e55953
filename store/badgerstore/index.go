package badgerstore

import (
	"bytes"
	"slices"
	"strings"
	"sync"

	"github.com/equitas/equitas/store/searchparam"
)

// indexer derives the index keys of a resource version. It is built at
// Open and read-only afterwards.
type indexer struct {
	defs  map[string][]searchparam.Def // term-producing params per type
	alias map[string]map[string]string // type -> param -> param whose index it shares
	// other serves every type without registered params (MessageHeader,
	// ...): they have the common ones only, and no aliases.
	other []searchparam.Def
	// prefixes holds the key prefix ("x\0<type>\0<param>\0") of each
	// param of defs, at the same index.
	prefixes map[string][]string
	// compartment holds the PatientCompartmentDef of each type of defs
	// that has one.
	compartment map[string]searchparam.Def
	// docs recycles the extraction buffers of keys across writes.
	docs sync.Pool
}

func newIndexer() *indexer {
	ix := &indexer{defs: map[string][]searchparam.Def{}, alias: map[string]map[string]string{}}
	types := searchparam.Types()
	for _, t := range searchparam.PatientCompartmentTypes() {
		types = append(types, t)
	}
	for _, t := range types {
		if _, ok := ix.defs[t]; !ok {
			ix.defs[t], ix.alias[t] = indexedDefs(t)
		}
	}
	ix.other, _ = indexedDefs("")
	ix.compartment = map[string]searchparam.Def{}
	for t := range ix.defs {
		if d, ok := searchparam.PatientCompartmentDef(t); ok {
			ix.compartment[t] = d
		}
	}
	ix.prefixes = make(map[string][]string, len(ix.defs))
	for t, defs := range ix.defs {
		ps := make([]string, len(defs))
		for i, d := range defs {
			ps[i] = string(prefixKey(pIndex, t, d.Name))
		}
		ix.prefixes[t] = ps
	}
	return ix
}

// indexedDefs returns the params that get index terms, and the aliases:
// a reference param restricted to some target types (patient) over the
// same elements as an unrestricted one (subject) shares its index, since
// the target type is part of every term.
func indexedDefs(typ string) ([]searchparam.Def, map[string]string) {
	all := searchparam.For(typ)
	var alias map[string]string // most types have none
	var out []searchparam.Def
	for _, d := range all {
		switch {
		case d.Name == "_id":
			continue // served by the current-version keys
		case d.Type == searchparam.Composite:
			continue // no index terms: matched against candidates
		}
		if d.Type == searchparam.Reference && len(d.Targets) > 0 {
			shared := ""
			for _, o := range all {
				if o.Type == searchparam.Reference && len(o.Targets) == 0 && strings.Join(o.Paths, "|") == strings.Join(d.Paths, "|") {
					shared = o.Name
					break
				}
			}
			if shared != "" {
				if alias == nil {
					alias = map[string]string{}
				}
				alias[d.Name] = shared
				continue
			}
		}
		out = append(out, d)
	}
	return out, alias
}

// indexName is the name under which a param's terms are stored.
func (ix *indexer) indexName(typ, param string) string {
	if a, ok := ix.alias[typ][param]; ok {
		return a
	}
	return param
}

func (ix *indexer) defsFor(typ string) []searchparam.Def {
	if d, ok := ix.defs[typ]; ok {
		return d
	}
	return ix.other
}

// keys returns the sorted, de-duplicated index and compartment keys of one
// live resource version, except _lastUpdated (the writer adds that, as it
// assigns the time). The index keys share one backing array.
func (ix *indexer) keys(typ, id string, body []byte) [][]byte {
	return ix.keysOf(typ, id, body, false)
}

// keysOf is keys; valid says body is known to be valid JSON (a canonical
// body checked by canonical), which spares re-checking it.
func (ix *indexer) keysOf(typ, id string, body []byte, valid bool) [][]byte {
	doc, _ := ix.docs.Get().(*searchparam.Doc)
	if doc == nil {
		doc = new(searchparam.Doc)
	}
	if valid {
		doc.ResetValid(body)
	} else {
		doc.Reset(body)
	}
	defer func() {
		doc.Reset(nil)
		ix.docs.Put(doc)
	}()
	// Sized from the body: a resource's keys (with a UUID id) take about
	// twice its bytes, one key per 30-60 of them; large bodies grow both.
	out := make([][]byte, 0, min(len(body)/40+8, 64))
	buf := make([]byte, 0, min(2*len(body)+256, 4096))
	suffix := "\x00" + id
	defs, prefixes := ix.defsFor(typ), ix.prefixes[typ]
	for i, d := range defs {
		if d.Name == "_lastUpdated" {
			continue
		}
		// The same bytes indexKey(typ, d.Name, term, id) gives.
		var prefix string
		if prefixes != nil {
			prefix = prefixes[i]
		} else { // a type without registered params (ix.other)
			prefix = string(prefixKey(pIndex, typ, d.Name))
		}
		out, buf = searchparam.AppendKeys(out, buf, d, doc.Values(d), prefix, suffix)
	}
	for _, pid := range ix.compartmentPatients(typ, id, doc) {
		out = append(out, compartmentKey(pid, typ, id))
	}
	if len(out) == 0 {
		return nil // as before keys were built in place
	}
	slices.SortFunc(out, bytes.Compare)
	return dedupSorted(out)
}

func lastUpdatedKey(typ, id string, ts int64) []byte {
	return indexKey(typ, "_lastUpdated", "l"+searchparam.DateKey(ts), id)
}

// compartmentPatients returns the ids of the patients whose compartment
// holds the resource.
func (ix *indexer) compartmentPatients(typ, id string, doc *searchparam.Doc) []string {
	def, ok := ix.compartment[typ]
	if !ok {
		if _, known := ix.defs[typ]; !known {
			def, ok = searchparam.PatientCompartmentDef(typ)
		}
	}
	return searchparam.CompartmentPatients(typ, id, ok, doc.Values(def))
}

func dedupSorted(in [][]byte) [][]byte {
	if len(in) < 2 {
		return in
	}
	out := in[:1]
	for _, s := range in[1:] {
		if !bytes.Equal(s, out[len(out)-1]) {
			out = append(out, s)
		}
	}
	return out
}
