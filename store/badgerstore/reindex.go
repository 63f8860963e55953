package badgerstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// indexVersion names the index layout: the term formats of
// store/searchparam and the compartment definition. Open rebuilds the
// indexes of a store written with another version; bump it whenever a
// change alters the keys a resource indexes to.
const indexVersion = "4"

var indexVersionKey = key(pMeta, "indexver")

// checkIndexVersion rebuilds the indexes when they were written under a
// different layout. It runs in Open, before the writer starts.
func (s *Store) checkIndexVersion(ctx context.Context) error {
	var have string
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(indexVersionKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		have = string(v)
		return err
	})
	if err != nil {
		return fmt.Errorf("badgerstore: index version: %w", err)
	}
	if have == indexVersion {
		return nil
	}
	empty := true
	err = s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{pCurrent, 0}
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind()
		empty = !it.ValidForPrefix(opts.Prefix)
		return nil
	})
	if err != nil {
		return fmt.Errorf("badgerstore: index version: %w", err)
	}
	if !empty { // a new store has nothing to rebuild
		if err := s.reindex(ctx); err != nil {
			return err
		}
	}
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set(indexVersionKey, []byte(indexVersion)) })
}

// reindex drops the search and compartment indexes and derives them again
// from the current versions. A crash midway leaves the old version marker,
// so the next Open starts over.
func (s *Store) reindex(ctx context.Context) error {
	for _, p := range [][]byte{{pIndex, 0}, {pCompartment, 0}} {
		if err := s.db.DropPrefix(p); err != nil {
			return fmt.Errorf("badgerstore: reindex: %w", err)
		}
	}
	wb := s.db.NewWriteBatch()
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		pfx := []byte{pCurrent, 0}
		opts := badger.DefaultIteratorOptions
		opts.Prefix = pfx
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.ValidForPrefix(pfx); it.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			k := it.Item().Key()
			typ, id, ok := splitTypeID(k[len(pfx):])
			if !ok {
				return errCorrupt
			}
			rec, err := itemRecord(it.Item())
			if err != nil {
				return err
			}
			if rec.deleted {
				continue
			}
			keys := append(s.ix.keys(typ, id, rec.body), lastUpdatedKey(typ, id, rec.ts))
			for _, ik := range keys {
				if err := wb.Set(ik, nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		wb.Cancel()
		return fmt.Errorf("badgerstore: reindex: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("badgerstore: reindex: %w", err)
	}
	if n > 0 {
		s.log.Info("badgerstore: rebuilt search and compartment indexes", "resources", n, "version", indexVersion)
	}
	return nil
}

func splitTypeID(b []byte) (typ, id string, ok bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), string(b[i+1:]), true
		}
	}
	return "", "", false
}
