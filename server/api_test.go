package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/state"
)

const apiTestToken = "s3cret-token"

// memBackend is an in-memory Backend for the HTTP tests. With replyAfter
// set, every human message is answered by the first persona after that
// delay (with a thought and a decision first), as a live daemon would.
type memBackend struct {
	replyAfter time.Duration
	// draftFor, when positive, shows the reply as a draft being written
	// for that long before it is stored.
	draftFor  time.Duration
	postErr   error // returned by Post instead of storing
	listErr   error // returned by Messages
	blockPost bool  // Post waits for its context

	mu       sync.Mutex
	seq      int
	msgs     map[string][]chat.Message
	subs     map[string]map[int]chan Event
	subID    int
	subbed   chan string // a room, each time Subscribe is called (buffered, lossy)
	unsubbed chan string // a room, each time a subscription ends
	personas []PersonaInfo
	trail    map[string][]Event // thoughts and decisions published, per room
	closed   chan struct{}
	wg       sync.WaitGroup
}

func newMemBackend() *memBackend {
	return &memBackend{
		msgs:     map[string][]chat.Message{},
		subs:     map[string]map[int]chan Event{},
		trail:    map[string][]Event{},
		subbed:   make(chan string, 16),
		unsubbed: make(chan string, 16),
		closed:   make(chan struct{}),
		personas: []PersonaInfo{
			{Name: "ada", Display: "Ada Lovelace", Expertise: []string{"math", "engines"}, Model: "scripted",
				Snapshot: persona.Snapshot{Name: "ada", Energy: 0.82, Attention: 0.9, Mood: state.Active, Cadence: 5 * time.Second, Awake: false,
					Counts: persona.Counts{Delivered: 14, Handled: 12, Declined: 2, Deferrals: 1, Queued: 3}, NotGranted: 2},
				Outcomes: Outcomes{Answered: 9, LeftToPeer: 2, HeldBack: 1, Declined: 2, Deferred: 1},
				Here:     true,
				Runs:     &LeaseInfo{Daemon: "node-a", Since: time.Now().Add(-3 * time.Minute)}},
			{Name: "grace", Display: "Grace Hopper", Expertise: []string{"compilers"}, Model: "scripted",
				Snapshot: persona.Snapshot{Name: "grace", Energy: 0.45, Attention: 0.6, Mood: state.Idle, Cadence: 3 * time.Second, Awake: true,
					Counts: persona.Counts{Handled: 4, Queued: 1}},
				Outcomes: Outcomes{Answered: 4},
				Runs:     &LeaseInfo{Daemon: "node-b", Addr: "127.0.0.1:9", Since: time.Now().Add(-time.Minute)}},
		},
	}
}

var _ Backend = (*memBackend)(nil)

// Close stops pending replies and waits for them.
func (m *memBackend) Close() {
	close(m.closed)
	m.wg.Wait()
}

func (m *memBackend) Post(ctx context.Context, room, author, content string) (chat.Message, error) {
	if m.blockPost {
		<-ctx.Done()
		return chat.Message{}, fmt.Errorf("post: %w", ctx.Err())
	}
	if m.postErr != nil {
		return chat.Message{}, m.postErr
	}
	msg := m.store(chat.Message{Room: room, Author: author, Kind: chat.Human, Content: content})
	if m.replyAfter > 0 {
		m.wg.Go(func() { m.reply(msg) })
	}
	return msg, nil
}

func (m *memBackend) store(msg chat.Message) chat.Message {
	m.mu.Lock()
	m.seq++
	msg.ID = fmt.Sprintf("m%06d", m.seq)
	msg.At = time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC).Add(time.Duration(m.seq) * time.Second)
	m.msgs[msg.Room] = append(m.msgs[msg.Room], msg)
	m.mu.Unlock()
	m.publish(Event{Type: "message", Room: msg.Room, Message: &msg})
	return msg
}

func (m *memBackend) reply(to chat.Message) {
	p := m.personas[0]
	th := coord.Thought{Persona: p.Name, Item: to.ID, Key: to.Room, Confidence: 0.82, Intent: coord.IntentRespond, At: time.Now()}
	m.publish(Event{Type: "thought", Room: to.Room, Thought: &th})
	select {
	case <-time.After(m.replyAfter):
	case <-m.closed:
		return
	}
	m.mu.Lock()
	m.personas[0].LastThought = &th
	m.personas[0].Snapshot.Counts.Handled++
	m.personas[0].Outcomes.Answered++
	m.personas[0].Snapshot.Energy -= 0.07
	m.mu.Unlock()
	m.publish(Event{Type: "decision", Room: to.Room, Decision: &coord.Decision{Item: to.ID, Key: to.Room, Granted: []string{p.Name}, Thoughts: []coord.Thought{th}, K: 1}})
	content := "Hello " + to.Author + "! You said: " + to.Content
	d := Draft{ID: "draft-" + to.ID, Persona: p.Name, Room: to.Room, ReplyTo: to.ID, Text: content[:len(content)/2], State: DraftWriting}
	if m.draftFor > 0 {
		m.publish(Event{Type: "draft", Room: to.Room, Draft: &d})
		select {
		case <-time.After(m.draftFor):
		case <-m.closed:
			return
		}
	}
	out := m.store(chat.Message{Room: to.Room, Author: p.Name, Kind: chat.Persona, ReplyTo: to.ID, Depth: 1, Content: content})
	if m.draftFor > 0 {
		d.State, d.Text, d.Message = DraftSent, out.Content, out.ID
		m.publish(Event{Type: "draft", Room: to.Room, Draft: &d})
	}
}

func (m *memBackend) publish(ev Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ev.Type == "thought" || ev.Type == "decision" {
		m.trail[ev.Room] = append(m.trail[ev.Room], ev)
	}
	for _, ch := range m.subs[ev.Room] {
		select {
		case ch <- ev:
		default: // a slow test reader loses events; no test relies on more than the buffer
		}
	}
}

