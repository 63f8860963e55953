package rest

import (
	"net/http"
	"slices"
	"sort"

	"github.com/equitas/equitas/fhir/interaction"
	"github.com/equitas/equitas/fhir/outcome"
)

// Level is where an operation is invoked.
type Level int

// Operation levels.
const (
	System   Level = iota + 1 // [base]/$name
	Type                      // [base]/[type]/$name
	Instance                  // [base]/[type]/[id]/$name
)

// Operation is a FHIR $operation served by another package.
type Operation struct {
	Name  string // without "$", e.g. "export"
	Level Level
	// Types restricts Type and Instance operations to these resource types
	// (empty: every type).
	Types []string
	// Definition is the canonical URL of the OperationDefinition, listed
	// in the CapabilityStatement.
	Definition string
	// Formats are media types besides FHIR JSON the operation can answer
	// in (lower case, e.g. "text/csv"): content negotiation lets a request
	// for one of them through, and the handler chooses the format.
	Formats []string
	// Handler serves the operation; chi URL parameters "type" and "id" are
	// set for Type and Instance levels ("id" only for Instance). It does
	// its own method, scope and body checks.
	Handler http.Handler
}

type opKey struct {
	level Level
	typ   string // "" for System or all types
	name  string
}

// Operation registers op. Register before serving; a later registration
// for the same level, type and name replaces the earlier one.
func (s *Server) Operation(op Operation) {
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	if op.Level == System || len(op.Types) == 0 {
		s.ops[opKey{op.Level, "", op.Name}] = op
	} else {
		for _, t := range op.Types {
			s.ops[opKey{op.Level, t, op.Name}] = op
		}
	}
	s.forgetCapabilities()
}

func (s *Server) lookupOp(level Level, typ, name string) (Operation, bool) {
	s.opsMu.RLock()
	defer s.opsMu.RUnlock()
	if op, ok := s.ops[opKey{level, typ, name}]; ok {
		return op, true
	}
	if level != System {
		op, ok := s.ops[opKey{level, "", name}]
		return op, ok
	}
	return Operation{}, false
}

// operations lists the registered operations (sorted, deduplicated).
func (s *Server) operations() []Operation {
	s.opsMu.RLock()
	defer s.opsMu.RUnlock()
	type nameLevel struct {
		name  string
		level Level
	}
	seen := map[nameLevel]bool{}
	var out []Operation
	for k, op := range s.ops {
		key := nameLevel{op.Name, k.level}
		if !seen[key] {
			seen[key] = true
			out = append(out, op)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Level < out[j].Level
	})
	return out
}

func (s *Server) operation(w http.ResponseWriter, r *http.Request, level Level, typ, id, name string) {
	label(r, "operation", typ)
	if level != System {
		if err := interaction.CheckType(typ); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	op, ok := s.lookupOp(level, typ, name)
	if !ok {
		outcome.Error(w, http.StatusNotFound, "not-supported", "operation $"+name+" is not supported here")
		return
	}
	op.Handler.ServeHTTP(w, r)
}

// Instantiate declares that the server implements the CapabilityStatement
// with the given canonical URL (e.g. the Bulk Data server statement once
// $export is mounted); it is listed in CapabilityStatement.instantiates.
func (s *Server) Instantiate(canonical string) {
	s.opsMu.Lock()
	if !slices.Contains(s.instantiates, canonical) {
		s.instantiates = append(s.instantiates, canonical)
	}
	s.opsMu.Unlock()
	s.forgetCapabilities()
}

// forgetCapabilities drops the cached CapabilityStatements, which list the
// operations and instantiated statements registered so far.
func (s *Server) forgetCapabilities() {
	s.capMu.Lock()
	s.caps = map[string][]byte{}
	s.capMu.Unlock()
}
