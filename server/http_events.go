package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	// sseHeartbeat keeps idle streams alive through proxies that close
	// quiet connections (commonly after 30 to 60 s).
	sseHeartbeat = 15 * time.Second
	// sseRetryMillis is how long a browser's EventSource waits to reconnect.
	sseRetryMillis = "3000"
	// sseWriteTimeout drops a client that stops reading, so it cannot pin a
	// subscription forever.
	sseWriteTimeout = 30 * time.Second
)

// events streams a room's events as Server-Sent Events:
//
//	retry: 3000
//
//	event: message
//	id: <message id>
//	data: {"type":"message","room":"lobby","message":{...}}
//
// and ": heartbeat" comments every 15 s. It ends when the client goes away,
// the request's context ends, or the backend closes the subscription.
func (a *httpAPI) events(w http.ResponseWriter, r *http.Request) error {
	room, err := apiRoom(r)
	if err != nil {
		return err
	}
	if n := a.streams.Add(1); n > int64(a.opts.MaxStreams) {
		a.streams.Add(-1)
		return &httpError{Status: http.StatusServiceUnavailable, Msg: "too many event streams", Err: ErrUnavailable}
	}
	defer a.streams.Add(-1)
	if !a.streamOpened(r) {
		return &httpError{Status: http.StatusTooManyRequests, Msg: fmt.Sprintf("too many event streams from one client (at most %d)", a.opts.MaxStreamsPerClient)}
	}
	defer a.streamClosed(r)

	rc := http.NewResponseController(w)
	// The server's WriteTimeout, if any, would cut a long stream: each write
	// gets its own deadline instead. Not every ResponseWriter supports it.
	deadline := func() {
		if err := rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			a.opts.Logger.Debug("http: set write deadline", "err", err)
		}
	}

	// Nor may the server's ReadTimeout end it: a stream reads nothing
	// after its request.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		a.opts.Logger.Debug("http: clear read deadline", "err", err)
	}
	ctx := r.Context()
	evs, cancel := a.b.Subscribe(ctx, room)
	defer cancel()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	w.WriteHeader(http.StatusOK)
	deadline()
	if _, err := w.Write([]byte("retry: " + sseRetryMillis + "\n\n")); err != nil {
		return nil // the client left; nothing to answer
	}
	if err := rc.Flush(); err != nil {
		// Without flushing there is no stream; the status is already sent,
		// so all we can do is say why in the log.
		a.opts.Logger.Error("http: event stream cannot flush", "path", r.URL.Path, "err", err)
		return nil
	}

	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	var buf bytes.Buffer
	for {
		buf.Reset()
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-evs:
			if !ok {
				return nil
			}
			if err := encodeSSE(&buf, ev); err != nil {
				a.opts.Logger.Error("http: encode event", "room", room, "type", ev.Type, "err", err)
				continue
			}
		case <-beat.C:
			buf.WriteString(": heartbeat\n\n")
		}
		deadline()
		if _, err := w.Write(buf.Bytes()); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// encodeSSE writes one SSE frame. JSON has no raw newlines, so data fits on
// one line; the event name comes from the backend and is cleaned so that it
// cannot end the frame early.
func encodeSSE(buf *bytes.Buffer, ev Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	name := ev.Type
	if name == "" || strings.ContainsAny(name, "\r\n:") {
		name = "message"
	}
	buf.WriteString("event: ")
	buf.WriteString(name)
	buf.WriteByte('\n')
	if ev.Message != nil && messageIDOK(ev.Message.ID) {
		buf.WriteString("id: ")
		buf.WriteString(ev.Message.ID)
		buf.WriteByte('\n')
	}
	buf.WriteString("data: ")
	buf.Write(data)
	buf.WriteString("\n\n")
	return nil
}
