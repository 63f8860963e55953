package measure

import (
	"context"
	"fmt"

	"github.com/equitas/equitas/measures/elm"
	"github.com/equitas/equitas/measures/terminology"
)

// ValueSetRef is a value set declared by an ELM library.
type ValueSetRef struct {
	Name, ID, Version string
	// UsedBy is the name of the declaring library.
	UsedBy string
}

// Source finds what a Measure needs besides itself: its Library closure
// and the expansions of the value sets those libraries declare. Content
// reads them from a directory; a server reads them from its store.
type Source interface {
	// Library returns the FHIR Library JSON whose canonical is url (when
	// url is set) or whose name is name, restricted to version when set.
	// It returns nil raw and no error when there is none. where names the
	// library's origin (a file, Library/id) in error messages.
	Library(ctx context.Context, url, name, version string) (raw []byte, where string, err error)
	// Terminology returns an index holding (at least) the expansions of
	// refs that the source has; Assemble reports the missing ones.
	Terminology(ctx context.Context, refs []ValueSetRef) (*terminology.Index, error)
	// LibrariesWhere and ValueSetsWhere say where the source looks, for
	// error messages.
	LibrariesWhere() string
	ValueSetsWhere() string
}

// Assemble resolves a parsed Measure's library closure (the primary
// library, then the ELM includes transitively) and its value sets through
// src. where names the Measure in error messages. Every failure wraps
// ErrBadContent and names the missing or broken piece.
func Assemble(ctx context.Context, def *Definition, where string, src Source) (*Package, error) {
	pkg := &Package{Definition: def, MeasureFile: where, LibraryFiles: map[string]string{}}
	if def.Library == "" {
		return nil, fmt.Errorf("%w: %s: Measure has no library", ErrBadContent, where)
	}
	rootURL, rootVersion := def.Library, ""
	if i := lastBar(def.Library); i >= 0 {
		rootURL, rootVersion = def.Library[:i], def.Library[i+1:]
	}
	type want struct{ url, name, version, includedBy, includedIn string }
	queue := []want{{url: rootURL, name: canonicalName(rootURL), version: rootVersion}}
	loaded := map[string]bool{}
	var valueSets []ValueSetRef
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cur := queue[0]
		queue = queue[1:]
		raw, from, err := src.Library(ctx, cur.url, cur.name, cur.version)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadContent, from, err)
		}
		if raw == nil {
			if cur.includedBy == "" {
				return nil, fmt.Errorf("%w: %s: Measure.library %s not found among %s", ErrBadContent, where, def.Library, src.LibrariesWhere())
			}
			return nil, fmt.Errorf("%w: library %s version %s (included by %s in %s) not found among %s",
				ErrBadContent, cur.name, orAny(cur.version), cur.includedBy, cur.includedIn, src.LibrariesWhere())
		}
		if loaded[from] {
			continue
		}
		loaded[from] = true
		lib, err := elm.ParseLibrary(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadContent, from, err)
		}
		inc, err := elmSummary(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadContent, from, err)
		}
		if pkg.Root == nil {
			pkg.Root = lib
			pkg.statements = inc.Statements
		}
		pkg.Libraries = append(pkg.Libraries, lib)
		pkg.LibraryFiles[lib.ID.String()] = from
		for _, vs := range inc.ValueSets {
			vs.UsedBy = lib.ID.Name
			valueSets = append(valueSets, vs)
		}
		for _, in := range inc.Includes {
			queue = append(queue, want{name: canonicalName(in.Path), version: in.Version, includedBy: lib.ID.String(), includedIn: from})
		}
	}
	terms, err := src.Terminology(ctx, valueSets)
	if err != nil {
		return nil, err
	}
	pkg.Terminology = terms
	for _, vs := range valueSets {
		if _, err := terms.Lookup(vs.ID, vs.Version); err != nil {
			return nil, fmt.Errorf("%w: value set %q (%s, used by library %s) has no expansion in %s",
				ErrBadContent, vs.Name, vs.ID, vs.UsedBy, src.ValueSetsWhere())
		}
	}
	return pkg, nil
}

func lastBar(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '|' {
			return i
		}
	}
	return -1
}
