package interaction

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

// Entry is one request entry of a batch or transaction Bundle.
type Entry struct {
	Index    int
	FullURL  string
	Resource []byte // raw JSON; nil when absent
	Method   string
	URL      string // relative to the FHIR base
	// Conditional headers from Bundle.entry.request.
	IfMatch, IfNoneMatch, IfModifiedSince, IfNoneExist string
}

// Expr is the FHIRPath of the entry, for error locations.
func (e Entry) Expr() string { return fmt.Sprintf("Bundle.entry[%d]", e.Index) }

// RequestBundle is a parsed batch or transaction Bundle.
type RequestBundle struct {
	Type    string // batch | transaction
	Entries []Entry
}

// ParseBundle validates a batch or transaction Bundle and returns its
// entries. A transaction is validated as a whole (any invalid entry fails
// it); a batch only structurally, its entries being validated one by one
// when processed. base is the absolute FHIR base: request URLs under it
// are made relative.
func (s *Service) ParseBundle(body []byte, base string) (*RequestBundle, error) {
	if !gjson.ValidBytes(body) {
		// Report the syntax error the validator finds (with its location).
		if _, _, err := s.v.Resource(body); err != nil {
			return nil, err
		}
		return nil, outcome.Errorf(http.StatusBadRequest, "structure", "the Bundle is not valid JSON")
	}
	typ := gjson.GetBytes(body, "type").String()
	// The Bundle shell is validated without its entry resources; those are
	// validated one by one (in parallel for transactions), which names the
	// entry in every issue and sidesteps google/fhir's rejection of
	// Parameters.parameter.resource inside Bundles.
	rtype, _, err := s.v.Resource(stripEntryResources(body))
	if err != nil {
		return nil, err
	}
	if rtype != "Bundle" {
		return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "expected a Bundle, got %s", rtype)
	}
	if typ != "batch" && typ != "transaction" {
		return nil, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: []outcome.Issue{{
			Severity: "error", Code: "invalid", Diagnostics: fmt.Sprintf("Bundle.type %q cannot be processed: POST a batch or transaction", typ),
			Expression: []string{"Bundle.type"}}}}
	}
	rb := &RequestBundle{Type: typ}
	var issues []outcome.Issue
	fullURLs := map[string]int{}
	base = strings.TrimRight(base, "/") + "/"
	for i, e := range gjson.GetBytes(body, "entry").Array() {
		en := Entry{
			Index:           i,
			FullURL:         e.Get("fullUrl").String(),
			Method:          e.Get("request.method").String(),
			URL:             strings.TrimPrefix(e.Get("request.url").String(), base),
			IfMatch:         e.Get("request.ifMatch").String(),
			IfNoneMatch:     e.Get("request.ifNoneMatch").String(),
			IfModifiedSince: e.Get("request.ifModifiedSince").String(),
			IfNoneExist:     e.Get("request.ifNoneExist").String(),
		}
		if r := e.Get("resource"); r.Exists() {
			en.Resource = []byte(r.Raw)
		}
		if en.FullURL != "" {
			// bdl-7: fullUrl is unique unless the entries are versions of
			// one resource (distinct meta.versionId).
			key := en.FullURL + "\x00" + gjson.GetBytes(en.Resource, "meta.versionId").String()
			if j, dup := fullURLs[key]; dup {
				issues = append(issues, outcome.Issue{Severity: "error", Code: "invalid",
					Diagnostics: fmt.Sprintf("fullUrl %q repeats that of Bundle.entry[%d] (bdl-7)", en.FullURL, j),
					Expression:  []string{en.Expr() + ".fullUrl"}})
			}
			fullURLs[key] = i
		}
		if en.Method == "" || en.URL == "" {
			issues = append(issues, outcome.Issue{Severity: "error", Code: "required",
				Diagnostics: "every entry needs request.method and request.url", Expression: []string{en.Expr() + ".request"}})
		}
		rb.Entries = append(rb.Entries, en)
	}
	if len(issues) > 0 {
		return nil, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: issues}
	}
	if typ == "transaction" {
		if issues := s.validateEntries(rb.Entries); len(issues) > 0 {
			return nil, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: issues}
		}
	}
	return rb, nil
}

