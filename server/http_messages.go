package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/personaos/persona/chat"
)

// msgLimits bounds what decodeMessage accepts.
type msgLimits struct {
	MaxBody    int64 // bytes of the whole body
	MaxContent int   // runes of content, after trimming
	MaxAuthor  int   // runes of author, after trimming
}

// decodeMessage decodes and validates a posted message body: one JSON object
// with exactly the string fields "author" and "content" (names matched
// exactly, each at most once), nothing after it, valid UTF-8 throughout.
// Author and content are returned trimmed of surrounding white space; the
// author must then be 1..MaxAuthor runes without control or format
// characters, the content 1..MaxContent runes without control characters
// other than tab and newlines. Every error is an *httpError with a 4xx
// status. It is pure, so the fuzz test drives it directly.
func decodeMessage(r io.Reader, lim msgLimits) (author, content string, err error) {
	body, err := io.ReadAll(io.LimitReader(r, lim.MaxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", "", tooLarge(lim.MaxBody)
		}
		return "", "", &httpError{Status: http.StatusBadRequest, Msg: "cannot read body", Err: err}
	}
	if int64(len(body)) > lim.MaxBody {
		return "", "", tooLarge(lim.MaxBody)
	}
	// encoding/json would quietly turn invalid bytes into U+FFFD.
	if !utf8.Valid(body) {
		return "", "", badField("", "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", "", badField("", "body must be a JSON object")
	}
	var a, c *string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", "", badField("", "malformed JSON")
		}
		key, _ := tok.(string) // inside an object, More promises a key
		var dst **string
		switch key {
		case "author":
			dst = &a
		case "content":
			dst = &c
		default:
			// encoding/json matches names case-insensitively and keeps the
			// last duplicate; strict input means neither.
			return "", "", badField(clipRunes(key, 64), "unknown field")
		}
		if *dst != nil {
			return "", "", badField(key, "duplicate field")
		}
		var s *string
		if err := dec.Decode(&s); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return "", "", badField(key, "must be a string")
			}
			return "", "", badField("", "malformed JSON")
		}
		if s == nil {
			return "", "", badField(key, "must be a string, not null")
		}
		*dst = s
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return "", "", badField("", "malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", "", badField("", "unexpected data after the JSON object")
	}
	if a == nil {
		return "", "", badField("author", "required")
	}
	if c == nil {
		return "", "", badField("content", "required")
	}
	author, content = strings.TrimSpace(*a), strings.TrimSpace(*c)
	if err := checkAuthor(author, lim.MaxAuthor); err != nil {
		return "", "", err
	}
	if err := checkContent(content, lim.MaxContent); err != nil {
		return "", "", err
	}
	return author, content, nil
}

func tooLarge(n int64) *httpError {
	return &httpError{Status: http.StatusRequestEntityTooLarge, Msg: "body larger than " + strconv.FormatInt(n, 10) + " bytes"}
}

func checkAuthor(s string, maxRunes int) error {
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return badField("author", "required")
	case n > maxRunes:
		return badField("author", "longer than %d characters", maxRunes)
	}
	for _, r := range s {
		// Format characters include bidi overrides and zero-width joiners,
		// which let one name pass for another.
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return badField("author", "contains control or format characters")
		}
	}
	return nil
}

func checkContent(s string, maxRunes int) error {
	switch n := utf8.RuneCountInString(s); {
	case n == 0:
		return badField("content", "empty")
	case n > maxRunes:
		return badField("content", "longer than %d characters", maxRunes)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return badField("content", "contains control characters")
		}
	}
	return nil
}

// clipRunes shortens s to at most n runes, for echoing client input in errors.
func clipRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + "…"
		}
		n--
	}
	return s
}

