package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"golang.org/x/time/rate"
)

// Environment variables read by NewOpenAI when the matching option is empty.
// The first two are the ones every OpenAI-compatible tool already uses.
const (
	EnvBaseURL = "OPENAI_BASE_URL"
	EnvAPIKey  = "OPENAI_API_KEY"
	EnvModel   = "PERSONA_MODEL"
)

// Defaults filled in by NewOpenAI for zero options.
const (
	// DefaultModel is a small, cheap model on OpenAI. Local servers
	// (Ollama, llama.cpp, vLLM) name their models differently, so when
	// BaseURL points at one, set Model or PERSONA_MODEL too.
	DefaultModel      = "gpt-4o-mini"
	DefaultTimeout    = 60 * time.Second
	DefaultMaxRetries = 3
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 20 * time.Second
)

// Errors a Complete call can end with. Failures after the last attempt are a
// *Error whose chain holds one of the first three; use errors.Is.
var (
	// ErrRateLimited: the server still answered 429 after every retry.
	ErrRateLimited = errors.New("llm: rate limited")
	// ErrUnavailable: 5xx, 408, timeouts or transport errors after every retry.
	ErrUnavailable = errors.New("llm: model unavailable")
	// ErrRejected: a 4xx other than 408/429 (bad request, bad key, unknown
	// model); never retried because repeating it cannot help.
	ErrRejected = errors.New("llm: request rejected")
	// ErrEmptyReply: the server answered 200 without any text.
	ErrEmptyReply = errors.New("llm: empty reply")
	// ErrInvalidRequest: the Request itself is unusable (no messages, unknown
	// role); nothing was sent.
	ErrInvalidRequest = errors.New("llm: invalid request")
)

// Error is how an OpenAI Complete call fails once the request is valid. Status is
// the HTTP status of the last attempt (0 when it got no response); Attempts
// counts the HTTP attempts made. Err holds the classification sentinel and
// the last cause (an *openai.Error, a transport error, or ctx.Err()), all
// reachable with errors.Is and errors.As.
type Error struct {
	Status   int
	Attempts int
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v (status %d, %d attempts)", e.Err, e.Status, e.Attempts)
}

func (e *Error) Unwrap() error { return e.Err }

// OpenAIOptions configures NewOpenAI. The zero value is valid: it talks to
// OPENAI_BASE_URL (or api.openai.com) with OPENAI_API_KEY and the model in
// PERSONA_MODEL (or DefaultModel), with the defaults below.
type OpenAIOptions struct {
	// BaseURL of the OpenAI-compatible API, including its /v1, e.g.
	// http://127.0.0.1:11434/v1 (Ollama), http://127.0.0.1:8080/v1
	// (llama.cpp), http://127.0.0.1:8000/v1 (vLLM). Empty: $OPENAI_BASE_URL,
	// then https://api.openai.com/v1.
	BaseURL string
	// APIKey sent as a bearer token. Empty: $OPENAI_API_KEY; still empty
	// means no Authorization header, which local servers accept.
	APIKey string
	// Model name. Empty: $PERSONA_MODEL, then DefaultModel.
	Model string
	// Timeout bounds each attempt, not the whole call (the caller's ctx
	// does that). Zero: DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is how many times a retryable failure is tried again, so a
	// call makes at most MaxRetries+1 attempts. Zero: DefaultMaxRetries;
	// negative: no retries.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the wait between attempts: MinBackoff
	// doubled per retry with jitter, capped at MaxBackoff. A server's
	// Retry-After (seconds or HTTP date) or retry-after-ms wins over our
	// backoff, still capped at MaxBackoff. Zero: DefaultMinBackoff,
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxCompletionTokens sends Request.MaxTokens as max_completion_tokens
	// instead of max_tokens. OpenAI's reasoning models require it; Ollama,
	// llama.cpp and vLLM all understand max_tokens, hence the default.
	MaxCompletionTokens bool
	// Limiter is the compute budget: one token is taken (Wait) before every
	// attempt, retries included, so a failing server cannot make personas
	// spend more than the budget allows. Nil: unlimited.
	Limiter *rate.Limiter
	// HTTPClient to send requests with. Nil: openai-go's default client.
	HTTPClient *http.Client
	// Logger for retries and failures. Nil: discard.
	Logger *slog.Logger

	// sleep waits d or until ctx is done; tests replace it to record the
	// waits asked for. Nil: a real timer.
	sleep func(ctx context.Context, d time.Duration) error
}