// maxBundleIssues caps the issues reported for one Bundle.
const maxBundleIssues = 50

// validateEntries validates every entry resource on all CPUs and returns
// the issues in entry order.
func (s *Service) validateEntries(entries []Entry) []outcome.Issue {
	perEntry := make([][]outcome.Issue, len(entries))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(entries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				e := entries[i]
				if len(e.Resource) == 0 {
					continue
				}
				if _, _, err := s.v.ResourceAt(e.Resource, e.Expr()+".resource"); err != nil {
					var he *outcome.HTTPError
					if errors.As(err, &he) {
						perEntry[i] = he.Issues
					} else {
						perEntry[i] = []outcome.Issue{{Severity: "error", Code: "invalid", Diagnostics: err.Error(), Expression: []string{e.Expr()}}}
					}
				}
			}
		}()
	}
	for i := range entries {
		next <- i
	}
	close(next)
	wg.Wait()
	var issues []outcome.Issue
	for _, is := range perEntry {
		issues = append(issues, is...)
		if len(issues) >= maxBundleIssues {
			return issues[:maxBundleIssues]
		}
	}
	return issues
}

// stripEntryResources removes entry resources for the structural check of
// a batch (each is validated on its own later).
func stripEntryResources(body []byte) []byte {
	n := len(gjson.GetBytes(body, "entry").Array())
	if n == 0 {
		return body
	}
	out := make([]byte, 0, 256)
	res := gjson.ParseBytes(body)
	out = append(out, '{')
	first := true
	res.ForEach(func(k, v gjson.Result) bool {
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, k.Raw...)
		out = append(out, ':')
		if k.String() != "entry" || !v.IsArray() {
			out = append(out, v.Raw...)
			return true
		}
		out = append(out, '[')
		for i, e := range v.Array() {
			if i > 0 {
				out = append(out, ',')
			}
			if !e.IsObject() {
				out = append(out, e.Raw...)
				continue
			}
			out = append(out, '{')
			f := true
			e.ForEach(func(k2, v2 gjson.Result) bool {
				if k2.String() == "resource" {
					return true
				}
				if !f {
					out = append(out, ',')
				}
				f = false
				out = append(out, k2.Raw...)
				out = append(out, ':')
				out = append(out, v2.Raw...)
				return true
			})
			if f {
				// An entry holding only a resource; keep it non-empty.
				out = append(out, `"id":"x"`...)
			}
			out = append(out, '}')
		}
		out = append(out, ']')
		return true
	})
	return append(out, '}')
}

// EntryResult is the outcome of one transaction entry.
type EntryResult struct {
	Status   int
	Resource *store.Resource // version written or matched; nil for deletes
	// Deferred marks a GET entry: the caller executes it after the commit.
	Deferred bool
}

// planned is a transaction entry after resolution.
type planned struct {
	entry   Entry
	typ, id string
	op      store.Op
	write   bool // false: conditional create matched, or delete of nothing
	status  int
	body    []byte
	ifMatch uint64
	matched *store.Resource
}