func (m *memBackend) Message(ctx context.Context, room, id string) (chat.Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range m.msgs[room] {
		if msg.ID == id {
			return msg, nil
		}
	}
	return chat.Message{}, fmt.Errorf("message %q: %w", id, ErrNotFound)
}

func (m *memBackend) Messages(ctx context.Context, room, after string, limit int) ([]chat.Message, error) {
	if m.listErr != nil {
		return nil, m.listErr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	all := m.msgs[room]
	start := 0
	if after != "" {
		start = -1
		for i, msg := range all {
			if msg.ID == after {
				start = i + 1
			}
		}
		if start < 0 {
			return nil, fmt.Errorf("messages after %q: %w", after, ErrNotFound)
		}
	}
	out := append([]chat.Message(nil), all[start:]...)
	return out[:min(limit, len(out))], nil
}

func (m *memBackend) MessagesBefore(ctx context.Context, room, before string, limit int) ([]chat.Message, error) {
	if m.listErr != nil {
		return nil, m.listErr
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	all := m.msgs[room]
	end := len(all)
	if before != "" {
		end = -1
		for i, msg := range all {
			if msg.ID == before {
				end = i
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("messages before %q: %w", before, ErrNotFound)
		}
	}
	return append([]chat.Message(nil), all[max(0, end-limit):end]...), nil
}

func (m *memBackend) Trail(room string) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.trail[room]...)
}

// Samples makes up a persona's last five minutes: one sample per 5 s
// ending now, its energy sliding towards the snapshot's.
func (m *memBackend) Health(context.Context) (bool, string) { return true, "" }

func (m *memBackend) Samples(name string) []Sample {
	p, ok := m.Persona(name)
	if !ok {
		return nil
	}
	now := time.Now()
	out := make([]Sample, 0, 60)
	for i := range 60 {
		ago := time.Duration(59-i) * 5 * time.Second
		out = append(out, Sample{At: now.Add(-ago), Energy: min(1, p.Snapshot.Energy+float64(59-i)/200),
			Attention: p.Snapshot.Attention, Queued: (i / 10) % (p.Snapshot.Counts.Queued + 1)})
	}
	return out
}

func (m *memBackend) Subscribe(ctx context.Context, room string) (<-chan Event, func()) {
	ch := make(chan Event, 64)
	m.mu.Lock()
	m.subID++
	id := m.subID
	if m.subs[room] == nil {
		m.subs[room] = map[int]chan Event{}
	}
	m.subs[room][id] = ch
	m.mu.Unlock()
	select {
	case m.subbed <- room:
	default:
	}
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			m.mu.Lock()
			if _, ok := m.subs[room][id]; ok { // the test may have closed it already
				delete(m.subs[room], id)
				close(ch)
			}
			m.mu.Unlock()
			select {
			case m.unsubbed <- room:
			default:
			}
		})
	}
	stop := context.AfterFunc(ctx, cancel)
	return ch, func() { stop(); cancel() }
}

func (m *memBackend) subscribers(room string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subs[room])
}

func (m *memBackend) posted() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, msgs := range m.msgs {
		n += len(msgs)
	}
	return n
}

func (m *memBackend) Personas() []PersonaInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]PersonaInfo(nil), m.personas...)
}

func (m *memBackend) Persona(name string) (PersonaInfo, bool) {
	for _, p := range m.Personas() {
		if p.Name == name {
			return p, true
		}
	}
	return PersonaInfo{}, false
}

func (m *memBackend) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	rooms := []string{"lobby"}
	for r := range m.msgs {
		if r != "lobby" {
			rooms = append(rooms, r)
		}
	}
	return Status{Thermal: "nominal", Pressure: 0.21, Started: time.Date(2025, 1, 2, 15, 0, 0, 0, time.UTC), Rooms: rooms}
}

// apiMessage is chat.Message as a client decodes it (chat.Kind has no
// UnmarshalText; the API sends the kind by name).
type apiMessage struct {
	ID      string    `json:"id"`
	Room    string    `json:"room"`
	Author  string    `json:"author"`
	Kind    string    `json:"kind"`
	Content string    `json:"content"`
	At      time.Time `json:"at"`
	ReplyTo string    `json:"reply_to"`
	Depth   int       `json:"depth"`
}

// apiEvent is Event as a client decodes it.
type apiEvent struct {
	Type     string          `json:"type"`
	Room     string          `json:"room"`
	Message  *apiMessage     `json:"message"`
	Thought  json.RawMessage `json:"thought"`
	Decision json.RawMessage `json:"decision"`
}

// apiReq describes one request of a table test.
type apiReq struct {
	method, path string
	body         string
	ctype        string // Content-Type; "" means application/json for POST
	auth         string // Authorization header; "" means the valid bearer token, "-" none
	header       map[string]string
	remote       string
}

func (q apiReq) build() *http.Request {
	r := httptest.NewRequest(q.method, q.path, strings.NewReader(q.body))
	switch q.auth {
	case "":
		r.Header.Set("Authorization", "Bearer "+apiTestToken)
	case "-":
	default:
		r.Header.Set("Authorization", q.auth)
	}
	switch {
	case q.ctype == "-":
	case q.ctype != "":
		r.Header.Set("Content-Type", q.ctype)
	case q.method == http.MethodPost:
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	if q.remote != "" {
		r.RemoteAddr = q.remote
	}
	return r
}

// serveReq runs one request through h and returns the recorder.
func serveReq(t *testing.T, h http.Handler, q apiReq) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, q.build())
	return w
}

// jsonError decodes an error body, failing the test if it is not the JSON
// error shape.
func jsonError(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want JSON; body %q", ct, w.Body.String())
	}
	var e errorBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error == "" {
		t.Fatalf("error body %q: %v (want {\"error\": ...})", w.Body.String(), err)
	}
	return e
}

