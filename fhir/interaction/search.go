package interaction

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
	"github.com/equitas/equitas/store/searchparam"
)

// Paging limits.
const (
	DefaultCount = 50
	MaxCount     = 1000
	// maxIncludes bounds the resources _include/_revinclude may add to one
	// page, so a page cannot fan out to the whole database.
	maxIncludes = 1000
	// CursorParam carries the store's continuation in next links.
	CursorParam = "_cursor"
)

// Include is one _include or _revinclude: SourceType:Param[:TargetType].
type Include struct {
	Source, Param, Target string
	// Iterate (_include:iterate) applies the include to included
	// resources too, up to maxIncludeDepth levels.
	Iterate bool
}

// maxIncludeDepth bounds :iterate recursion.
const maxIncludeDepth = 4

// Search is a parsed search request.
type Search struct {
	Query       store.Query
	Includes    []Include
	RevIncludes []Include
	// SummaryCount is _summary=count: only the total is wanted.
	SummaryCount bool
	// Elements is _elements: the top-level elements to keep.
	Elements []string
	// SummaryData is _summary=data: everything but the narrative.
	SummaryData bool
	// Ignored lists parameters dropped under Prefer: handling=lenient.
	Ignored []outcome.Issue
	// Canonical is the request's parameters as understood, for self and
	// next links (without the cursor).
	Canonical url.Values
}

// resultParams are the search result parameters this server handles.
var resultParams = map[string]bool{
	"_count": true, "_sort": true, "_total": true, "_include": true, "_revinclude": true,
	"_summary": true, "_elements": true, "_format": true, "_pretty": true, CursorParam: true,
}

// unsupportedParams are spec parameters this server knows but does not
// implement; they are reported as not-supported rather than unknown.
var unsupportedParams = map[string]bool{
	"_has": true, "_text": true, "_content": true, "_filter": true, "_query": true,
	"_list": true, "_contained": true, "_containedType": true, "_type": true,
}

// ParseSearch turns query parameters into a store query for typ. Unknown or
// unsupported parameters are a 400 unless lenient, in which case they are
// dropped and listed in Ignored.
func ParseSearch(typ string, params url.Values, lenient bool) (*Search, error) {
	s := &Search{Query: store.Query{Type: typ, Count: DefaultCount}, Canonical: url.Values{}}
	var issues []outcome.Issue
	bad := func(name, code, format string, args ...any) {
		issues = append(issues, outcome.Issue{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...), Expression: []string{name}})
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	totalSet := false
	for _, raw := range names {
		vals := params[raw]
		name, mod, _ := strings.Cut(raw, ":")
		if resultParams[name] {
			if err := s.resultParam(typ, name, mod, vals, &totalSet); err != nil {
				bad(raw, "invalid", "%s", err)
				continue
			}
			if name != CursorParam && name != "_format" && name != "_pretty" {
				s.Canonical[raw] = vals
			}
			continue
		}
		if unsupportedParams[name] || strings.Contains(raw, ".") {
			bad(raw, "not-supported", "search parameter %s is not supported", raw)
			continue
		}
		if _, ok := searchparam.Lookup(typ, name); !ok {
			bad(raw, "not-supported", "unknown search parameter %s for %s", raw, typ)
			continue
		}
		for _, v := range vals {
			if v == "" {
				// An empty value is ignored, as the spec allows.
				continue
			}
			s.Query.Params = append(s.Query.Params, store.Param{Name: name, Modifier: mod, Values: splitValues(v)})
		}
		s.Canonical[raw] = vals
	}
	if !totalSet {
		// Count matches on the first page by default; later pages and
		// _total=none skip the extra work.
		s.Query.Total = s.Query.Cursor == ""
	}
	if len(issues) > 0 {
		if !lenient {
			return nil, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: issues}
		}
		for i := range issues {
			issues[i].Severity = "warning"
		}
		s.Ignored = issues
	}
	return s, nil
}

