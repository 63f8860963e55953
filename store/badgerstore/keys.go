package badgerstore

import (
	"encoding/binary"
)

// Key layout. Components are separated by NUL; times are big-endian
// sign-flipped Unix microseconds and versions big-endian uint64, so both
// sort numerically. Every prefix scan ends its prefix with the separator
// so Patient/12 never matches Patient/123.
//
//	c\0<type>\0<id>                          current version record
//	h\0<type>\0<id>\0<ver>                   superseded version records (vread, history);
//	                                         the newest version is only in c (older
//	                                         stores also have it here)
//	t\0<type>\0<ts>\0<id>\0<ver>             type-level history
//	s\0<ts>\0<type>\0<id>\0<ver>             system-level history
//	x\0<type>\0<param>\0<term>\0<id>         search index (terms from store/searchparam)
//	p\0<patient>\0<type>\0<id>               Patient compartment
//	n\0<type>                                count of current resources
//	k\0<key>                                 system key-value space
//	P\0<txid>\0<seq>                         staged mutations of a large transaction
//	C\0<txid>                                commit record of a staged transaction
//	m\0clock                                 last assigned lastUpdated
const (
	pCurrent     = 'c'
	pHistory     = 'h'
	pTypeHist    = 't'
	pSysHist     = 's'
	pIndex       = 'x'
	pCompartment = 'p'
	pCount       = 'n'
	pKV          = 'k'
	pStaged      = 'P'
	pCommitRec   = 'C'
	pMeta        = 'm'
)

func key(prefix byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += 1 + len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, prefix)
	for _, p := range parts {
		b = append(b, 0)
		b = append(b, p...)
	}
	return b
}

// prefixKey is key(...) followed by the separator, for prefix scans.
func prefixKey(prefix byte, parts ...string) []byte {
	return append(key(prefix, parts...), 0)
}

func u64(v uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return string(b[:])
}

func tsBytes(micro int64) string { return u64(uint64(micro) ^ (1 << 63)) }

func tsFrom(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

func currentKey(typ, id string) []byte { return key(pCurrent, typ, id) }

func historyKey(typ, id string, ver uint64) []byte {
	return key(pHistory, typ, id, u64(ver))
}

func typeHistKey(typ string, ts int64, id string, ver uint64) []byte {
	return key(pTypeHist, typ, tsBytes(ts), id, u64(ver))
}

func sysHistKey(ts int64, typ, id string, ver uint64) []byte {
	return key(pSysHist, tsBytes(ts), typ, id, u64(ver))
}

func indexKey(typ, param, term, id string) []byte {
	return key(pIndex, typ, param, term, id)
}

func compartmentKey(patient, typ, id string) []byte {
	return key(pCompartment, patient, typ, id)
}

// lastPart returns what follows the last NUL of a key.
func lastPart(k []byte) string {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == 0 {
			return string(k[i+1:])
		}
	}
	return string(k)
}
