package llm

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ScriptedModel is the Reply.Model of every Scripted reply.
const ScriptedModel = "scripted"

// Scripted is the built-in Model: no network, no weights, the same reply for
// the same request every time. It lets the daemon, the simulator and tests
// run whole rooms of personas with nothing installed.
//
// Its reply is short and in the persona's voice, chosen from the persona's
// name and system prompt: a reviewer ("review", "code") comments on code in
// the last message, a teacher ("teach", "tutor", "explain", "mentor")
// explains, a planner ("plan", "coordinat", "organi") proposes steps, a
// helper ("help", "assist", "support") answers; anyone else acknowledges and
// asks a follow-up. It answers the last RoleUser message in History, or
// introduces itself when there is none.
//
// Delay, when positive, is waited before replying to stand in for model
// latency; Complete returns ctx's error as soon as ctx is done. The zero
// value replies at once. Scripted is safe for concurrent use.
type Scripted struct {
	Delay time.Duration
}

// Complete returns the scripted reply to req after Delay; with
// req.OnText it streams the reply a word at a time over the Delay.
func (s Scripted) Complete(ctx context.Context, req Request) (Reply, error) {
	if req.OnText == nil {
		if err := sleepCtx(ctx, s.Delay); err != nil {
			return Reply{}, fmt.Errorf("llm: scripted: %w", err)
		}
	}
	name := strings.TrimSpace(req.Persona)
	if name == "" {
		name = "assistant"
	}
	last, from := lastUserMessage(req.History)
	v := voiceOf(req.Persona, req.System)
	var content string
	if last == "" {
		content = v.intro(name)
	} else {
		pick := choose(name, last)
		content = v.reply(name, mention(from), topicOf(last, name), last, pick)
	}
	if req.OnText != nil {
		words := strings.SplitAfter(content, " ")
		for i := range words {
			if err := sleepCtx(ctx, s.Delay/time.Duration(len(words))); err != nil {
				return Reply{}, fmt.Errorf("llm: scripted: %w", err)
			}
			req.OnText(strings.Join(words[:i+1], ""))
		}
	}
	prompt := utf8.RuneCountInString(req.System)
	for _, m := range req.History {
		prompt += utf8.RuneCountInString(m.Content)
	}
	return Reply{
		Content: content,
		Model:   ScriptedModel,
		// About four characters a token, the usual rule of thumb for
		// English, so budgets and metrics see believable numbers.
		PromptTokens:     (prompt + 3) / 4,
		CompletionTokens: (utf8.RuneCountInString(content) + 3) / 4,
		Attempts:         1,
	}, nil
}

type voice int

const (
	voiceGeneric voice = iota
	voiceReviewer
	voiceTeacher
	voicePlanner
	voiceHelper
)

// voiceOf reads the persona's role from its name first (the name is the
// strongest signal: "CodeReview" is a reviewer whatever its prompt says),
// then from its system prompt.
func voiceOf(persona, system string) voice {
	for _, text := range []string{persona, system} {
		t := strings.ToLower(text)
		switch {
		case containsAny(t, "review", "code"):
			return voiceReviewer
		case containsAny(t, "teach", "tutor", "explain", "mentor"):
			return voiceTeacher
		case containsAny(t, "plan", "coordinat", "organi"):
			return voicePlanner
		case containsAny(t, "help", "assist", "support"):
			return voiceHelper
		}
	}
	return voiceGeneric
}

func (v voice) intro(name string) string {
	switch v {
	case voiceReviewer:
		return fmt.Sprintf("Hi, I'm %s. Paste code in a message and I'll review it.", name)
	case voiceTeacher:
		return fmt.Sprintf("Hi, I'm %s. Ask me about anything you'd like explained.", name)
	case voicePlanner:
		return fmt.Sprintf("Hi, I'm %s. Tell me the goal and I'll propose a plan.", name)
	case voiceHelper:
		return fmt.Sprintf("Hi, I'm %s. Ask me anything and I'll help.", name)
	default:
		return fmt.Sprintf("Hi, I'm %s. What are we talking about?", name)
	}
}

// reply builds the answer to text (whose salient words are topic) from the
// speaker addressed as to ("@alice " or ""). pick selects among equivalent
// phrasings so a room of scripted personas does not read like one template.
func (v voice) reply(name, to, topic, text string, pick int) string {
	question := strings.Contains(text, "?")
	switch v {
	case voiceReviewer:
		if !codeish(text) {
			return fmt.Sprintf("%sI review code: paste the code around %s in a code block and I'll go through it.", to, topic)
		}
		notes := reviewNotes(text)
		return fmt.Sprintf("%sReviewed it. %s", to, strings.Join(notes, " "))
	case voiceTeacher:
		return pickOf(pick,
			fmt.Sprintf("%sLet me explain %s. Start with the problem it solves, then follow one small example step by step; the general rule falls out of the example. Want me to walk through one?", to, topic),
			fmt.Sprintf("%sGood one to learn. The short version of %s: what goes in, what comes out, and why it is built that way. Shall I show a worked example?", to, topic),
		)
	case voicePlanner:
		return pickOf(pick,
			fmt.Sprintf("%sProposed plan for %s: 1) agree on the goal and what done looks like; 2) split it into small steps, each with an owner; 3) do the riskiest step first and check in after it. Any objections?", to, topic),
			fmt.Sprintf("%sSteps for %s: 1) list what we know and what we don't; 2) pick the smallest piece that proves the idea; 3) ship it, measure, then plan the next piece. Who takes step 1?", to, topic),
		)
	case voiceHelper:
		if question {
			return pickOf(pick,
				fmt.Sprintf("%sGood question. For %s, start with the simplest thing that could work and check it on one concrete case before widening. What have you tried so far?", to, topic),
				fmt.Sprintf("%sHappy to help with %s. The usual cause is a small mismatch between what you expect and what actually runs: check the inputs first. Can you share the exact error?", to, topic),
			)
		}
		return pickOf(pick,
			fmt.Sprintf("%sNoted on %s. Want me to dig into it, or summarize the options?", to, topic),
			fmt.Sprintf("%sThanks. If %s needs a hand, tell me what done looks like and I'll help get there.", to, topic),
		)
	default:
		if question {
			return fmt.Sprintf("%s%s here. On %s: it depends on what matters most to you. What's the constraint?", to, name, topic)
		}
		return fmt.Sprintf("%s%s here. Interesting point about %s. What made you bring it up?", to, name, topic)
	}
}