func msgBody(author, content string) string {
	b, _ := json.Marshal(map[string]string{"author": author, "content": content})
	return string(b)
}

func newTestHandler(b Backend, opts HTTPOptions) http.Handler {
	if opts.Token == "" {
		opts.Token = apiTestToken
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RatePerSec == 0 {
		opts.RatePerSec, opts.RateBurst = 1e6, 1e6 // rate limiting has its own test
	}
	return NewHandler(b, opts)
}

func TestAPIRejections(t *testing.T) {
	const post = "/api/rooms/lobby/messages"
	longRoom := strings.Repeat("a", 65)
	cases := []struct {
		name   string
		req    apiReq
		status int
		field  string            // the error's field, when it names one
		header map[string]string // response headers that must be present (substring)
	}{
		// auth
		{"missing token is 401", apiReq{method: "GET", path: "/api/personas", auth: "-"}, 401, "",
			map[string]string{"WWW-Authenticate": `Bearer realm="persona"`}},
		{"wrong token is 401", apiReq{method: "GET", path: "/api/personas", auth: "Bearer nope"}, 401, "",
			map[string]string{"WWW-Authenticate": `error="invalid_token"`}},
		{"token prefix is 401", apiReq{method: "GET", path: "/api/personas", auth: "Bearer " + apiTestToken[:5]}, 401, "", nil},
		{"basic auth is 401", apiReq{method: "GET", path: "/api/personas", auth: "Basic " + apiTestToken}, 401, "",
			map[string]string{"WWW-Authenticate": `error="invalid_request"`}},
		{"wrong query token is 401", apiReq{method: "GET", path: "/api/personas?token=nope", auth: "-"}, 401, "", nil},
		{"query token on POST is 401", apiReq{method: "POST", path: post + "?token=" + apiTestToken, auth: "-", body: msgBody("bob", "hi")}, 401, "", nil},
		{"metrics need the token", apiReq{method: "GET", path: "/metrics", auth: "-"}, 401, "", nil},
		{"events need the token", apiReq{method: "GET", path: "/api/rooms/lobby/events", auth: "-"}, 401, "", nil},
		// rooms
		{"upper-case room is 400", apiReq{method: "POST", path: "/api/rooms/Lobby/messages", body: msgBody("bob", "hi")}, 400, "room", nil},
		{"room starting with dash is 400", apiReq{method: "POST", path: "/api/rooms/-x/messages", body: msgBody("bob", "hi")}, 400, "room", nil},
		{"room with dot is 400", apiReq{method: "GET", path: "/api/rooms/a.b/messages"}, 400, "room", nil},
		{"room of 65 chars is 400", apiReq{method: "GET", path: "/api/rooms/" + longRoom + "/messages"}, 400, "room", nil},
		{"escaped slash in room is 400", apiReq{method: "GET", path: "/api/rooms/a%2Fb/events"}, 400, "room", nil},
		{"unicode room is 400", apiReq{method: "GET", path: "/api/rooms/caf%C3%A9/events"}, 400, "room", nil},
		// content type
		{"text/plain is 415", apiReq{method: "POST", path: post, ctype: "text/plain", body: msgBody("bob", "hi")}, 415, "", nil},
		{"missing content type is 415", apiReq{method: "POST", path: post, ctype: "-", body: msgBody("bob", "hi")}, 415, "", nil},
		{"latin-1 JSON is 415", apiReq{method: "POST", path: post, ctype: "application/json; charset=iso-8859-1", body: msgBody("bob", "hi")}, 415, "", nil},
		// body shape
		{"unknown field is 400", apiReq{method: "POST", path: post, body: `{"author":"bob","content":"hi","extra":1}`}, 400, "extra", nil},
		{"case-folded field is 400", apiReq{method: "POST", path: post, body: `{"Author":"bob","content":"hi"}`}, 400, "Author", nil},
		{"duplicate field is 400", apiReq{method: "POST", path: post, body: `{"author":"bob","content":"hi","content":"again"}`}, 400, "content", nil},
		{"trailing data is 400", apiReq{method: "POST", path: post, body: `{"author":"bob","content":"hi"} x`}, 400, "", nil},
		{"two objects are 400", apiReq{method: "POST", path: post, body: `{"author":"bob","content":"hi"}{"author":"bob","content":"hi"}`}, 400, "", nil},
		{"array is 400", apiReq{method: "POST", path: post, body: `[{"author":"bob","content":"hi"}]`}, 400, "", nil},
		{"null is 400", apiReq{method: "POST", path: post, body: `null`}, 400, "", nil},
		{"empty body is 400", apiReq{method: "POST", path: post, body: ``}, 400, "", nil},
		{"truncated JSON is 400", apiReq{method: "POST", path: post, body: `{"author":"bob","content":"hi"`}, 400, "", nil},
		{"null author is 400", apiReq{method: "POST", path: post, body: `{"author":null,"content":"hi"}`}, 400, "author", nil},
		{"numeric content is 400", apiReq{method: "POST", path: post, body: `{"author":"bob","content":42}`}, 400, "content", nil},
		{"invalid UTF-8 is 400", apiReq{method: "POST", path: post, body: "{\"author\":\"bob\",\"content\":\"hi \xff\"}"}, 400, "", nil},
		{"too big body is 413", apiReq{method: "POST", path: post, body: msgBody("bob", strings.Repeat("x", 70<<10))}, 413, "", nil},
		// fields
		{"missing author is 400", apiReq{method: "POST", path: post, body: `{"content":"hi"}`}, 400, "author", nil},
		{"missing content is 400", apiReq{method: "POST", path: post, body: `{"author":"bob"}`}, 400, "content", nil},
		{"empty content is 400", apiReq{method: "POST", path: post, body: msgBody("bob", "")}, 400, "content", nil},
		{"white-space content is 400", apiReq{method: "POST", path: post, body: msgBody("bob", " \n\t ")}, 400, "content", nil},
		{"content too long is 400", apiReq{method: "POST", path: post, body: msgBody("bob", strings.Repeat("é", 8001))}, 400, "content", nil},
		{"content with NUL is 400", apiReq{method: "POST", path: post, body: msgBody("bob", "a\x00b")}, 400, "content", nil},
		{"empty author is 400", apiReq{method: "POST", path: post, body: msgBody("  ", "hi")}, 400, "author", nil},
		{"author too long is 400", apiReq{method: "POST", path: post, body: msgBody(strings.Repeat("b", 65), "hi")}, 400, "author", nil},
		{"author with newline is 400", apiReq{method: "POST", path: post, body: msgBody("bo\nb", "hi")}, 400, "author", nil},
		{"author with bidi override is 400", apiReq{method: "POST", path: post, body: msgBody("bob\u202e", "hi")}, 400, "author", nil},
		{"author impersonating a persona is 400", apiReq{method: "POST", path: post, body: msgBody("ADA", "hi")}, 400, "author", nil},
		{"author as @mention of a persona is 400", apiReq{method: "POST", path: post, body: msgBody("@grace", "hi")}, 400, "author", nil},
		{"author as display name is 400", apiReq{method: "POST", path: post, body: msgBody("grace hopper", "hi")}, 400, "author", nil},
		// queries
		{"limit 0 is 400", apiReq{method: "GET", path: post + "?limit=0"}, 400, "limit", nil},
		{"limit 501 is 400", apiReq{method: "GET", path: post + "?limit=501"}, 400, "limit", nil},
		{"limit word is 400", apiReq{method: "GET", path: post + "?limit=ten"}, 400, "limit", nil},
		{"empty after is 400", apiReq{method: "GET", path: post + "?after="}, 400, "after", nil},
		{"after with space is 400", apiReq{method: "GET", path: post + "?after=a%20b"}, 400, "after", nil},
		{"after too long is 400", apiReq{method: "GET", path: post + "?after=" + strings.Repeat("a", 129)}, 400, "after", nil},
		{"unknown after is 404", apiReq{method: "GET", path: post + "?after=m999999"}, 404, "", nil},
		{"empty before is 400", apiReq{method: "GET", path: post + "?before="}, 400, "before", nil},
		{"before with space is 400", apiReq{method: "GET", path: post + "?before=a%20b"}, 400, "before", nil},
		{"unknown before is 404", apiReq{method: "GET", path: post + "?before=m999999"}, 404, "", nil},
		{"before with after is 400", apiReq{method: "GET", path: post + "?before=m000001&after=m000001"}, 400, "before", nil},
		{"after with order=newest is 400", apiReq{method: "GET", path: post + "?after=m000001&order=newest"}, 400, "order", nil},
		{"before with order=oldest is 400", apiReq{method: "GET", path: post + "?before=m000001&order=oldest"}, 400, "order", nil},
		{"unknown order is 400", apiReq{method: "GET", path: post + "?order=latest"}, 400, "order", nil},
		{"empty order is 400", apiReq{method: "GET", path: post + "?order="}, 400, "order", nil},
		{"newest with limit 501 is 400", apiReq{method: "GET", path: post + "?order=newest&limit=501"}, 400, "limit", nil},
		{"trail needs the token", apiReq{method: "GET", path: "/api/rooms/lobby/trail", auth: "-"}, 401, "", nil},
		{"trail of a bad room is 400", apiReq{method: "GET", path: "/api/rooms/Lobby/trail"}, 400, "room", nil},
		{"POST trail is 405", apiReq{method: "POST", path: "/api/rooms/lobby/trail", body: "{}"}, 405, "", nil},
		{"history not a boolean is 400", apiReq{method: "GET", path: "/api/personas?history=lots"}, 400, "history", nil},
		{"history of one persona not a boolean is 400", apiReq{method: "GET", path: "/api/personas/ada?history=2"}, 400, "history", nil},
		// routing
		{"DELETE personas is 405", apiReq{method: "DELETE", path: "/api/personas"}, 405, "",
			map[string]string{"Allow": "GET"}},
		{"PUT messages is 405", apiReq{method: "PUT", path: post, body: msgBody("bob", "hi")}, 405, "",
			map[string]string{"Allow": "POST"}},
		{"POST healthz is 405", apiReq{method: "POST", path: "/healthz", auth: "-"}, 405, "", nil},
		{"unknown path is 404", apiReq{method: "GET", path: "/api/nope"}, 404, "", nil},
		{"unknown path without token is 404", apiReq{method: "GET", path: "/nope", auth: "-"}, 404, "", nil},
		{"unknown asset is 404", apiReq{method: "GET", path: "/assets/nope.js", auth: "-"}, 404, "", nil},
		{"unknown persona is 404", apiReq{method: "GET", path: "/api/personas/nobody"}, 404, "name", nil},
		{"metrics disabled is 404", apiReq{method: "GET", path: "/metrics"}, 404, "", nil},
		{"cross-site POST is 403", apiReq{method: "POST", path: post, body: msgBody("bob", "hi"),
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newMemBackend()
			w := serveReq(t, newTestHandler(b, HTTPOptions{}), tc.req)
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			e := jsonError(t, w)
			if e.Field != tc.field {
				t.Errorf("field = %q, want %q (error %q)", e.Field, tc.field, e.Error)
			}
			for k, v := range tc.header {
				if got := w.Header().Get(k); !strings.Contains(got, v) {
					t.Errorf("header %s = %q, want it to contain %q", k, got, v)
				}
			}
			if n := b.posted(); n != 0 {
				t.Errorf("backend stored %d messages after a rejection", n)
			}
		})
	}
}

func TestAPIBackendErrors(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		status  int
		logged  bool
		leakNot string // text of the cause that must not reach the client
	}{
		{"invalid is 400", fmt.Errorf("post: %w", ErrInvalid), 400, false, ""},
		{"not found is 404", fmt.Errorf("post: room: %w", ErrNotFound), 404, false, ""},
		{"unavailable is 503 and logged", fmt.Errorf("post: nats down: %w", ErrUnavailable), 503, true, "nats down"},
		{"deadline is 504 and logged", fmt.Errorf("post: %w", context.DeadlineExceeded), 504, true, ""},
		{"anything else is 500 and logged", errors.New("disk on fire at /var/x"), 500, true, "disk on fire"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			b := newMemBackend()
			b.postErr = tc.err
			h := newTestHandler(b, HTTPOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			w := serveReq(t, h, apiReq{method: "POST", path: "/api/rooms/lobby/messages?token=leak", body: msgBody("bob", "hi")})
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			e := jsonError(t, w)
			if tc.leakNot != "" && strings.Contains(e.Error, tc.leakNot) {
				t.Errorf("error %q leaks the internal cause", e.Error)
			}
			if got := logs.Len() > 0; got != tc.logged {
				t.Errorf("logged = %v, want %v: %s", got, tc.logged, logs.String())
			}
			if strings.Contains(logs.String(), "leak") {
				t.Errorf("log holds the query string (token): %s", logs.String())
			}
		})
	}
}

