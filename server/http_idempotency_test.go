package server

import (
	"encoding/json"
	"net/http"
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
