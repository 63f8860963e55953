package badgerstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/badgerstore"
	"github.com/equitas/equitas/store/storetest"
)

func openStore(t testing.TB, dir string) *badgerstore.Store {
	t.Helper()
	st, err := badgerstore.Open(context.Background(), dir, badgerstore.Options{MemTableSize: 16 << 20})
	require.NoError(t, err)
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openStore(t, t.TempDir()) })
}
