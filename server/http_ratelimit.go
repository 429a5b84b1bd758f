package server

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// defaultMaxClients bounds the limiter map, so a flood of addresses costs
// memory in proportion to this number, not to the flood.
const defaultMaxClients = 4096

// rateLimiter holds one token bucket per client IP. Safe for concurrent use.
//
// A bucket unused for longer than it takes to refill completely is in the
// same state as a new one, so such idle buckets are evicted without changing
// anyone's allowance. Only when the map is full of busy clients is the least
// recently seen one dropped (its client then gets a full bucket again).
type rateLimiter struct {
	limit rate.Limit
	burst int
	max   int
	idle  time.Duration // time to refill a whole bucket

	mu      sync.Mutex
	clients map[string]*rateClient
}

type rateClient struct {
	lim  *rate.Limiter
	seen time.Time
}

func newRateLimiter(perSec float64, burst, maxClients int) *rateLimiter {
	return &rateLimiter{
		limit:   rate.Limit(perSec),
		burst:   burst,
		max:     maxClients,
		idle:    time.Duration(float64(burst) / perSec * float64(time.Second)),
		clients: make(map[string]*rateClient),
	}
}

// allow takes one token from ip's bucket at now. When none is left it
// reports how long until one will be.
func (l *rateLimiter) allow(ip string, now time.Time) (ok bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[ip]
	if c == nil {
		if len(l.clients) >= l.max {
			l.evict(now)
		}
		c = &rateClient{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[ip] = c
	}
	c.seen = now
	if c.lim.AllowN(now, 1) {
		return true, 0
	}
	res := c.lim.ReserveN(now, 1)
	retry = res.DelayFrom(now)
	res.CancelAt(now)
	return false, retry
}

// evict makes room for one client: every idle bucket goes, and if none was
// idle, the least recently seen one. O(n), and only when the map is full.
func (l *rateLimiter) evict(now time.Time) {
	var oldest string
	var oldestSeen time.Time
	for ip, c := range l.clients {
		if now.Sub(c.seen) >= l.idle {
			delete(l.clients, ip)
			continue
		}
		if oldest == "" || c.seen.Before(oldestSeen) {
			oldest, oldestSeen = ip, c.seen
		}
	}
	if len(l.clients) >= l.max {
		delete(l.clients, oldest)
	}
}

func (l *rateLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// clientIP is the host part of RemoteAddr. Headers such as X-Forwarded-For
// are ignored: any client can forge them, and the daemon is meant to be
// reached directly.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