// roomNameOK reports whether name matches [a-z0-9][a-z0-9_-]{0,63}.
func roomNameOK(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

func apiRoom(r *http.Request) (string, error) {
	room := r.PathValue("room")
	if !roomNameOK(room) {
		return "", badField("room", "must match [a-z0-9][a-z0-9_-]{0,63}")
	}
	return room, nil
}

// messageIDOK accepts ids a backend could plausibly produce: 1..128
// printable ASCII characters without spaces. The backend decides whether one
// exists.
func messageIDOK(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// isJSON reports whether a Content-Type header names JSON in UTF-8.
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

func (a *httpAPI) postMessage(w http.ResponseWriter, r *http.Request) error {
	room, err := apiRoom(r)
	if err != nil {
		return err
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return &httpError{Status: http.StatusUnsupportedMediaType, Msg: "content type must be application/json"}
	}
	author, content, err := decodeMessage(http.MaxBytesReader(w, r.Body, a.opts.MaxBody), a.msgLimits)
	if err != nil {
		return err
	}
	if p, ok := a.impersonates(author); ok {
		return badField("author", "%q is a persona's name", p)
	}
	key, err := idemKey(r)
	if err != nil {
		return err
	}
	if key != "" {
		replay, ok, err := a.idem.begin(key, room, author, content, a.opts.Now())
		switch {
		case err != nil:
			return err
		case replay != nil:
			w.Header().Set("Location", "/api/rooms/"+room+"/messages/"+url.PathEscape(replay.ID))
			w.Header().Set(idemReplied, "true")
			writeJSONBody(w, http.StatusOK, *replay)
			return nil
		case ok:
			var stored *chat.Message
			defer func() { a.idem.finish(key, stored) }()
			msg, replayed, err := a.postOnce(r, room, author, content, key)
			if err != nil {
				return err
			}
			stored = &msg
			w.Header().Set("Location", "/api/rooms/"+room+"/messages/"+url.PathEscape(msg.ID))
			if replayed {
				w.Header().Set(idemReplied, "true")
				writeJSONBody(w, http.StatusOK, msg)
				return nil
			}
			writeJSONBody(w, http.StatusCreated, msg)
			return nil
		}
	}
	msg, err := a.post(r, room, author, content)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/rooms/"+room+"/messages/"+url.PathEscape(msg.ID))
	writeJSONBody(w, http.StatusCreated, msg)
	return nil
}

// post stores a message for postMessage.
func (a *httpAPI) post(r *http.Request, room, author, content string) (chat.Message, error) {
	// Not cancelled with the request: a client that hangs up, or a server
	// shutting down, must not turn a publish JetStream may already have
	// stored into a failure. The timeout still bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.opts.RequestTimeout)
	defer cancel()
	return a.b.Post(ctx, room, author, content)
}

// postOnce stores a message under an idempotency key the HTTP layer has
// not seen: through the backend's own memory of keys if it has one
// (KeyedPoster), else as a plain post.
func (a *httpAPI) postOnce(r *http.Request, room, author, content, key string) (chat.Message, bool, error) {
	kp, ok := a.b.(KeyedPoster)
	if !ok {
		msg, err := a.post(r, room, author, content)
		return msg, false, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.opts.RequestTimeout)
	defer cancel()
	return kp.PostOnce(ctx, room, author, content, key)
}

// PersonaNamer is what a Backend may also implement to tell whether an
// author would pass for a persona from what it knows locally (the Daemon
// does). A Backend without it is asked for Personas on every POST.
type PersonaNamer interface {
	PersonaName(author string) (persona string, ok bool)
}

// impersonates reports whether author would pass for a persona: its name
// (what @mentions use) or display name, ignoring case and a leading '@'.
func (a *httpAPI) impersonates(author string) (string, bool) {
	if pn, ok := a.b.(PersonaNamer); ok {
		return pn.PersonaName(author)
	}
	look := skeleton(author)
	for _, p := range a.b.Personas() {
		if look == skeleton(p.Name) || (p.Display != "" && look == skeleton(p.Display)) {
			return p.Name, true
		}
	}
	return "", false
}

// getMessage is GET /api/rooms/{room}/messages/{id}: one message, where a
// POST's Location points.
func (a *httpAPI) getMessage(w http.ResponseWriter, r *http.Request) error {
	room, err := apiRoom(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if !messageIDOK(id) {
		return badField("id", "must be a message id")
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.RequestTimeout)
	defer cancel()
	msg, err := a.b.Message(ctx, room, id)
	if err != nil {
		return err
	}
	writeJSONBody(w, http.StatusOK, msg)
	return nil
}

// listMessages is GET /api/rooms/{room}/messages: one page of the room's
// history. Within a page messages are always oldest first; the query says
// which page:
//
//	(no cursor)              the room's oldest page (order=oldest, the default)
//	?after=<id>              the page right after that message: paging forward
//	?order=newest            the room's newest page
//	?before=<id>             the page right before that message: paging
//	                         backwards (order=newest is implied and may be given)
//	?limit=1..500            the page's length, default 100
//
// A client that shows the newest first asks for order=newest, then for
// before=<the first id of its oldest page> until a page is shorter than
// its limit and not truncated (a page is cut at HTTPOptions.MaxPageBytes,
// 1 MiB, and then says truncated: true); after=<the last id it has> fills
// the gap after a reconnect.
// after with before, after with order=newest, before with order=oldest
// and any other order are 400; an unknown cursor is 404.
func (a *httpAPI) listMessages(w http.ResponseWriter, r *http.Request) error {
	room, err := apiRoom(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	after, before := q.Get("after"), q.Get("before")
	if q.Has("after") && !messageIDOK(after) {
		return badField("after", "must be a message id")
	}
	if q.Has("before") && !messageIDOK(before) {
		return badField("before", "must be a message id")
	}
	newest := q.Has("before")
	switch order := q.Get("order"); {
	case !q.Has("order"):
	case order == "newest":
		newest = true
	case order == "oldest":
		if q.Has("before") {
			return badField("order", "before pages backwards: order must be newest or absent")
		}
	default:
		return badField("order", "must be oldest or newest")
	}
	switch {
	case q.Has("after") && q.Has("before"):
		return badField("before", "cannot be combined with after")
	case q.Has("after") && newest:
		return badField("order", "after pages forward: order must be oldest or absent (use before to page backwards)")
	}
	limit := defaultMessagesLimit
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxMessagesLimit {
			return badField("limit", "must be an integer from 1 to %d", maxMessagesLimit)
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.RequestTimeout)
	defer cancel()
	var msgs []chat.Message
	if newest {
		msgs, err = a.b.MessagesBefore(ctx, room, before, limit)
		if len(msgs) > limit { // a backend's slip must not break the contract
			msgs = msgs[len(msgs)-limit:]
		}
	} else {
		msgs, err = a.b.Messages(ctx, room, after, limit)
		if len(msgs) > limit {
			msgs = msgs[:limit]
		}
	}
	if err != nil {
		return err
	}
	writePage(w, room, msgs, newest, a.opts.MaxPageBytes)
	return nil
}

// writePage writes a page of messages, {"room":...,"messages":[...],
// "truncated":bool}, encoded one message at a time and capped at max bytes
// of messages: a page cut by the cap has truncated true and holds the
// messages nearest its cursor (the newest of a backward page, the oldest
// of a forward one), so that paging on from it loses none. The messages
// are encoded before anything is written and the page is not held twice,
// so a client that never reads pins at most about max bytes, until the
// write deadline drops it.
func writePage(w http.ResponseWriter, room string, msgs []chat.Message, newest bool, max int) {
	enc := make([][]byte, len(msgs))
	for i, m := range msgs {
		enc[i], _ = json.Marshal(m) // our own type: it always encodes
	}
	msgs = nil
	lo, hi, size := 0, len(enc), 0
	if newest {
		for lo = len(enc); lo > 0 && (lo == len(enc) || size+len(enc[lo-1]) <= max); lo-- {
			size += len(enc[lo-1]) + 1
		}
	} else {
		for hi = 0; hi < len(enc) && (hi == 0 || size+len(enc[hi]) <= max); hi++ {
			size += len(enc[hi]) + 1
		}
	}
	truncated := hi-lo < len(enc)
	// The messages cut from the page are garbage from here on, not held
	// for as long as a slow client takes to read the rest.
	page := slices.Clone(enc[lo:hi])
	enc = nil
	roomJSON, _ := json.Marshal(room)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.WriteString(`{"room":`)
	bw.Write(roomJSON)
	bw.WriteString(`,"messages":[`)
	for i, b := range page {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.Write(b)
	}
	fmt.Fprintf(bw, "],\"truncated\":%t}\n", truncated)
	_ = bw.Flush()
}

// trail is GET /api/rooms/{room}/trail: the room's recent thoughts and
// decisions, {"room": ..., "events": [Event...]}, oldest first, each as
// the live stream sent it ("thought" or "decision"). The daemon keeps the
// last 200 of the last hour per room, in memory.
func (a *httpAPI) trail(w http.ResponseWriter, r *http.Request) error {
	room, err := apiRoom(r)
	if err != nil {
		return err
	}
	evs := a.b.Trail(room)
	if evs == nil {
		evs = []Event{}
	}
	writeJSONBody(w, http.StatusOK, struct {
		Room   string  `json:"room"`
		Events []Event `json:"events"`
	}{room, evs})
	return nil
}
