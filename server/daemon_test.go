package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/llm"
	"github.com/personaos/persona/state"
)

// testConfig is a daemon for tests: loopback on a free port, a fresh data
// directory, quick rhythms (so a test waits milliseconds, not the seed's
// seconds), no compute budget and no HTTP rate limit.
func testConfig(t *testing.T) Config {
	t.Helper()
	fast := 20 * time.Millisecond
	return Config{
		Addr:         "127.0.0.1:0",
		Data:         t.TempDir(),
		Logger:       testLogger(t),
		BudgetPerSec: -1,
		CoordWindow:  time.Second,
		Persona: persona.Options{
			State:      state.Config{CadenceIdle: fast, CadenceActive: fast, CadenceTired: fast, CadenceOverwhelmed: fast},
			Backoff:    10 * time.Millisecond,
			MaxBackoff: 50 * time.Millisecond,
		},
		HTTP: HTTPOptions{RatePerSec: 10000, RateBurst: 10000},
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("PERSONA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startDaemon starts a daemon and shuts it down when the test ends.
func startDaemon(t *testing.T, cfg Config) *Daemon {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d
}

// eventually polls cond until it holds or the deadline passes. Real NATS
// runs outside any synctest bubble, so tests wait on observable state with
// a deadline rather than for a fixed time.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		<-tick.C
	}
}

// settled reports whether every message stored so far has a final account
// for every persona, and nothing waits in an inbox.
func settled(d *Daemon) bool {
	if d.ledger.held() > 0 {
		return false
	}
	for _, pi := range d.Personas() {
		c := pi.Snapshot.Counts
		if c.Queued+c.InFlight+c.Deferred > 0 {
			return false
		}
		if pi.Backlog != nil && (pi.Backlog.Pending > 0 || pi.Backlog.Unacked > 0) {
			return false
		}
	}
	return true
}

func waitSettled(t *testing.T, d *Daemon) {
	t.Helper()
	eventually(t, 20*time.Second, "every message accounted by every persona", func() bool { return settled(d) })
}

func post(t *testing.T, d *Daemon, room, author, content string) chat.Message {
	t.Helper()
	m, err := d.Post(context.Background(), room, author, content)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func messages(t *testing.T, d *Daemon, room string) []chat.Message {
	t.Helper()
	ms, err := d.Messages(context.Background(), room, "", 500)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func repliesTo(ms []chat.Message, id string) []chat.Message {
	var out []chat.Message
	for _, m := range ms {
		if m.Kind == chat.Persona && m.ReplyTo == id {
			out = append(out, m)
		}
	}
	return out
}

// account reads a persona's final account of a message from the ledger.
func account(t *testing.T, d *Daemon, persona, id string) (Record, bool) {
	t.Helper()
	e, err := d.bus.accounts.Get(context.Background(), ledgerKey(persona, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		t.Fatal(err)
	}
	return r, true
}

// fakeOpenAI is an OpenAI-compatible server that checks what it is sent and
// answers each persona by name; fail decides the status of each call.
type fakeOpenAI struct {
	t    *testing.T
	key  string
	fail func(n int, persona string) int // status for the n-th call (from 0); 0 means 200

	mu    sync.Mutex
	calls []fakeCall
}

type fakeCall struct {
	persona string // from the system prompt's "You are X"
	model   string
	last    string // the newest history line
	status  int
}

type wireReq struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
		Name    string `json:"name"`
	} `json:"messages"`
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/v1/models" {
		// The daemon's probe at start.
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[{"id":"fake-model","object":"model","created":1,"owned_by":"test"}]}`)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var req wireReq
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		f.t.Errorf("fake model: %s %s", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+f.key {
		f.t.Errorf("fake model: Authorization %q", got)
	}
	if err := json.Unmarshal(raw, &req); err != nil || len(req.Messages) < 2 {
		f.t.Errorf("fake model: request %s: %v", raw, err)
		http.Error(w, "bad", http.StatusBadRequest)
		return
	}
	if req.Messages[0].Role != "system" || !strings.HasPrefix(req.Messages[0].Content, "You are ") {
		f.t.Errorf("fake model: first message is not the persona's system prompt: %+v", req.Messages[0])
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(req.Messages[0].Content, "You are "), ",")
	last := req.Messages[len(req.Messages)-1]
	if last.Role != "user" || last.Name == "" {
		f.t.Errorf("fake model: newest message is not a named user turn: %+v", last)
	}
	f.mu.Lock()
	n := len(f.calls)
	status := 0
	if f.fail != nil {
		status = f.fail(n, name)
	}
	f.calls = append(f.calls, fakeCall{persona: name, model: req.Model, last: last.Content, status: status})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		w.Header().Set("retry-after-ms", "1")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"message":"fake %d","type":"fake"}}`, status)
		return
	}
	content := fmt.Sprintf("%s answers (%d runes seen).", name, len([]rune(last.Content)))
	if req.Stream {
		// Server-sent chunks, as OpenAI streams: the content in two
		// pieces, then the usage, then [DONE].
		w.Header().Set("Content-Type", "text/event-stream")
		half := len(content) / 2
		for _, c := range []map[string]any{
			{"index": 0, "delta": map[string]any{"role": "assistant", "content": content[:half]}},
			{"index": 0, "delta": map[string]any{"content": content[half:]}, "finish_reason": "stop"},
		} {
			b, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": req.Model, "choices": []any{c}})
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		b, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": req.Model, "choices": []any{},
			"usage": map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
		fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", b)
		return
	}
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": content}}},
		"usage": map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
	})
	w.Write(b)
}

