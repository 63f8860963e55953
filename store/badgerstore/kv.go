package badgerstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/equitas/equitas/store"
)

// KV implements store.Store; its writes go through the same group commit
// as resources.
func (s *Store) KV() store.KV { return kv{s} }

type kv struct{ s *Store }

func (k kv) Get(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := k.s.view(func(r *reader) error {
		item, err := r.txn.Get(key(pKV, name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("kv %q: %w", name, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("badgerstore: kv get: %w", err)
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	return out, err
}

func (k kv) Put(ctx context.Context, name string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := k.s.Commit(ctx, store.Tx{KV: map[string][]byte{name: value}})
	return err
}

func (k kv) Delete(ctx context.Context, name string) error {
	_, err := k.s.Commit(ctx, store.Tx{KV: map[string][]byte{name: nil}})
	return err
}

func (k kv) Batch(ctx context.Context, ops map[string][]byte) error {
	_, err := k.s.Commit(ctx, store.Tx{KV: ops})
	return err
}

func (k kv) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	return k.s.view(func(r *reader) error {
		pfx := append([]byte{pKV, 0}, prefix...)
		return r.iterate(ctx, pfx, false, true, func(item *badger.Item) (bool, error) {
			v, err := item.ValueCopy(nil)
			if err != nil {
				return false, err
			}
			return true, fn(string(item.Key()[2:]), v)
		})
	})
}
