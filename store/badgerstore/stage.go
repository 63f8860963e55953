package badgerstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Large transactions exceed what one badger transaction can hold
// (ErrTxnTooBig). They are written in three steps:
//
//  1. stage: the mutations are written, in chunks, under P\0<txid>\0<seq>;
//  2. commit: one small synced write of C\0<txid> is the commit point;
//  3. apply: the mutations are written to their keys while new readers
//     wait at applyGate, then the staged chunks and the commit record are
//     deleted.
//
// A crash before step 2 leaves staged chunks without a commit record:
// recover deletes them, and the transaction never happened. A crash after
// step 2 leaves the commit record: recover applies the chunks again
// (mutations are absolute puts and deletes, so repeating them is
// harmless) before the store serves anything.

const stageChunkBytes = 4 << 20

var errSimulatedCrash = errors.New("badgerstore: simulated crash")

func stagedKey(txid, seq uint64) []byte { return key(pStaged, u64(txid), u64(seq)) }

func encodeMutation(buf []byte, m mutation) []byte {
	k := m.key
	if m.del {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	buf = binary.AppendUvarint(buf, uint64(len(k)))
	buf = append(buf, k...)
	buf = binary.AppendUvarint(buf, uint64(len(m.val)))
	return append(buf, m.val...)
}

func decodeMutations(b []byte, fn func(k []byte, m mutation) error) error { // m.key unset
	for len(b) > 0 {
		del := b[0] == 1
		b = b[1:]
		kl, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < kl {
			return errCorrupt
		}
		k := b[n : n+int(kl)]
		b = b[n+int(kl):]
		vl, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < vl {
			return errCorrupt
		}
		v := b[n : n+int(vl)]
		b = b[n+int(vl):]
		if err := fn(k, mutation{val: v, del: del}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) writeStaged(muts []mutation) error {
	txid := uint64(s.opts.Now().UnixNano())<<8 | s.txCounter.Add(1)&0xff
	// 1. stage
	wb := s.db.NewWriteBatch()
	var chunk []byte
	seq := uint64(0)
	flushChunk := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := wb.Set(stagedKey(txid, seq), chunk)
		seq++
		chunk = nil
		return err
	}
	for _, m := range muts {
		chunk = encodeMutation(chunk, m)
		if len(chunk) >= stageChunkBytes {
			if err := flushChunk(); err != nil {
				wb.Cancel()
				return s.abandonStaged(txid, err)
			}
		}
	}
	if err := flushChunk(); err != nil {
		wb.Cancel()
		return s.abandonStaged(txid, err)
	}
	if err := wb.Flush(); err != nil {
		return s.abandonStaged(txid, err)
	}
	if s.crashAt == "staged" {
		return errSimulatedCrash
	}
	// 2. commit point
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(key(pCommitRec, u64(txid)), nil)
	}); err != nil {
		return s.abandonStaged(txid, err)
	}
	if s.crashAt == "committed" {
		return errSimulatedCrash
	}
	s.log.Debug("badgerstore: large transaction committed; applying", "mutations", len(muts), "chunks", seq)
	// 3. apply
	s.applyGate.Lock()
	if s.crashAt == "half-applied" {
		err := s.applyMutations(muts[:len(muts)/2])
		s.applyGate.Unlock()
		return errors.Join(errSimulatedCrash, err)
	}
	err := s.applyMutations(muts)
	s.applyGate.Unlock()
	if err != nil {
		// Committed but not fully applied: the next Open finishes it.
		return fmt.Errorf("badgerstore: applying committed transaction (reopen to finish): %w", err)
	}
	return s.dropStaged(txid)
}

func (s *Store) applyMutations(muts []mutation) error {
	wb := s.db.NewWriteBatch()
	if err := setAll(wb, muts); err != nil {
		wb.Cancel()
		return err
	}
	return wb.Flush()
}

// setAll applies mutations to a badger transaction or write batch.
func setAll(w interface {
	Set(k, v []byte) error
	Delete(k []byte) error
}, muts []mutation) error {
	for _, mu := range muts {
		var err error
		if mu.del {
			err = w.Delete(mu.key)
		} else {
			err = w.Set(mu.key, mu.val)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) abandonStaged(txid uint64, cause error) error {
	if err := s.dropStaged(txid); err != nil {
		s.log.Warn("badgerstore: cleaning up staged transaction", "err", err)
	}
	return fmt.Errorf("badgerstore: staging transaction: %w", cause)
}

// dropStaged deletes a transaction's commit record, then its chunks.
func (s *Store) dropStaged(txid uint64) error {
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Delete(key(pCommitRec, u64(txid)))
	}); err != nil {
		return err
	}
	return s.deletePrefix(prefixKey(pStaged, u64(txid)))
}

func (s *Store) deletePrefix(pfx []byte) error {
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = pfx
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.ValidForPrefix(pfx); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	wb := s.db.NewWriteBatch()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			wb.Cancel()
			return err
		}
	}
	return wb.Flush()
}

// recover finishes committed staged transactions and discards
// uncommitted ones.
func (s *Store) recover(ctx context.Context) error {
	var committed []uint64
	err := s.db.View(func(txn *badger.Txn) error {
		pfx := []byte{pCommitRec, 0}
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = pfx
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.ValidForPrefix(pfx); it.Next() {
			k := it.Item().Key()
			if len(k) != 2+8 {
				return errCorrupt
			}
			committed = append(committed, binary.BigEndian.Uint64(k[2:]))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("badgerstore: recover: %w", err)
	}
	for _, txid := range committed {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.log.Warn("badgerstore: finishing a large transaction interrupted by a crash", "txid", txid)
		if err := s.replay(txid); err != nil {
			return fmt.Errorf("badgerstore: recover transaction %d: %w", txid, err)
		}
		if err := s.dropStaged(txid); err != nil {
			return fmt.Errorf("badgerstore: recover: %w", err)
		}
	}
	// Anything still staged was never committed.
	if err := s.deletePrefix([]byte{pStaged, 0}); err != nil {
		return fmt.Errorf("badgerstore: recover: dropping uncommitted staged data: %w", err)
	}
	return nil
}

func (s *Store) replay(txid uint64) error {
	pfx := prefixKey(pStaged, u64(txid))
	wb := s.db.NewWriteBatch()
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = pfx
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.ValidForPrefix(pfx); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			err = decodeMutations(v, func(k []byte, m mutation) error {
				k = bytes.Clone(k)
				if m.del {
					return wb.Delete(k)
				}
				return wb.Set(k, bytes.Clone(m.val))
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		wb.Cancel()
		return err
	}
	return wb.Flush()
}
