package server

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personaos/persona/llm"
	"github.com/personaos/persona/slots"
)

// Model calls take the backend's slots (issue 11, item 1): the daemon's
// side of package slots.

// peakModel counts the model calls in flight and records the order they
// began in.
type peakModel struct {
	llm.Model
	mu        sync.Mutex
	cur, peak int
	order     []string
}

func (m *peakModel) Complete(ctx context.Context, req llm.Request) (llm.Reply, error) {
	m.mu.Lock()
	m.cur++
	m.peak = max(m.peak, m.cur)
	m.order = append(m.order, req.History[len(req.History)-1].Content)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.cur--
		m.mu.Unlock()
	}()
	return m.Model.Complete(ctx, req)
}

func (m *peakModel) snapshot() (int, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak, append([]string(nil), m.order...)
}

func TestMentionTakesTheNextSlotAndTheSlotsAreNeverExceeded(t *testing.T) {
	g := newGateModel()
	defer g.release()
	pm := &peakModel{Model: g}
	cfg := testConfig(t)
	cfg.Specs = []PersonaSpec{{Name: "Ada", Expertise: []string{"go"}}, {Name: "Bob", Expertise: []string{"go"}}}
	cfg.Model = pm
	cfg.ModelSlots = 1
	d := startDaemon(t, cfg)

	post(t, d, "one", "ann", "BLOCK a go question for anyone")
	if got := g.next(t); !strings.Contains(got, "BLOCK") {
		t.Fatalf("first model call %q, want the blocking question", got)
	}
	// A second question waits for the one slot, held by the blocked call.
	post(t, d, "two", "cat", "another go question, when you can")
	eventually(t, 10*time.Second, "the second question's call waiting for the slot", func() bool {
		_, _, waiting := d.slots.Load()
		return waiting[slots.Human] == 1
	})
	m := post(t, d, "three", "dan", "@Bob quick one?")
	eventually(t, 10*time.Second, "the mention answered while the first call is blocked", func() bool {
		return len(repliesTo(messages(t, d, "three"), m.ID)) == 1
	})
	peak, order := pm.snapshot()
	if peak > 1 {
		t.Fatalf("%d model calls in flight at once with one slot", peak)
	}
	// After the blocked call, the mention was the next to start: it took
	// the slot of the ordinary call in progress (put back, not failed),
	// ahead of the question that waited longer.
	i := 0
	for i < len(order) && strings.Contains(order[i], "BLOCK") {
		i++
	}
	if i == len(order) || !strings.Contains(order[i], "@Bob") {
		t.Fatalf("model calls began in the order %q: the mention should follow the blocked call", order)
	}
	g.release()
	eventually(t, 10*time.Second, "every question answered", func() bool {
		return len(messages(t, d, "one")) == 2 && len(messages(t, d, "two")) == 2
	})
	if peak, _ := pm.snapshot(); peak > 1 {
		t.Fatalf("%d model calls in flight at once with one slot", peak)
	}
	waitSettled(t, d)
}

func TestModelSlotsDefaultByBackendAndLocalServerNeedsAModelName(t *testing.T) {
	t.Setenv(llm.EnvBaseURL, "")
	t.Setenv(llm.EnvAPIKey, "")
	t.Setenv(llm.EnvModel, "")
	for _, tc := range []struct {
		url  string
		want int
	}{
		{"", 4}, // the built-in model
		{"http://127.0.0.1:11434/v1", 1},
		{"http://localhost:8080/v1", 1},
		{"http://192.168.1.20:8000/v1", 1},
		{"https://api.openai.com/v1", 4},
	} {
		d := &Daemon{cfg: Config{ModelBaseURL: tc.url}}
		if k, why := d.modelSlots(); k != tc.want || why == "" {
			t.Errorf("%q: %d slots (%s), want %d", tc.url, k, why, tc.want)
		}
	}
	if k, _ := (&Daemon{cfg: Config{ModelBaseURL: "http://127.0.0.1:1/v1", ModelSlots: 3}}).modelSlots(); k != 3 {
		t.Errorf("--model-slots 3 gave %d", k)
	}
	err := localWithoutModel(llm.OpenAIOptions{BaseURL: "http://127.0.0.1:11434/v1"})
	if err == nil || !strings.Contains(err.Error(), "--model") {
		t.Fatalf("a local server without a model name: %v", err)
	}
	if err := localWithoutModel(llm.OpenAIOptions{BaseURL: "http://127.0.0.1:11434/v1", Model: "llama3.2"}); err != nil {
		t.Fatal(err)
	}
	if err := localWithoutModel(llm.OpenAIOptions{BaseURL: "https://api.openai.com/v1"}); err != nil {
		t.Fatalf("a hosted server may use the default model: %v", err)
	}
}