// reviewNotes are at most two concrete remarks on a snippet, checked in the
// order a reviewer would raise them: correctness before style.
func reviewNotes(code string) []string {
	lower := strings.ToLower(code)
	var notes []string
	add := func(ok bool, note string) {
		if ok && len(notes) < 2 {
			notes = append(notes, note)
		}
	}
	add(strings.Contains(code, "err") && !containsAny(code, "if err", "err != nil", "err == nil"),
		"An error value looks unchecked: handle it or say why dropping it is safe.")
	add(containsAny(lower, "password", "secret", "api_key", "apikey"),
		"A credential seems to be in the code: load it from the environment instead.")
	add(strings.Contains(code, "panic("),
		"That panic should probably be a returned error.")
	add(containsAny(code, "TODO", "FIXME"),
		"There's a TODO left in it: do it now or open an issue for it.")
	add(slices.ContainsFunc(strings.Split(code, "\n"), func(l string) bool { return utf8.RuneCountInString(l) > 100 }),
		"Some lines are long enough to hurt readability.")
	if len(notes) == 0 {
		notes = append(notes, "It reads cleanly. I'd add a test for the edge cases: empty input and the error path.")
	}
	return notes
}

// codeish reports whether text looks like it contains code.
func codeish(text string) bool {
	return containsAny(text, "```", "func ", "def ", "class ", "return ", "{", "};", "=>", ":=", "#include", "import ", "SELECT ", "console.log")
}

// lastUserMessage is the newest RoleUser message and its speaker.
func lastUserMessage(h []Message) (content, from string) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Role == RoleUser && strings.TrimSpace(h[i].Content) != "" {
			return strings.TrimSpace(h[i].Content), h[i].Name
		}
	}
	return "", ""
}

func mention(name string) string {
	if name == "" {
		return ""
	}
	return "@" + name + " "
}

// stopwords are words too common to name a topic.
var stopwords = map[string]bool{
	"the": true, "and": true, "for": true, "are": true, "but": true, "not": true, "you": true,
	"all": true, "any": true, "can": true, "her": true, "was": true, "one": true, "our": true,
	"out": true, "has": true, "have": true, "how": true, "its": true, "let": true, "may": true,
	"who": true, "why": true, "what": true, "when": true, "where": true, "which": true, "with": true,
	"this": true, "that": true, "these": true, "those": true, "there": true, "their": true,
	"from": true, "into": true, "about": true, "would": true, "could": true, "should": true,
	"does": true, "did": true, "doing": true, "done": true, "just": true, "like": true, "some": true,
	"than": true, "then": true, "them": true, "they": true, "will": true, "your": true, "yours": true,
	"been": true, "being": true, "were": true, "want": true, "need": true, "know": true, "think": true,
	"please": true, "thanks": true, "hello": true, "anyone": true, "someone": true, "here": true,
	"also": true, "very": true, "really": true, "still": true, "make": true, "get": true, "got": true,
	"stop": true, "start": true, "use": true, "using": true, "work": true, "works": true,
	"working": true, "fix": true, "try": true, "trying": true, "see": true, "look": true,
	// Verbs of asking say nothing of the topic: "can you explain X" is about X.
	"explain": true, "tell": true, "show": true, "help": true, "understand": true, "learn": true,
	"review": true, "plan": true, "idea": true, "ideas": true, "question": true, "thing": true,
	"anything": true, "something": true, "fails": true, "failing": true, "wrong": true,
}

// topicOf names what text is about: its up to three longest non-trivial
// words, kept in their original order ("goroutine leak tests"), so the reply
// visibly refers to the message. Mentions and the persona's own name are
// skipped; with nothing left, the topic is "this".
func topicOf(text, self string) string {
	type word struct {
		w   string
		pos int
	}
	var words []word
	seen := map[string]bool{}
	for i, f := range strings.Fields(text) {
		if strings.HasPrefix(f, "@") {
			continue
		}
		w := strings.TrimFunc(f, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		lw := strings.ToLower(w)
		if utf8.RuneCountInString(w) < 3 || stopwords[lw] || strings.EqualFold(w, self) || seen[lw] {
			continue
		}
		seen[lw] = true
		words = append(words, word{w, i})
	}
	if len(words) == 0 {
		return "this"
	}
	slices.SortStableFunc(words, func(a, b word) int {
		return utf8.RuneCountInString(b.w) - utf8.RuneCountInString(a.w)
	})
	words = words[:min(3, len(words))]
	slices.SortFunc(words, func(a, b word) int { return a.pos - b.pos })
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = w.w
	}
	return strings.Join(out, " ")
}

// choose is a stable pseudo-random pick from the persona and the message, so
// replies vary across messages but never between runs.
func choose(name, text string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(text))
	return int(h.Sum32() >> 1)
}

func pickOf(pick int, options ...string) string { return options[pick%len(options)] }

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