// Transaction applies the write entries of rb atomically in one store
// commit, in the order the spec prescribes (DELETE, POST, PUT) after
// resolving conditional entries and assigning ids; every reference to an
// entry's urn:uuid (or other urn:) fullUrl is rewritten to Type/id, and
// conditional references ("reference":"Type?params") to their single
// match. GET entries are returned Deferred. Any failure fails the whole
// Bundle with nothing written.
func (s *Service) Transaction(ctx context.Context, rb *RequestBundle) ([]EntryResult, error) {
	plans := make([]*planned, len(rb.Entries))
	var condTypes []string
	for i, e := range rb.Entries {
		p, err := planEntry(e)
		if err != nil {
			return nil, err
		}
		plans[i] = p
		if p != nil && (e.IfNoneExist != "" || (p.id == "" && e.Method != http.MethodPost)) {
			condTypes = append(condTypes, p.typ)
		}
	}
	unlock := s.locks.lockAll(condTypes)
	defer unlock()

	alias := map[string]string{}
	targets := map[string]int{}
	for _, p := range plans {
		if p == nil {
			continue
		}
		if err := s.resolve(ctx, p); err != nil {
			return nil, err
		}
		if p.id != "" && strings.HasPrefix(p.entry.FullURL, "urn:") {
			alias[p.entry.FullURL] = p.typ + "/" + p.id
		}
		if p.write {
			k := p.typ + "/" + p.id
			if j, dup := targets[k]; dup {
				return nil, outcome.Errorf(http.StatusBadRequest, "invalid", "entries %d and %d both write %s", j, p.entry.Index, k)
			}
			targets[k] = p.entry.Index
		}
	}

	condRefs, err := s.conditionalRefs(ctx, plans)
	if err != nil {
		return nil, err
	}

	var tx store.Tx
	var order []*planned
	for _, method := range []string{http.MethodDelete, http.MethodPost, http.MethodPut} {
		for _, p := range plans {
			if p == nil || !p.write || p.entry.Method != method {
				continue
			}
			w := store.Write{Op: p.op, Type: p.typ, ID: p.id, IfMatch: p.ifMatch}
			if p.op == store.OpPut {
				w.Body = rewriteConditionalRefs(rewriteRefs(p.body, alias), condRefs)
				w.IfNoneExist = method == http.MethodPost
			}
			tx.Writes = append(tx.Writes, w)
			order = append(order, p)
		}
	}
	var written []*store.Resource
	if len(tx.Writes) > 0 {
		var err error
		written, err = s.st.Commit(ctx, tx)
		if err != nil {
			var we *store.WriteError
			var he *outcome.HTTPError
			cause := err
			err = StoreError(err)
			if errors.As(err, &he) && errors.As(cause, &we) && we.Index >= 0 && we.Index < len(order) {
				expr := order[we.Index].entry.Expr()
				for i := range he.Issues {
					he.Issues[i].Expression = append([]string{expr}, he.Issues[i].Expression...)
					he.Issues[i].Diagnostics = expr + ": " + he.Issues[i].Diagnostics
				}
			}
			return nil, err
		}
	}
	for i, p := range order {
		if i < len(written) && p.op == store.OpPut {
			p.matched = written[i]
			if p.entry.Method == http.MethodPut {
				// Created is decided by the store with the write.
				p.status = http.StatusOK
				if written[i].Created {
					p.status = http.StatusCreated
				}
			}
		}
	}
	out := make([]EntryResult, len(plans))
	for i, p := range plans {
		if p == nil {
			out[i] = EntryResult{Deferred: true}
			continue
		}
		out[i] = EntryResult{Status: p.status, Resource: p.matched}
	}
	return out, nil
}

// planEntry checks one entry's request; GET entries plan to nil.
func planEntry(e Entry) (*planned, error) {
	bad := func(format string, args ...any) error {
		return &outcome.HTTPError{Status: http.StatusBadRequest, Issues: []outcome.Issue{{
			Severity: "error", Code: "invalid", Diagnostics: fmt.Sprintf(format, args...), Expression: []string{e.Expr() + ".request"}}}}
	}
	path, query, _ := strings.Cut(e.URL, "?")
	segs := strings.Split(strings.Trim(path, "/"), "/")
	p := &planned{entry: e, typ: segs[0], write: true}
	switch e.Method {
	case http.MethodGet, http.MethodHead:
		return nil, nil
	case http.MethodPost, http.MethodPut, http.MethodDelete:
	case http.MethodPatch:
		return nil, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: []outcome.Issue{{
			Severity: "error", Code: "not-supported", Diagnostics: "PATCH is not supported", Expression: []string{e.Expr() + ".request.method"}}}}
	default:
		return nil, bad("unknown request.method %q", e.Method)
	}
	if err := CheckType(p.typ); err != nil {
		return nil, bad("request.url %q does not name a resource type", e.URL)
	}
	if len(segs) > 2 {
		return nil, bad("request.url %q is not a %s target", e.URL, e.Method)
	}
	if len(segs) == 2 {
		p.id = segs[1]
	}
	if e.IfMatch != "" {
		v, ok := ParseETag(e.IfMatch)
		if !ok {
			return nil, bad("ifMatch %q is not an ETag", e.IfMatch)
		}
		p.ifMatch = v
	}
	if e.Method != http.MethodDelete {
		if len(e.Resource) == 0 {
			return nil, bad("%s entry has no resource", e.Method)
		}
		if rt := gjson.GetBytes(e.Resource, "resourceType").String(); rt != p.typ {
			return nil, bad("resource type %s does not match request.url %q", rt, e.URL)
		}
		p.body = e.Resource
	}
	switch e.Method {
	case http.MethodPost:
		if p.id != "" || query != "" {
			return nil, bad("POST request.url must be a resource type")
		}
		p.op, p.status = store.OpPut, http.StatusCreated
	case http.MethodPut:
		p.op, p.status = store.OpPut, http.StatusOK
		if p.id == "" && query == "" {
			return nil, bad("PUT request.url needs an id or search criteria")
		}
		if p.id != "" {
			if bid := gjson.GetBytes(e.Resource, "id").String(); bid != p.id {
				return nil, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: []outcome.Issue{{
					Severity: "error", Code: "invalid", Diagnostics: fmt.Sprintf("resource id %q does not match request.url %q", bid, e.URL),
					Expression: []string{e.Expr() + ".resource.id"}}}}
			}
		}
	case http.MethodDelete:
		p.op, p.status = store.OpDelete, http.StatusNoContent
		if p.id == "" && query == "" {
			return nil, bad("DELETE request.url needs an id or search criteria")
		}
	}
	if p.id == "" && query != "" {
		// Conditional update/delete: criteria in the URL.
		p.entry.IfNoneExist = ""
		p.entry.URL = query
	}
	return p, nil
}

