package mllp_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/equitas/equitas/fhir/hl7v2/mllp"
)

func frame(s string) string { return "\x0b" + s + "\x1c\r" }

// readAll reads frames until the stream ends and returns the messages and
// the error that ended it (nil for a clean end between frames).
func readAll(r *mllp.Reader) (msgs []string, garbage int, err error) {
	for {
		_, g, err := r.WaitStart()
		garbage += g
		if errors.Is(err, io.EOF) {
			return msgs, garbage, nil
		}
		if err != nil {
			return msgs, garbage, err
		}
		m, err := r.ReadMessage()
		if err != nil {
			return msgs, garbage, err
		}
		msgs = append(msgs, string(m))
	}
}

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name      string
		in        string
		max       int
		want      []string
		garbage   int
		restarted int
		err       error
	}{
		{"one frame", frame("MSH|a"), 64, []string{"MSH|a"}, 0, 0, nil},
		{"several frames", frame("A") + frame("B") + frame("C"), 64, []string{"A", "B", "C"}, 0, 0, nil},
		{"empty message", frame(""), 64, []string{""}, 0, 0, nil},
		{"newlines between frames are not garbage", frame("A") + "\r\n" + frame("B") + "\n", 64, []string{"A", "B"}, 0, 0, nil},
		{"garbage between frames is skipped and counted", frame("A") + "junk" + frame("B"), 64, []string{"A", "B"}, 4, 0, nil},
		{"end block without CR", "\x0bA\x1c\x0bB\x1c", 64, []string{"A", "B"}, 0, 0, nil},
		{"segments keep their CRs", frame("MSH|1\rPID|2\r"), 64, []string{"MSH|1\rPID|2\r"}, 0, 0, nil},
		{"restart inside a frame drops the partial message", "\x0bMSH|partial\x0bMSH|whole\x1c\r", 64, []string{"MSH|whole"}, 0, 1, nil},
		{"truncated frame", frame("A") + "\x0bMSH|cut", 64, []string{"A"}, 0, 0, mllp.ErrTruncated},
		{"garbage then EOF", frame("A") + "junk", 64, []string{"A"}, 4, 0, mllp.ErrTruncated},
		{"no start block at all", long, 64, nil, 65, 0, mllp.ErrNoStartBlock},
		{"message at the limit", frame(long[:64]), 64, []string{long[:64]}, 0, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per read: frames must survive arbitrary splitting.
			r := mllp.NewReader(iotest.OneByteReader(strings.NewReader(tc.in)), tc.max)
			got, garbage, err := readAll(r)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.garbage, garbage)
			assert.Equal(t, tc.restarted, r.Restarted)
			if tc.err == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.err)
			}
		})
	}
}

// TestReaderTooLarge: an oversize message is consumed to its end block so
// the next frame on the connection is still read, and its head is kept.
func TestReaderTooLarge(t *testing.T) {
	big := "MSH|^~\\&|APP|FAC|||||ADT^A01|CTRL1|P|2.5.1\r" + strings.Repeat("Z", 100<<10)
	for _, max := range []int{64, 8 << 10, 64 << 10} {
		r := mllp.NewReader(strings.NewReader(frame(big)+frame("MSH|next")), max)
		_, _, err := r.WaitStart()
		require.NoError(t, err)
		_, err = r.ReadMessage()
		var tl *mllp.TooLargeError
		require.ErrorAs(t, err, &tl)
		assert.Equal(t, max, tl.Limit)
		assert.True(t, strings.HasPrefix(big, string(tl.Head)), "head is the message's beginning")
		assert.LessOrEqual(t, len(tl.Head), 4<<10)
		assert.GreaterOrEqual(t, len(tl.Head), min(max, 40))
		_, _, err = r.WaitStart()
		require.NoError(t, err)
		m, err := r.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, "MSH|next", string(m))
	}
}

// TestReaderReturnsFreshSlices: a Handler may keep the message it got.
func TestReaderReturnsFreshSlices(t *testing.T) {
	r := mllp.NewReader(strings.NewReader(frame("first")+frame("other")), 64)
	_, _, err := r.WaitStart()
	require.NoError(t, err)
	a, err := r.ReadMessage()
	require.NoError(t, err)
	_, _, err = r.WaitStart()
	require.NoError(t, err)
	_, err = r.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "first", string(a))
}

func TestAppendFrame(t *testing.T) {
	assert.Equal(t, []byte("\x0bMSH|x\x1c\r"), mllp.AppendFrame(nil, []byte("MSH|x")))
}

// FuzzReader: any byte stream ends in frames, a clean EOF or one of the
// reader's errors; never a panic, a message over the limit, or a message
// holding a block character.
func FuzzReader(f *testing.F) {
	f.Add([]byte(frame("MSH|^~\\&|A|B\rPID|1") + "junk" + frame("x")))
	f.Add([]byte("\x0b\x0b\x1c\x1c\r\r"))
	f.Add([]byte("\x0bMSH|partial"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 32
		r := mllp.NewReader(bytes.NewReader(in), max)
		for range len(in) + 1 {
			if _, _, err := r.WaitStart(); err != nil {
				return
			}
			m, err := r.ReadMessage()
			var tl *mllp.TooLargeError
			if errors.As(err, &tl) {
				continue
			}
			if err != nil {
				return
			}
			if len(m) > max || bytes.ContainsAny(m, "\x0b\x1c") {
				t.Fatalf("bad message %q", m)
			}
		}
		t.Fatal("reader made no progress")
	})
}
