package llm

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"
)

// Role is the speaker of a Message, as the OpenAI chat format names it.
type Role string

// The roles a Message may carry. A persona's own past messages are
// RoleAssistant; everyone else in the room (humans and other personas) is
// RoleUser with Name set, so the model can tell speakers apart.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one turn of a conversation as a model sees it.
// Name is the speaker's display name; it may be empty.
type Message struct {
	Role    Role
	Name    string
	Content string
}

// Request is one completion request for one persona.
//
// The prompt a model sees is System (if not empty) followed by History in
// order, oldest first. MaxTokens <= 0 leaves the reply length to the server;
// a nil Temperature leaves sampling to the server. Persona is the persona's
// name: backends use it for logs and, for Scripted, for its voice.
//
// OnText, when set, asks for the reply as it is generated: the backend
// streams it and calls OnText with the reply's text so far each time more
// arrives (from the call's goroutine or the backend's, never two at once
// for one call; a retried call starts again from its first piece). The
// returned Reply is the whole answer either way. A backend that cannot
// stream calls it once with the whole text, or not at all.
type Request struct {
	Persona     string
	System      string
	History     []Message
	MaxTokens   int
	Temperature *float64
	OnText      func(text string)
}

// Reply is a model's answer to a Request.
//
// Model is the model the server says answered (which may differ from the one
// asked for, e.g. an alias resolved to a version). Token counts are the
// server's usage report, zero when it sends none; Scripted estimates them.
// Attempts counts the HTTP attempts the call took, 1 when no retry was needed.
type Reply struct {
	Content          string
	Model            string
	PromptTokens     int
	CompletionTokens int
	Attempts         int
}

// Model produces a persona's next message. Implementations must be safe for
// concurrent use by several personas and must return promptly once ctx is
// done. An error means no reply: the caller accounts the item and lives on.
type Model interface {
	Complete(ctx context.Context, req Request) (Reply, error)
}

// ChatLine is one message of a room's history as the chat domain stores it.
type ChatLine struct {
	Author  string
	Content string
	// ID names the line for StableHistory (a message ID); it may be empty.
	ID string
}

// Defaults for BuildHistory when its bounds are zero or negative. Twenty
// messages is enough context to follow a thread; 6000 characters (roughly
// 1500 tokens) leaves room for a system prompt and a reply inside the 4096
// token context many small local models are served with.
const (
	DefaultMaxHistory      = 20
	DefaultMaxHistoryChars = 6000
)

// BuildHistory turns a room's recent lines (oldest first) into the History
// of a Request for the persona named self.
//
// It keeps the newest lines that fit in both maxMsgs messages and maxChars
// characters (runes) of content, and returns them oldest first; bounds <= 0
// mean DefaultMaxHistory and DefaultMaxHistoryChars. Lines whose author is
// self (compared case-insensitively) become RoleAssistant, the rest RoleUser
// with Name set to the author. Blank lines are skipped. The newest line is
// always kept, cut to maxChars if it alone is longer: the message a persona
// answers must never be the one dropped.
func BuildHistory(self string, msgs []ChatLine, maxMsgs, maxChars int) []Message {
	if maxMsgs <= 0 {
		maxMsgs = DefaultMaxHistory
	}
	if maxChars <= 0 {
		maxChars = DefaultMaxHistoryChars
	}
	var out []Message
	used := 0
	for i := len(msgs) - 1; i >= 0 && len(out) < maxMsgs; i-- {
		content := strings.TrimSpace(msgs[i].Content)
		if content == "" {
			continue
		}
		n := utf8.RuneCountInString(content)
		if used+n > maxChars {
			if len(out) > 0 {
				break
			}
			content = truncateRunes(content, maxChars)
			n = maxChars
		}
		used += n
		m := Message{Role: RoleUser, Name: msgs[i].Author, Content: content}
		if self != "" && strings.EqualFold(msgs[i].Author, self) {
			m.Role = RoleAssistant
		}
		out = append(out, m)
	}
	slices.Reverse(out)
	return out
}

// truncateRunes keeps the first n runes of s, ending with an ellipsis when
// anything was cut, so the reader (model or human) knows the text goes on.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:max(n, 0)])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// StableHistory is BuildHistory with a window that stays put: it starts at
// the line whose ID is from while the lines from there on fit the bounds,
// so that a persona's consecutive prompts in a room share their prefix
// (system prompt and older lines byte for byte) and a model server's prompt
// cache can reuse it. When they no longer fit (or from is gone), the start
// moves forward past the older half of what fits, and stays there again:
// the window holds between half and all of what BuildHistory would keep.
// It returns the ID of its first line, to pass as from next time ("" when
// the lines carry no IDs).
func StableHistory(self string, msgs []ChatLine, maxMsgs, maxChars int, from string) ([]Message, string) {
	if maxMsgs <= 0 {
		maxMsgs = DefaultMaxHistory
	}
	if maxChars <= 0 {
		maxChars = DefaultMaxHistoryChars
	}
	var lines []ChatLine // the non-blank ones, trimmed
	for _, m := range msgs {
		if c := strings.TrimSpace(m.Content); c != "" {
			m.Content = c
			lines = append(lines, m)
		}
	}
	fits := func(start int) bool {
		if len(lines)-start > maxMsgs {
			return false
		}
		used := 0
		for _, m := range lines[start:] {
			used += utf8.RuneCountInString(m.Content)
		}
		return used <= maxChars
	}
	start := -1
	if from != "" {
		start = slices.IndexFunc(lines, func(m ChatLine) bool { return m.ID == from })
	}
	if start < 0 || !fits(start) {
		// The newest lines that fit, then only their newer half.
		s0 := len(lines)
		for s0 > 0 && fits(s0-1) {
			s0--
		}
		if s0 == len(lines) { // the newest line alone is too long
			return BuildHistory(self, msgs, maxMsgs, maxChars), ""
		}
		start = s0
		if from != "" || start > 0 {
			start = s0 + (len(lines)-s0)/2
		}
	}
	kept := lines[start:]
	out := make([]Message, 0, len(kept))
	for _, m := range kept {
		msg := Message{Role: RoleUser, Name: m.Author, Content: m.Content}
		if self != "" && strings.EqualFold(m.Author, self) {
			msg.Role = RoleAssistant
		}
		out = append(out, msg)
	}
	return out, kept[0].ID
}

// SharedPrefix is how much of the prompt of req a server could reuse from
// prev, the same persona's previous request: the share of req's prompt
// characters (system prompt and history, in order) before the first one
// that differs. 0 with no previous request.
func SharedPrefix(prev, req Request) float64 {
	a, b := promptText(prev), promptText(req)
	if len(b) == 0 {
		return 0
	}
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return float64(n) / float64(len(b))
}

// promptText is the prompt as a server sees it, flattened.
func promptText(r Request) string {
	var b strings.Builder
	b.WriteString(r.System)
	for _, m := range r.History {
		b.WriteString("\x00")
		b.WriteString(string(m.Role))
		b.WriteString("\x00")
		b.WriteString(m.Name)
		b.WriteString("\x00")
		b.WriteString(m.Content)
	}
	return b.String()
}