// Stats are cumulative counters of an OpenAI client, read with (*OpenAI).Stats.
type Stats struct {
	Calls            int64 // Complete calls
	Attempts         int64 // HTTP attempts made, retries included
	Retries          int64 // attempts after the first of their call
	Failures         int64 // Complete calls that returned an error
	RateLimited      int64 // attempts answered 429
	Timeouts         int64 // attempts cut by the per-attempt Timeout
	PromptTokens     int64 // as reported by the server, successful calls
	CompletionTokens int64
}

// OpenAI is a Model backed by any server that speaks the OpenAI chat
// completions API. Create it with NewOpenAI; it is safe for concurrent use
// and holds no goroutines, so it needs no Close. Complete is what callers
// want.
type OpenAI struct {
	client     openai.Client
	model      string
	baseURL    string
	timeout    time.Duration
	maxRetries int
	minBackoff time.Duration
	maxBackoff time.Duration
	maxCompl   bool
	limiter    *rate.Limiter
	log        *slog.Logger
	sleep      func(ctx context.Context, d time.Duration) error

	calls, attempts, retries, failures atomic.Int64
	rateLimited, timeouts              atomic.Int64
	promptTokens, completionTokens     atomic.Int64
}

var (
	_ Model = (*OpenAI)(nil)
	_ Model = Scripted{}
)

