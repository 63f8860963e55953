package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// BundleWriter streams a collection Bundle of reports: the Bundle is never
// held in memory, so individual reports for any population size can be
// written.
type BundleWriter struct {
	w       *bufio.Writer
	entries int
	err     error
}

// NewBundleWriter writes the Bundle header to w.
func NewBundleWriter(w io.Writer) *BundleWriter {
	b := &BundleWriter{w: bufio.NewWriterSize(w, 64<<10)}
	_, b.err = fmt.Fprintf(b.w, `{"resourceType":"Bundle","id":%q,"type":"collection","timestamp":%q,"entry":[`,
		newID(), time.Now().UTC().Format(time.RFC3339))
	return b
}

// Add appends one report as an entry.
func (b *BundleWriter) Add(r *MeasureReport) error {
	if b.err != nil {
		return b.err
	}
	raw, err := json.Marshal(BundleEntry{FullURL: "urn:uuid:" + r.ID, Resource: r})
	if err != nil {
		b.err = err
		return err
	}
	if b.entries > 0 {
		b.err = b.w.WriteByte(',')
	}
	if b.err == nil {
		b.w.WriteByte('\n')
		_, b.err = b.w.Write(raw)
	}
	b.entries++
	return b.err
}

// Close ends the Bundle and flushes.
func (b *BundleWriter) Close() error {
	if b.err != nil {
		return b.err
	}
	if _, err := b.w.WriteString("\n]}\n"); err != nil {
		return err
	}
	return b.w.Flush()
}

// Entries returns the number of reports written.
func (b *BundleWriter) Entries() int { return b.entries }
