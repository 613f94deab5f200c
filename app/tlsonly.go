package app

import (
	"errors"
	"net"
	"sync"
)

// tlsOnlyListener wraps a TCP listener so that a connection whose first byte
// is not a TLS handshake record (0x16) is closed without a word. Go's HTTPS
// server would otherwise answer a plain-HTTP request with its own
// "400 Bad Request: client sent an HTTP request to an HTTPS server": a
// plain-HTTP client gets no response at all, not even that one.
type tlsOnlyListener struct{ net.Listener }

func (l tlsOnlyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsOnlyConn{Conn: c}, nil
}

// errNotTLS ends a connection that did not start a TLS handshake.
var errNotTLS = errors.New("connection did not start with a TLS handshake")

// tlsOnlyConn checks the first byte read from the client; the check runs in
// Read (on the connection's own goroutine), never in Accept, so a slow
// client cannot stall the accept loop.
type tlsOnlyConn struct {
	net.Conn
	once sync.Once
	err  error
}

func (c *tlsOnlyConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return c.Conn.Read(p)
	}
	first := false
	c.once.Do(func() { first = true })
	if !first {
		if c.err != nil {
			return 0, c.err
		}
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p[:1])
	if n == 1 && p[0] != 0x16 {
		c.err = errNotTLS
		_ = c.Conn.Close()
		return 0, c.err
	}
	// The checked byte goes back to the caller; crypto/tls reads records
	// with io.ReadFull, so a short read costs nothing.
	return n, err
}
