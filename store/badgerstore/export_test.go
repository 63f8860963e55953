package badgerstore

import "github.com/dgraph-io/badger/v4"

// SetCrashPoint makes the next staged transactions stop at point, leaving
// the disk as a process killed there would.
func SetCrashPoint(s *Store, point string) { s.crashAt = point }

// DropIndexes deletes the search and compartment indexes and marks the
// layout as version v, as an older release would have left the store.
func DropIndexes(s *Store, v string) {
	for _, p := range [][]byte{{pIndex, 0}, {pCompartment, 0}} {
		if err := s.db.DropPrefix(p); err != nil {
			panic(err)
		}
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(indexVersionKey, []byte(v)) }); err != nil {
		panic(err)
	}
}
