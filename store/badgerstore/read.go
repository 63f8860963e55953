package badgerstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/searchparam"
)

// defaultHistoryCount is the page size of History when Count is zero.
const defaultHistoryCount = 100

// reader runs queries in one badger read transaction.
type reader struct {
	s   *Store
	txn *badger.Txn
}

// get returns the decoded record at k (body copied out of badger), or nil.
func (r *reader) get(k []byte) (*record, error) {
	item, err := r.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("badgerstore: get: %w", err)
	}
	rec, err := itemRecord(item)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: value: %w", err)
	}
	return rec, nil
}

// itemRecord decodes the record an item holds, copied out of badger.
func itemRecord(item *badger.Item) (*record, error) {
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return decodeRecord(v)
}

// live returns the current version of typ/id, or nil when it is missing or
// deleted.
func (r *reader) live(typ, id string) (*store.Resource, error) {
	rec, err := r.get(currentKey(typ, id))
	if err != nil || rec == nil || rec.deleted {
		return nil, err
	}
	return rec.resource(typ, id), nil
}

func (r *reader) read(ctx context.Context, typ, id string) (*store.Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !isValidType(typ) || !isValidID(id) {
		return nil, fmt.Errorf("%q/%q: %w", typ, id, store.ErrNotFound)
	}
	rec, err := r.get(currentKey(typ, id))
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("%s/%s: %w", typ, id, store.ErrNotFound)
	}
	res := rec.resource(typ, id)
	if rec.deleted {
		return res, fmt.Errorf("%s/%s: %w", typ, id, store.ErrDeleted)
	}
	return res, nil
}

func (r *reader) vread(ctx context.Context, typ, id string, version uint64) (*store.Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !isValidType(typ) || !isValidID(id) {
		return nil, fmt.Errorf("%q/%q: %w", typ, id, store.ErrNotFound)
	}
	rec, err := r.versionRecord(typ, id, version)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("%s/%s/_history/%d: %w", typ, id, version, store.ErrNotFound)
	}
	res := rec.resource(typ, id)
	if rec.deleted {
		return res, fmt.Errorf("%s/%s/_history/%d: %w", typ, id, version, store.ErrDeleted)
	}
	return res, nil
}

// iterate walks keys with the prefix (newest-first when reverse), stopping
// when fn returns false or an error.
func (r *reader) iterate(ctx context.Context, prefix []byte, reverse, values bool, fn func(item *badger.Item) (bool, error)) error {
	return r.iterateFrom(ctx, prefix, nil, reverse, values, fn)
}

