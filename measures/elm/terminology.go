package elm

import (
	"context"
	"fmt"
	"strings"

	"github.com/equitas/equitas/measures/elm/cql"
)

// MemoryTerminology is an in-memory Terminology keyed by value set URL (and
// optionally version); members are hashed as system|code.
type MemoryTerminology struct {
	sets map[string]*MemoryCodeSet
}

// NewMemoryTerminology returns an empty in-memory terminology.
func NewMemoryTerminology() *MemoryTerminology {
	return &MemoryTerminology{sets: map[string]*MemoryCodeSet{}}
}

// Add adds codes to the value set url (version may be "").
func (m *MemoryTerminology) Add(url, version string, codes ...cql.Code) {
	key := url
	if version != "" {
		key += "|" + version
	}
	s := m.sets[key]
	if s == nil {
		s = &MemoryCodeSet{members: map[codeKey]struct{}{}, codesOnly: map[string]struct{}{}}
		m.sets[key] = s
		if version != "" {
			if _, ok := m.sets[url]; !ok {
				m.sets[url] = s
			}
		}
	}
	for _, c := range codes {
		s.add(c)
	}
}

// ValueSet implements Terminology: exact url|version, else url alone.
func (m *MemoryTerminology) ValueSet(_ context.Context, url, version string) (CodeSet, error) {
	if version != "" {
		if s, ok := m.sets[url+"|"+version]; ok {
			return s, nil
		}
	}
	if i := strings.IndexByte(url, '|'); i >= 0 && version == "" {
		if s, ok := m.sets[url]; ok {
			return s, nil
		}
		url = url[:i]
	}
	if s, ok := m.sets[url]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrValueSetNotFound, url)
}

// MemoryCodeSet is an expanded value set.
type MemoryCodeSet struct {
	members   map[codeKey]struct{}
	codesOnly map[string]struct{}
	codes     []cql.Code
}

type codeKey struct{ system, code string }

func (s *MemoryCodeSet) add(c cql.Code) {
	k := codeKey{c.System, c.Code}
	if _, dup := s.members[k]; dup {
		return
	}
	s.members[k] = struct{}{}
	s.codesOnly[c.Code] = struct{}{}
	s.codes = append(s.codes, c)
}

// Contains implements CodeSet.
func (s *MemoryCodeSet) Contains(system, code string) bool {
	if system == "" {
		_, ok := s.codesOnly[code]
		return ok
	}
	_, ok := s.members[codeKey{system, code}]
	return ok
}

// Codes implements CodeSet.
func (s *MemoryCodeSet) Codes() []cql.Code { return s.codes }
