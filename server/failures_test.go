package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/llm"
)

// failingModel rejects every call as a local server does for a model it
// does not have, until fixed.
type failingModel struct{ fixed atomic.Bool }

func (m *failingModel) Complete(ctx context.Context, req llm.Request) (llm.Reply, error) {
	if m.fixed.Load() {
		return llm.Reply{Content: "back again"}, nil
	}
	return llm.Reply{}, fmt.Errorf("%w: model \"llama3.2\" not found, try pulling it first", llm.ErrRejected)
}

func TestAModelFailureIsShownInTheRoomOnTheCardAndInMetrics(t *testing.T) {
	fm := &failingModel{}
	var logs lockedBuffer
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Model = fm
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	d := startDaemon(t, cfg)

	m := post(t, d, "r", "ann", "@Solo are you there?")
	var note chat.Message
	eventually(t, 10*time.Second, "a system note in the room", func() bool {
		for _, x := range messages(t, d, "r") {
			if x.Kind == chat.System {
				note = x
				return true
			}
		}
		return false
	})
	if !strings.Contains(note.Content, "Solo could not answer") || !strings.Contains(note.Content, `model "llama3.2" not found`) || note.ReplyTo != m.ID {
		t.Fatalf("note = %+v, want who could not answer, the server's reason and the message it answers", note)
	}
	pi, _ := d.Persona("Solo")
	// Failed may be 2: a message whose express delivery fails before the
	// ledger has its account is delivered durably again and fails again
	// (noted once; see the closing note of issue 11).
	if pi.Snapshot.Counts.Failed < 1 || pi.LastModelFailure == nil || !strings.Contains(pi.LastModelFailure.Reason, "not found") {
		t.Fatalf("persona info: failed %d, last failure %+v", pi.Snapshot.Counts.Failed, pi.LastModelFailure)
	}
	if n := testutil.ToFloat64(d.modelFailures.WithLabelValues("Solo", "rejected")); n < 1 {
		t.Fatalf("persona_model_failures_total{class=rejected} = %v", n)
	}
	if rec, _ := account(t, d, "Solo", m.ID); rec.Account != "failed" {
		t.Fatalf("account %+v: a model failure is the message's final account, never answered", rec)
	}
	// The log says it once, at info, with the reason.
	line := `level=INFO msg="message not answered: it failed" persona=Solo room=r message=` + m.ID
	if out := logs.String(); !strings.Contains(out, line) || !strings.Contains(out, "not found") {
		t.Fatalf("log lacks %q with the reason:\n%s", line, out)
	}
	// Nobody answers the note, and a later message is answered once the
	// model works again.
	fm.fixed.Store(true)
	m2 := post(t, d, "r", "ann", "@Solo and now?")
	eventually(t, 10*time.Second, "the next mention answered", func() bool { return len(repliesTo(messages(t, d, "r"), m2.ID)) == 1 })
	waitSettled(t, d)
	if n := len(repliesTo(messages(t, d, "r"), note.ID)); n != 0 {
		t.Fatalf("%d replies to the system note", n)
	}
	notes := 0
	for _, x := range messages(t, d, "r") {
		if x.Kind == chat.System && x.ReplyTo == m.ID {
			notes++
		}
	}
	if notes != 1 {
		t.Fatalf("%d system notes for one message, want 1", notes)
	}
}

// lockedBuffer is a log sink safe for the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStartProbesTheModelServerAndWarnsWithoutRefusing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[{"id":"qwen3","object":"model","created":1,"owned_by":"library"}]}`)
	}))
	defer srv.Close()
	var logs lockedBuffer
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.ModelBaseURL, cfg.ModelName, cfg.ModelAPIKey = srv.URL+"/v1", "llama3.2", "k"
	startDaemon(t, cfg) // starts: a missing model is a warning, not a refusal
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "model not found on the server") ||
		!strings.Contains(out, "model=llama3.2") || !strings.Contains(out, "slots=1") || !strings.Contains(out, srv.URL) {
		t.Fatalf("start log lacks the probe's warning with URL, model and slots:\n%s", out)
	}
}

// recordingServer is an OpenAI-compatible server that answers every chat
// call and keeps the request bodies.
type recordingServer struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (s *recordingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/v1/models" {
		io.WriteString(w, `{"object":"list","data":[{"id":"small","object":"model","created":1,"owned_by":"t"},{"id":"big","object":"model","created":1,"owned_by":"t"}]}`)
		return
	}
	var body map[string]any
	raw, _ := io.ReadAll(r.Body)
	json.Unmarshal(raw, &body)
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"x","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hello there"}}]}`)
}

func (s *recordingServer) calls() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

func TestAPersonaMayHaveItsOwnBackendAndSettings(t *testing.T) {
	var main, own recordingServer
	ms, os := httptest.NewServer(&main), httptest.NewServer(&own)
	defer ms.Close()
	defer os.Close()
	temp := 0.2
	cfg := testConfig(t)
	cfg.ModelBaseURL, cfg.ModelName, cfg.ModelAPIKey, cfg.MaxTokens = ms.URL+"/v1", "small", "k", 100
	cfg.Specs = []PersonaSpec{
		{Name: "Plain", Expertise: []string{"go"}},
		{Name: "Own", Expertise: []string{"rust"}, ModelURL: os.URL + "/v1", Model: "big", MaxTokens: 400, Temperature: &temp},
	}
	d := startDaemon(t, cfg)
	m1 := post(t, d, "r", "ann", "@Plain hi")
	m2 := post(t, d, "s", "bob", "@Own hi")
	eventually(t, 10*time.Second, "both answered", func() bool {
		return len(repliesTo(messages(t, d, "r"), m1.ID)) == 1 && len(repliesTo(messages(t, d, "s"), m2.ID)) == 1
	})
	a, b := main.calls(), own.calls()
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("calls: %d on the daemon's server, %d on the persona's; want 1 and 1", len(a), len(b))
	}
	if a[0]["model"] != "small" || a[0]["max_tokens"] != float64(100) || a[0]["temperature"] != nil {
		t.Errorf("the daemon's defaults: %v", a[0])
	}
	if b[0]["model"] != "big" || b[0]["max_tokens"] != float64(400) || b[0]["temperature"] != 0.2 {
		t.Errorf("the persona's own settings: %v", b[0])
	}
	waitSettled(t, d)
}

func TestConsecutivePromptsShareTheirPrefix(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.ReplyBudget = 100 // not paced: the test is about the prompts
	d := startDaemon(t, cfg)
	for i := range 6 {
		m := post(t, d, "r", "ann", fmt.Sprintf("@Solo question number %d?", i))
		eventually(t, 10*time.Second, "answered", func() bool { return len(repliesTo(messages(t, d, "r"), m.ID)) == 1 })
	}
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "persona_prompt_prefix_reused_ratio" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 5 {
			t.Fatalf("%d observations, want 5 (every call after the first)", h.GetSampleCount())
		}
		// Each prompt adds a question and a reply to the last one, so the
		// share depends on the replies' length: 0.69 with the scripted
		// demo replies.
		if mean := h.GetSampleSum() / float64(h.GetSampleCount()); mean < 0.65 {
			t.Fatalf("mean share of the prompt reused %.2f, want most of it: the window should stay put", mean)
		}
		return
	}
	t.Fatal("no persona_prompt_prefix_reused_ratio in the registry")
}
