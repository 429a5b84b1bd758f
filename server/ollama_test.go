package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/llm"
	"github.com/personaos/persona/llm/tinymodel"
)

// The tests in this file run the daemon against a real model server:
// Ollama (built by .ci/ollama.sh at a pinned version from the Go module
// proxy), serving the project's own tiny model (package tinymodel) on
// loopback. They find the binary in $PERSONA_OLLAMA, else "ollama" on
// PATH; without one they skip, except under CI=true, where a missing
// server is a failure.

// ollamaBin returns the Ollama binary, or skips (fails under CI).
func ollamaBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("PERSONA_OLLAMA")
	if bin == "" {
		bin, _ = exec.LookPath("ollama")
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Ollama server: CI must build it (.ci/ollama.sh) and set PERSONA_OLLAMA")
		}
		t.Skip("no Ollama server: run PERSONA_OLLAMA=$(.ci/ollama.sh) go test ./server to run the model-server tests")
	}
	return bin
}

// ollama is one `ollama serve` on a loopback port, with its own HOME and
// model store, holding the tiny models.
type ollama struct {
	t      *testing.T
	bin    string
	host   string // 127.0.0.1:port
	dir    string
	env    []string
	cmd    *exec.Cmd
	waited chan struct{}
	log    *syncBuffer
}

// startOllama starts a server with parallel request slots and creates
// the tiny models in it. It stops when the test ends.
func startOllama(t *testing.T, parallel int) *ollama {
	t.Helper()
	bin := ollamaBin(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	o := &ollama{t: t, bin: bin, host: host, dir: dir, log: &syncBuffer{}}
	o.env = append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"),
		"OLLAMA_MODELS="+filepath.Join(dir, "models"),
		"OLLAMA_HOST="+host,
		fmt.Sprintf("OLLAMA_NUM_PARALLEL=%d", parallel),
		"OLLAMA_KEEP_ALIVE=-1",
		"OLLAMA_NOPRUNE=1",
	)
	for _, d := range []string{"home", "models"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o.start()
	t.Cleanup(o.stop)

	var gguf bytes.Buffer
	if err := tinymodel.Write(&gguf, tinymodel.DefaultSeed); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, tinymodel.FileName)
	if err := os.WriteFile(path, gguf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, mf := range tinymodel.Modelfiles(path) {
		file := filepath.Join(dir, name+".Modelfile")
		if err := os.WriteFile(file, []byte(mf), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "create", name, "-f", file)
		cmd.Env = o.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ollama create %s: %v\n%s\nserver log:\n%s", name, err, out, o.log)
		}
	}
	return o
}

// start runs `ollama serve` and waits until it answers.
func (o *ollama) start() {
	o.t.Helper()
	o.cmd = exec.Command(o.bin, "serve")
	o.cmd.Env = o.env
	o.cmd.Stdout, o.cmd.Stderr = o.log, o.log
	if err := o.cmd.Start(); err != nil {
		o.t.Fatalf("ollama serve: %v", err)
	}
	o.waited = make(chan struct{})
	go func() {
		o.cmd.Wait()
		close(o.waited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + o.host + "/api/version")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-o.waited:
			o.t.Fatalf("ollama serve exited:\n%s", o.log)
		default:
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("ollama serve not up after 30s:\n%s", o.log)
		}
		time.Sleep(20 * time.Millisecond) // polling a separate process: nothing to wait on
	}
}

// stop ends the server (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (o *ollama) stop() {
	if o.cmd == nil || o.cmd.Process == nil {
		return
	}
	select {
	case <-o.waited:
		return
	default:
	}
	o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.waited:
	case <-time.After(10 * time.Second):
		o.cmd.Process.Kill()
		<-o.waited
	}
}

// counting is a reverse proxy in front of the model server that sees its
// chat calls as the server does: how many are in flight at once, in which
// order they started, and, for those hold matches, holds them until
// released (or until the caller gives up).
//
// A call the daemon aborts (a preempted one) ends on the server when the
// server notices its connection closed, a moment after the daemon has let
// the next call go: so a call that arrives while slots calls are in
// flight is admitted once one of them ends, or after a grace of one
// second, and counted then. A daemon that really sent more calls at once
// than its slots shows up as more than slots in flight past the grace.
type counting struct {
	proxy *httputil.ReverseProxy
	hold  func(persona, last string) bool
	fail  func(n int) int // a status to answer the n-th call (from 0) with instead of forwarding; 0: forward
	slots int

	mu       sync.Mutex
	inFlight int
	max      int
	started  []call
	gate     chan struct{}
	ended    chan struct{} // closed and replaced when a call ends
}

