package server

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/personaos/persona/chat"
)

// No human may post under the name of any persona of the cluster: those of
// this daemon, those the configuration leaves to other daemons, and those
// seen writing in the stream.
func TestHumansCannotPostAsAnyPersona(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = []PersonaSpec{{Name: "Aa", Expertise: []string{"go"}}, {Name: "Bb", Display: "Bee Bee", Expertise: []string{"go"}}}
	cfg.Personas = []string{"Aa"}
	d := startDaemon(t, cfg)
	inject(t, d, chat.Message{Room: "r", Author: "Zed", Kind: chat.Persona, Content: "hello from a daemon configured otherwise"})
	h := d.srv.Handler

	for _, tc := range []struct {
		author string
		want   bool // refused
	}{
		{"Aa", true},
		{"bb", true},       // run by another daemon
		{"@BB ", true},     // a mention-like spelling
		{"bee bee", true},  // a display name
		{"zed", true},      // only ever seen in the stream
		{"Аa", true},       // Cyrillic A
		{"Ｂｂ", true},       // fullwidth
		{"B\u200bb", true}, // a zero-width space inside
		{"bеe bee", true},  // a display name with a Cyrillic e
		{"bob", false},
		{"Аня", false}, // a Cyrillic name is a name, not a look-alike
	} {
		t.Run(tc.author, func(t *testing.T) {
			_, err := d.Post(context.Background(), "r", tc.author, "hi")
			if got := errors.Is(err, ErrInvalid); got != tc.want {
				t.Errorf("Post as %q: %v; want refused %v", tc.author, err, tc.want)
			}
			w := serveReq(t, h, apiReq{method: "POST", path: "/api/rooms/r/messages", body: msgBody(tc.author, "hi"), auth: "Bearer " + d.Token()})
			switch {
			case tc.want && (w.Code != http.StatusBadRequest || jsonError(t, w).Field != "author"):
				t.Errorf("POST as %q: %d %s; want 400 on author", tc.author, w.Code, w.Body)
			case !tc.want && w.Code != http.StatusCreated:
				t.Errorf("POST as %q: %d %s; want 201", tc.author, w.Code, w.Body)
			}
		})
	}
}

// namedBackend answers PersonaName itself and counts Personas calls.
type namedBackend struct {
	*memBackend
	personasCalls atomic.Int32
}

func (n *namedBackend) Personas() []PersonaInfo {
	n.personasCalls.Add(1)
	return n.memBackend.Personas()
}

func (n *namedBackend) PersonaName(author string) (string, bool) {
	if author == "ADA" {
		return "ada", true
	}
	return "", false
}

func TestAPIImpersonationCheckAsksNoPersonaList(t *testing.T) {
	b := &namedBackend{memBackend: newMemBackend()}
	defer b.Close()
	h := newTestHandler(b, HTTPOptions{})
	w := serveReq(t, h, apiReq{method: "POST", path: "/api/rooms/lobby/messages", body: msgBody("ADA", "hi")})
	if w.Code != http.StatusBadRequest || jsonError(t, w).Field != "author" {
		t.Errorf("POST as a persona: %d %s; want 400 on author", w.Code, w.Body)
	}
	w = serveReq(t, h, apiReq{method: "POST", path: "/api/rooms/lobby/messages", body: msgBody("bob", "hi")})
	if w.Code != http.StatusCreated {
		t.Errorf("POST as bob: %d %s", w.Code, w.Body)
	}
	if n := b.personasCalls.Load(); n != 0 {
		t.Errorf("Personas called %d times by POSTs; every one costs the daemon a consumer-info request per persona", n)
	}
}
