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
type Request struct {
	Persona     string
	System      string
	History     []Message
	MaxTokens   int
	Temperature *float64
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
