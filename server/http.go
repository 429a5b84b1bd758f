package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPOptions configures NewHandler. The zero value is valid: every zero field
// takes the default documented on it, except Token, whose zero value locks
// every authenticated route (it fails closed rather than open).
type HTTPOptions struct {
	// Token is the bearer token every route except /healthz and the
	// dashboard's static shell requires. Empty: every authenticated request
	// is refused with 401, so a daemon that forgot to set it is not open.
	Token string
	// Logger receives internal (5xx) errors. Default: slog.Default().
	Logger *slog.Logger
	// Metrics serves GET /metrics (behind the token). Nil: /metrics is 404.
	Metrics http.Handler
	// MaxBody caps a request body in bytes. Default 64 KiB.
	MaxBody int64
	// MaxContent caps a message's content in runes (after trimming).
	// Default 8000: a long chat message, far under what a model context holds.
	MaxContent int
	// RatePerSec and RateBurst limit each client IP (the host of RemoteAddr;
	// proxies' X-Forwarded-For is not trusted). Default 5/s with a burst of
	// 20: the dashboard's page load and its 2 s polling fit with room to spare.
	RatePerSec float64
	RateBurst  int
	// RequestTimeout bounds a backend call (post, list); a call that runs out
	// is answered 504. It does not apply to event streams. Default 10 s.
	RequestTimeout time.Duration
	// MaxStreams caps concurrent event streams (SSE); more are refused with
	// 503. Default 256. MaxStreamsPerClient caps those of one client IP;
	// more are refused with 429. Default 16.
	MaxStreams          int
	MaxStreamsPerClient int
	// MaxPageBytes caps the messages of one page of GET .../messages, in
	// encoded bytes; a page cut by it says truncated. Default 1 MiB.
	MaxPageBytes int
	// MaxHeaderBytes caps a request's line and headers; a bigger request is
	// answered 431 in JSON. Default 64 KiB. (Past the daemon's server limit,
	// 1 MiB, net/http answers 431 itself, in plain text.)
	MaxHeaderBytes int
	// MaxConnsPerClient caps the open connections of one client IP at the
	// daemon's listener: more are closed as they are accepted. Default 64.
	MaxConnsPerClient int
	// ReadTimeout bounds reading a whole request, body included, and
	// WriteTimeout writing its response: a client that sends its body a
	// byte a minute, or never reads its answer, holds its connection (and
	// the response's memory) at most this long. Event streams set their
	// own deadline per write. Defaults 30 s and 60 s.
	ReadTimeout, WriteTimeout time.Duration
	// Now is the clock of the rate limiter. Default time.Now.
	Now func() time.Time
}

const (
	defaultMaxBody        = 64 << 10
	defaultMaxContent     = 8000
	defaultMaxAuthor      = 64 // runes; the limit on author names
	defaultRatePerSec     = 5
	defaultRateBurst      = 20
	defaultRequestTimeout = 10 * time.Second
	defaultMaxStreams     = 256
	defaultClientStreams  = 16
	defaultMaxHeaderBytes = 64 << 10
	defaultClientConns    = 64
	serverMaxHeaderBytes  = 1 << 20
	defaultMessagesLimit  = 100
	maxMessagesLimit      = 500
)