func TestAPIBackendTimeoutIs504(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newMemBackend()
		b.blockPost = true
		h := newTestHandler(b, HTTPOptions{RequestTimeout: 3 * time.Second})
		start := time.Now()
		w := serveReq(t, h, apiReq{method: "POST", path: "/api/rooms/lobby/messages", body: msgBody("bob", "hi")})
		if w.Code != http.StatusGatewayTimeout {
			t.Fatalf("status = %d, want 504; body %s", w.Code, w.Body)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("answered after %v, want the 3s timeout", d)
		}
		jsonError(t, w)
	})
}

func TestAPIPostAndList(t *testing.T) {
	b := newMemBackend()
	h := newTestHandler(b, HTTPOptions{})

	w := serveReq(t, h, apiReq{method: "POST", path: "/api/rooms/lobby/messages",
		ctype: "application/json; charset=UTF-8", body: `  {"content": "  hello @ada  ", "author": " bob "}` + "\n"})
	if w.Code != http.StatusCreated {
		t.Fatalf("POST status = %d, body %s", w.Code, w.Body)
	}
	var got apiMessage
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Room != "lobby" || got.Author != "bob" || got.Kind != "human" || got.Content != "hello @ada" || got.At.IsZero() {
		t.Errorf("stored message = %+v, want trimmed author and content, id, room and time", got)
	}
	if loc := w.Header().Get("Location"); loc != "/api/rooms/lobby/messages/"+got.ID {
		t.Errorf("Location = %q", loc)
	}
	// The Location names the message: GET it back.
	if w := serveReq(t, h, apiReq{method: "GET", path: w.Header().Get("Location")}); w.Code != http.StatusOK {
		t.Errorf("GET Location = %d, body %s", w.Code, w.Body)
	} else {
		var back apiMessage
		if err := json.Unmarshal(w.Body.Bytes(), &back); err != nil || back.ID != got.ID || back.Content != got.Content {
			t.Errorf("GET Location returned %+v (%v)", back, err)
		}
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/api/rooms/other/messages/" + got.ID, http.StatusNotFound}, // another room
		{"/api/rooms/lobby/messages/m000000000000nosuch", http.StatusNotFound},
		{"/api/rooms/lobby/messages/not%20an%20id", http.StatusBadRequest},
	} {
		if w := serveReq(t, h, apiReq{method: "GET", path: tc.path}); w.Code != tc.code {
			t.Errorf("GET %s = %d, want %d", tc.path, w.Code, tc.code)
		}
	}
	ids := []string{got.ID}
	for i := range 3 {
		w := serveReq(t, h, apiReq{method: "POST", path: "/api/rooms/lobby/messages", body: msgBody("bob", "n"+strconv.Itoa(i))})
		var m apiMessage
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	nth := func(i int) string { return ids[i] }

	list := func(t *testing.T, path string) []apiMessage {
		t.Helper()
		w := serveReq(t, h, apiReq{method: "GET", path: path})
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d, body %s", path, w.Code, w.Body)
		}
		var body struct {
			Room     string       `json:"room"`
			Messages []apiMessage `json:"messages"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		return body.Messages
	}
	contents := func(ms []apiMessage) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Content)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct{ name, path, want string }{
		{"all by default", "/api/rooms/lobby/messages", "hello @ada,n0,n1,n2"},
		{"limit caps the page", "/api/rooms/lobby/messages?limit=2", "hello @ada,n0"},
		{"after skips what was seen", "/api/rooms/lobby/messages?after=" + got.ID + "&limit=500", "n0,n1,n2"},
		{"empty room is an empty list", "/api/rooms/quiet-room_2/messages", ""},
		{"order=oldest is the default", "/api/rooms/lobby/messages?order=oldest&limit=2", "hello @ada,n0"},
		{"order=newest is the newest page, oldest first", "/api/rooms/lobby/messages?order=newest&limit=2", "n1,n2"},
		{"order=newest without limit is every message", "/api/rooms/lobby/messages?order=newest", "hello @ada,n0,n1,n2"},
		{"before pages backwards", "/api/rooms/lobby/messages?before=" + nth(2) + "&limit=2", "hello @ada,n0"},
		{"before may say order=newest", "/api/rooms/lobby/messages?before=" + nth(3) + "&order=newest&limit=1", "n1"},
		{"before the first is empty", "/api/rooms/lobby/messages?before=" + got.ID, ""},
		{"newest of an empty room is empty", "/api/rooms/quiet-room_2/messages?order=newest", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := contents(list(t, tc.path)); c != tc.want {
				t.Errorf("contents = %q, want %q", c, tc.want)
			}
		})
	}
	t.Run("empty list is [] not null", func(t *testing.T) {
		w := serveReq(t, h, apiReq{method: "GET", path: "/api/rooms/empty/messages"})
		if !strings.Contains(w.Body.String(), `"messages":[]`) {
			t.Errorf("body = %s", w.Body)
		}
	})
}

func TestAPIReadRoutes(t *testing.T) {
	b := newMemBackend()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "persona_up 1\n") })
	h := newTestHandler(b, HTTPOptions{Metrics: metrics})
	cases := []struct {
		name, path, auth string
		status           int
		want             string // substring of the body
		ctype            string // prefix of Content-Type
	}{
		{"healthz needs no token", "/healthz", "-", 200, `{"status":"ok"}`, "application/json"},
		{"personas are listed", "/api/personas", "", 200, `"name":"ada"`, "application/json"},
		{"snapshot is in the list", "/api/personas", "", 200, `"energy":0.82`, "application/json"},
		{"one persona by name", "/api/personas/grace", "", 200, `"display_name":"Grace Hopper"`, "application/json"},
		{"status has thermal state", "/api/status", "", 200, `"thermal":"nominal"`, "application/json"},
		{"cards have outcomes", "/api/personas", "", 200, `"outcomes":{"answered":9,"left_to_peer":2,"held_back":1,"declined":2,"deferred":1,"expired":0,"failed":0}`, "application/json"},
		{"history is asked for", "/api/personas?history=true", "", 200, `"history":[{"at":`, "application/json"},
		{"history of one persona", "/api/personas/grace?history=1", "", 200, `"history":[{"at":`, "application/json"},
		{"trail is a list", "/api/rooms/lobby/trail", "", 200, `{"room":"lobby","events":[]}`, "application/json"},
		{"metrics behind the token", "/metrics", "", 200, "persona_up 1", "text/plain"},
		{"query token works on GET", "/api/personas?token=" + apiTestToken, "-", 200, `"name":"grace"`, "application/json"},
		{"dashboard needs no token", "/", "-", 200, "<title>persona</title>", "text/html"},
		{"script is embedded", "/assets/app.js", "-", 200, "persona dashboard", "text/javascript"},
		{"style is embedded", "/assets/style.css", "-", 200, ".card", "text/css"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := serveReq(t, h, apiReq{method: "GET", path: tc.path, auth: tc.auth})
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
			if !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("body lacks %q: %.300s", tc.want, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type = %q, want %q", ct, tc.ctype)
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("missing nosniff")
			}
		})
	}
	t.Run("dashboard forbids inline and foreign scripts", func(t *testing.T) {
		w := serveReq(t, h, apiReq{method: "GET", path: "/", auth: "-"})
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("CSP = %q", csp)
		}
	})
	t.Run("history only when asked", func(t *testing.T) {
		for _, path := range []string{"/api/personas", "/api/personas?history=false", "/api/personas/ada"} {
			if w := serveReq(t, h, apiReq{method: "GET", path: path}); strings.Contains(w.Body.String(), `"history"`) {
				t.Errorf("GET %s has a history: %.200s", path, w.Body)
			}
		}
	})
	t.Run("API answers are not cached", func(t *testing.T) {
		w := serveReq(t, h, apiReq{method: "GET", path: "/api/personas"})
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", w.Header().Get("Cache-Control"))
		}
	})
}

func TestAPITrailKeepsThoughtsAndDecisions(t *testing.T) {
	b := newMemBackend()
	b.replyAfter = time.Millisecond
	defer b.Close()
	h := newTestHandler(b, HTTPOptions{})
	w := serveReq(t, h, apiReq{method: "POST", path: "/api/rooms/lobby/messages", body: msgBody("bob", "hi @ada")})
	var posted apiMessage
	if err := json.Unmarshal(w.Body.Bytes(), &posted); err != nil {
		t.Fatal(err)
	}
	b.wg.Wait() // the reply, with its thought and decision
	w = serveReq(t, h, apiReq{method: "GET", path: "/api/rooms/lobby/trail"})
	var body struct {
		Room   string     `json:"room"`
		Events []apiEvent `json:"events"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range body.Events {
		types = append(types, ev.Type)
		if !strings.Contains(string(ev.Thought)+string(ev.Decision), `"item":"`+posted.ID+`"`) {
			t.Errorf("%s event is not about the posted message: %s%s", ev.Type, ev.Thought, ev.Decision)
		}
	}
	if body.Room != "lobby" || strings.Join(types, ",") != "thought,decision" {
		t.Errorf("trail of lobby = %s, want its thought, then its decision", w.Body)
	}
	if w := serveReq(t, h, apiReq{method: "GET", path: "/api/rooms/design/trail"}); !strings.Contains(w.Body.String(), `"events":[]`) {
		t.Errorf("trail of a room without events = %s, want []", w.Body)
	}
}

func TestAPIEmptyTokenLocksEverything(t *testing.T) {
	h := NewHandler(newMemBackend(), HTTPOptions{Logger: slog.New(slog.DiscardHandler)})
	for _, auth := range []string{"-", "Bearer ", "Bearer x"} {
		w := serveReq(t, h, apiReq{method: "GET", path: "/api/personas", auth: auth})
		if w.Code != http.StatusUnauthorized {
			t.Errorf("auth %q: status = %d, want 401", auth, w.Code)
		}
	}
	if w := serveReq(t, h, apiReq{method: "GET", path: "/healthz", auth: "-"}); w.Code != http.StatusOK {
		t.Errorf("healthz = %d", w.Code)
	}
}

func TestAPIRateLimit(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newTestHandler(newMemBackend(), HTTPOptions{RatePerSec: 2, RateBurst: 3, Now: func() time.Time { return now }})
	get := func(remote, path string) *httptest.ResponseRecorder {
		return serveReq(t, h, apiReq{method: "GET", path: path, remote: remote})
	}
	for i := range 3 {
		if w := get("10.0.0.1:1111", "/api/personas"); w.Code != 200 {
			t.Fatalf("request %d within the burst = %d", i, w.Code)
		}
	}
	w := get("10.0.0.1:2222", "/api/personas") // same IP, other port
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("request over the burst = %d, want 429", w.Code)
	}
	jsonError(t, w)
	if ra := w.Header().Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1 (a token every 0.5 s)", ra)
	}
	if w := get("10.0.0.1:1111", "/healthz"); w.Code != 200 {
		t.Errorf("healthz is rate limited: %d", w.Code)
	}
	if w := get("10.0.0.2:1111", "/api/personas"); w.Code != 200 {
		t.Errorf("another client is limited too: %d", w.Code)
	}
	if w := serveReq(t, h, apiReq{method: "GET", path: "/api/personas", auth: "-", remote: "10.0.0.1:1"}); w.Code != 429 {
		t.Errorf("unauthenticated request over the limit = %d, want 429 before 401 (no token guessing)", w.Code)
	}
	now = now.Add(500 * time.Millisecond)
	if w := get("10.0.0.1:1111", "/api/personas"); w.Code != 200 {
		t.Errorf("after a refill = %d, want 200", w.Code)
	}
}

func TestRateLimiterStaysBounded(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newRateLimiter(1, 2, 2) // a bucket refills fully in 2 s
	l.allow("idle", t0)
	for range 2 {
		l.allow("busy", t0.Add(2*time.Second))
	}
	if ok, _ := l.allow("busy", t0.Add(2*time.Second)); ok {
		t.Fatal("busy client not limited after its burst")
	}
	// A third client needs room: the idle bucket goes, the busy one stays.
	if ok, _ := l.allow("new", t0.Add(2*time.Second)); !ok {
		t.Fatal("new client refused")
	}
	if ok, _ := l.allow("busy", t0.Add(2*time.Second)); ok {
		t.Error("busy client's bucket was evicted instead of the idle one")
	}
	for i := range 100 {
		l.allow(fmt.Sprintf("flood-%d", i), t0.Add(3*time.Second))
	}
	if n := l.len(); n > 2 {
		t.Errorf("limiter map holds %d clients, bound is 2", n)
	}
}

// sseFrame is one parsed Server-Sent Event.
type sseFrame struct{ event, id, data string }

// readFrame reads frames until one with data, skipping comments and retry.
func readFrame(t *testing.T, br *bufio.Reader) sseFrame {
	t.Helper()
	var f sseFrame
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if f.data != "" {
				return f
			}
		case strings.HasPrefix(line, "event: "):
			f.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			f.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			f.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func TestEventsStreamOverHTTP(t *testing.T) {
	b := newMemBackend()
	b.replyAfter = time.Millisecond
	defer b.Close()
	ts := httptest.NewServer(newTestHandler(b, HTTPOptions{}))
	defer ts.Close()
	client := ts.Client()
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/rooms/lobby/events?token="+apiTestToken, nil)
	res, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(res.Body)
	if line, _ := br.ReadString('\n'); line != "retry: 3000\n" {
		t.Errorf("first line = %q, want the retry hint", line)
	}
	select {
	case <-b.subbed:
	case <-ctx.Done():
		t.Fatal("handler never subscribed")
	}

	pr, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/api/rooms/lobby/messages", strings.NewReader(msgBody("bob", "hi @ada")))
	pr.Header.Set("Authorization", "Bearer "+apiTestToken)
	pr.Header.Set("Content-Type", "application/json")
	pres, err := client.Do(pr)
	if err != nil {
		t.Fatal(err)
	}
	pres.Body.Close()

	var types []string
	var reply *apiMessage
	for reply == nil {
		f := readFrame(t, br)
		types = append(types, f.event)
		var ev apiEvent
		if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
			t.Fatalf("data %q: %v", f.data, err)
		}
		if ev.Type != f.event || ev.Room != "lobby" {
			t.Errorf("frame event %q carries %+v", f.event, ev)
		}
		if ev.Message != nil && f.id != ev.Message.ID {
			t.Errorf("frame id %q, message id %q", f.id, ev.Message.ID)
		}
		if ev.Message != nil && ev.Message.Kind == "persona" {
			reply = ev.Message
		}
	}
	if got := strings.Join(types, ","); got != "message,thought,decision,message" {
		t.Errorf("event types = %s, want the human's message, a thought, a decision, the reply", got)
	}
	if reply.Author != "ada" || reply.ReplyTo == "" {
		t.Errorf("reply = %+v, want author ada and reply_to", reply)
	}

	cancel() // the client goes away: the handler must end its subscription
	select {
	case <-b.unsubbed:
	case <-time.After(10 * time.Second):
		t.Fatal("subscription not released after the client left")
	}
	if n := b.subscribers("lobby"); n != 0 {
		t.Errorf("%d subscribers left", n)
	}
}

// memStream is a ResponseWriter that a handler can stream into while a test
// reads what it wrote so far.
type memStream struct {
	mu     sync.Mutex
	h      http.Header
	code   int
	buf    bytes.Buffer
	flushN int
}

func (s *memStream) Header() http.Header { return s.h }
func (s *memStream) WriteHeader(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.code == 0 {
		s.code = code
	}
}
func (s *memStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.code == 0 {
		s.code = 200
	}
	return s.buf.Write(p)
}
func (s *memStream) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushN++
}
func (s *memStream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestEventsHeartbeatAndEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newMemBackend()
		h := newTestHandler(b, HTTPOptions{MaxStreams: 1})
		ctx, cancel := context.WithCancel(t.Context())
		s := &memStream{h: http.Header{}}
		var wg sync.WaitGroup
		wg.Go(func() {
			h.ServeHTTP(s, apiReq{method: "GET", path: "/api/rooms/lobby/events"}.build().WithContext(ctx))
		})
		synctest.Wait()
		if got := s.String(); got != "retry: 3000\n\n" {
			t.Fatalf("stream starts with %q", got)
		}

		// A second stream is over the cap of one.
		if w := serveReq(t, h, apiReq{method: "GET", path: "/api/rooms/lobby/events"}); w.Code != http.StatusServiceUnavailable {
			t.Errorf("second stream: status = %d, want 503", w.Code)
		}

		time.Sleep(sseHeartbeat - time.Second)
		synctest.Wait()
		if strings.Contains(s.String(), "heartbeat") {
			t.Fatal("heartbeat before 15 s")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !strings.HasSuffix(s.String(), ": heartbeat\n\n") {
			t.Fatalf("no heartbeat after 15 s: %q", s.String())
		}

		b.store(chat.Message{Room: "lobby", Author: "bob", Content: "hi"})
		b.store(chat.Message{Room: "other", Author: "bob", Content: "elsewhere"})
		synctest.Wait()
		out := s.String()
		if !strings.Contains(out, "event: message\nid: m000001\ndata: {") || strings.Contains(out, "elsewhere") {
			t.Errorf("stream = %q, want lobby's message only", out)
		}
		s.mu.Lock()
		flushes := s.flushN
		s.mu.Unlock()
		if flushes != 3 {
			t.Errorf("flushed %d times, want 3 (retry, heartbeat, event)", flushes)
		}

		cancel()
		wg.Wait()
		if n := b.subscribers("lobby"); n != 0 {
			t.Errorf("%d subscribers left after the client went", n)
		}
		if w := serveReq(t, h, apiReq{method: "GET", path: "/api/rooms/lobby/messages"}); w.Code != 200 {
			t.Errorf("after the stream ended: %d", w.Code)
		}
	})
}

func TestEventsEndWhenBackendCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newMemBackend()
		h := newTestHandler(b, HTTPOptions{})
		s := &memStream{h: http.Header{}}
		var wg sync.WaitGroup
		wg.Go(func() { h.ServeHTTP(s, apiReq{method: "GET", path: "/api/rooms/lobby/events"}.build()) })
		synctest.Wait()
		b.mu.Lock()
		for _, ch := range b.subs["lobby"] {
			close(ch)
		}
		b.subs["lobby"] = nil
		b.mu.Unlock()
		wg.Wait() // returns: a closed subscription ends the stream
	})
}

