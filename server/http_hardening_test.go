package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
)

// Oversized request headers are answered 431 with a JSON error, like every
// other rejection.
func TestOversizedHeadersGetA431InJSON(t *testing.T) {
	b := newMemBackend()
	defer b.Close()
	ts := httptest.NewServer(newTestHandler(b, HTTPOptions{MaxHeaderBytes: 8 << 10}))
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/personas", nil)
	req.Header.Set("Authorization", "Bearer "+apiTestToken)
	req.Header.Set("X-Padding", strings.Repeat("x", 16<<10))
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Error string }
	if err := json.NewDecoder(res.Body).Decode(&body); res.StatusCode != http.StatusRequestHeaderFieldsTooLarge || err != nil || !strings.Contains(body.Error, "headers") {
		t.Fatalf("status %d, body %+v (%v); want 431 with a JSON error", res.StatusCode, body, err)
	}
}

// An unauthenticated POST is answered 401 before its body arrives, and its
// connection closed: a client that trickles its body, or never sends it,
// does not hold the answer until the read deadline.
func TestUnauthenticatedPostIsRefusedBeforeItsBody(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	// A server that waited for the body would answer only at its read
	// deadline: an hour here, past the guard below.
	cfg.HTTP.ReadTimeout = time.Hour
	d := startDaemon(t, cfg)
	c, err := net.Dial("tcp", d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Minute)) // a guard against a hang, not a measurement
	io.WriteString(c, "POST /api/rooms/r/messages HTTP/1.1\r\nHost: persona\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer before the body: %v", err)
	}
	if res.StatusCode != http.StatusUnauthorized || !res.Close {
		t.Fatalf("status %d, close %v; want 401 and the connection closed", res.StatusCode, res.Close)
	}
}

// 200 clients at once, each sending an unauthenticated POST's headers and
// then its body a byte at a time (issue 14): every one is answered (401) or
// closed (past the per-client connection cap) within the read deadline,
// none held.
func TestManySlowUnauthenticatedClientsAreAnsweredOrClosed(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.HTTP.ReadTimeout = 2 * time.Second
	d := startDaemon(t, cfg)
	const clients = 200
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			outcome := func() string {
				c, err := net.Dial("tcp", d.Addr())
				if err != nil {
					return "not connected"
				}
				defer c.Close()
				// The guard of a hold: past the server's read deadline.
				c.SetDeadline(time.Now().Add(cfg.HTTP.ReadTimeout + 10*time.Second))
				if _, err := io.WriteString(c, "POST /api/rooms/r/messages HTTP/1.1\r\nHost: persona\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"); err != nil {
					return "closed"
				}
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				var ne net.Error
				switch {
				case errors.As(err, &ne) && ne.Timeout():
					return "held"
				case err != nil:
					return "closed"
				}
				res.Body.Close()
				return fmt.Sprintf("answered %d", res.StatusCode)
			}()
			mu.Lock()
			outcomes[outcome]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if outcomes["held"] > 0 || outcomes["not connected"] > 0 || outcomes["answered 401"] == 0 ||
		outcomes["answered 401"]+outcomes["closed"] != clients {
		t.Fatalf("of %d slow unauthenticated clients: %v; want each answered 401 or closed", clients, outcomes)
	}
	t.Logf("of %d slow unauthenticated clients: %v", clients, outcomes)
}

// One client's event streams and connections are capped; other clients
// and its remaining connections go on.
func TestOneClientsStreamsAndConnectionsAreCapped(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.HTTP.MaxStreamsPerClient = 2
	cfg.HTTP.MaxConnsPerClient = 4
	d := startDaemon(t, cfg)
	url := "http://" + d.Addr() + "/api/rooms/r/events"
	get := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+d.Token())
		return (&http.Client{Transport: &http.Transport{}}).Do(req) // a connection each
	}
	var open []*http.Response
	defer func() {
		for _, r := range open {
			r.Body.Close()
		}
	}()
	for range 2 {
		res, err := get()
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("stream within the cap: %v, %v", res, err)
		}
		open = append(open, res)
	}
	res, err := get()
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third stream from one client: %d, want 429", res.StatusCode)
	}

	// Two streams hold two connections; two more fit, the fifth is closed
	// as it is accepted.
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	ln := d.ln.(*perClientListener)
	eventually(t, 5*time.Second, "the refused stream's connection given back", func() bool { return ln.open("127.0.0.1") == 2 })
	for range 2 {
		c, err := net.Dial("tcp", d.Addr())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	eventually(t, 5*time.Second, "four connections open", func() bool { return ln.open("127.0.0.1") == 4 })
	c, err := net.Dial("tcp", d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("a fifth connection: read %v, want it closed", err)
	}
	// Closing one frees its place.
	idle[0].Close()
	eventually(t, 5*time.Second, "a place freed", func() bool { return ln.open("127.0.0.1") == 3 })
	if res, err := (&http.Client{Transport: &http.Transport{}}).Get("http://" + d.Addr() + "/healthz"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("a request after a place was freed: %v, %v", res, err)
	} else {
		res.Body.Close()
	}
}