// NewOpenAI returns a client configured by opts (zero fields take the
// defaults documented on OpenAIOptions). It makes no network call; a wrong
// URL or model shows up on the first Complete.
func NewOpenAI(opts OpenAIOptions) (*OpenAI, error) {
	opts = opts.withDefaults()
	if opts.MinBackoff > opts.MaxBackoff {
		return nil, fmt.Errorf("llm: MinBackoff %v above MaxBackoff %v", opts.MinBackoff, opts.MaxBackoff)
	}
	if opts.BaseURL != "" {
		u, err := url.Parse(opts.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("llm: base URL: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("llm: base URL %q: want http(s)://host[:port]/path", opts.BaseURL)
		}
	}
	// Our own loop owns retries, so openai-go's are off: that is what lets
	// us honour Retry-After, take a limiter token per attempt and count.
	// The per-attempt timeout is our own context too, so we can tell
	// "attempt too slow" (retry) from "caller gave up" (stop).
	ro := []option.RequestOption{
		option.WithMaxRetries(0),
		// Always set, even empty, so an empty key is not replaced by the
		// environment behind our back: we already resolved it.
		option.WithAPIKey(opts.APIKey),
	}
	if opts.BaseURL != "" {
		ro = append(ro, option.WithBaseURL(opts.BaseURL))
	}
	if opts.HTTPClient != nil {
		ro = append(ro, option.WithHTTPClient(opts.HTTPClient))
	}
	c := &OpenAI{
		client:     openai.NewClient(ro...),
		model:      opts.Model,
		baseURL:    opts.BaseURL,
		timeout:    opts.Timeout,
		maxRetries: opts.MaxRetries,
		minBackoff: opts.MinBackoff,
		maxBackoff: opts.MaxBackoff,
		maxCompl:   opts.MaxCompletionTokens,
		limiter:    opts.Limiter,
		log:        opts.Logger,
		sleep:      opts.sleep,
	}
	return c, nil
}

// withDefaults fills every zero field: the one place defaults live.
func (o OpenAIOptions) withDefaults() OpenAIOptions {
	if o.BaseURL == "" {
		o.BaseURL = os.Getenv(EnvBaseURL)
	}
	if o.APIKey == "" {
		o.APIKey = os.Getenv(EnvAPIKey)
	}
	if o.Model == "" {
		o.Model = os.Getenv(EnvModel)
	}
	if o.Model == "" {
		o.Model = DefaultModel
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.sleep == nil {
		o.sleep = sleepCtx
	}
	return o
}

// Model returns the model name requests are sent with.
func (c *OpenAI) Model() string { return c.model }

// BaseURL is the server's base URL the client talks to.
func (c *OpenAI) BaseURL() string { return c.baseURL }

// Stats returns a snapshot of the counters. Each counter is read atomically;
// the snapshot as a whole is not, which is fine for metrics.
func (c *OpenAI) Stats() Stats {
	return Stats{
		Calls:            c.calls.Load(),
		Attempts:         c.attempts.Load(),
		Retries:          c.retries.Load(),
		Failures:         c.failures.Load(),
		RateLimited:      c.rateLimited.Load(),
		Timeouts:         c.timeouts.Load(),
		PromptTokens:     c.promptTokens.Load(),
		CompletionTokens: c.completionTokens.Load(),
	}
}

// Complete sends req as a chat completion and returns the first choice.
//
// Each attempt first waits for a Limiter token, then runs under its own
// Timeout. A 429, 408, 5xx, timeout or transport error is retried up to
// MaxRetries times after a backoff (the server's Retry-After when present);
// other 4xx are not. A wait that cannot end before ctx's deadline is not
// started: the call fails at once. Every failure is a counted error, never a
// panic; all but ErrInvalidRequest are *Error.
func (c *OpenAI) Complete(ctx context.Context, req Request) (Reply, error) {
	c.calls.Add(1)
	params, err := c.params(req)
	if err != nil {
		c.failures.Add(1)
		return Reply{}, err
	}
	if err := ctx.Err(); err != nil {
		return Reply{}, c.fail(req, 0, 0, err)
	}
	attempts, status := 0, 0
	for {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return Reply{}, c.fail(req, status, attempts, budgetError(ctx, err))
			}
		}
		attempts++
		c.attempts.Add(1)
		if attempts > 1 {
			c.retries.Add(1)
		}
		reply, st, header, err := c.attempt(ctx, params, req.OnText)
		status = st
		if err == nil {
			reply.Attempts = attempts
			c.promptTokens.Add(int64(reply.PromptTokens))
			c.completionTokens.Add(int64(reply.CompletionTokens))
			return reply, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Reply{}, c.fail(req, status, attempts, fmt.Errorf("%w (last attempt: %w)", ctxErr, err))
		}
		if errors.Is(err, ErrEmptyReply) {
			return Reply{}, c.fail(req, status, attempts, err)
		}
		if !retryable(status) {
			return Reply{}, c.fail(req, status, attempts, fmt.Errorf("%w: %w", ErrRejected, err))
		}
		if attempts > c.maxRetries {
			return Reply{}, c.fail(req, status, attempts, fmt.Errorf("%w: %w", kindOf(status), err))
		}
		now := time.Now()
		d := retryDelay(header, attempts-1, c.minBackoff, c.maxBackoff, now, rand.Float64())
		if deadline, ok := ctx.Deadline(); ok && now.Add(d).After(deadline) {
			// Sleeping would only end in the deadline: give up now so the
			// caller can account the item while it still has time.
			return Reply{}, c.fail(req, status, attempts,
				fmt.Errorf("%w: retry in %v is past the deadline: %w (last attempt: %w)", kindOf(status), d, context.DeadlineExceeded, err))
		}
		c.log.Warn("llm retry", "persona", req.Persona, "model", c.model, "attempt", attempts, "status", status, "delay", d, "err", err)
		if serr := c.sleep(ctx, d); serr != nil {
			return Reply{}, c.fail(req, status, attempts, fmt.Errorf("%w (last attempt: %w)", serr, err))
		}
	}
}

// budgetError explains a failed limiter wait. rate.Limiter says "would
// exceed context deadline" without wrapping context.DeadlineExceeded; we add
// it so callers test one error for "out of time" wherever it happened.
func budgetError(ctx context.Context, err error) error {
	cause := ctx.Err()
	if _, ok := ctx.Deadline(); ok && cause == nil {
		cause = context.DeadlineExceeded
	}
	return fmt.Errorf("compute budget: %w", errors.Join(err, cause))
}

// kindOf names the failure class of a retryable status.
func kindOf(status int) error {
	if status == http.StatusTooManyRequests {
		return ErrRateLimited
	}
	return ErrUnavailable
}

func (c *OpenAI) fail(req Request, status, attempts int, err error) error {
	c.failures.Add(1)
	e := &Error{Status: status, Attempts: attempts, Err: err}
	level := slog.LevelWarn
	if errors.Is(err, context.Canceled) {
		level = slog.LevelDebug // the caller left (shutdown): not a model problem
	}
	c.log.Log(context.Background(), level, "llm call failed", "persona", req.Persona, "model", c.model, "base_url", c.baseURL, "status", status, "attempts", attempts, "err", err)
	return e
}