// withDefaults fills every zero field in one place.
func (o HTTPOptions) withDefaults() HTTPOptions {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBody <= 0 {
		o.MaxBody = defaultMaxBody
	}
	if o.MaxContent <= 0 {
		o.MaxContent = defaultMaxContent
	}
	if o.RatePerSec <= 0 {
		o.RatePerSec = defaultRatePerSec
	}
	if o.RateBurst <= 0 {
		o.RateBurst = defaultRateBurst
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = defaultRequestTimeout
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = defaultMaxStreams
	}
	if o.MaxStreamsPerClient <= 0 {
		o.MaxStreamsPerClient = defaultClientStreams
	}
	if o.MaxPageBytes <= 0 {
		o.MaxPageBytes = 1 << 20
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if o.MaxConnsPerClient <= 0 {
		o.MaxConnsPerClient = defaultClientConns
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// api is the state behind NewHandler's handler. It starts no goroutines: an
// event stream runs on its request's goroutine and ends with the request.
type httpAPI struct {
	b         Backend
	opts      HTTPOptions
	msgLimits msgLimits
	token     [sha256.Size]byte // hashed so the comparison's time is independent of length
	rate      *rateLimiter
	mux       *http.ServeMux
	streams   atomic.Int64
	clientsMu sync.Mutex
	clientSSE map[string]int // client IP -> open event streams
	idem      idemStore      // Idempotency-Key of POSTs (http_idempotency.go)
}

// NewHandler returns the HTTP API, the event streams and the dashboard over b.
//
// Routes (all JSON; every error is {"error": "...", "field": "..."}):
//
//	GET  /healthz                          200 {"status":"ok"}, no token
//	GET  /metrics                          opts.Metrics
//	GET  /api/status                       Status (thermal state, rooms)
//	GET  /api/personas                     {"personas": [PersonaInfo...]}; ?history=true adds each one's samples
//	GET  /api/personas/{name}              PersonaInfo; ?history=true likewise
//	POST /api/rooms/{room}/messages        {author, content} -> 201 chat.Message
//	GET  /api/rooms/{room}/messages        ?after=<id> | ?order=newest | ?before=<id>, &limit=1..500
//	                                       -> {"messages": [...]}, oldest first (listMessages)
//	GET  /api/rooms/{room}/messages/{id}   -> chat.Message (where POST's Location points)
//	GET  /api/rooms/{room}/events          text/event-stream of Event
//	GET  /api/rooms/{room}/trail           {"events": [Event...]}: recent thoughts and decisions
//	GET  /                                 the dashboard (static, embedded)
//
// Every request is rate limited per client IP (429 with Retry-After), then
// authenticated with "Authorization: Bearer <token>" (or ?token= on GET, for
// EventSource and links), except /healthz and the dashboard's static files,
// which carry no data. Cross-origin unsafe requests are refused (403).
//
// The handler is safe for concurrent use and holds no goroutines of its own.
func NewHandler(b Backend, opts HTTPOptions) http.Handler {
	opts = opts.withDefaults()
	a := &httpAPI{
		b:         b,
		opts:      opts,
		msgLimits: msgLimits{MaxBody: opts.MaxBody, MaxContent: opts.MaxContent, MaxAuthor: defaultMaxAuthor},
		token:     sha256.Sum256([]byte(opts.Token)),
		rate:      newRateLimiter(opts.RatePerSec, opts.RateBurst, defaultMaxClients),
		mux:       http.NewServeMux(),
	}
	m := a.mux
	m.HandleFunc("GET /healthz", a.healthz)
	m.Handle("GET /metrics", a.authed(a.metrics))
	m.Handle("GET /api/status", a.authed(a.status))
	m.Handle("GET /api/personas", a.authed(a.personas))
	m.Handle("GET /api/personas/{name}", a.authed(a.persona))
	m.Handle("POST /api/rooms/{room}/messages", a.authed(a.postMessage))
	m.Handle("GET /api/rooms/{room}/messages", a.authed(a.listMessages))
	m.Handle("GET /api/rooms/{room}/messages/{id}", a.authed(a.getMessage))
	m.Handle("GET /api/rooms/{room}/events", a.authed(a.events))
	m.Handle("GET /api/rooms/{room}/trail", a.authed(a.trail))
	a.routeDashboard(m)

	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, &httpError{Status: http.StatusForbidden, Msg: "cross-origin request refused"})
	}))
	return csrf.Handler(http.HandlerFunc(a.serveHTTP))
}

// serveHTTP applies what every route shares: security headers, the rate
// limit, and JSON answers for unknown paths and wrong methods (ServeMux's own
// are plain text).
func (a *httpAPI) serveHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	// The token may travel in ?token=: never leak the URL to another site.
	h.Set("Referrer-Policy", "no-referrer")
	if headerBytes(r) > a.opts.MaxHeaderBytes {
		a.writeError(w, r, &httpError{Status: http.StatusRequestHeaderFieldsTooLarge,
			Msg: fmt.Sprintf("request line and headers are over %d bytes", a.opts.MaxHeaderBytes)})
		return
	}
	if r.URL.Path != "/healthz" {
		if ok, retry := a.rate.allow(clientIP(r), a.opts.Now()); !ok {
			secs := int((retry + time.Second - 1) / time.Second)
			h.Set("Retry-After", strconv.Itoa(max(secs, 1)))
			a.writeError(w, r, &httpError{Status: http.StatusTooManyRequests, Msg: "rate limit exceeded"})
			return
		}
	}
	if mh, pattern := a.mux.Handler(r); pattern == "" {
		a.noRoute(w, r, mh)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// noRoute answers a request no pattern matched: it asks the mux's own
// handler what it would say (404, 405 with Allow, or a redirect to the clean
// path) and says it in JSON.
func (a *httpAPI) noRoute(w http.ResponseWriter, r *http.Request, mh http.Handler) {
	rec := &headerRecorder{h: http.Header{}}
	mh.ServeHTTP(rec, r)
	switch {
	case rec.code == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.h.Get("Allow"))
		a.writeError(w, r, &httpError{Status: http.StatusMethodNotAllowed, Msg: "method not allowed"})
	case rec.code >= 300 && rec.code < 400 && rec.h.Get("Location") != "":
		http.Redirect(w, r, rec.h.Get("Location"), rec.code)
	default:
		a.writeError(w, r, &httpError{Status: http.StatusNotFound, Msg: "no such route"})
	}
}