// iterateFrom is iterate starting at seek (nil = the first key in the
// direction of travel).
func (r *reader) iterateFrom(ctx context.Context, prefix, seek []byte, reverse, values bool, fn func(item *badger.Item) (bool, error)) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.Reverse = reverse
	opts.PrefetchValues = values
	if values {
		opts.PrefetchSize = 64
	}
	it := r.txn.NewIterator(opts)
	defer it.Close()
	if seek == nil {
		seek = prefix
		if reverse {
			seek = append(append([]byte{}, prefix...), 0xff)
		}
	}
	n := 0
	for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		more, err := fn(it.Item())
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (r *reader) history(ctx context.Context, q store.HistoryQuery) ([]*store.Resource, error) {
	limit := q.Count
	if limit == 0 {
		limit = defaultHistoryCount
	}
	since := int64(searchparam.MinTime)
	if !q.Since.IsZero() {
		since = q.Since.UnixMicro()
	}
	if (q.Type != "" && !isValidType(q.Type)) || (q.ID != "" && !isValidID(q.ID)) || (q.ID != "" && q.Type == "") {
		return nil, fmt.Errorf("badgerstore: history of %q/%q: %w", q.Type, q.ID, store.ErrNotFound)
	}
	var out []*store.Resource
	full := func() bool { return limit > 0 && len(out) >= limit }
	switch {
	case q.Type != "" && q.ID != "":
		// The newest version lives in the current record; history records
		// hold the superseded ones (and, in stores written before that,
		// the current one too, which is skipped).
		cur, err := r.get(currentKey(q.Type, q.ID))
		if err != nil {
			return nil, fmt.Errorf("badgerstore: history: %w", err)
		}
		var curVer uint64
		if cur != nil {
			curVer = cur.version
			if (q.Before == nil || cur.version < q.Before.Version) && cur.ts > since {
				out = append(out, cur.resource(q.Type, q.ID))
			}
		}
		var seek, skip []byte
		if b := q.Before; b != nil {
			seek = historyKey(q.Type, q.ID, b.Version)
			skip = seek
		}
		if !full() {
			err = r.iterateFrom(ctx, prefixKey(pHistory, q.Type, q.ID), seek, true, true, func(item *badger.Item) (bool, error) {
				if skip != nil && bytes.Equal(item.Key(), skip) {
					return true, nil
				}
				rec, err := itemRecord(item)
				if err != nil {
					return false, err
				}
				if rec.ts <= since {
					return false, nil
				}
				if rec.version == curVer {
					return true, nil
				}
				out = append(out, rec.resource(q.Type, q.ID))
				return !full(), nil
			})
		}
		if err != nil {
			return nil, fmt.Errorf("badgerstore: history: %w", err)
		}
		if len(out) == 0 && q.Since.IsZero() && q.Before == nil {
			return nil, fmt.Errorf("%s/%s: %w", q.Type, q.ID, store.ErrNotFound)
		}
		return out, nil
	case q.Type != "":
		pfx := prefixKey(pTypeHist, q.Type)
		var seek []byte
		if b := q.Before; b != nil {
			seek = typeHistKey(q.Type, b.LastUpdated.UnixMicro(), b.ID, b.Version)
		}
		err := r.iterateFrom(ctx, pfx, seek, true, false, func(item *badger.Item) (bool, error) {
			k := item.Key()
			if seek != nil && bytes.Equal(k, seek) {
				return true, nil
			}
			rest := k[len(pfx):] // ts(8) \0 id \0 ver(8)
			if len(rest) < 8+1+1+8 {
				return false, errCorrupt
			}
			if tsFrom(rest[:8]) <= since {
				return false, nil
			}
			id := string(rest[9 : len(rest)-9])
			res, err := r.version(q.Type, id, binary.BigEndian.Uint64(rest[len(rest)-8:]))
			if err != nil {
				return false, err
			}
			out = append(out, res)
			return !full(), nil
		})
		return out, err
	default:
		pfx := []byte{pSysHist, 0}
		var seek []byte
		if b := q.Before; b != nil {
			seek = sysHistKey(b.LastUpdated.UnixMicro(), b.Type, b.ID, b.Version)
		}
		err := r.iterateFrom(ctx, pfx, seek, true, false, func(item *badger.Item) (bool, error) {
			k := item.Key()
			if seek != nil && bytes.Equal(k, seek) {
				return true, nil
			}
			rest := k[len(pfx):] // ts(8) \0 type \0 id \0 ver(8)
			if len(rest) < 8+1+1+1+1+8 {
				return false, errCorrupt
			}
			if tsFrom(rest[:8]) <= since {
				return false, nil
			}
			mid := rest[9 : len(rest)-9]
			i := bytes.IndexByte(mid, 0)
			if i < 0 {
				return false, errCorrupt
			}
			res, err := r.version(string(mid[:i]), string(mid[i+1:]), binary.BigEndian.Uint64(rest[len(rest)-8:]))
			if err != nil {
				return false, err
			}
			out = append(out, res)
			return !full(), nil
		})
		return out, err
	}
}

// versionRecord returns version ver of typ/id, or nil: the history record
// of a superseded version, or the current record when ver is current (a
// version gets its history record only once a later one supersedes it, so
// a resource written once is stored once; stores written before that have
// one for every version, which is read first and is the same).
func (r *reader) versionRecord(typ, id string, ver uint64) (*record, error) {
	rec, err := r.get(historyKey(typ, id, ver))
	if err != nil || rec != nil {
		return rec, err
	}
	cur, err := r.get(currentKey(typ, id))
	if err != nil || cur == nil || cur.version != ver {
		return nil, err
	}
	return cur, nil
}