// A page of messages is capped in bytes: a page cut by the cap says
// truncated and holds the messages nearest its cursor, and paging on
// from it, forward or backward, reads every message exactly once.
func TestMessagePagesAreCappedInBytesAndLoseNothing(t *testing.T) {
	b := newMemBackend()
	defer b.Close()
	for i := range 300 {
		b.store(chat.Message{Room: "big", Author: "ann", Kind: chat.Human, Content: fmt.Sprintf("%03d %s", i, strings.Repeat("y", 4000))})
	}
	ts := httptest.NewServer(newTestHandler(b, HTTPOptions{MaxPageBytes: 100 << 10}))
	defer ts.Close()
	type page struct {
		Messages  []chat.Message `json:"messages"`
		Truncated bool           `json:"truncated"`
	}
	get := func(q string) (page, int) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/rooms/big/messages?limit=500&"+q, nil)
		req.Header.Set("Authorization", "Bearer "+apiTestToken)
		res, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var p page
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("page %q: %v", q, err)
		}
		return p, len(raw)
	}
	// Forward from the start.
	var seen []string
	p, size := get("")
	if !p.Truncated || len(p.Messages) >= 300 || size > 110<<10 {
		t.Fatalf("first page: %d messages, %d bytes, truncated %v; want cut near 100 KiB", len(p.Messages), size, p.Truncated)
	}
	for {
		for _, m := range p.Messages {
			seen = append(seen, m.Content[:3])
		}
		if !p.Truncated && len(p.Messages) < 500 {
			break
		}
		p, _ = get("after=" + p.Messages[len(p.Messages)-1].ID)
	}
	if len(seen) != 300 || seen[0] != "000" || seen[299] != "299" {
		t.Fatalf("forward paging read %d messages (%v ... %v), want 000..299 once each", len(seen), seen[:1], seen[len(seen)-1:])
	}
	// Backward from the newest.
	seen = nil
	p, _ = get("order=newest")
	for {
		for i := len(p.Messages) - 1; i >= 0; i-- {
			seen = append(seen, p.Messages[i].Content[:3])
		}
		if !p.Truncated && len(p.Messages) < 500 {
			break
		}
		p, _ = get("before=" + p.Messages[0].ID)
	}
	if len(seen) != 300 || seen[0] != "299" || seen[299] != "000" {
		t.Fatalf("backward paging read %d messages, want 299..000 once each", len(seen))
	}
}

// BenchmarkNonReadingClients measures what 40 clients cost that each ask
// for a 500-message page of the largest messages (8,000 characters) and
// never read it (issue 14: 1.88 GB before pages were capped and streamed):
// the heap in use once every handler has written its page or is blocked
// writing it, against before the requests (MB/40-clients). "uncapped" is
// the baseline, pages as large as the messages asked for.
func BenchmarkNonReadingClients(b *testing.B) {
	b.Run("capped", func(b *testing.B) { benchNonReading(b, HTTPOptions{}) })
	b.Run("uncapped", func(b *testing.B) { benchNonReading(b, HTTPOptions{MaxPageBytes: 1 << 30}) })
}

func benchNonReading(b *testing.B, opts HTTPOptions) {
	be := newMemBackend()
	defer be.Close()
	content := strings.Repeat("y", 7995)
	for i := range 500 {
		be.store(chat.Message{Room: "big", Author: "ann", Kind: chat.Human, Content: fmt.Sprintf("%04d %s", i, content)})
	}
	var entered, left atomic.Int64
	h := newTestHandler(be, opts)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		defer left.Add(1)
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	const clients = 40
	// parked reports whether every page in progress is blocked writing.
	stacks := make([]byte, 8<<20)
	parked := func() bool {
		n := runtime.Stack(stacks, true)
		inPage, blocked := 0, 0
		for g := range strings.SplitSeq(string(stacks[:n]), "\n\n") {
			if strings.Contains(g, "writePage") {
				inPage++
				if strings.Contains(g, "waitWrite") {
					blocked++
				}
			}
		}
		return inPage == blocked
	}
	var worst float64
	for b.Loop() {
		entered.Store(0)
		left.Store(0)
		var before, held runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]net.Conn, clients)
		for i := range conns {
			c, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(c, "GET /api/rooms/big/messages?limit=500 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", apiTestToken)
			conns[i] = c
		}
		tick := time.NewTicker(time.Millisecond)
		for entered.Load() < clients || !parked() {
			<-tick.C
		}
		tick.Stop()
		runtime.GC()
		runtime.ReadMemStats(&held)
		worst = max(worst, (float64(held.HeapInuse)-float64(before.HeapInuse))/1e6)
		for _, c := range conns {
			c.Close()
		}
		tick = time.NewTicker(time.Millisecond)
		for left.Load() < clients {
			<-tick.C
		}
		tick.Stop()
	}
	b.ReportMetric(worst, "MB/40-clients")
}
