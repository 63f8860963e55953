package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/equitas/equitas/store"
)

// record is the stored form of one version: a 25-byte header (flags,
// version, lastUpdated, content hash) followed by the JSON body.
type record struct {
	deleted bool
	version uint64
	ts      int64  // lastUpdated, Unix microseconds
	hash    uint64 // hash of the body without meta.versionId/lastUpdated
	body    []byte
	// encoded, when set, is headerLen bytes followed by body (body is its
	// tail): encode fills in the header instead of copying the body.
	encoded []byte
}

const headerLen = 25

var errCorrupt = errors.New("badgerstore: corrupt record")

func (r *record) encode() []byte {
	b := r.encoded
	if b == nil {
		b = make([]byte, headerLen+len(r.body))
		copy(b[headerLen:], r.body)
	}
	if r.deleted {
		b[0] = 1
	}
	binary.BigEndian.PutUint64(b[1:], r.version)
	binary.BigEndian.PutUint64(b[9:], uint64(r.ts))
	binary.BigEndian.PutUint64(b[17:], r.hash)
	return b
}

// decodeRecord parses a stored value; body aliases v.
func decodeRecord(v []byte) (*record, error) {
	if len(v) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes", errCorrupt, len(v))
	}
	r := &record{
		deleted: v[0]&1 != 0,
		version: binary.BigEndian.Uint64(v[1:]),
		ts:      int64(binary.BigEndian.Uint64(v[9:])),
		hash:    binary.BigEndian.Uint64(v[17:]),
	}
	if len(v) > headerLen {
		r.body = v[headerLen:]
	}
	return r, nil
}

func (r *record) resource(typ, id string) *store.Resource {
	res := &store.Resource{
		Type:        typ,
		ID:          id,
		Version:     r.version,
		LastUpdated: time.UnixMicro(r.ts).UTC(),
		Deleted:     r.deleted,
	}
	if !r.deleted {
		res.Body = r.body
	}
	return res
}

func formatInstant(micro int64) string {
	return time.UnixMicro(micro).UTC().Format("2006-01-02T15:04:05.000000Z")
}