// resolve assigns ids and resolves conditional entries against the store.
func (s *Service) resolve(ctx context.Context, p *planned) error {
	e := p.entry
	fail := func(err error) error {
		var he *outcome.HTTPError
		if errors.As(err, &he) {
			for i := range he.Issues {
				he.Issues[i].Expression = append([]string{e.Expr()}, he.Issues[i].Expression...)
				he.Issues[i].Diagnostics = e.Expr() + ": " + he.Issues[i].Diagnostics
			}
		}
		return err
	}
	criteria := ""
	switch {
	case e.Method == http.MethodPost && e.IfNoneExist != "":
		criteria = strings.TrimPrefix(e.IfNoneExist, "?")
	case p.id == "" && e.Method != http.MethodPost:
		criteria = e.URL
	}
	if criteria != "" {
		vals, err := url.ParseQuery(criteria)
		if err != nil {
			return fail(outcome.Errorf(http.StatusBadRequest, "invalid", "malformed criteria %q", criteria))
		}
		m, err := s.match(ctx, p.typ, vals)
		if err != nil {
			return fail(err)
		}
		switch {
		case len(m) > 1:
			return fail(outcome.Errorf(http.StatusPreconditionFailed, "multiple-matches", "criteria %q match more than one %s", criteria, p.typ))
		case len(m) == 1 && e.Method == http.MethodPost:
			p.id, p.write, p.status, p.matched = m[0].ID, false, http.StatusOK, m[0]
			return nil
		case len(m) == 1:
			p.id = m[0].ID
			if p.op == store.OpPut {
				if bid := gjson.GetBytes(p.body, "id").String(); bid != "" && bid != p.id {
					return fail(outcome.Errorf(http.StatusBadRequest, "invalid", "resource id %q does not match the id %q found by the criteria", bid, p.id))
				}
				p.ifMatch = m[0].Version
			}
		case e.Method == http.MethodDelete:
			p.write = false
			return nil
		case e.Method == http.MethodPut:
			p.id = gjson.GetBytes(p.body, "id").String()
			p.status = http.StatusCreated
		}
	}
	if p.id == "" {
		p.id = NewID()
	}
	if e.Method == http.MethodDelete {
		_, err := s.st.Read(ctx, p.typ, p.id)
		gone := errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted)
		if err != nil && !gone {
			return fail(StoreError(err))
		}
		if gone {
			if p.ifMatch != 0 {
				return fail(outcome.Errorf(http.StatusPreconditionFailed, "conflict", "%s/%s has no version %d", p.typ, p.id, p.ifMatch))
			}
			p.write = false
		}
	}
	return nil
}