func TestEncodeSSE(t *testing.T) {
	cases := []struct {
		name string
		ev   Event
		want string
	}{
		{"message carries its id", Event{Type: "message", Room: "r", Message: &chat.Message{ID: "m1", Room: "r"}},
			"event: message\nid: m1\ndata: {"},
		{"thought has no id", Event{Type: "thought", Room: "r", Thought: &coord.Thought{Persona: "ada"}},
			"event: thought\ndata: {"},
		{"newline in type cannot split the frame", Event{Type: "x\ndata: evil", Room: "r"}, "event: message\ndata: {"},
		{"empty type is message", Event{Room: "r"}, "event: message\ndata: {"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := encodeSSE(&buf, tc.ev); err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			if !strings.HasPrefix(got, tc.want) || !strings.HasSuffix(got, "}\n\n") || strings.Count(got, "\n\n") != 1 {
				t.Errorf("frame = %q, want prefix %q and one terminator", got, tc.want)
			}
		})
	}
}

func TestDecodeMessage(t *testing.T) {
	lim := msgLimits{MaxBody: 256, MaxContent: 10, MaxAuthor: 5}
	cases := []struct {
		name, body      string
		author, content string
		status          int
	}{
		{"trims both fields", `{"author":" bo ","content":"\n hi there \t"}`, "bo", "hi there", 0},
		{"keeps inner newlines", `{"author":"bo","content":"a\nb"}`, "bo", "a\nb", 0},
		{"escaped unicode counts as runes", `{"author":"\u00e9\u00e9\u00e9\u00e9\u00e9","content":"ééééééééé\u00e9"}`, "ééééé", "éééééééééé", 0},
		{"content at the limit plus spaces", `{"author":"bo","content":"   0123456789   "}`, "bo", "0123456789", 0},
		{"content one over is refused", `{"author":"bo","content":"0123456789x"}`, "", "", 400},
		{"author one over is refused", `{"author":"bobby1","content":"hi"}`, "", "", 400},
		{"body over the limit is 413", `{"author":"bo","content":"` + strings.Repeat(" ", 300) + `"}`, "", "", 413},
		{"lone surrogate escape is accepted as U+FFFD", `{"author":"bo","content":"\ud800"}`, "bo", "\ufffd", 0},
		{"escaped NUL is refused", `{"author":"bo","content":"a\u0000"}`, "", "", 400},
		{"deep nesting in a field is refused", `{"author":"bo","content":[[[[]]]]}`, "", "", 400},
		{"object inside is refused", `{"author":{"x":1},"content":"hi"}`, "", "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, c, err := decodeMessage(strings.NewReader(tc.body), lim)
			if tc.status != 0 {
				if st, _ := errorResponse(err); err == nil || st != tc.status {
					t.Fatalf("err = %v (status %d), want status %d", err, st, tc.status)
				}
				return
			}
			if err != nil || a != tc.author || c != tc.content {
				t.Fatalf("got (%q, %q, %v), want (%q, %q)", a, c, err, tc.author, tc.content)
			}
		})
	}
}

func TestRoomNames(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "0": true, "lobby": true, "a-b_c9": true, strings.Repeat("z", 64): true,
		"": false, "-a": false, "_a": false, "A": false, "a b": false, "a/b": false, "é": false,
		strings.Repeat("z", 65): false,
	} {
		if got := roomNameOK(name); got != want {
			t.Errorf("roomNameOK(%q) = %v, want %v", name, got, want)
		}
	}
}
