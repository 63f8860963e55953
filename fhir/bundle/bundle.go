// Package bundle writes FHIR Bundle JSON by streaming stored resource bytes
// into the Bundle skeleton, so resources are served exactly as the store
// holds them and never round-trip through a model.
package bundle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// Link is a Bundle.link.
type Link struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// Search is Bundle.entry.search.
type Search struct {
	Mode string `json:"mode,omitempty"` // match | include | outcome
}

// Request is Bundle.entry.request.
type Request struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// Response is Bundle.entry.response.
type Response struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

// Entry is one Bundle.entry; Resource is raw JSON written as-is.
type Entry struct {
	FullURL  string
	Resource []byte
	Search   *Search
	Request  *Request
	Response *Response
}

// Header is the part of a Bundle before its entries.
type Header struct {
	ID    string
	Type  string // searchset | history | batch-response | transaction-response
	Time  time.Time
	Total *int // Bundle.total, omitted when nil
	Links []Link
}

// Writer streams one Bundle. Call Entry for every entry and Close once;
// errors are sticky and returned by Close.
type Writer struct {
	w       *bufio.Writer
	buf     bytes.Buffer
	enc     *json.Encoder
	entries int
	err     error
}

// NewWriter writes the Bundle header to w.
func NewWriter(w io.Writer, h Header) *Writer {
	bw := &Writer{w: bufio.NewWriterSize(w, 32<<10)}
	bw.enc = json.NewEncoder(&bw.buf)
	// URLs in links and locations carry '&'; keep them readable.
	bw.enc.SetEscapeHTML(false)
	bw.str(`{"resourceType":"Bundle"`)
	if h.ID != "" {
		bw.str(`,"id":`)
		bw.json(h.ID)
	}
	if !h.Time.IsZero() {
		bw.str(`,"meta":{"lastUpdated":`)
		bw.json(h.Time.UTC().Format(time.RFC3339Nano))
		bw.str(`}`)
	}
	bw.str(`,"type":`)
	bw.json(h.Type)
	if h.Total != nil {
		bw.str(`,"total":` + strconv.Itoa(*h.Total))
	}
	if len(h.Links) > 0 {
		bw.str(`,"link":`)
		bw.json(h.Links)
	}
	return bw
}

// Entry appends one entry.
func (bw *Writer) Entry(e Entry) {
	if bw.entries == 0 {
		bw.str(`,"entry":[`)
	} else {
		bw.str(`,`)
	}
	bw.entries++
	bw.str(`{`)
	sep := ""
	if e.FullURL != "" {
		bw.str(`"fullUrl":`)
		bw.json(e.FullURL)
		sep = ","
	}
	if len(e.Resource) > 0 {
		bw.str(sep + `"resource":`)
		bw.raw(e.Resource)
		sep = ","
	}
	if e.Search != nil {
		bw.str(sep + `"search":`)
		bw.json(e.Search)
		sep = ","
	}
	if e.Request != nil {
		bw.str(sep + `"request":`)
		bw.json(e.Request)
		sep = ","
	}
	if e.Response != nil {
		bw.str(sep + `"response":`)
		bw.json(e.Response)
	}
	bw.str(`}`)
}

// Close ends the Bundle and flushes it.
func (bw *Writer) Close() error {
	if bw.entries > 0 {
		bw.str(`]`)
	}
	bw.str(`}`)
	if bw.err == nil {
		bw.err = bw.w.Flush()
	}
	return bw.err
}

func (bw *Writer) str(s string) {
	if bw.err == nil {
		_, bw.err = bw.w.WriteString(s)
	}
}

func (bw *Writer) raw(b []byte) {
	if bw.err == nil {
		_, bw.err = bw.w.Write(b)
	}
}

func (bw *Writer) json(v any) {
	if bw.err != nil {
		return
	}
	bw.buf.Reset()
	if bw.err = bw.enc.Encode(v); bw.err != nil {
		return
	}
	// Encode ends every value with a newline; keep the Bundle compact.
	_, bw.err = bw.w.Write(bytes.TrimSuffix(bw.buf.Bytes(), []byte("\n")))
}