// attempt makes one HTTP attempt, streamed when onText is set. status is
// 0 when no response came back.
func (c *OpenAI) attempt(ctx context.Context, params openai.ChatCompletionNewParams, onText func(string)) (Reply, int, http.Header, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var res *openai.ChatCompletion
	var err error
	if onText != nil {
		res, err = c.stream(actx, params, onText)
	} else {
		res, err = c.client.Chat.Completions.New(actx, params)
	}
	if err != nil {
		var apiErr *openai.Error
		if errors.As(err, &apiErr) {
			var h http.Header
			if apiErr.Response != nil {
				h = apiErr.Response.Header
			}
			if apiErr.StatusCode == http.StatusTooManyRequests {
				c.rateLimited.Add(1)
			}
			return Reply{}, apiErr.StatusCode, h, err
		}
		if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
			c.timeouts.Add(1)
			return Reply{}, 0, nil, fmt.Errorf("attempt timed out after %v: %w", c.timeout, err)
		}
		return Reply{}, 0, nil, err
	}
	if len(res.Choices) == 0 {
		return Reply{}, http.StatusOK, nil, fmt.Errorf("%w: no choices", ErrEmptyReply)
	}
	msg := res.Choices[0].Message
	content := stripThinking(msg.Content)
	if content == "" {
		content = strings.TrimSpace(msg.Refusal)
	}
	if content == "" {
		return Reply{}, http.StatusOK, nil, fmt.Errorf("%w (finish reason %q)", ErrEmptyReply, res.Choices[0].FinishReason)
	}
	model := res.Model
	if model == "" {
		model = c.model
	}
	return Reply{
		Content:          content,
		Model:            model,
		PromptTokens:     int(res.Usage.PromptTokens),
		CompletionTokens: int(res.Usage.CompletionTokens),
	}, http.StatusOK, nil, nil
}

// stream makes one streamed attempt: onText gets the reply's text so far
// after every chunk that adds to it, and the chunks accumulate into the
// completion a plain attempt would have returned (usage included, when the
// server sends it).
func (c *OpenAI) stream(ctx context.Context, params openai.ChatCompletionNewParams, onText func(string)) (*openai.ChatCompletion, error) {
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	st := c.client.Chat.Completions.NewStreaming(ctx, params, option.WithMiddleware(wholeAsStream))
	defer st.Close()
	var acc openai.ChatCompletionAccumulator
	var text strings.Builder
	for st.Next() {
		chunk := st.Current()
		acc.AddChunk(chunk)
		if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
			text.WriteString(chunk.Choices[0].Delta.Content)
			onText(text.String())
		}
	}
	if err := st.Err(); err != nil {
		return nil, err
	}
	return &acc.ChatCompletion, nil
}

// wholeAsStream lets a server that ignores "stream": true answer a
// streamed call: a 200 with a JSON completion instead of events becomes
// one event holding the whole reply (and its usage), so the call succeeds
// as a plain one would, with one OnText.
func wholeAsStream(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	res, err := next(req)
	if err != nil || res.StatusCode != http.StatusOK {
		return res, err
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return res, nil
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	var whole openai.ChatCompletion
	if err := json.Unmarshal(raw, &whole); err != nil {
		return nil, fmt.Errorf("a streamed call answered with JSON that is no completion: %w", err)
	}
	chunk := map[string]any{"id": whole.ID, "object": "chat.completion.chunk", "created": whole.Created, "model": whole.Model, "usage": whole.Usage}
	var choices []any
	for _, ch := range whole.Choices {
		choices = append(choices, map[string]any{"index": ch.Index, "finish_reason": ch.FinishReason,
			"delta": map[string]any{"role": "assistant", "content": ch.Message.Content, "refusal": ch.Message.Refusal}})
	}
	chunk["choices"] = choices
	b, err := json.Marshal(chunk)
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(strings.NewReader("data: " + string(b) + "\n\ndata: [DONE]\n\n"))
	res.Header = res.Header.Clone()
	res.Header.Set("Content-Type", "text/event-stream")
	res.ContentLength = -1
	return res, nil
}

// stripThinking drops a leading <think>…</think> block: reasoning models
// served by Ollama or llama.cpp put their scratch work in the content, and
// it is not what the persona says to the room.
func stripThinking(s string) string {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "<think>"); ok {
		if _, after, found := strings.Cut(rest, "</think>"); found {
			s = strings.TrimSpace(after)
		}
	}
	return s
}

