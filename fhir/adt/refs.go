package adt

import (
	"context"
	"errors"
	"fmt"

	"github.com/equitas/equitas/store"
)

// kvRef + hash(type, system, value) → the id of the Practitioner or
// Organization holding that identifier.
const kvRef = "adt/ref/"

// refResource is a resource the mapped resources point at (the attending
// Practitioner, the Location, the sending facility's Organization). It is
// created when absent and otherwise left alone: these are reference data
// other sources may curate, and a name spelled differently by another
// sender must not rewrite them on every message.
type refResource struct {
	Type  string
	ID    string       // derived id, used when creating it
	Ident *identifier  // nil for Location (found by its derived id only)
	Body  any          // marshalled only when the resource is created
	Uses  []*reference // references to point at the resolved id
}

// ref registers a referenced resource, once per type and id, and returns
// the reference to use (shared by every use, patched on resolution).
func (m *mapper) ref(typ, id string, ident *identifier, display string, body any) *reference {
	for _, r := range m.refs {
		if r.Type == typ && r.ID == id {
			u := &reference{Reference: typ + "/" + id, Identifier: ident, Display: display}
			r.Uses = append(r.Uses, u)
			return u
		}
	}
	u := &reference{Reference: typ + "/" + id, Identifier: ident, Display: display}
	m.refs = append(m.refs, &refResource{Type: typ, ID: id, Ident: ident, Body: body, Uses: []*reference{u}})
	return u
}

// resolveRefs finds or creates every referenced resource, points the
// references at it, and adds the creations and index entries to tx.
func (p *Processor) resolveRefs(ctx context.Context, refs []*refResource, tx *store.Tx) error {
	kv := p.st.KV()
	for _, r := range refs {
		id, create, indexed := "", false, false
		var key string
		if r.Ident != nil {
			key = kvRef + hashID(r.Type, r.Ident.System, r.Ident.Value)
			if v, err := kv.Get(ctx, key); err == nil {
				id, indexed = string(v), true
			} else if !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("adt: read reference index: %w", err)
			}
		}
		if id == "" {
			_, err := p.st.Read(ctx, r.Type, r.ID)
			switch {
			case err == nil:
				id = r.ID
			case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDeleted):
			default:
				return fmt.Errorf("adt: read %s: %w", r.Type, err)
			}
		}
		if id == "" && r.Ident != nil {
			res, err := p.st.Search(ctx, store.Query{Type: r.Type, Count: 1,
				Params: []store.Param{{Name: "identifier", Values: []string{r.Ident.System + "|" + r.Ident.Value}}}})
			if err != nil {
				return fmt.Errorf("adt: search %s by identifier: %w", r.Type, err)
			}
			if len(res.Resources) > 0 {
				id = res.Resources[0].ID
			}
		}
		if id == "" {
			id, create = r.ID, true
		}
		for _, u := range r.Uses {
			u.Reference = r.Type + "/" + id
		}
		if create {
			// A concurrent message creating it too makes this commit
			// fail with a version conflict; the retry then finds it.
			tx.Writes = append(tx.Writes, store.Write{Op: store.OpPut, Type: r.Type, ID: id, Body: raw(r.Body), IfNoneExist: true})
		}
		if key != "" && !indexed {
			tx.KV[key] = []byte(id)
		}
	}
	return nil
}