func (f *fakeOpenAI) snapshot() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// withFakeModel points cfg at a fake OpenAI server with quick retries.
func withFakeModel(t *testing.T, cfg *Config, f *fakeOpenAI) {
	t.Helper()
	f.t, f.key = t, "sk-test"
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.ModelBaseURL = srv.URL + "/v1"
	cfg.ModelAPIKey = f.key
	cfg.ModelName = "fake-model"
	cfg.ModelOptions = llm.OpenAIOptions{MaxRetries: 2, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: 5 * time.Second}
}

// testSpecs are the built-in personas without their rhythm overrides, so
// that testConfig's quick cadence applies to all.
func testSpecs() []PersonaSpec {
	var out []PersonaSpec
	for _, s := range DefaultPersonas() {
		s.Cadence, s.Thresholds = Cadences{}, Thresholds{}
		out = append(out, s)
	}
	return out
}

// fourPersonas are testSpecs with generic prompts the fake model can read
// the persona's name from ("You are Teacher, ...").
func fourPersonas() []PersonaSpec {
	out := testSpecs()
	for i := range out {
		out[i].System = ""
	}
	return out
}

func TestMentionIsAnsweredByThatPersona(t *testing.T) {
	f := &fakeOpenAI{}
	cfg := testConfig(t)
	cfg.Specs = fourPersonas()
	withFakeModel(t, &cfg, f)
	d := startDaemon(t, cfg)

	m := post(t, d, "general", "alice", "@Teacher explain how a plan for code review works")
	eventually(t, 10*time.Second, "a reply", func() bool { return len(repliesTo(messages(t, d, "general"), m.ID)) > 0 })
	waitSettled(t, d)

	rs := repliesTo(messages(t, d, "general"), m.ID)
	if len(rs) != 1 || rs[0].Author != "Teacher" {
		t.Fatalf("replies = %+v, want one by Teacher", rs)
	}
	r := rs[0]
	if r.Depth != 1 || !strings.HasPrefix(r.Content, "Teacher answers") {
		t.Errorf("reply = %+v", r)
	}
	calls := f.snapshot()
	if len(calls) != 1 || calls[0].persona != "Teacher" || calls[0].model != "fake-model" ||
		calls[0].last != "alice: @Teacher explain how a plan for code review works" {
		t.Errorf("model calls = %+v, want exactly one, by Teacher", calls)
	}
	for _, p := range []string{"Helper", "CodeReview", "Teacher", "Planner"} {
		rec, ok := account(t, d, p, m.ID)
		if !ok || rec.Account != "handled" {
			t.Errorf("%s: account of the message = %+v, %v", p, rec, ok)
		}
		if p == "Teacher" && rec.Note != noteReplied {
			t.Errorf("Teacher's note = %q", rec.Note)
		}
		if p != "Teacher" && rec.Note != noteNotGranted {
			t.Errorf("%s's note = %q, want %q", p, rec.Note, noteNotGranted)
		}
	}
	// The reply itself is delivered to every persona: its author skips its
	// own message, the others account it.
	if rec, _ := account(t, d, "Teacher", r.ID); rec.Account != "skipped" || rec.Note != noteSelf {
		t.Errorf("Teacher's account of its own reply = %+v", rec)
	}
	if d.counted("Teacher", noteSelf) != 1 {
		t.Errorf("own-message count = %d", d.counted("Teacher", noteSelf))
	}
}