func (s *Search) resultParam(typ, name, mod string, vals []string, totalSet *bool) error {
	if mod != "" && !((name == "_include" || name == "_revinclude") && mod == "iterate") {
		return fmt.Errorf("modifier :%s is not supported on %s", mod, name)
	}
	if len(vals) > 1 && name != "_include" && name != "_revinclude" && name != "_sort" && name != "_elements" {
		return fmt.Errorf("%s given more than once", name)
	}
	v := vals[0]
	switch name {
	case "_count":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("_count must be a non-negative integer")
		}
		if n > MaxCount {
			n = MaxCount
		}
		if n == 0 {
			// _count=0 asks for the total only (the store reads 0 as
			// "default page size").
			s.SummaryCount = true
			n = 1
		}
		s.Query.Count = n
	case CursorParam:
		s.Query.Cursor = v
	case "_total":
		switch v {
		case "none":
			s.Query.Total = false
		case "estimate", "accurate":
			s.Query.Total = true
		default:
			return fmt.Errorf("_total must be none, estimate or accurate")
		}
		*totalSet = true
	case "_summary":
		switch v {
		case "count":
			s.SummaryCount = true
		case "data":
			s.SummaryData = true
		case "true":
			els, ok := SummaryElements(typ)
			if !ok {
				return fmt.Errorf("_summary=true is not supported for %s (count, data and false are)", typ)
			}
			s.Elements = append(s.Elements, els...)
			s.Elements = append(s.Elements, "implicitRules", "modifierExtension")
		case "false":
		default:
			return fmt.Errorf("_summary=%s is not supported (count, true, data and false are)", v)
		}
	case "_elements":
		for _, v := range vals {
			for _, e := range strings.Split(v, ",") {
				if e = strings.TrimSpace(e); e != "" {
					s.Elements = append(s.Elements, e)
				}
			}
		}
	case "_sort":
		for _, v := range vals {
			for _, k := range strings.Split(v, ",") {
				desc := strings.HasPrefix(k, "-")
				k = strings.TrimPrefix(k, "-")
				if _, ok := searchparam.Lookup(typ, k); !ok {
					return fmt.Errorf("cannot sort by unknown parameter %q", k)
				}
				s.Query.Sort = append(s.Query.Sort, store.SortKey{Param: k, Descending: desc})
			}
		}
	case "_include", "_revinclude":
		for _, v := range vals {
			inc, err := parseInclude(v)
			if err != nil {
				return err
			}
			inc.Iterate = mod == "iterate"
			if name == "_include" {
				if inc.Source != typ && !inc.Iterate {
					return fmt.Errorf("_include source %s is not the searched type %s", inc.Source, typ)
				}
				s.Includes = append(s.Includes, inc)
			} else {
				s.RevIncludes = append(s.RevIncludes, inc)
			}
		}
	case "_format", "_pretty":
		// Handled by content negotiation.
	}
	return nil
}

func parseInclude(v string) (Include, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Include{}, fmt.Errorf("include %q must be Type:param[:targetType]", v)
	}
	inc := Include{Source: parts[0], Param: parts[1]}
	if len(parts) == 3 {
		inc.Target = parts[2]
		if err := CheckType(inc.Target); err != nil {
			return Include{}, fmt.Errorf("include %q: unknown target type", v)
		}
	}
	if inc.Source == "*" || inc.Param == "*" {
		return Include{}, fmt.Errorf("wildcard include %q is not supported", v)
	}
	if err := CheckType(inc.Source); err != nil {
		return Include{}, fmt.Errorf("include %q: unknown source type", v)
	}
	d, ok := searchparam.Lookup(inc.Source, inc.Param)
	if !ok || d.Type != searchparam.Reference {
		return Include{}, fmt.Errorf("include %q: %s is not a reference parameter of %s", v, inc.Param, inc.Source)
	}
	return inc, nil
}

