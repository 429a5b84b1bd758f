// Package llm holds the model backends that write a persona's messages: an
// OpenAI-compatible client and a scripted responder that needs nothing
// installed.
//
// Both implement Model. A persona's prompt is its system prompt plus the
// room's recent history: BuildHistory cuts a room's lines to a bounded,
// newest-first window (returned oldest first), with the persona's own lines
// as assistant turns and everyone else's as named user turns.
//
// # OpenAI-compatible client
//
// OpenAI speaks the chat completions API through the official openai-go SDK,
// so it works against Ollama, llama.cpp's server, vLLM and OpenAI itself. The
// base URL, API key and model come from OpenAIOptions, falling back to
// OPENAI_BASE_URL, OPENAI_API_KEY and PERSONA_MODEL.
//
// What a call guarantees:
//
//   - One limiter token (the compute budget) is taken before every attempt,
//     retries included.
//   - Each attempt is bounded by Timeout; the caller's ctx bounds the call.
//   - 429, 408, 5xx, attempt timeouts and transport errors are retried up to
//     MaxRetries times. The wait is the server's retry-after-ms or
//     Retry-After (seconds or HTTP date) when sent, else exponential backoff
//     from MinBackoff with jitter; either is capped at MaxBackoff. Other 4xx
//     are never retried.
//   - A wait that would end after ctx's deadline is not started: the call
//     fails at once, while the caller still has time to account the item.
//   - Every failure is a returned error, counted in Stats, never a panic.
//     Failures of a valid request are *Error (last status, attempts)
//     wrapping ErrRateLimited, ErrUnavailable, ErrRejected or ErrEmptyReply,
//     and the last cause (ctx.Err() included); test them with errors.Is.
//
// openai-go's own retries are turned off: the loop here owns them so that
// Retry-After, the limiter and the counters are under our control and tested.
//
// # Scripted responder
//
// Scripted is the embedded default when no model server is configured. It is
// deterministic (same request, same reply) and makes no network call. Its
// replies say they are demos: each starts with DemoPrefix, addresses the
// asker by @name, quotes the gist of the last user message (cut at a word,
// at most 60 characters) and says, in the persona's voice (helper,
// reviewer, teacher, planner, or a generic one, from its name and system
// prompt), what it would do with a model configured. It does not answer
// small talk or another Scripted persona's line (one that starts with
// DemoPrefix): it returns ErrNothingToSay, which is not a failure; callers
// post nothing and account the message as handled. Its optional Delay
// stands in for model latency and ends early when ctx is done.
//
// # Concurrency
//
// OpenAI and Scripted are safe for concurrent use by many personas and start
// no goroutines, so neither needs closing.
//
// # Testing code that uses this package
//
// Depend on Model, not on *OpenAI. In tests use Scripted (fast and
// deterministic; with Delay inside a testing/synctest bubble to simulate
// latency in virtual time) or a small fake implementing Model. To exercise
// the real client, point BaseURL at an httptest.Server speaking
// /chat/completions; inside a synctest bubble serve it over an in-memory
// listener (see this package's tests), because goroutines blocked on a
// loopback socket keep a bubble from going idle.
package llm
