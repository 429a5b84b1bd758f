package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/personaos/persona/chat"
)

// Idempotent posts. A client that retries a POST after losing its 201 (a
// timeout, a dropped connection) would store its message twice. With an
// Idempotency-Key header, the second POST of the same key, room, author and
// content within idemTTL answers 200 with the message the first one stored
// (and the same Location), storing nothing; the same key with another
// message is 422, and a key whose first POST is still in progress is 409.
// The HTTP layer remembers keys in memory, at most idemCap of them; a
// Backend that is a KeyedPoster (the Daemon) keeps them in the stream as
// well, so that a retry after a crash, or to another daemon of the
// cluster, is stored once too (KeyedPoster).

const (
	idemTTL     = 10 * time.Minute
	idemCap     = 10_000
	idemMaxKey  = 128
	idemHeader  = "Idempotency-Key"
	idemReplied = "Idempotent-Replayed"
)

// idemEntry is one key's first POST: in progress until done is closed.
type idemEntry struct {
	room, author, content string
	at                    time.Time
	msg                   chat.Message
	done                  bool
}

// idemStore remembers keys; safe for concurrent use.
type idemStore struct {
	mu    sync.Mutex
	byKey map[string]*idemEntry
	order []string // insertion order, for eviction
}

// begin claims key for a POST of (room, author, content) at now. It returns
// the stored message when the key's first POST is done (replay), or an
// error for a conflict; ok means the caller posts and then calls finish.
func (s *idemStore) begin(key, room, author, content string, now time.Time) (replay *chat.Message, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey == nil {
		s.byKey = map[string]*idemEntry{}
	}
	if e := s.byKey[key]; e != nil && now.Sub(e.at) < idemTTL {
		switch {
		case e.room != room || e.author != author || e.content != content:
			return nil, false, &httpError{Status: http.StatusUnprocessableEntity, Field: "Idempotency-Key", Msg: "this key was used for another message"}
		case !e.done:
			return nil, false, &httpError{Status: http.StatusConflict, Field: "Idempotency-Key", Msg: "a POST with this key is still in progress; retry"}
		}
		m := e.msg
		return &m, false, nil
	}
	for len(s.order) >= idemCap || (len(s.order) > 0 && s.byKey[s.order[0]] != nil && now.Sub(s.byKey[s.order[0]].at) >= idemTTL) {
		delete(s.byKey, s.order[0])
		s.order = s.order[1:]
	}
	s.byKey[key] = &idemEntry{room: room, author: author, content: content, at: now}
	s.order = append(s.order, key)
	return nil, true, nil
}

// finish records key's stored message, or forgets the key if the POST
// failed (a retry may try again).
func (s *idemStore) finish(key string, msg *chat.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byKey[key]
	if e == nil {
		return
	}
	if msg == nil {
		delete(s.byKey, key)
		return
	}
	e.msg, e.done = *msg, true
}

// idemKey validates the header: printable ASCII, at most idemMaxKey.
func idemKey(r *http.Request) (string, error) {
	k := r.Header.Get(idemHeader)
	if k == "" {
		return "", nil
	}
	if len(k) > idemMaxKey {
		return "", &httpError{Status: http.StatusBadRequest, Field: idemHeader, Msg: "longer than 128 characters"}
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", &httpError{Status: http.StatusBadRequest, Field: idemHeader, Msg: "must be printable ASCII"}
		}
	}
	return k, nil
}