// rewriteRefs replaces every occurrence of an alias key (a urn: fullUrl)
// that stands as a whole value with its Type/id: a JSON string equal to it
// (references, uri/url/oid/uuid elements, extensions) or an attribute
// value inside a string delimited by escaped double or single quotes
// (<a href="urn:..."> and <img src="urn:..."> in the narrative).
func rewriteRefs(body []byte, alias map[string]string) []byte {
	if len(alias) == 0 || !bytes.Contains(body, []byte("urn:")) {
		return body
	}
	var out []byte
	last := 0
	for i := 0; i < len(body); {
		j := bytes.Index(body[i:], []byte("urn:"))
		if j < 0 {
			break
		}
		start := i + j
		i = start + 4
		var closer []byte
		switch {
		case start >= 2 && body[start-1] == '"' && body[start-2] == '\\':
			closer = []byte(`\"`) // "<a href=\"urn:...\">" inside a JSON string
		case start >= 1 && body[start-1] == '"':
			closer = []byte(`"`)
		case start >= 1 && body[start-1] == '\'':
			closer = []byte(`'`)
		default:
			continue
		}
		end := bytes.Index(body[start:], closer)
		if end < 0 {
			break
		}
		end += start
		if len(closer) == 1 && closer[0] == '"' && end > start && body[end-1] == '\\' {
			continue // an escaped quote: not the end of a plain JSON string
		}
		if to, ok := alias[string(body[start:end])]; ok {
			out = append(out, body[last:start]...)
			out = append(out, to...)
			last = end
			i = end
		}
	}
	if out == nil {
		return body
	}
	return append(out, body[last:]...)
}

// ParseETag reads a version from an ETag (W/"3", "3" or 3).
func ParseETag(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil && v > 0
}

// conditionalRef finds conditional references ("reference":"Type?params")
// in entry resources. Values with escapes are left alone.
var conditionalRef = regexp.MustCompile(`"reference"\s*:\s*"([A-Z][A-Za-z]+\?[^"\\]+)"`)

// conditionalRefs resolves every conditional reference in the
// transaction's resources to the single Type/id it matches; no match or
// several are a 412 (the transaction fails).
func (s *Service) conditionalRefs(ctx context.Context, plans []*planned) (map[string]string, error) {
	var out map[string]string
	for _, p := range plans {
		if p == nil || !p.write || len(p.body) == 0 || !bytes.Contains(p.body, []byte("?")) {
			continue
		}
		for _, m := range conditionalRef.FindAllSubmatch(p.body, -1) {
			ref := string(m[1])
			if _, done := out[ref]; done {
				continue
			}
			typ, query, _ := strings.Cut(ref, "?")
			fail := func(status int, code, format string, args ...any) error {
				return &outcome.HTTPError{Status: status, Issues: []outcome.Issue{{Severity: "error", Code: code,
					Diagnostics: fmt.Sprintf(format, args...), Expression: []string{p.entry.Expr() + ".resource"}}}}
			}
			if CheckType(typ) != nil {
				return nil, fail(http.StatusBadRequest, "invalid", "conditional reference %q names no resource type", ref)
			}
			vals, err := url.ParseQuery(query)
			if err != nil {
				return nil, fail(http.StatusBadRequest, "invalid", "conditional reference %q is not a valid search", ref)
			}
			found, err := s.match(ctx, typ, vals)
			if err != nil {
				var he *outcome.HTTPError
				if errors.As(err, &he) {
					return nil, fail(he.Status, "invalid", "conditional reference %q: %s", ref, he.Error())
				}
				return nil, err
			}
			if len(found) != 1 {
				return nil, fail(http.StatusPreconditionFailed, "not-found", "conditional reference %q matches %d resources, not exactly one", ref, len(found))
			}
			if out == nil {
				out = map[string]string{}
			}
			out[ref] = typ + "/" + found[0].ID
		}
	}
	return out, nil
}

// rewriteConditionalRefs replaces resolved conditional references.
func rewriteConditionalRefs(body []byte, refs map[string]string) []byte {
	if len(refs) == 0 {
		return body
	}
	return conditionalRef.ReplaceAllFunc(body, func(m []byte) []byte {
		sub := conditionalRef.FindSubmatchIndex(m)
		ref := string(m[sub[2]:sub[3]])
		to, ok := refs[ref]
		if !ok {
			return m
		}
		out := append([]byte(nil), m[:sub[2]]...)
		out = append(out, to...)
		return append(out, m[sub[3]:]...)
	})
}