type call struct{ persona, last string }

func newCounting(target string, slots int) *counting {
	u, _ := url.Parse("http://" + target)
	return &counting{proxy: httputil.NewSingleHostReverseProxy(u), slots: slots, gate: make(chan struct{}), ended: make(chan struct{})}
}

func (c *counting) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.gate:
	default:
		close(c.gate)
	}
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" {
		c.proxy.ServeHTTP(w, r)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var req struct {
		Messages []struct{ Role, Content string } `json:"messages"`
	}
	json.Unmarshal(raw, &req)
	var who, last string
	if len(req.Messages) > 0 {
		who, _, _ = strings.Cut(strings.TrimPrefix(req.Messages[0].Content, "You are "), ",")
		last = req.Messages[len(req.Messages)-1].Content
	}
	grace := time.Now().Add(time.Second)
	c.mu.Lock()
	for c.inFlight >= c.slots {
		wait := time.Until(grace)
		if wait <= 0 {
			break // counted over the slots
		}
		ended := c.ended
		c.mu.Unlock()
		select {
		case <-ended:
		case <-time.After(wait):
		}
		c.mu.Lock()
	}
	n := len(c.started)
	c.started = append(c.started, call{who, last})
	c.inFlight++
	c.max = max(c.max, c.inFlight)
	gate := c.gate
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		close(c.ended)
		c.ended = make(chan struct{})
		c.mu.Unlock()
	}()
	if c.fail != nil {
		if st := c.fail(n); st != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"error":{"message":"server busy","type":"api_error"}}`)
			return
		}
	}
	if c.hold != nil && c.hold(who, last) {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	c.proxy.ServeHTTP(w, r)
}

func (c *counting) snapshot() (inFlight, most int, started []call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight, c.max, append([]call(nil), c.started...)
}

// ollamaConfig is a test daemon's config for the tiny model behind proxy.
func ollamaConfig(t *testing.T, proxy string, slots int) Config {
	cfg := testConfig(t)
	cfg.ModelBaseURL = proxy + "/v1"
	cfg.ModelName = tinymodel.ModelName
	cfg.ModelSlots = slots
	cfg.ModelOptions = llm.OpenAIOptions{MaxRetries: 3, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Timeout: 20 * time.Second}
	return cfg
}

// Against the real server: an @mention is answered with the model's own
// word, the reply streams as a draft first, and a busy 503 (Ollama's has no
// Retry-After) is retried.
func TestOllamaAnswersAMentionStreamingAfterA503(t *testing.T) {
	o := startOllama(t, 2)
	c := newCounting(o.host, 2)
	c.fail = func(n int) int {
		if n == 0 {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	ps := httptest.NewServer(c)
	defer ps.Close()
	cfg := ollamaConfig(t, ps.URL, 2)
	cfg.Specs = solo()
	d := startDaemon(t, cfg)
	ch, cancel := d.rooms.subscribe("r")
	defer cancel()

	m := post(t, d, "r", "ann", "@Solo are you there?")
	got := drafts(t, ch, 60*time.Second, func(ds []Draft) bool { return len(ds) > 0 && ds[len(ds)-1].State != DraftWriting })
	if last := got[len(got)-1]; last.State != DraftSent || got[0].State != DraftWriting || got[0].Text == "" {
		t.Fatalf("drafts %+v, want a writing draft and then the sent reply", got)
	}
	replies := repliesTo(messages(t, d, "r"), m.ID)
	if len(replies) != 1 || !strings.Contains(replies[0].Content, tinymodel.Word) {
		t.Fatalf("replies %+v, want one containing the model's word %q", replies, tinymodel.Word)
	}
	if _, _, started := c.snapshot(); len(started) != 2 {
		t.Errorf("the server saw %d chat calls, want 2 (the 503, then the answer)", len(started))
	}
	t.Logf("answered %q", replies[0].Content)
}

// With the slots full of ordinary calls, an @mention's call is the next to
// reach the server (it preempts one of them), and the server never sees
// more calls at once than the daemon's slots.
func TestOllamaNeverExceedsTheSlotsAndAMentionGoesNext(t *testing.T) {
	o := startOllama(t, 2)
	c := newCounting(o.host, 2)
	c.hold = func(_, last string) bool { return strings.Contains(last, "HOLD") }
	ps := httptest.NewServer(c)
	defer ps.Close()
	defer c.release()
	cfg := ollamaConfig(t, ps.URL, 2)
	cfg.Specs = fourPersonas()
	d := startDaemon(t, cfg)

	for i := range 4 {
		post(t, d, fmt.Sprintf("room%d", i), "ann", fmt.Sprintf("HOLD question %d: how do I start?", i))
	}
	eventually(t, 30*time.Second, "both slots held by ordinary calls", func() bool {
		n, _, _ := c.snapshot()
		return n == 2
	})
	_, _, before := c.snapshot()
	m := post(t, d, "urgent", "bob", "@Helper the build is red, what now?")
	eventually(t, 60*time.Second, "the mention answered while the ordinary calls are held", func() bool {
		return len(repliesTo(messages(t, d, "urgent"), m.ID)) == 1
	})
	_, _, after := c.snapshot()
	if len(after) <= len(before) || !strings.Contains(after[len(before)].last, "build is red") {
		t.Fatalf("the first call after the mention was %+v, want the mention's", after[len(before):])
	}
	c.release()
	waitSettledWithin(t, d, 60*time.Second)
	_, most, all := c.snapshot()
	if most != 2 {
		t.Errorf("at most %d calls at once on the server, want exactly the 2 slots", most)
	}
	t.Logf("%d chat calls, at most %d at once", len(all), most)
}

// Killing the server mid-run: a mention whose retries run out shows the
// failure in the room and on the persona, is not accounted answered, and
// answering resumes when the server is back.
func TestOllamaStoppedMidRunShowsTheFailureAndResumes(t *testing.T) {
	o := startOllama(t, 1)
	cfg := ollamaConfig(t, "http://"+o.host, 1)
	cfg.Specs = solo()
	d := startDaemon(t, cfg)
	first := post(t, d, "r", "ann", "@Solo hello?")
	eventually(t, 60*time.Second, "answered while the server runs", func() bool {
		return len(repliesTo(messages(t, d, "r"), first.ID)) == 1
	})

	o.stop()
	// Written almost its deadline ago: the retries end within seconds.
	now := time.Now()
	lost := inject(t, d, chat.Message{ID: newMessageID(now), Room: "r", Author: "ann", Kind: chat.Human,
		Content: "@Solo still there?", At: now.Add(-transientRetryFor + 3*time.Second).UTC()})
	var note chat.Message
	eventually(t, 60*time.Second, "a system note in the room", func() bool {
		for _, m := range messages(t, d, "r") {
			if m.Kind == chat.System && m.ReplyTo == lost.ID {
				note = m
				return true
			}
		}
		return false
	})
	if !strings.Contains(note.Content, "Solo could not answer") || !strings.Contains(note.Content, o.host) {
		t.Errorf("note %q, want who could not answer and the server's address", note.Content)
	}
	pi, _ := d.Persona("Solo")
	if pi.LastModelFailure == nil || pi.Snapshot.Counts.Failed < 1 {
		t.Errorf("persona card: last failure %+v, failed %d; want both", pi.LastModelFailure, pi.Snapshot.Counts.Failed)
	}
	if n := len(repliesTo(messages(t, d, "r"), lost.ID)); n != 0 {
		t.Fatalf("%d replies to a message the model never answered", n)
	}
	eventually(t, 20*time.Second, "the lost message accounted", func() bool {
		rec, ok := account(t, d, "Solo", lost.ID)
		return ok && rec.Account == "failed"
	})

	o.start()
	again := post(t, d, "r", "ann", "@Solo back now?")
	eventually(t, 60*time.Second, "answered after the server came back", func() bool {
		return len(repliesTo(messages(t, d, "r"), again.ID)) == 1
	})
}

// An unknown model: the start-up probe warns, and a mention gets a system
// note with the server's own words at once (a 404 is not retried).
func TestOllamaUnknownModelIsShownInTheRoom(t *testing.T) {
	o := startOllama(t, 1)
	cfg := ollamaConfig(t, "http://"+o.host, 1)
	cfg.ModelName = "no-such-model"
	cfg.Specs = solo()
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	d := startDaemon(t, cfg)
	if s := logs.String(); !strings.Contains(s, "model not found on the server") || !strings.Contains(s, tinymodel.ModelName) {
		t.Errorf("start-up log lacks the probe's warning with what is served:\n%s", s)
	}
	m := post(t, d, "r", "ann", "@Solo hello?")
	eventually(t, 30*time.Second, "a system note naming the missing model", func() bool {
		for _, x := range messages(t, d, "r") {
			if x.Kind == chat.System && x.ReplyTo == m.ID && strings.Contains(x.Content, "no-such-model") && strings.Contains(x.Content, "not found") {
				return true
			}
		}
		return false
	})
}

func waitSettledWithin(t *testing.T, d *Daemon, within time.Duration) {
	t.Helper()
	eventually(t, within, "every message accounted by every persona", func() bool { return settled(d) })
}
