package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
