package server

import (
	"net"
	"sync"
)

// perClientListener caps the open connections of each client IP: a
// connection past the cap is closed as it is accepted, so that one client
// cannot hold every file descriptor or goroutine of the daemon (its other
// connections keep working). The HTTP layer's limits (rate, streams per
// client, deadlines) apply within the connections it lets through.
type perClientListener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[string]int
}

func newPerClientListener(l net.Listener, max int) *perClientListener {
	return &perClientListener{Listener: l, max: max, conns: map[string]int{}}
}

// Accept returns the next connection within its client's cap.
func (l *perClientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		l.mu.Lock()
		if l.conns[ip] >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.conns[ip]++
		l.mu.Unlock()
		return &countedConn{Conn: c, l: l, ip: ip}, nil
	}
}

// open is how many connections ip holds.
func (l *perClientListener) open(ip string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[ip]
}

func (l *perClientListener) closed(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[ip]--; l.conns[ip] <= 0 {
		delete(l.conns, ip)
	}
}

func remoteIP(a net.Addr) string {
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// countedConn gives its place back once, when it is closed.
type countedConn struct {
	net.Conn
	l    *perClientListener
	ip   string
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.closed(c.ip) })
	return err
}