// params maps a Request onto the wire format.
func (c *OpenAI) params(req Request) (openai.ChatCompletionNewParams, error) {
	p := openai.ChatCompletionNewParams{Model: c.model}
	if strings.TrimSpace(req.System) != "" {
		p.Messages = append(p.Messages, openai.SystemMessage(req.System))
	}
	for i, m := range req.History {
		switch m.Role {
		case RoleSystem:
			p.Messages = append(p.Messages, openai.SystemMessage(m.Content))
		case RoleUser:
			u := openai.ChatCompletionUserMessageParam{}
			u.Content.OfString = openai.String(m.Content)
			if name := wireName(m.Name); name != "" {
				u.Name = openai.String(name)
			}
			if m.Name != "" {
				// Ollama and llama.cpp drop the name field when they
				// render the chat template, so the speaker also goes into
				// the text; otherwise a room of several people reads to
				// the model as one person talking to itself.
				u.Content.OfString = openai.String(m.Name + ": " + m.Content)
			}
			p.Messages = append(p.Messages, openai.ChatCompletionMessageParamUnion{OfUser: &u})
		case RoleAssistant:
			a := openai.ChatCompletionAssistantMessageParam{}
			a.Content.OfString = openai.String(m.Content)
			if name := wireName(m.Name); name != "" {
				a.Name = openai.String(name)
			}
			p.Messages = append(p.Messages, openai.ChatCompletionMessageParamUnion{OfAssistant: &a})
		default:
			return p, fmt.Errorf("%w: message %d has unknown role %q", ErrInvalidRequest, i, m.Role)
		}
	}
	if len(p.Messages) == 0 {
		return p, fmt.Errorf("%w: no system prompt and no history", ErrInvalidRequest)
	}
	if req.MaxTokens > 0 {
		if c.maxCompl {
			p.MaxCompletionTokens = openai.Int(int64(req.MaxTokens))
		} else {
			p.MaxTokens = openai.Int(int64(req.MaxTokens))
		}
	}
	if req.Temperature != nil {
		p.Temperature = openai.Float(*req.Temperature)
	}
	return p, nil
}

var nameDisallowed = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// wireName fits a display name to OpenAI's rule for the name field
// (^[a-zA-Z0-9_-]{1,64}$; anything else is a 400): "Joel Smith" becomes
// "Joel_Smith". A name with nothing usable left is dropped.
func wireName(name string) string {
	n := strings.Trim(nameDisallowed.ReplaceAllString(name, "_"), "_")
	if len(n) > 64 {
		n = n[:64]
	}
	return n
}

// sleepCtx waits d, or less if ctx is done first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reason is what a person should read of a failed Complete: the model
// server's own message when it sent one (an OpenAI-compatible error body,
// e.g. Ollama's "model \"llama3.2\" not found, try pulling it first"), with
// the HTTP status, else the error's text. The client's error values keep
// the server's message out of Error() (it may hold secrets in other
// fields); this keeps only the message.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		msg := strings.TrimSpace(apiErr.Message)
		if msg == "" {
			msg = http.StatusText(apiErr.StatusCode)
		}
		return fmt.Sprintf("%s (HTTP %d)", msg, apiErr.StatusCode)
	}
	var e *Error
	if errors.As(err, &e) && e.Status == 0 {
		return fmt.Sprintf("%v (no answer after %d attempts)", e.Err, e.Attempts)
	}
	return err.Error()
}

// Models lists the models the server says it serves (GET /models), for the
// daemon's probe at start. A server that lists none (Ollama with nothing
// pulled answers "data": null) gives an empty list and no error.
func (c *OpenAI) Models(ctx context.Context) ([]string, error) {
	page, err := c.client.Models.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list models on %s: %s", c.baseURL, Reason(err))
	}
	var names []string
	for _, m := range page.Data {
		names = append(names, m.ID)
	}
	return names, nil
}
