package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
)

func TestIdempotencyKeyStoresARetriedPostOnce(t *testing.T) {
	b := newMemBackend()
	defer b.Close()
	h := newTestHandler(b, HTTPOptions{})
	post := func(key, content string) (int, chat.Message, string) {
		q := apiReq{method: "POST", path: "/api/rooms/r/messages", body: msgBody("bob", content)}
		if key != "" {
			q.header = map[string]string{"Idempotency-Key": key}
		}
		w := serveReq(t, h, q)
		var m chat.Message
		json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m, w.Header().Get("Location")
	}
	c1, m1, loc1 := post("k-1", "hello")
	c2, m2, loc2 := post("k-1", "hello") // the client lost the 201 and retries
	if c1 != http.StatusCreated || c2 != http.StatusOK || m1.ID == "" || m2.ID != m1.ID || loc2 != loc1 {
		t.Fatalf("first %d %s %s, retry %d %s %s: want 201 then 200 with the same message and Location", c1, m1.ID, loc1, c2, m2.ID, loc2)
	}
	if n := len(b.msgs["r"]); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	if c, _, _ := post("k-1", "something else"); c != http.StatusUnprocessableEntity {
		t.Fatalf("the key with another message: %d, want 422", c)
	}
	post("", "hello")
	post("", "hello")
	if n := len(b.msgs["r"]); n != 3 {
		t.Fatalf("%d messages stored, want 3: without a key every POST stores", n)
	}
	if c, _, _ := post("bad key with spaces", "x"); c != http.StatusBadRequest {
		t.Fatalf("a malformed key: %d, want 400", c)
	}
}

func TestIdempotencyStoreInFlightExpiryAndFailure(t *testing.T) {
	var s idemStore
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok, err := s.begin("k", "r", "a", "c", t0); !ok || err != nil {
		t.Fatalf("first begin: %v %v", ok, err)
	}
	if _, _, err := s.begin("k", "r", "a", "c", t0); err == nil || err.(*httpError).Status != http.StatusConflict {
		t.Fatalf("a key in progress: %v, want 409", err)
	}
	s.finish("k", nil) // the POST failed: the key is free again
	if _, ok, _ := s.begin("k", "r", "a", "c", t0); !ok {
		t.Fatal("a key whose POST failed could not be used again")
	}
	s.finish("k", &chat.Message{ID: "m1"})
	if m, _, _ := s.begin("k", "r", "a", "c", t0.Add(idemTTL-time.Second)); m == nil || m.ID != "m1" {
		t.Fatalf("replay within the TTL: %v", m)
	}
	if _, ok, _ := s.begin("k", "r", "a", "c", t0.Add(idemTTL)); !ok {
		t.Fatal("a key past its TTL is not new again")
	}
}

// The key is kept in the stream, not only in the HTTP layer's memory: a
// client that lost its 201 to a daemon that then stopped (or crashed), and
// retries on the next one, gets the first message back, stored once.
func TestIdempotencyKeyOutlivesTheDaemon(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	post := func(d *Daemon, key, content string) (int, chat.Message) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+d.Addr()+"/api/rooms/r/messages", strings.NewReader(msgBody("bob", content)))
		req.Header.Set("Authorization", "Bearer "+d.Token())
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m chat.Message
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	first := startDaemon(t, cfg)
	c1, m1 := post(first, "order-17", "ship it")
	if c1 != http.StatusCreated {
		t.Fatalf("first POST: %d", c1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	second := startDaemon(t, cfg)
	c2, m2 := post(second, "order-17", "ship it")
	if c2 != http.StatusOK || m2.ID != m1.ID {
		t.Fatalf("the retry on the next daemon: %d %s, want 200 with the first message %s", c2, m2.ID, m1.ID)
	}
	if c, _ := post(second, "order-17", "ship something else"); c != http.StatusUnprocessableEntity {
		t.Fatalf("the key with another message on the next daemon: %d, want 422", c)
	}
	msgs, err := second.Messages(ctx, "r", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var humans []string
	for _, m := range msgs {
		if m.Kind == chat.Human {
			humans = append(humans, m.ID)
		}
	}
	if len(humans) != 1 || humans[0] != m1.ID {
		t.Fatalf("room holds human messages %v, want the first one only", humans)
	}
}
