package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MLLP block characters (HL7 v2 Minimal Lower Layer Protocol, release 1).
const (
	StartBlock = 0x0B // <VT>
	EndBlock   = 0x1C // <FS>
	CR         = 0x0D
)

// headBytes is how much of an oversize message is kept so a rejection can
// still name its MSH (control id, sender).
const headBytes = 4 << 10

// Errors of the frame reader.
var (
	// ErrNoStartBlock: more bytes than the message limit arrived without a
	// start block; the peer is not speaking MLLP.
	ErrNoStartBlock = errors.New("mllp: no start block")
	// ErrTruncated: the stream ended inside a frame.
	ErrTruncated = errors.New("mllp: stream ended inside a frame")
)

// TooLargeError reports a frame whose message exceeded the limit; the frame
// was read to its end block (the stream stays in sync) and Head holds its
// first bytes.
type TooLargeError struct {
	Limit int
	Head  []byte
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("mllp: message exceeds %d bytes", e.Limit)
}

// Reader reads MLLP frames from a byte stream.
type Reader struct {
	br  *bufio.Reader
	max int
	// Restarted counts frames abandoned because a new start block arrived
	// before their end block (a sender that gave up mid-message).
	Restarted int
}

// NewReader returns a Reader of messages of at most max bytes.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 32<<10), max: max}
}

// WaitStart consumes bytes up to and including the next start block and
// returns how many bytes it skipped and how many of those were not
// whitespace (garbage between frames). io.EOF means the stream ended
// cleanly between frames.
func (r *Reader) WaitStart() (skipped, garbage int, err error) {
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && garbage > 0 {
				return skipped, garbage, ErrTruncated
			}
			return skipped, garbage, err
		}
		if b == StartBlock {
			return skipped, garbage, nil
		}
		skipped++
		switch b {
		case '\r', '\n', ' ', '\t', EndBlock:
		default:
			garbage++
		}
		if skipped > r.max {
			return skipped, garbage, ErrNoStartBlock
		}
	}
}

// ReadMessage reads the message after a start block up to its end block
// and returns it as a fresh slice the caller may keep. A start block inside the message abandons what came
// before it: the sender restarted. An oversize message is read to its end
// and reported as *TooLargeError.
func (r *Reader) ReadMessage() ([]byte, error) {
	var msg []byte
	oversize := false
	for {
		chunk, err := r.br.ReadSlice(EndBlock)
		if i := bytes.LastIndexByte(chunk, StartBlock); i >= 0 {
			r.Restarted++
			msg, oversize = msg[:0], false
			chunk = chunk[i+1:]
		}
		body := chunk
		if err == nil {
			body = chunk[:len(chunk)-1]
		}
		if !oversize {
			if len(msg)+len(body) > r.max {
				oversize = true
				msg = append(msg, body[:min(len(body), max(0, headBytes-len(msg)))]...)
				if len(msg) > headBytes {
					msg = msg[:headBytes]
				}
			} else {
				msg = append(msg, body...)
			}
		}
		switch {
		case err == nil:
			// The CR after the end block is consumed when it is already
			// here; waiting for it would stall senders that omit it (the
			// next WaitStart skips it otherwise).
			if r.br.Buffered() > 0 {
				if b, _ := r.br.Peek(1); b[0] == CR {
					_, _ = r.br.Discard(1)
				}
			}
			if oversize {
				return nil, &TooLargeError{Limit: r.max, Head: msg}
			}
			if msg == nil {
				msg = []byte{}
			}
			return msg, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, ErrTruncated
		default:
			return nil, err
		}
	}
}

// AppendFrame appends msg framed as one MLLP block to dst.
func AppendFrame(dst, msg []byte) []byte {
	dst = append(dst, StartBlock)
	dst = append(dst, msg...)
	return append(dst, EndBlock, CR)
}