func (r *reader) version(typ, id string, ver uint64) (*store.Resource, error) {
	rec, err := r.versionRecord(typ, id, ver)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("%w: history entry without version %s/%s/%d", errCorrupt, typ, id, ver)
	}
	return rec.resource(typ, id), nil
}

// compartment visits current resources in the patient's compartment, type
// by type (in the order given, or key order), then by id.
func (r *reader) compartment(ctx context.Context, patientID string, types []string, fn func(*store.Resource) error) error {
	if !isValidID(patientID) {
		return fmt.Errorf("badgerstore: compartment: patient id %q: %w", patientID, store.ErrNotFound)
	}
	for _, t := range types {
		if !isValidType(t) {
			return fmt.Errorf("badgerstore: compartment: type %q: %w", t, store.ErrInvalid)
		}
	}
	var prefixes [][]byte
	if len(types) == 0 {
		prefixes = [][]byte{prefixKey(pCompartment, patientID)}
	} else {
		for _, t := range types {
			prefixes = append(prefixes, prefixKey(pCompartment, patientID, t))
		}
	}
	base := len(prefixKey(pCompartment, patientID))
	for _, pfx := range prefixes {
		err := r.iterate(ctx, pfx, false, false, func(item *badger.Item) (bool, error) {
			rest := item.Key()[base:]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				return false, errCorrupt
			}
			res, err := r.live(string(rest[:i]), string(rest[i+1:]))
			if err != nil {
				return false, err
			}
			if res == nil {
				return true, nil
			}
			return true, fn(res)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// scan visits the current live resources of a type: in id order when since
// is zero, otherwise in lastUpdated order from the _lastUpdated index.
func (r *reader) scan(ctx context.Context, typ string, since time.Time, fn func(*store.Resource) error) error {
	if !isValidType(typ) {
		return fmt.Errorf("badgerstore: scan: type %q: %w", typ, store.ErrInvalid)
	}
	if since.IsZero() {
		pfx := prefixKey(pCurrent, typ)
		return r.iterate(ctx, pfx, false, true, func(item *badger.Item) (bool, error) {
			rec, err := itemRecord(item)
			if err != nil {
				return false, err
			}
			if rec.deleted {
				return true, nil
			}
			return true, fn(rec.resource(typ, string(item.Key()[len(pfx):])))
		})
	}
	pfx := prefixKey(pIndex, typ, "_lastUpdated")
	from := append(append([]byte{}, pfx...), "l"+searchparam.DateKey(since.UnixMicro()+1)...)
	end := append(append([]byte{}, pfx...), "l\xff"...)
	return r.rangeScan(ctx, from, end, func(k []byte) (bool, error) {
		res, err := r.live(typ, lastPart(k))
		if err != nil {
			return false, err
		}
		if res == nil {
			return true, nil
		}
		return true, fn(res)
	})
}

// rangeScan visits keys in [from, to).
func (r *reader) rangeScan(ctx context.Context, from, to []byte, fn func(k []byte) (bool, error)) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	// The common prefix up to the first differing byte narrows the tables
	// badger opens.
	n := 0
	for n < len(from) && n < len(to) && from[n] == to[n] {
		n++
	}
	opts.Prefix = from[:n]
	it := r.txn.NewIterator(opts)
	defer it.Close()
	i := 0
	for it.Seek(from); it.Valid(); it.Next() {
		k := it.Item().Key()
		if bytes.Compare(k, to) >= 0 {
			return nil
		}
		if i++; i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		more, err := fn(k)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (r *reader) counts(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	pfx := []byte{pCount, 0}
	err := r.iterate(ctx, pfx, false, true, func(item *badger.Item) (bool, error) {
		return true, item.Value(func(v []byte) error {
			if len(v) != 8 {
				return errCorrupt
			}
			if n := int64(binary.BigEndian.Uint64(v)); n > 0 {
				out[string(item.Key()[len(pfx):])] = n
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("badgerstore: counts: %w", err)
	}
	return out, nil
}
