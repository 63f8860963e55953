package mllp

import (
	"context"
	"fmt"
	"net"
)

// Client sends messages over one MLLP connection: Send is stop-and-wait
// (one frame, then its acknowledgement); SendAll pipelines. A Client is
// not safe for concurrent use.
type Client struct {
	conn net.Conn
	r    *Reader
	out  []byte
}

// Dial connects to an MLLP listener at addr.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mllp: dial: %w", err)
	}
	return NewClient(c), nil
}

// NewClient speaks MLLP over an established connection; acknowledgements
// larger than DefaultMaxMessageBytes are refused.
func NewClient(conn net.Conn) *Client {
	return &Client{conn: conn, r: NewReader(conn, DefaultMaxMessageBytes)}
}

// Send writes msg as one frame and returns the acknowledgement. ctx's
// deadline (or cancellation, checked before sending) bounds the exchange.
// After an error the connection's state is unknown: close it.
func (c *Client) Send(ctx context.Context, msg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline() // zero: no deadline
	if err := c.conn.SetDeadline(dl); err != nil {
		return nil, fmt.Errorf("mllp: %w", err)
	}
	c.out = AppendFrame(c.out[:0], msg)
	if _, err := c.conn.Write(c.out); err != nil {
		return nil, fmt.Errorf("mllp: send: %w", err)
	}
	if _, _, err := c.r.WaitStart(); err != nil {
		return nil, fmt.Errorf("mllp: waiting for the acknowledgement: %w", err)
	}
	ack, err := c.r.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("mllp: reading the acknowledgement: %w", err)
	}
	return ack, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// SendAll sends msgs keeping up to window of them unacknowledged (the
// receiver must accept pipelining, as Server does) and returns their
// acknowledgements in order. A window of 1 is Send in a loop.
func (c *Client) SendAll(ctx context.Context, msgs [][]byte, window int) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	if err := c.conn.SetDeadline(dl); err != nil {
		return nil, fmt.Errorf("mllp: %w", err)
	}
	window = max(window, 1)
	slots := make(chan struct{}, window)
	werr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		var out []byte
		for _, m := range msgs {
			select {
			case slots <- struct{}{}:
			case <-stop:
				werr <- nil
				return
			}
			out = AppendFrame(out[:0], m)
			if _, err := c.conn.Write(out); err != nil {
				werr <- fmt.Errorf("mllp: send: %w", err)
				return
			}
		}
		werr <- nil
	}()
	acks := make([][]byte, 0, len(msgs))
	for range msgs {
		if _, _, err := c.r.WaitStart(); err != nil {
			return acks, fmt.Errorf("mllp: waiting for acknowledgement %d: %w", len(acks)+1, err)
		}
		ack, err := c.r.ReadMessage()
		if err != nil {
			return acks, fmt.Errorf("mllp: reading acknowledgement %d: %w", len(acks)+1, err)
		}
		acks = append(acks, ack)
		<-slots
	}
	return acks, <-werr
}
