package mllp

import (
	"context"
	"fmt"
	"net"
)

// Client sends messages over one MLLP connection, stop-and-wait: each Send
// writes one frame and waits for the acknowledgement frame.
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
