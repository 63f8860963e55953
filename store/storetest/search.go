package storetest

import (
	"testing"

	"github.com/equitas/equitas/store"
)

func testSearch(t *testing.T, st store.Store) {}

func testPaging(t *testing.T, st store.Store) {}
