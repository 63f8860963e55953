package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/store"
)

// Bundle types whose entries are loaded one by one; any other Bundle
// (document, message, ...) is a resource in its own right.
var entryBundles = map[string]bool{"collection": true, "transaction": true, "batch": true, "searchset": true, "history": true}

var typedRef = regexp.MustCompile(`(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$`)

// readJSON loads a .json source: a Bundle's entries, or the one resource.
// Bundles are read twice, streaming: first to map entry fullUrls to the
// type/id they are stored under (so urn:uuid references between entries
// can be rewritten), then to load the entries.
func (l *Loader) readJSON(src *Source, counter *atomic.Int64, send func(*item) error) error {
	head, err := l.scanBundle(src)
	if err != nil {
		return err
	}
	if head == nil {
		return l.readWhole(src, counter, send)
	}
	rc, err := src.Open()
	if err != nil {
		return fmt.Errorf("ingest: open %s: %w", src.Name, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(&countingReader{r: rc, n: counter}, 1<<20))
	return walkBundle(dec, func(i int, raw json.RawMessage) error {
		return send(entryItem(src, i, raw, head.fullURLs))
	})
}

type bundleHead struct {
	fullURLs map[string]string // fullUrl -> Type/id
}

// scanBundle returns nil when the source is not a Bundle whose entries
// should be loaded.
func (l *Loader) scanBundle(src *Source) (*bundleHead, error) {
	rc, err := src.Open()
	if err != nil {
		return nil, fmt.Errorf("ingest: open %s: %w", src.Name, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(rc, 1<<20))
	head := &bundleHead{fullURLs: map[string]string{}}
	var rtype, btype string
	err = walkObject(dec, func(key string) error {
		switch key {
		case "resourceType":
			return dec.Decode(&rtype)
		case "type":
			return dec.Decode(&btype)
		case "entry":
			return walkArray(dec, func(int) error {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					return err
				}
				full := gjson.GetBytes(raw, "fullUrl").String()
				if full == "" {
					return nil
				}
				if typ, id := entryTarget(raw); typ != "" && id != "" {
					head.fullURLs[full] = typ + "/" + id
				}
				return nil
			})
		default:
			var skip json.RawMessage
			return dec.Decode(&skip)
		}
	})
	if err != nil || rtype != "Bundle" || !entryBundles[btype] {
		// Not a loadable Bundle: the whole file is one resource and the
		// validator reports what is wrong with it.
		return nil, nil
	}
	return head, nil
}

// readWhole sends the whole source as one resource.
func (l *Loader) readWhole(src *Source, counter *atomic.Int64, send func(*item) error) error {
	rc, err := src.Open()
	if err != nil {
		return fmt.Errorf("ingest: open %s: %w", src.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(&countingReader{r: rc, n: counter}, int64(l.opts.MaxLineBytes)+1))
	if err != nil {
		return fmt.Errorf("ingest: read %s: %w", src.Name, err)
	}
	it := &item{src: src, entry: -1, body: b, op: store.OpPut}
	if len(b) > l.opts.MaxLineBytes {
		it.body, it.err = nil, ErrTooLong
	}
	return send(it)
}

// entryTarget is the type and id an entry's resource is stored under: its
// own id, else the id in a urn:uuid fullUrl or a RESTful fullUrl, else the
// id in the request URL of a PUT.
func entryTarget(raw []byte) (typ, id string) {
	res := gjson.GetBytes(raw, "resource")
	typ = res.Get("resourceType").String()
	if id = res.Get("id").String(); id != "" {
		return typ, id
	}
	full := gjson.GetBytes(raw, "fullUrl").String()
	if u, ok := strings.CutPrefix(full, "urn:uuid:"); ok && validID(u) {
		return typ, u
	}
	if m := typedRef.FindStringSubmatch(full); m != nil && m[1] == typ {
		return typ, m[2]
	}
	req := gjson.GetBytes(raw, "request")
	if strings.EqualFold(req.Get("method").String(), "PUT") {
		if m := typedRef.FindStringSubmatch(strings.SplitN(req.Get("url").String(), "?", 2)[0]); m != nil && m[1] == typ {
			return typ, m[2]
		}
	}
	return typ, ""
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func entryItem(src *Source, i int, raw json.RawMessage, fullURLs map[string]string) *item {
	it := &item{src: src, entry: i, op: store.OpPut}
	req := gjson.GetBytes(raw, "request")
	if strings.EqualFold(req.Get("method").String(), "DELETE") {
		m := typedRef.FindStringSubmatch(req.Get("url").String())
		if m == nil {
			it.err = fmt.Errorf("%w: DELETE needs a Type/id request url", ErrBadEntry)
			return it
		}
		it.op, it.typ, it.id = store.OpDelete, m[1], m[2]
		return it
	}
	res := gjson.GetBytes(raw, "resource")
	if !res.IsObject() {
		it.err = fmt.Errorf("%w: no resource", ErrBadEntry)
		return it
	}
	body := []byte(res.Raw)
	if len(fullURLs) > 0 && bytes.Contains(body, []byte(`"urn:uuid:`)) {
		body = rewriteRefs(body, fullURLs)
	}
	it.body = body
	if own := res.Get("id").String(); own == "" {
		_, it.id = entryTarget(raw)
	}
	return it
}

// rewriteRefs replaces "reference": "urn:uuid:..." values that name
// another entry of the Bundle with that entry's Type/id.
func rewriteRefs(body []byte, fullURLs map[string]string) []byte {
	var out []byte
	rest := body
	for {
		i := bytes.Index(rest, []byte(`"urn:uuid:`))
		if i < 0 {
			break
		}
		end := bytes.IndexByte(rest[i+1:], '"')
		if end < 0 {
			break
		}
		val := string(rest[i+1 : i+1+end])
		target, ok := fullURLs[val]
		if ok && bytes.HasSuffix(bytes.TrimRight(rest[:i], " \t\r\n"), []byte(`"reference":`)) {
			out = append(out, rest[:i+1]...)
			out = append(out, target...)
		} else {
			out = append(out, rest[:i+1+end]...)
		}
		rest = rest[i+1+end:]
	}
	if out == nil {
		return body
	}
	return append(out, rest...)
}

// walkBundle calls fn for every element of the top-level "entry" array.
func walkBundle(dec *json.Decoder, fn func(i int, raw json.RawMessage) error) error {
	return walkObject(dec, func(key string) error {
		if key != "entry" {
			var skip json.RawMessage
			return dec.Decode(&skip)
		}
		return walkArray(dec, func(i int) error {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return err
			}
			return fn(i, raw)
		})
	})
}

var errNotObject = errors.New("not a JSON object")

func walkObject(dec *json.Decoder, member func(key string) error) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return errNotObject
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if err := member(key); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

func walkArray(dec *json.Decoder, elem func(i int) error) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("entry is not an array")
	}
	for i := 0; dec.More(); i++ {
		if err := elem(i); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}