// headerRecorder keeps the status and headers the mux's fallback handler
// writes, and drops its plain-text body.
type headerRecorder struct {
	h    http.Header
	code int
}

func (r *headerRecorder) Header() http.Header { return r.h }
func (r *headerRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *headerRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(p), nil
}

// headerBytes is the size of r's request line and headers as sent.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// streamOpened counts an event stream of r's client and reports whether it
// is within MaxStreamsPerClient; a stream counted is given back with
// streamClosed.
func (a *httpAPI) streamOpened(r *http.Request) bool {
	ip := clientIP(r)
	a.clientsMu.Lock()
	defer a.clientsMu.Unlock()
	if a.clientSSE == nil {
		a.clientSSE = map[string]int{}
	}
	if a.clientSSE[ip] >= a.opts.MaxStreamsPerClient {
		return false
	}
	a.clientSSE[ip]++
	return true
}

func (a *httpAPI) streamClosed(r *http.Request) {
	ip := clientIP(r)
	a.clientsMu.Lock()
	defer a.clientsMu.Unlock()
	if a.clientSSE[ip]--; a.clientSSE[ip] <= 0 {
		delete(a.clientSSE, ip)
	}
}

// authed wraps a route that needs the token and returns an error. Errors go
// through writeError, the one place that maps them to statuses.
func (a *httpAPI) authed(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.authenticate(r); err != nil {
			w.Header().Set("WWW-Authenticate", err.challenge)
			a.writeError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if err := fn(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// authError is a 401 with the challenge to send.
type authError struct {
	httpError
	challenge string
}

func (a *httpAPI) authenticate(r *http.Request) *authError {
	var got string
	var found bool
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, rest, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return &authError{httpError{Status: http.StatusUnauthorized, Msg: "authorization must be a bearer token"},
				`Bearer realm="persona", error="invalid_request"`}
		}
		got, found = strings.TrimSpace(rest), true
	} else if r.Method == http.MethodGet || r.Method == http.MethodHead {
		// EventSource cannot set headers, so streams and links may carry the
		// token in the query; unsafe methods may not (it would end up in logs
		// for no reason).
		got, found = r.URL.Query().Get("token"), r.URL.Query().Has("token")
	}
	if !found {
		return &authError{httpError{Status: http.StatusUnauthorized, Msg: "missing bearer token"}, `Bearer realm="persona"`}
	}
	sum := sha256.Sum256([]byte(got))
	if a.opts.Token == "" || subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
		return &authError{httpError{Status: http.StatusUnauthorized, Msg: "invalid bearer token"},
			`Bearer realm="persona", error="invalid_token"`}
	}
	return nil
}

// httpError is an error with its HTTP status, for rejections decided by the
// HTTP layer itself (bad input, auth, limits). Field names the offending
// input, when there is one.
type httpError struct {
	Status int
	Msg    string
	Field  string
	// Err is the cause, kept for errors.Is; it is not shown to the client.
	Err error
}

func (e *httpError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

func (e *httpError) Unwrap() error { return e.Err }

// invalid is a 400 about one field; it wraps ErrInvalid.
func badField(field, format string, args ...any) *httpError {
	return &httpError{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...), Field: field, Err: ErrInvalid}
}