func TestWithoutMentionAtMostKAnswer(t *testing.T) {
	for _, k := range []int{1, 2} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			f := &fakeOpenAI{}
			cfg := testConfig(t)
			cfg.Specs = fourPersonas()
			cfg.K = k
			withFakeModel(t, &cfg, f)
			d := startDaemon(t, cfg)

			var posted []chat.Message
			for i, text := range []string{
				"how do I plan the code review of this project?",
				"can someone explain the steps to install go?",
				"what should we learn first, tests or refactor?",
			} {
				posted = append(posted, post(t, d, fmt.Sprintf("room%d", i), "alice", text))
			}
			for _, m := range posted {
				eventually(t, 10*time.Second, "a reply to "+m.Content, func() bool { return len(repliesTo(messages(t, d, m.Room), m.ID)) > 0 })
			}
			waitSettled(t, d)
			for _, m := range posted {
				rs := repliesTo(messages(t, d, m.Room), m.ID)
				if len(rs) < 1 || len(rs) > k {
					t.Errorf("%q: %d replies, want 1..%d", m.Content, len(rs), k)
				}
				authors := map[string]bool{}
				for _, r := range rs {
					if authors[r.Author] {
						t.Errorf("%s answered %q twice", r.Author, m.Content)
					}
					authors[r.Author] = true
				}
			}
		})
	}
}

func TestModelErrorsAreRetriedThenAccounted(t *testing.T) {
	f := &fakeOpenAI{}
	var mu sync.Mutex
	mode := "flaky" // flaky: 429, 500, then 200; down: always 500
	f.fail = func(n int, _ string) int {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case mode == "down":
			return http.StatusInternalServerError
		case n == 0:
			return http.StatusTooManyRequests
		case n == 1:
			return http.StatusInternalServerError
		}
		return 0
	}
	cfg := testConfig(t)
	cfg.Specs = fourPersonas()
	withFakeModel(t, &cfg, f)
	d := startDaemon(t, cfg)

	m := post(t, d, "general", "alice", "@Helper my install fails, why?")
	eventually(t, 10*time.Second, "a reply after a 429 and a 500", func() bool { return len(repliesTo(messages(t, d, "general"), m.ID)) == 1 })
	if calls := f.snapshot(); len(calls) != 3 || calls[0].status != 429 || calls[1].status != 500 || calls[2].status != 0 {
		t.Errorf("calls = %+v, want 429, 500, 200", calls)
	}

	mu.Lock()
	mode = "down"
	mu.Unlock()
	down := post(t, d, "general", "alice", "@Planner plan the release please")
	eventually(t, 10*time.Second, "the failed message accounted", func() bool {
		rec, ok := account(t, d, "Planner", down.ID)
		return ok && rec.Account == "failed"
	})
	// Every attempt of every try was made: MaxAttempts (3) tries of
	// MaxRetries+1 (3) HTTP attempts, each counted in the handler errors.
	if pi, _ := d.Persona("Planner"); pi.Snapshot.Errors != 3 || pi.Snapshot.Counts.Failed != 1 {
		t.Errorf("Planner errors = %d, failed = %d; want 3 and 1", pi.Snapshot.Errors, pi.Snapshot.Counts.Failed)
	}
	if n := len(repliesTo(messages(t, d, "general"), down.ID)); n != 0 {
		t.Errorf("%d replies to a message whose model calls all failed", n)
	}

	// The daemon lives on: once the model is back, the next one is answered.
	mu.Lock()
	mode = "ok"
	mu.Unlock()
	again := post(t, d, "general", "alice", "@Planner and now?")
	eventually(t, 10*time.Second, "a reply once the model is back", func() bool { return len(repliesTo(messages(t, d, "general"), again.ID)) == 1 })
	waitSettled(t, d)
}

func TestHTTPSessionEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = testSpecs() // the built-in personas and the scripted model
	d := startDaemon(t, cfg)
	base := "http://" + d.Addr()
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+d.Token())
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := do("POST", "/api/rooms/general/messages", `{"author":"alice","content":"@CodeReview please review: func f() { x, err := g(); return x }"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	var posted wireMessage // chat.Kind cannot be unmarshalled
	if err := json.Unmarshal(body, &posted); err != nil || posted.ID == "" {
		t.Fatalf("POST answered %s: %v", body, err)
	}
	var reply wireMessage
	eventually(t, 10*time.Second, "the reply over HTTP", func() bool {
		_, b := do("GET", "/api/rooms/general/messages?after="+posted.ID, "")
		var out struct{ Messages []wireMessage }
		_ = json.Unmarshal(b, &out)
		for _, m := range out.Messages {
			if m.ReplyTo == posted.ID {
				reply = m
				return true
			}
		}
		return false
	})
	if reply.Author != "CodeReview" || reply.Kind != "persona" || !strings.Contains(reply.Content, "unchecked") {
		t.Errorf("reply = %+v", reply)
	}
	if code, b := do("GET", "/api/personas/codereview", ""); code != http.StatusOK || !strings.Contains(string(b), `"backlog"`) {
		t.Errorf("GET persona: %d %s", code, b)
	}
	if code, b := do("GET", "/metrics", ""); code != http.StatusOK || !strings.Contains(string(b), "persona_chat_messages_total 1") {
		t.Errorf("GET /metrics: %d, messages counter missing", code)
	}
	if code, _ := do("GET", "/", ""); code != http.StatusOK {
		t.Errorf("dashboard: %d", code)
	}
	waitSettled(t, d)
}

func TestStartFailsCleanly(t *testing.T) {
	cfg := testConfig(t)
	d := startDaemon(t, cfg)

	t.Run("port in use", func(t *testing.T) {
		c := testConfig(t)
		c.Addr = d.Addr()
		d2, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := d2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
			t.Fatalf("Start on a used port: %v", err)
		}
		if err := d2.Start(context.Background()); !errors.Is(err, ErrStarted) {
			t.Errorf("second Start: %v", err)
		}
		if _, err := d2.Post(context.Background(), "general", "a", "b"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Post on a failed daemon: %v", err)
		}
	})
	t.Run("bad persona file", func(t *testing.T) {
		c := testConfig(t)
		c.ConfigFile = "testdata/does-not-exist.yaml"
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Fatalf("New: %v", err)
		}
	})
	t.Run("unreachable nats", func(t *testing.T) {
		c := testConfig(t)
		c.NATSURL = "nats://127.0.0.1:1"
		d3, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := d3.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "nats") {
			t.Fatalf("Start: %v", err)
		}
	})
}

func TestPostValidatesAndPages(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = testSpecs()
	d := startDaemon(t, cfg)
	ctx := context.Background()
	for _, c := range []struct{ room, author, content string }{
		{"Bad Room", "a", "x"}, {"general", " ", "x"}, {"general", "a", " \n"}, {"general", "helper", "x"},
	} {
		if _, err := d.Post(ctx, c.room, c.author, c.content); !errors.Is(err, ErrInvalid) {
			t.Errorf("Post(%q, %q, %q) = %v, want ErrInvalid", c.room, c.author, c.content, err)
		}
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, post(t, d, "paging", "bob", fmt.Sprintf("note %d", i)).ID)
	}
	// Personas may answer the notes meanwhile: page past ids[1] and keep
	// the humans' messages, which must be the next notes in order.
	got, err := d.Messages(ctx, "paging", ids[1], 2)
	if err != nil {
		t.Fatal(err)
	}
	page, err := d.Messages(ctx, "paging", ids[1], 100)
	if err != nil {
		t.Fatal(err)
	}
	// A limit of 2 is the first two of the longer page (a persona's answer
	// may come between two notes).
	if len(got) != 2 || len(page) < 2 || got[0].ID != page[0].ID || got[1].ID != page[1].ID {
		t.Errorf("after %s limit 2 = %v, want the first two of %v", ids[1], got, page)
	}
	var humans []string
	for _, m := range page {
		if m.Kind == chat.Human {
			humans = append(humans, m.ID)
		}
	}
	if !slices.Equal(humans, ids[2:]) {
		t.Errorf("after %s: human messages %v, want %v", ids[1], humans, ids[2:])
	}
	if _, err := d.Messages(ctx, "paging", "m-unknown", 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("after an unknown id: %v", err)
	}
	if m, err := d.Message(ctx, "paging", ids[3]); err != nil || m.ID != ids[3] || m.Content != "note 3" {
		t.Errorf("Message(%s) = %+v, %v", ids[3], m, err)
	}
	post(t, d, "elsewhere", "bob", "other room")
	if _, err := d.Message(ctx, "elsewhere", ids[3]); !errors.Is(err, ErrNotFound) {
		t.Errorf("a message asked for in another room: %v, want ErrNotFound", err)
	}
	if _, err := d.Message(ctx, "paging", "m000000000000nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown id: %v, want ErrNotFound", err)
	}
	if got, _ := d.Messages(ctx, "empty-room", "", 10); got == nil || len(got) != 0 {
		t.Errorf("empty room = %v, want an empty list", got)
	}
	if st := d.Status(); !slices.Contains(st.Rooms, "paging") || st.Thermal == "" {
		t.Errorf("status = %+v", st)
	}
	waitSettled(t, d)
}

func TestSubscribeStreamsMessagesThoughtsAndDecisions(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = testSpecs()
	d := startDaemon(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	events, stop := d.Subscribe(ctx, "live")
	defer stop()

	m := post(t, d, "live", "ann", "@Planner plan a small release")
	seen := map[string]int{}
	deadline := time.After(10 * time.Second)
	// The addressee answers without waiting for the decision window (it is
	// granted by rule), so the reply may come before the decision: read
	// until both have.
	for reply := false; !reply || seen["decision"] == 0; {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("events closed early")
			}
			if ev.Room != "live" {
				t.Errorf("event of room %q on a subscription to live", ev.Room)
			}
			seen[ev.Type]++
			switch ev.Type {
			case "message":
				reply = reply || ev.Message.ReplyTo == m.ID && ev.Message.Author == "Planner"
			case "thought":
				if ev.Thought.Item != m.ID {
					t.Errorf("thought about %s", ev.Thought.Item)
				}
			case "decision":
				if ev.Decision.Item != m.ID || !ev.Decision.IsGranted("Planner") {
					t.Errorf("decision = %+v", ev.Decision)
				}
			}
		case <-deadline:
			t.Fatalf("no reply event after 10s; saw %v", seen)
		}
	}
	if seen["message"] != 2 || seen["thought"] == 0 || seen["decision"] != 1 {
		t.Errorf("events = %v, want the message, thoughts, one decision and the reply", seen)
	}
	// Cancelling the context ends the subscription.
	cancel()
	eventually(t, 5*time.Second, "the channel closed after cancel", func() bool {
		for {
			select {
			case _, ok := <-events:
				if !ok {
					return true
				}
			default:
				return false
			}
		}
	})
	waitSettled(t, d)
}

func TestDaemonsShareANATSServer(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}

	start := func(personas ...string) *Daemon {
		cfg := testConfig(t)
		cfg.Specs = testSpecs()
		cfg.NATSURL = ns.ClientURL()
		cfg.Personas = personas
		return startDaemon(t, cfg)
	}
	a := start("Helper", "CodeReview")
	b := start("Teacher", "Planner")
	here := 0
	for _, p := range a.Personas() {
		if p.Here {
			here++
		}
	}
	if n := len(a.Personas()); here != 2 || n != 4 {
		t.Errorf("daemon a runs %d personas and lists %d, want 2 of the 4", here, n)
	}

	m := post(t, a, "shared", "ann", "@Teacher explain channels")
	eventually(t, 10*time.Second, "Teacher, on the other daemon, answers", func() bool {
		rs := repliesTo(messages(t, a, "shared"), m.ID)
		return len(rs) == 1 && rs[0].Author == "Teacher"
	})
	if rs := repliesTo(messages(t, b, "shared"), m.ID); len(rs) != 1 {
		t.Errorf("daemon b sees %d replies", len(rs))
	}
	waitSettled(t, a)
	waitSettled(t, b)
	// Daemon a leaves a message for b's Teacher alone.
	if rec, ok := account(t, a, "Helper", m.ID); !ok || rec.Note != noteElsewhere {
		t.Errorf("Helper, on daemon a, accounted %+v", rec)
	}

	// A message that names nobody and interests personas of both daemons:
	// each daemon's stream grants one of its own, and the cluster-wide
	// slots let only K=1 of them answer.
	q := post(t, b, "shared", "ann", "how should I plan and explain tests for my go code?")
	waitSettled(t, a)
	waitSettled(t, b)
	eventually(t, 15*time.Second, "someone answers the open question", func() bool {
		return len(repliesTo(messages(t, a, "shared"), q.ID)) > 0
	})
	waitSettled(t, a)
	waitSettled(t, b)
	if rs := repliesTo(messages(t, a, "shared"), q.ID); len(rs) != 1 {
		var who []string
		for _, r := range rs {
			who = append(who, r.Author)
		}
		t.Errorf("%d replies across two daemons with K=1: %v", len(rs), who)
	}
}
