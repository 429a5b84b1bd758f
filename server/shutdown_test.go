package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// A POST that is publishing when Shutdown begins is stored and answered
// 201: Shutdown waits for it instead of cancelling it into a 503.
func TestShutdownLetsAPostInFlightFinish(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	entered := make(chan struct{})
	shuttingDown := make(chan struct{})
	var once sync.Once
	cfg.hooks.beforePublish = func() {
		once.Do(func() { close(entered) })
		<-shuttingDown // publish only once the HTTP server is shutting down
	}
	d := startDaemon(t, cfg)
	d.srv.RegisterOnShutdown(func() { close(shuttingDown) })

	client := &http.Client{Timeout: 20 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+d.Addr()+"/api/rooms/r/messages", strings.NewReader(`{"author":"bob","content":"stored before shutdown"}`))
		req.Header.Set("Authorization", "Bearer "+d.Token())
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- result{code: resp.StatusCode, body: string(b)}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	r := <-done
	if r.err != nil || r.code != http.StatusCreated {
		t.Fatalf("POST in flight at shutdown: %d %s %v; want 201", r.code, r.body, r.err)
	}

	// And it is in the stream.
	d2 := startDaemon(t, cfg)
	if ms := messages(t, d2, "r"); len(ms) == 0 || ms[0].Content != "stored before shutdown" {
		t.Errorf("after restart the room holds %+v", ms)
	}
}