// errorResponse maps any error to its status and the body the client sees.
// It is the only place that does (STYLE 13): internal errors say nothing of
// their cause.
func errorResponse(err error) (status int, body errorBody) {
	var he *httpError
	var ae *authError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.Status, errorBody{Error: ae.Msg}
	case errors.As(err, &he):
		return he.Status, errorBody{Error: he.Msg, Field: he.Field}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("body larger than %d bytes", mbe.Limit)}
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, errorBody{Error: err.Error()}
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, errorBody{Error: err.Error()}
	case errors.Is(err, ErrKeyReused):
		return http.StatusUnprocessableEntity, errorBody{Error: err.Error(), Field: idemHeader}
	case errors.Is(err, ErrStoreFull):
		return http.StatusInsufficientStorage, errorBody{Error: "the message store is full: the message was not stored"}
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, errorBody{Error: "service unavailable"}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, errorBody{Error: "backend timed out"}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return http.StatusServiceUnavailable, errorBody{Error: "request canceled"}
	}
	return http.StatusInternalServerError, errorBody{Error: "internal error"}
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func (a *httpAPI) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorResponse(err)
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		// The body may be unread (refused before it was: a 401, a 429):
		// answer now and close, rather than let net/http read up to 256
		// KiB of a body that may trickle in a byte at a time first.
		w.Header().Set("Connection", "close")
	}
	if status >= 500 && !errors.Is(err, context.Canceled) {
		// The path, never the query: the query may hold the token.
		a.opts.Logger.Error("http: internal error", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSONBody(w, status, body)
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	buf, err := json.Marshal(v)
	if err != nil {
		// Only our own types are encoded here; a failure is a bug, and the
		// client still deserves JSON.
		status, buf = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(buf)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(buf, '\n'))
}

// healthz is GET /healthz, without the token: 200 {"status":"ok"}, or 503
// {"status":"degraded","reason":...} while the store refuses writes.
func (a *httpAPI) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if fine, reason := a.b.Health(r.Context()); !fine {
		w.Header().Set("Retry-After", "5")
		writeJSONBody(w, http.StatusServiceUnavailable, map[string]string{"status": "degraded", "reason": reason})
		return
	}
	writeJSONBody(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *httpAPI) metrics(w http.ResponseWriter, r *http.Request) error {
	if a.opts.Metrics == nil {
		return &httpError{Status: http.StatusNotFound, Msg: "metrics are not enabled"}
	}
	a.opts.Metrics.ServeHTTP(w, r)
	return nil
}

func (a *httpAPI) status(w http.ResponseWriter, r *http.Request) error {
	st := a.b.Status()
	if st.Rooms == nil {
		st.Rooms = []string{}
	}
	writeJSONBody(w, http.StatusOK, st)
	return nil
}

// personas is GET /api/personas: every persona, in the backend's order.
// With ?history=true each carries its samples of the last minutes
// (PersonaInfo.History, Backend.Samples), for a chart that opens with its
// past; the dashboard asks once, then polls without.
func (a *httpAPI) personas(w http.ResponseWriter, r *http.Request) error {
	history, err := wantHistory(r)
	if err != nil {
		return err
	}
	ps := a.b.Personas()
	if ps == nil {
		ps = []PersonaInfo{}
	}
	if history {
		for i := range ps {
			ps[i].History = a.samples(ps[i].Name)
		}
	}
	writeJSONBody(w, http.StatusOK, struct {
		Personas []PersonaInfo `json:"personas"`
	}{ps})
	return nil
}

// persona is GET /api/personas/{name}, with ?history=true as personas.
func (a *httpAPI) persona(w http.ResponseWriter, r *http.Request) error {
	history, err := wantHistory(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	p, ok := a.b.Persona(name)
	if !ok {
		return &httpError{Status: http.StatusNotFound, Msg: "no such persona", Field: "name", Err: ErrNotFound}
	}
	if history {
		p.History = a.samples(p.Name)
	}
	writeJSONBody(w, http.StatusOK, p)
	return nil
}

// wantHistory reads ?history=, a boolean (true, false, 1, 0, ...).
func wantHistory(r *http.Request) (bool, error) {
	q := r.URL.Query()
	if !q.Has("history") {
		return false, nil
	}
	v, err := strconv.ParseBool(q.Get("history"))
	if err != nil {
		return false, badField("history", "must be true or false")
	}
	return v, nil
}

// samples is a persona's samples, [] rather than null when it has none.
func (a *httpAPI) samples(name string) []Sample {
	s := a.b.Samples(name)
	if s == nil {
		s = []Sample{}
	}
	return s
}
