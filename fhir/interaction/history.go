package interaction

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/store"
)

// HistoryRequest is a parsed _history interaction: system-wide (no Type),
// for a type (no ID) or for one resource.
type HistoryRequest struct {
	Type, ID string
	Count    int
	Since    time.Time
	// Before continues a previous page strictly after its last version.
	Before *store.VersionRef
}

// ParseHistory reads the _history parameters of q. Unknown parameters are
// an error unless lenient (Prefer: handling=lenient).
func ParseHistory(typ, id string, q url.Values, lenient bool) (HistoryRequest, error) {
	h := HistoryRequest{Type: typ, ID: id, Count: DefaultCount}
	var issues []outcome.Issue
	bad := func(param, msg string) {
		issues = append(issues, outcome.Issue{Severity: "error", Code: "invalid", Diagnostics: msg, Expression: []string{param}})
	}
	for k, vs := range q {
		v := vs[0]
		var err error
		switch k {
		case "_count":
			h.Count, err = strconv.Atoi(v)
			if err != nil || h.Count < 0 {
				bad(k, "_count must be a non-negative integer")
			}
			h.Count = min(h.Count, MaxCount)
		case "_since":
			if h.Since, err = ParseInstant(v); err != nil {
				bad(k, "_since must be an instant such as 2024-01-01T00:00:00Z")
			}
		case CursorParam:
			if h.Before, err = parseHistoryCursor(v); err != nil {
				bad(k, "malformed history cursor")
			}
		case "_format", "_pretty":
		default:
			if !lenient {
				issues = append(issues, outcome.Issue{Severity: "error", Code: "not-supported", Diagnostics: "history parameter " + k + " is not supported", Expression: []string{k}})
			}
		}
	}
	if len(issues) > 0 {
		return HistoryRequest{}, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: issues}
	}
	return h, nil
}

// HistoryPage is one page of versions, newest first.
type HistoryPage struct {
	Versions []*store.Resource
	// Next is the _cursor value of the following page ("" on the last).
	Next string
}

// History reads one page of h. keep, when non-nil, drops versions the
// caller may not see (patient scoping); deletions are always kept since
// they carry no body. The next page continues strictly after this one's
// last version, so versions written meanwhile neither shift pages nor
// repeat, and every page costs only its own size.
func (s *Service) History(ctx context.Context, h HistoryRequest, keep func(*store.Resource) bool) (HistoryPage, error) {
	if h.ID != "" {
		if _, err := s.st.Read(ctx, h.Type, h.ID); err != nil && !errors.Is(err, store.ErrDeleted) {
			return HistoryPage{}, StoreError(err)
		}
	}
	// _since is inclusive ("at or after"); the store's bound is exclusive.
	since := h.Since
	if !since.IsZero() {
		since = since.Add(-time.Nanosecond)
	}
	// One version more than the page tells whether a next page exists.
	// Scoping may drop versions, so keep reading until the page is full
	// or the history ends.
	want := h.Count + 1
	var page []*store.Resource
	cur := h.Before
	for len(page) < want {
		n := want - len(page)
		vs, err := s.st.History(ctx, store.HistoryQuery{Type: h.Type, ID: h.ID, Since: since, Count: n, Before: cur})
		if err != nil {
			return HistoryPage{}, StoreError(err)
		}
		for _, v := range vs {
			if keep == nil || v.Deleted || keep(v) {
				page = append(page, v)
			}
		}
		if len(vs) < n {
			break
		}
		cur = vs[len(vs)-1].Ref()
	}
	var hp HistoryPage
	more := h.Count > 0 && len(page) > h.Count
	if len(page) > h.Count {
		page = page[:h.Count]
	}
	hp.Versions = page
	if more {
		hp.Next = historyCursor(page[len(page)-1].Ref())
	}
	return hp, nil
}

// ParseInstant accepts a FHIR instant or dateTime (a date means its start
// in UTC).
func ParseInstant(v string) (time.Time, error) {
	// An unescaped "+01:00" arrives as " 01:00" after query decoding.
	v = strings.ReplaceAll(v, " ", "+")
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &time.ParseError{Layout: time.RFC3339, Value: v}
}

// historyCursor encodes the last version of a page for the next link.
func historyCursor(v *store.VersionRef) string {
	raw := v.Type + "\x00" + v.ID + "\x00" + strconv.FormatUint(v.Version, 10) + "\x00" + strconv.FormatInt(v.LastUpdated.UnixNano(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func parseHistoryCursor(c string) (*store.VersionRef, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 4 {
		return nil, errors.New("history cursor: wrong shape")
	}
	ver, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return nil, err
	}
	ns, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return nil, err
	}
	return &store.VersionRef{Type: parts[0], ID: parts[1], Version: ver, LastUpdated: time.Unix(0, ns).UTC()}, nil
}
