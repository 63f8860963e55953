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
	// The entry array is opened by the first Add: FHIR JSON forbids [].
	_, b.err = fmt.Fprintf(b.w, `{"resourceType":"Bundle","id":%q,"type":"collection","timestamp":%q`,
		newID(), time.Now().UTC().Format(time.RFC3339))
	return b
}

// Add appends one report as an entry (fullUrl urn:uuid:<id>).
func (b *BundleWriter) Add(r *MeasureReport) error {
	return b.AddWithURL(r, "urn:uuid:"+r.ID)
}

// AddWithURL appends one report with the given fullUrl (e.g. the
// server's [base]/MeasureReport/<id>, which other reports' references resolve to).
func (b *BundleWriter) AddWithURL(r *MeasureReport, fullURL string) error {
	if b.err != nil {
		return b.err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		b.err = err
		return err
	}
	return b.AddRaw(raw, fullURL)
}

// AddRaw appends an already encoded resource.
func (b *BundleWriter) AddRaw(resource json.RawMessage, fullURL string) error {
	if b.err != nil {
		return b.err
	}
	raw, err := json.Marshal(BundleEntry{FullURL: fullURL, Resource: resource})
	if err != nil {
		b.err = err
		return err
	}
	sep := ",\n"
	if b.entries == 0 {
		sep = ",\"entry\":[\n"
	}
	if _, b.err = b.w.WriteString(sep); b.err == nil {
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
	end := "}\n"
	if b.entries > 0 {
		end = "\n]}\n"
	}
	if _, err := b.w.WriteString(end); err != nil {
		return err
	}
	return b.w.Flush()
}

// Entries returns the number of reports written.
func (b *BundleWriter) Entries() int { return b.entries }