// splitValues splits a parameter value on unescaped commas (OR), undoing
// the "\," escape.
func splitValues(v string) []string {
	if !strings.Contains(v, ",") {
		return []string{v}
	}
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && v[i+1] == ',':
			cur.WriteByte(',')
			i++
		case v[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	return append(out, cur.String())
}

// Page is one page of search results.
type Page struct {
	Matches    []*store.Resource
	Included   []*store.Resource
	Total      int // -1 when unknown
	NextCursor string
}

// Search runs a parsed search and resolves its includes.
func (s *Service) Search(ctx context.Context, q *Search) (*Page, error) {
	if err := CheckType(q.Query.Type); err != nil {
		return nil, err
	}
	sq := q.Query
	if q.SummaryCount {
		sq.Total = true
		sq.Count = 1
	}
	res, err := s.st.Search(ctx, sq)
	if err != nil {
		return nil, StoreError(err)
	}
	p := &Page{Total: res.Total, NextCursor: res.NextCursor}
	if !sq.Total {
		p.Total = -1
	}
	if q.SummaryCount {
		p.NextCursor = ""
		return p, nil
	}
	p.Matches = res.Resources
	if len(q.Includes)+len(q.RevIncludes) > 0 && len(p.Matches) > 0 {
		inc, err := s.includes(ctx, q, p.Matches)
		if err != nil {
			return nil, err
		}
		p.Included = inc
	}
	return p, nil
}

func (s *Service) includes(ctx context.Context, q *Search, matches []*store.Resource) ([]*store.Resource, error) {
	seen := make(map[string]bool, len(matches))
	for _, r := range matches {
		seen[r.Type+"/"+r.ID] = true
	}
	var out []*store.Resource
	frontier := matches
	for depth := 0; depth < maxIncludeDepth && len(frontier) > 0 && len(out) < maxIncludes; depth++ {
		var added []*store.Resource
		add := func(r *store.Resource) {
			if k := r.Type + "/" + r.ID; !seen[k] && len(out) < maxIncludes {
				seen[k] = true
				out = append(out, r)
				added = append(added, r)
			}
		}
		for _, inc := range q.Includes {
			if depth > 0 && !inc.Iterate {
				continue
			}
			if err := s.include(ctx, q, inc, frontier, seen, add); err != nil {
				return nil, err
			}
		}
		for _, inc := range q.RevIncludes {
			if depth > 0 && !inc.Iterate {
				continue
			}
			if err := s.revInclude(ctx, q, inc, frontier, add); err != nil {
				return nil, err
			}
		}
		frontier = added
	}
	return out, nil
}

// include adds the resources that inc's reference parameter points at
// from the from resources.
func (s *Service) include(ctx context.Context, q *Search, inc Include, from []*store.Resource, seen map[string]bool, add func(*store.Resource)) error {
	for _, m := range from {
		if m.Type != inc.Source {
			continue
		}
		for _, ref := range searchparam.ReferenceValues(m.Type, inc.Param, m.Body) {
			typ, id, ok := strings.Cut(ref, "/")
			if !ok || (inc.Target != "" && typ != inc.Target) || seen[ref] {
				continue
			}
			r, err := s.st.Read(ctx, typ, id)
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
				continue
			}
			if err != nil {
				return StoreError(err)
			}
			if q.Query.Filter != nil && !q.Query.Filter(r) {
				continue
			}
			add(r)
		}
	}
	return nil
}

// revInclude adds the inc.Source resources whose parameter points at one
// of the from resources.
func (s *Service) revInclude(ctx context.Context, q *Search, inc Include, from []*store.Resource, add func(*store.Resource)) error {
	var refs []string
	for _, m := range from {
		if inc.Target == "" || inc.Target == m.Type {
			refs = append(refs, m.Type+"/"+m.ID)
		}
	}
	for len(refs) > 0 {
		// Chunks keep the OR-list of one query reasonable.
		n := min(len(refs), 100)
		chunk := refs[:n]
		refs = refs[n:]
		cursor := ""
		for {
			res, err := s.st.Search(ctx, store.Query{
				Type:   inc.Source,
				Params: []store.Param{{Name: inc.Param, Values: chunk}},
				Count:  MaxCount, Cursor: cursor, Filter: q.Query.Filter,
			})
			var pe *store.ParamError
			if errors.As(err, &pe) {
				// The parameter cannot point at these types: nothing to add.
				break
			}
			if err != nil {
				return StoreError(err)
			}
			for _, r := range res.Resources {
				add(r)
			}
			if res.NextCursor == "" {
				break
			}
			cursor = res.NextCursor
		}
	}
	return nil
}
