package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// step is one canned answer of the fake server; the last step repeats.
type step struct {
	status int
	header map[string]string
	body   string // default: a JSON error for status >= 400, okBody("ok") otherwise
	hang   bool   // never answer; wait for the client to give up
}

// wireMessage and wireRequest are what the fake server decodes: the request
// as it crossed the wire, independent of openai-go's types.
type wireMessage struct {
	Role    string `json:"role"`
	Name    string `json:"name"`
	Content string `json:"content"`
}

type wireRequest struct {
	Model               string        `json:"model"`
	Messages            []wireMessage `json:"messages"`
	MaxTokens           *int          `json:"max_tokens"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
	Temperature         *float64      `json:"temperature"`
}

type seen struct {
	method, path, auth string
	at                 time.Time
	body               wireRequest
}

// fakeOpenAI is an OpenAI-compatible chat completions endpoint that records
// every request it gets and answers with scripted steps.
type fakeOpenAI struct {
	t     *testing.T
	steps []step

	mu   sync.Mutex
	reqs []seen
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body wireRequest
	raw, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(raw, &body)
	}
	if err != nil {
		f.t.Errorf("fake server: bad request body %q: %v", raw, err)
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), time.Now(), body})
	f.mu.Unlock()

	s := f.steps[min(n, len(f.steps)-1)]
	if s.hang {
		<-r.Context().Done()
		return
	}
	for k, v := range s.header {
		w.Header().Set(k, v)
	}
	status := cmpOr(s.status, http.StatusOK)
	b := s.body
	if b == "" {
		if status >= 400 {
			b = fmt.Sprintf(`{"error":{"message":"fake %d","type":"fake","code":"fake"}}`, status)
		} else {
			b = okBody("ok")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, b)
}

func (f *fakeOpenAI) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func okBody(content string) string {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "served-model",
		"choices": []any{map[string]any{
			"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": content},
		}},
		"usage": map[string]any{"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
	})
	return string(b)
}

// loopbackServer serves f on 127.0.0.1 and returns its /v1 base URL.
func loopbackServer(t *testing.T, f *fakeOpenAI) string {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// pipeListener is an in-memory net.Listener whose client side is a dialer.
// A synctest bubble never goes idle while a goroutine waits on a real
// socket, so to run the HTTP exchange on the bubble's fake clock the fake
// server listens here and the client dials here, over net.Pipe.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error { l.once.Do(func() { close(l.done) }); return nil }

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pipeServer serves f inside the current synctest bubble and returns the
// base URL and the HTTP client that reaches it.
func pipeServer(t *testing.T, f *fakeOpenAI) (string, *http.Client) {
	l := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := httptest.NewUnstartedServer(f)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	tr := &http.Transport{DialContext: l.dial}
	t.Cleanup(srv.Close)
	t.Cleanup(tr.CloseIdleConnections)
	return srv.URL + "/v1", &http.Client{Transport: tr}
}

// sleepRecorder stands in for the backoff timer in loopback tests: it
// records each wait asked for and returns at once.
type sleepRecorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.sleeps = append(s.sleeps, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newClient(t *testing.T, opts OpenAIOptions) *OpenAI {
	t.Helper()
	c, err := NewOpenAI(opts)
	if err != nil {
		t.Fatalf("NewOpenAI: %v", err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func TestOpenAISendsPromptAndReturnsReply(t *testing.T) {
	f := &fakeOpenAI{t: t, steps: []step{{body: okBody("<think>hmm</think>\n Try a buffered channel. ")}}}
	c := newClient(t, OpenAIOptions{BaseURL: loopbackServer(t, f), APIKey: "sk-test", Model: "test-model"})

	reply, err := c.Complete(t.Context(), Request{
		Persona: "Helper",
		System:  "You are Helper, a friendly assistant.",
		History: []Message{
			{Role: RoleUser, Name: "Joel Smith", Content: "my goroutine blocks"},
			{Role: RoleAssistant, Name: "Helper", Content: "where does it block?"},
			{Role: RoleUser, Name: "Joel Smith", Content: "on send"},
		},
		MaxTokens:   200,
		Temperature: ptr(0.4),
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := Reply{Content: "Try a buffered channel.", Model: "served-model", PromptTokens: 42, CompletionTokens: 7, Attempts: 1}
	if reply != want {
		t.Errorf("reply = %+v, want %+v (think block stripped, usage and served model reported)", reply, want)
	}

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/v1/chat/completions" {
		t.Errorf("request = %s %s, want POST /v1/chat/completions", r.method, r.path)
	}
	if r.auth != "Bearer sk-test" {
		t.Errorf("Authorization = %q, want bearer key", r.auth)
	}
	if r.body.Model != "test-model" {
		t.Errorf("model = %q, want test-model", r.body.Model)
	}
	wantMsgs := []wireMessage{
		{Role: "system", Content: "You are Helper, a friendly assistant."},
		{Role: "user", Name: "Joel_Smith", Content: "Joel Smith: my goroutine blocks"},
		{Role: "assistant", Name: "Helper", Content: "where does it block?"},
		{Role: "user", Name: "Joel_Smith", Content: "Joel Smith: on send"},
	}
	if !slices.Equal(r.body.Messages, wantMsgs) {
		t.Errorf("messages:\n got %+v\nwant %+v", r.body.Messages, wantMsgs)
	}
	if r.body.MaxTokens == nil || *r.body.MaxTokens != 200 || r.body.MaxCompletionTokens != nil {
		t.Errorf("max_tokens = %v, max_completion_tokens = %v; want 200 and absent", r.body.MaxTokens, r.body.MaxCompletionTokens)
	}
	if r.body.Temperature == nil || *r.body.Temperature != 0.4 {
		t.Errorf("temperature = %v, want 0.4", r.body.Temperature)
	}
	if got, want := c.Stats(), (Stats{Calls: 1, Attempts: 1, PromptTokens: 42, CompletionTokens: 7}); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}

func TestOpenAIOptionalFields(t *testing.T) {
	t.Setenv(EnvAPIKey, "")
	f := &fakeOpenAI{t: t, steps: []step{{}}}
	c := newClient(t, OpenAIOptions{BaseURL: loopbackServer(t, f), Model: "m", MaxCompletionTokens: true})
	if _, err := c.Complete(t.Context(), Request{System: "s", MaxTokens: 50}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if _, err := c.Complete(t.Context(), Request{History: []Message{{Role: RoleUser, Content: "hi"}}}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	reqs := f.requests()
	if reqs[0].auth != "" {
		t.Errorf("Authorization = %q, want none without a key (local servers)", reqs[0].auth)
	}
	if b := reqs[0].body; b.MaxCompletionTokens == nil || *b.MaxCompletionTokens != 50 || b.MaxTokens != nil || b.Temperature != nil {
		t.Errorf("first body = %+v, want only max_completion_tokens 50", b)
	}
	if got, want := reqs[1].body.Messages, []wireMessage{{Role: "user", Content: "hi"}}; !slices.Equal(got, want) {
		t.Errorf("anonymous user message = %+v, want %+v (no name, no prefix, no system)", got, want)
	}
}

func TestOpenAIEnvironmentFallback(t *testing.T) {
	f := &fakeOpenAI{t: t, steps: []step{{}}}
	t.Setenv(EnvBaseURL, loopbackServer(t, f))
	t.Setenv(EnvAPIKey, "env-key")
	t.Setenv(EnvModel, "env-model")
	c := newClient(t, OpenAIOptions{})
	if _, err := c.Complete(t.Context(), Request{System: "s"}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	r := f.requests()[0]
	if r.auth != "Bearer env-key" || r.body.Model != "env-model" || c.Model() != "env-model" {
		t.Errorf("auth %q model %q, want env-key and env-model", r.auth, r.body.Model)
	}

	t.Setenv(EnvModel, "")
	if got := newClient(t, OpenAIOptions{}).Model(); got != DefaultModel {
		t.Errorf("model without option or env = %q, want %q", got, DefaultModel)
	}
}

func TestNewOpenAIRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string]OpenAIOptions{
		"non-http base URL":     {BaseURL: "ftp://example.com/v1"},
		"base URL without host": {BaseURL: "/v1"},
		"unparsable base URL":   {BaseURL: "http://[::1"},
		"min backoff above max": {BaseURL: "http://127.0.0.1:1/v1", MinBackoff: time.Minute, MaxBackoff: time.Second},
		"min above default max": {BaseURL: "http://127.0.0.1:1/v1", MinBackoff: time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewOpenAI(opts); err == nil {
				t.Errorf("NewOpenAI(%+v) succeeded, want error", opts)
			}
		})
	}
}

func TestOpenAIInvalidRequestSendsNothing(t *testing.T) {
	f := &fakeOpenAI{t: t, steps: []step{{}}}
	c := newClient(t, OpenAIOptions{BaseURL: loopbackServer(t, f), Model: "m"})
	for name, req := range map[string]Request{
		"no messages":  {Persona: "Helper"},
		"unknown role": {History: []Message{{Role: "tool", Content: "x"}}},
	} {
		if _, err := c.Complete(t.Context(), req); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want ErrInvalidRequest", name, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
	if got := c.Stats(); got.Calls != 2 || got.Failures != 2 || got.Attempts != 0 {
		t.Errorf("stats = %+v, want 2 calls, 2 failures, 0 attempts", got)
	}
}

type span struct{ lo, hi time.Duration }

func exactly(d time.Duration) span { return span{d, d} }

func TestOpenAIRetries(t *testing.T) {
	tests := []struct {
		name         string
		steps        []step
		maxRetries   int
		wantErr      error // nil: success
		wantStatus   int
		wantAttempts int
		wantSleeps   []span
		wantStats    Stats
	}{
		{
			name:         "429 with Retry-After waits the hint then succeeds",
			steps:        []step{{status: 429, header: map[string]string{"Retry-After": "2"}}, {}},
			wantAttempts: 2,
			wantSleeps:   []span{exactly(2 * time.Second)},
			wantStats:    Stats{Calls: 1, Attempts: 2, Retries: 1, RateLimited: 1},
		},
		{
			name:         "retry-after-ms wins over Retry-After",
			steps:        []step{{status: 429, header: map[string]string{"Retry-After-Ms": "1500", "Retry-After": "9"}}, {}},
			wantAttempts: 2,
			wantSleeps:   []span{exactly(1500 * time.Millisecond)},
			wantStats:    Stats{Calls: 1, Attempts: 2, Retries: 1, RateLimited: 1},
		},
		{
			name:         "Retry-After beyond MaxBackoff is capped",
			steps:        []step{{status: 503, header: map[string]string{"Retry-After": "3600"}}, {}},
			wantAttempts: 2,
			wantSleeps:   []span{exactly(20 * time.Second)},
			wantStats:    Stats{Calls: 1, Attempts: 2, Retries: 1},
		},
		{
			name:         "408 is retried after backoff",
			steps:        []step{{status: 408}, {}},
			wantAttempts: 2,
			wantSleeps:   []span{{250 * time.Millisecond, 500 * time.Millisecond}},
			wantStats:    Stats{Calls: 1, Attempts: 2, Retries: 1},
		},
		{
			name:         "500 every time fails after MaxRetries+1 attempts with growing backoff",
			steps:        []step{{status: 500, body: "upstream exploded (not JSON)"}},
			wantErr:      ErrUnavailable,
			wantStatus:   500,
			wantAttempts: 4,
			wantSleeps: []span{
				{250 * time.Millisecond, 500 * time.Millisecond},
				{500 * time.Millisecond, time.Second},
				{time.Second, 2 * time.Second},
			},
			wantStats: Stats{Calls: 1, Attempts: 4, Retries: 3, Failures: 1},
		},
		{
			name:         "429 every time fails as rate limited",
			steps:        []step{{status: 429, header: map[string]string{"Retry-After": "1"}}},
			maxRetries:   2,
			wantErr:      ErrRateLimited,
			wantStatus:   429,
			wantAttempts: 3,
			wantSleeps:   []span{exactly(time.Second), exactly(time.Second)},
			wantStats:    Stats{Calls: 1, Attempts: 3, Retries: 2, Failures: 1, RateLimited: 3},
		},
		{
			name:         "400 is not retried",
			steps:        []step{{status: 400}, {}},
			wantErr:      ErrRejected,
			wantStatus:   400,
			wantAttempts: 1,
			wantStats:    Stats{Calls: 1, Attempts: 1, Failures: 1},
		},
		{
			name:         "401 is not retried even with Retry-After",
			steps:        []step{{status: 401, header: map[string]string{"Retry-After": "1"}}, {}},
			wantErr:      ErrRejected,
			wantStatus:   401,
			wantAttempts: 1,
			wantStats:    Stats{Calls: 1, Attempts: 1, Failures: 1},
		},
		{
			name:         "negative MaxRetries makes a single attempt",
			steps:        []step{{status: 503}, {}},
			maxRetries:   -1,
			wantErr:      ErrUnavailable,
			wantStatus:   503,
			wantAttempts: 1,
			wantStats:    Stats{Calls: 1, Attempts: 1, Failures: 1},
		},
		{
			name:         "200 without text is an empty reply, not retried",
			steps:        []step{{body: okBody("  ")}, {}},
			wantErr:      ErrEmptyReply,
			wantStatus:   200,
			wantAttempts: 1,
			wantStats:    Stats{Calls: 1, Attempts: 1, Failures: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeOpenAI{t: t, steps: tt.steps}
			rec := &sleepRecorder{}
			c := newClient(t, OpenAIOptions{
				BaseURL: loopbackServer(t, f), APIKey: "k", Model: "m",
				MaxRetries: tt.maxRetries, sleep: rec.sleep,
			})
			reply, err := c.Complete(t.Context(), Request{System: "s"})
			if tt.wantErr == nil {
				if err != nil || reply.Attempts != tt.wantAttempts || reply.Content != "ok" {
					t.Errorf("Complete = %+v, %v; want ok after %d attempts", reply, err, tt.wantAttempts)
				}
			} else {
				var e *Error
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &e) {
					t.Fatalf("err = %v, want *Error wrapping %v", err, tt.wantErr)
				}
				if e.Status != tt.wantStatus || e.Attempts != tt.wantAttempts {
					t.Errorf("Error{Status %d, Attempts %d}, want {%d, %d}", e.Status, e.Attempts, tt.wantStatus, tt.wantAttempts)
				}
			}
			if n := len(f.requests()); n != tt.wantAttempts {
				t.Errorf("server got %d requests, want %d", n, tt.wantAttempts)
			}
			if len(rec.sleeps) != len(tt.wantSleeps) {
				t.Fatalf("sleeps = %v, want %d of them", rec.sleeps, len(tt.wantSleeps))
			}
			for i, s := range tt.wantSleeps {
				if d := rec.sleeps[i]; d < s.lo || d > s.hi {
					t.Errorf("sleep %d = %v, want in [%v, %v]", i, d, s.lo, s.hi)
				}
			}
			if got := c.Stats(); got.Calls != tt.wantStats.Calls || got.Attempts != tt.wantStats.Attempts ||
				got.Retries != tt.wantStats.Retries || got.Failures != tt.wantStats.Failures ||
				got.RateLimited != tt.wantStats.RateLimited || got.Timeouts != tt.wantStats.Timeouts {
				t.Errorf("stats = %+v, want %+v", got, tt.wantStats)
			}
		})
	}
}

func TestOpenAIConnectionRefusedIsRetriedThenUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL + "/v1"
	srv.Close()
	rec := &sleepRecorder{}
	c := newClient(t, OpenAIOptions{BaseURL: base, Model: "m", MaxRetries: 1, sleep: rec.sleep})
	_, err := c.Complete(t.Context(), Request{System: "s"})
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Status != 0 || e.Attempts != 2 {
		t.Errorf("err = %v, want ErrUnavailable with status 0 after 2 attempts", err)
	}
	if len(rec.sleeps) != 1 {
		t.Errorf("sleeps = %v, want one backoff", rec.sleeps)
	}
}

func TestOpenAIConcurrentCallsAreCounted(t *testing.T) {
	f := &fakeOpenAI{t: t, steps: []step{{}}}
	c := newClient(t, OpenAIOptions{BaseURL: loopbackServer(t, f), Model: "m"})
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := c.Complete(t.Context(), Request{Persona: fmt.Sprint("p", i), System: "s"}); err != nil {
				t.Errorf("Complete: %v", err)
			}
		})
	}
	wg.Wait()
	if got := c.Stats(); got.Calls != n || got.Attempts != n || got.PromptTokens != 42*n {
		t.Errorf("stats = %+v, want %d calls and attempts, %d prompt tokens", got, n, 42*n)
	}
}

// The tests below run client and server on the synctest fake clock, so the
// waits are real waits (measured with time.Since), taking no wall time.

func TestOpenAIWaitsRetryAfterInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeOpenAI{t: t, steps: []step{{status: 429, header: map[string]string{"Retry-After": "3"}}, {}}}
		base, hc := pipeServer(t, f)
		c := newClient(t, OpenAIOptions{BaseURL: base, Model: "m", HTTPClient: hc})
		start := time.Now()
		reply, err := c.Complete(t.Context(), Request{System: "s"})
		if err != nil || reply.Attempts != 2 {
			t.Fatalf("Complete = %+v, %v; want success on attempt 2", reply, err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("call took %v, want exactly the 3s Retry-After", got)
		}
		reqs := f.requests()
		if gap := reqs[1].at.Sub(reqs[0].at); gap != 3*time.Second {
			t.Errorf("server saw the retry %v after the 429, want 3s", gap)
		}
	})
}

func TestOpenAICancelDuringBackoffReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeOpenAI{t: t, steps: []step{{status: 503, header: map[string]string{"Retry-After": "10"}}}}
		base, hc := pipeServer(t, f)
		c := newClient(t, OpenAIOptions{BaseURL: base, Model: "m", HTTPClient: hc})
		ctx, cancel := context.WithCancel(t.Context())
		stop := time.AfterFunc(time.Second, cancel)
		defer stop.Stop()
		start := time.Now()
		_, err := c.Complete(ctx, Request{System: "s"})
		var e *Error
		if !errors.Is(err, context.Canceled) || !errors.As(err, &e) || e.Status != 503 || e.Attempts != 1 {
			t.Errorf("err = %v, want *Error wrapping context.Canceled after one 503", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("returned after %v, want 1s (when cancelled, not after the 10s backoff)", got)
		}
		if got := c.Stats(); got.Failures != 1 || got.Attempts != 1 {
			t.Errorf("stats = %+v, want 1 attempt, 1 failure", got)
		}
	})
}

func TestOpenAIBackoffPastDeadlineFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeOpenAI{t: t, steps: []step{{status: 503, header: map[string]string{"Retry-After": "10"}}}}
		base, hc := pipeServer(t, f)
		c := newClient(t, OpenAIOptions{BaseURL: base, Model: "m", HTTPClient: hc})
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.Complete(ctx, Request{System: "s"})
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("err = %v, want ErrUnavailable and DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("returned after %v, want at once: a 10s wait cannot meet a 5s deadline", got)
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("server got %d requests, want 1", n)
		}
	})
}

func TestOpenAISlowAttemptTimesOutAndIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeOpenAI{t: t, steps: []step{{hang: true}, {}}}
		base, hc := pipeServer(t, f)
		c := newClient(t, OpenAIOptions{
			BaseURL: base, Model: "m", HTTPClient: hc,
			Timeout: 2 * time.Second, MinBackoff: 100 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		})
		start := time.Now()
		reply, err := c.Complete(t.Context(), Request{System: "s"})
		if err != nil || reply.Attempts != 2 {
			t.Fatalf("Complete = %+v, %v; want success on attempt 2", reply, err)
		}
		if got := time.Since(start); got < 2050*time.Millisecond || got > 2100*time.Millisecond {
			t.Errorf("call took %v, want the 2s attempt timeout plus a 50-100ms backoff", got)
		}
		if got := c.Stats(); got.Timeouts != 1 || got.Retries != 1 || got.Failures != 0 {
			t.Errorf("stats = %+v, want 1 timeout, 1 retry, no failure", got)
		}
	})
}

func TestOpenAICallerDeadlineInsideAttemptIsNotATimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeOpenAI{t: t, steps: []step{{hang: true}}}
		base, hc := pipeServer(t, f)
		c := newClient(t, OpenAIOptions{BaseURL: base, Model: "m", HTTPClient: hc})
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.Complete(ctx, Request{System: "s"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("returned after %v, want at the caller's 3s deadline", got)
		}
		if got := c.Stats(); got.Timeouts != 0 || got.Attempts != 1 || got.Failures != 1 {
			t.Errorf("stats = %+v, want 1 attempt, 1 failure, no per-attempt timeout", got)
		}
	})
}

func TestOpenAILimiterPacesEveryAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeOpenAI{t: t, steps: []step{{status: 500}, {}}}
		base, hc := pipeServer(t, f)
		c := newClient(t, OpenAIOptions{
			BaseURL: base, Model: "m", HTTPClient: hc,
			MinBackoff: 100 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
			Limiter: rate.NewLimiter(rate.Every(time.Second), 1),
		})
		start := time.Now()
		if _, err := c.Complete(t.Context(), Request{System: "s"}); err != nil {
			t.Fatalf("first call: %v", err)
		}
		if _, err := c.Complete(t.Context(), Request{System: "s"}); err != nil {
			t.Fatalf("second call: %v", err)
		}
		var at []time.Duration
		for _, r := range f.requests() {
			at = append(at, r.at.Sub(start))
		}
		// The retry waits for the next token (1s), not just its 100ms
		// backoff; the next call waits for the token after that.
		if want := []time.Duration{0, time.Second, 2 * time.Second}; !slices.Equal(at, want) {
			t.Errorf("requests at %v, want %v", at, want)
		}
	})
}

func TestOpenAILimiterWaitPastDeadlineFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeOpenAI{t: t, steps: []step{{}}}
		base, hc := pipeServer(t, f)
		lim := rate.NewLimiter(rate.Every(time.Minute), 1)
		lim.Allow() // spend the only token
		c := newClient(t, OpenAIOptions{BaseURL: base, Model: "m", HTTPClient: hc, Limiter: lim})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := c.Complete(ctx, Request{System: "s"})
		var e *Error
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) || e.Attempts != 0 {
			t.Errorf("err = %v, want *Error with 0 attempts wrapping DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), "compute budget") {
			t.Errorf("err = %q, want it to name the compute budget", err)
		}
		if n := len(f.requests()); n != 0 {
			t.Errorf("server got %d requests, want 0", n)
		}
	})
}

func TestReasonKeepsTheServersMessage(t *testing.T) {
	f := &fakeOpenAI{steps: []step{{status: 404, body: `{"error":{"message":"model \"llama3.2\" not found, try pulling it first","type":"api_error"}}`}}}
	c := newClient(t, OpenAIOptions{BaseURL: loopbackServer(t, f), Model: "llama3.2", MaxRetries: 1})
	_, err := c.Complete(t.Context(), Request{System: "s"})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want rejected", err)
	}
	if got, want := Reason(err), `model "llama3.2" not found, try pulling it first (HTTP 404)`; got != want {
		t.Fatalf("Reason = %q, want %q", got, want)
	}
	if Reason(nil) != "" || Reason(errors.New("x")) != "x" {
		t.Fatal("Reason of nil or a plain error")
	}
}

func TestModelsListsWhatTheServerServes(t *testing.T) {
	for _, tc := range []struct {
		body string
		want []string
	}{
		{`{"object":"list","data":[{"id":"llama3.2","object":"model","created":1,"owned_by":"library"},{"id":"qwen3","object":"model","created":1,"owned_by":"library"}]}`, []string{"llama3.2", "qwen3"}},
		{`{"object":"list","data":null}`, nil}, // Ollama with nothing pulled
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/models" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, tc.body)
		}))
		c := newClient(t, OpenAIOptions{BaseURL: srv.URL + "/v1", Model: "m"})
		got, err := c.Models(t.Context())
		srv.Close()
		if err != nil || !slices.Equal(got, tc.want) {
			t.Fatalf("Models = %v, %v; want %v", got, err, tc.want)
		}
	}
}

// A request with OnText streams: the text so far after every chunk, and
// the whole reply (usage included) at the end, as a plain call returns it.
// A 503 before the stream is retried like any attempt.
func TestOpenAIStreamsTextSoFar(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		bodies = append(bodies, body)
		n := len(bodies)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("retry-after-ms", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"message":"loading model","type":"fake"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i, piece := range []string{"Try a ", "buffered ", "channel."} {
			c := map[string]any{"index": 0, "delta": map[string]any{"content": piece}}
			if i == 2 {
				c["finish_reason"] = "stop"
			}
			b, _ := json.Marshal(map[string]any{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "served-model", "choices": []any{c}})
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", `{"id":"c","object":"chat.completion.chunk","created":1,"model":"served-model","choices":[],"usage":{"prompt_tokens":42,"completion_tokens":7,"total_tokens":49}}`)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, OpenAIOptions{BaseURL: srv.URL + "/v1", APIKey: "sk-test", Model: "test-model", MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})

	var texts []string
	reply, err := c.Complete(t.Context(), Request{
		Persona: "Helper", System: "You are Helper.",
		History: []Message{{Role: RoleUser, Name: "ann", Content: "my goroutine blocks"}},
		OnText:  func(s string) { texts = append(texts, s) },
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if want := []string{"Try a ", "Try a buffered ", "Try a buffered channel."}; !slices.Equal(texts, want) {
		t.Errorf("OnText got %q, want %q", texts, want)
	}
	want := Reply{Content: "Try a buffered channel.", Model: "served-model", PromptTokens: 42, CompletionTokens: 7, Attempts: 2}
	if reply != want {
		t.Errorf("reply = %+v, want %+v", reply, want)
	}
	if len(bodies) != 2 || bodies[1]["stream"] != true {
		t.Fatalf("requests %v, want two, the second with stream: true", bodies)
	}
	if so, _ := bodies[1]["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("stream_options = %v, want include_usage", bodies[1]["stream_options"])
	}
}

// A server that ignores "stream": true and answers a plain completion is
// still understood: one OnText with the whole reply.
func TestOpenAIStreamedCallAnsweredWhole(t *testing.T) {
	f := &fakeOpenAI{t: t, steps: []step{{body: okBody("Try a buffered channel.")}}}
	c := newClient(t, OpenAIOptions{BaseURL: loopbackServer(t, f), APIKey: "sk-test", Model: "test-model"})
	var texts []string
	reply, err := c.Complete(t.Context(), Request{Persona: "Helper", History: []Message{{Role: RoleUser, Name: "ann", Content: "hi"}},
		OnText: func(s string) { texts = append(texts, s) }})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if want := (Reply{Content: "Try a buffered channel.", Model: "served-model", PromptTokens: 42, CompletionTokens: 7, Attempts: 1}); reply != want {
		t.Errorf("reply = %+v, want %+v", reply, want)
	}
	if !slices.Equal(texts, []string{"Try a buffered channel."}) {
		t.Errorf("OnText got %q, want the whole reply once", texts)
	}
}
