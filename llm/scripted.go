package llm

import (
	"context"
	"errors"
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

// DemoPrefix begins every reply Scripted writes, so that a person reading
// the room knows no model wrote it, and so that Scripted personas do not
// answer one another's canned lines.
const DemoPrefix = "(demo reply, no model configured) "

// ErrNothingToSay is a Model's way to say that a message needs no answer
// (small talk, another persona's canned line): the call worked and there is
// nothing to post. It is not a failure: a caller posts nothing, counts no
// failed call and accounts the message as handled. Scripted returns it; a
// Model that wraps another passes it through. Test for it with errors.Is.
var ErrNothingToSay = errors.New("llm: nothing to say")

// Scripted is the built-in Model: no network, no weights, the same reply for
// the same request every time. It lets the daemon, the simulator and tests
// run whole rooms of personas with nothing installed.
//
// It answers the last RoleUser message in History (or introduces itself
// when there is none) with a few short sentences that begin with
// DemoPrefix, address the asker by @name when the message has one, quote
// the message's gist (cut at a word, at most 60 characters), and say what
// the persona would do with a model configured, in its voice,
// chosen from its name and system prompt: a reviewer ("review", "code")
// takes a first look at code and asks for it when there is none, a teacher
// ("teach", "tutor", "explain", "mentor") would explain, a planner ("plan",
// "coordinat", "organi") would plan, a helper ("help", "assist",
// "support") would walk the asker through it; anyone else says its name.
//
// It does not answer small talk (greetings, thanks, the weather, "lol",
// emoji, chit-chat with neither a question nor a topic) nor a line that
// starts with DemoPrefix, another Scripted persona's: Complete returns
// ErrNothingToSay. It cannot tell other lines written by personas from
// people's, as a Request does not say who is a persona.
//
// Delay, when positive, is waited before replying (or declining) to stand
// in for model latency; Complete returns ctx's error as soon as ctx is
// done. The zero value replies at once. Scripted is safe for concurrent use.
type Scripted struct {
	Delay time.Duration
}

// Complete returns the scripted reply to req after Delay, or
// ErrNothingToSay; with req.OnText it streams the reply a word at a time
// over the Delay.
func (s Scripted) Complete(ctx context.Context, req Request) (Reply, error) {
	name := strings.TrimSpace(req.Persona)
	if name == "" {
		name = "assistant"
	}
	content, ok := scriptedReply(name, req)
	if !ok || req.OnText == nil {
		if err := sleepCtx(ctx, s.Delay); err != nil {
			return Reply{}, fmt.Errorf("llm: scripted: %w", err)
		}
	}
	if !ok {
		return Reply{}, ErrNothingToSay
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

// scriptedReply is Scripted's reply to req for the persona called name, or
// false when it has nothing to say.
func scriptedReply(name string, req Request) (string, bool) {
	last, from := lastUserMessage(req.History)
	v := voiceOf(req.Persona, req.System)
	if last == "" {
		return DemoPrefix + v.intro(name), true
	}
	if isDemoLine(last) {
		// Another persona's line is the newest; a person who named this
		// persona is still owed an answer.
		if last, from = lastNaming(req.History, name); last == "" {
			return "", false
		}
	}
	q := quoteOf(last)
	if smallTalk(last) || (q == "" && !(v == voiceReviewer && codeish(last))) { // a code block alone is for the reviewer
		if !names(last, name) {
			return "", false
		}
		// A person who names the persona is owed an answer, even to a
		// greeting.
		return DemoPrefix + mention(from) + "Hello! With a model configured I would answer you properly; ask me a question to see what I would do.", true
	}
	return DemoPrefix + v.reply(name, mention(from), q, asks(last, q), last, choose(name, last)), true
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

// reply is the answer, after DemoPrefix, to text, whose gist is q, from the
// speaker addressed as to ("@alice " or ""); ask says whether text asks
// for something. pick selects among equivalent phrasings so a room of
// scripted personas does not read like one template.
func (v voice) reply(name, to, q string, ask bool, text string, pick int) string {
	said := `You said "` + q + `".`
	if ask {
		said = `You asked "` + q + `".`
	}
	var then string
	switch v {
	case voiceReviewer:
		if codeish(text) {
			return fmt.Sprintf("%sA first look at your code: %s. With a model configured I would review it line by line.", to, reviewNote(text))
		}
		then = "With a model configured I would review the code with you; paste it in a code block."
	case voiceTeacher:
		then = pickOf(pick,
			"With a model configured I would explain it with a small example.",
			"With a model configured I would explain it one step at a time.")
	case voicePlanner:
		then = pickOf(pick,
			"With a model configured I would propose a short plan with an owner for each step.",
			"With a model configured I would break it into small steps, riskiest first.")
	case voiceHelper:
		if ask {
			then = pickOf(pick,
				"With a model configured I would walk you through it.",
				"With a model configured I would help you work it out step by step.")
		} else {
			then = "With a model configured I would help you with it."
		}
	default:
		if ask {
			return fmt.Sprintf("%s%s here. %s With a model configured I would answer it.", to, name, said)
		}
		return fmt.Sprintf("%s%s here. %s With a model configured I would join in.", to, name, said)
	}
	return to + said + " " + then
}

// reviewNote is one concrete remark on a snippet, the first a reviewer
// would raise: correctness before style.
func reviewNote(code string) string {
	lower := strings.ToLower(code)
	switch {
	case strings.Contains(code, "err") && !containsAny(code, "if err", "err != nil", "err == nil"):
		return "an error value looks unchecked; handle it or say why dropping it is safe"
	case containsAny(lower, "password", "secret", "api_key", "apikey"):
		return "a credential seems to be in the code; load it from the environment instead"
	case strings.Contains(code, "panic("):
		return "that panic should probably be a returned error"
	case containsAny(code, "TODO", "FIXME"):
		return "there is a TODO left in it; do it now or open an issue for it"
	case slices.ContainsFunc(strings.Split(code, "\n"), func(l string) bool { return utf8.RuneCountInString(l) > 100 }):
		return "some lines are long enough to hurt readability"
	}
	return "it reads cleanly; I would add tests for empty input and the error path"
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

// lastNaming returns the newest user line of h that names the persona and
// is no persona's (DemoPrefix). The history does not say which lines the
// reply answers (its caller does), so a demo reply may repeat an answer.
func lastNaming(h []Message, name string) (content, from string) {
	for i := len(h) - 1; i >= 0; i-- {
		if c := strings.TrimSpace(h[i].Content); h[i].Role == RoleUser && !isDemoLine(c) && names(c, name) {
			return c, h[i].Name
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

// names reports whether text @mentions name (case-insensitive, as a
// whole name).
func names(text, name string) bool {
	lower, at := strings.ToLower(text), "@"+strings.ToLower(name)
	for i := strings.Index(lower, at); i >= 0; {
		end := i + len(at)
		if end == len(lower) || !(unicode.IsLetter(rune(lower[end])) || unicode.IsDigit(rune(lower[end])) || lower[end] == '_' || lower[end] == '-') {
			return true
		}
		j := strings.Index(lower[end:], at)
		if j < 0 {
			return false
		}
		i = end + j
	}
	return false
}

// isDemoLine reports whether text is a Scripted reply: it starts with
// DemoPrefix, after any @mentions the daemon put before it to address
// more askers.
func isDemoLine(text string) bool {
	for {
		text = strings.TrimLeftFunc(text, unicode.IsSpace)
		if !strings.HasPrefix(text, "@") {
			return strings.HasPrefix(text, strings.TrimSpace(DemoPrefix))
		}
		i := strings.IndexFunc(text, unicode.IsSpace)
		if i < 0 {
			return false
		}
		text = text[i:]
	}
}

// smallTalk reports whether text is small talk, which a demo reply would
// only clutter: no words (emoji, punctuation, mentions alone); thanks; the
// weather; a question made only of small-talk words ("how are you?") or
// one that greets and names no topic ("hello, anyone here?"); anything
// else that names no topic ("hi all, nice day", "lol", "ok sounds good").
func smallTalk(text string) bool {
	ws := wordsOf(text)
	if len(ws) == 0 {
		return true
	}
	if strings.Contains(text, "?") {
		allChatter := !slices.ContainsFunc(ws, func(w string) bool { return !chatter[w] })
		return allChatter || greetings[ws[0]] && !slices.ContainsFunc(ws, topical)
	}
	if thanks[ws[0]] || slices.ContainsFunc(ws, func(w string) bool { return weather[w] }) {
		return true
	}
	return !slices.ContainsFunc(ws, topical)
}

// topical reports whether the lower-case word w could name a topic.
func topical(w string) bool { return !chatter[w] && !stopwords[w] && !shortWords[w] }

// wordsOf is text's words, lower-case, without @mentions: runs of letters,
// digits and the apostrophes, '+' and '#' that words like "it's", "c++"
// and "c#" hold.
func wordsOf(text string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(strings.ReplaceAll(text, "’", "'"), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("'+#@", r)
	}) {
		f = strings.Trim(f, "'")
		if strings.HasPrefix(f, "@") || !strings.ContainsFunc(f, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			continue
		}
		out = append(out, strings.ToLower(f))
	}
	return out
}

// quoteRunes caps the piece of a message a reply quotes: enough for a
// question's gist, short enough to read at a glance.
const quoteRunes = 60

// quoteOf is the piece of text a reply quotes: its first question (else
// its first sentence that names a topic, else its first), before any code
// block, without the mentions, greetings and fillers around it ("@Teacher
// hi, ...", "..., any idea?", "... please"), with no trailing punctuation,
// and at most quoteRunes runes, cut after a word that does not leave the
// sentence dangling, with an ellipsis. "" when nothing is left.
func quoteOf(text string) string {
	if i := strings.Index(text, "```"); i >= 0 {
		text = text[:i]
	}
	ws := trimTail(trimLead(strings.Fields(strings.ReplaceAll(sentenceOf(text), `"`, "'"))))
	for i, w := range ws {
		ws[i] = strings.TrimPrefix(w, "@") // a name, quoted, calls no one
	}
	q := strings.Join(ws, " ")
	if utf8.RuneCountInString(q) <= quoteRunes {
		return q
	}
	n, kept := 0, 0
	for kept < len(ws) && n+utf8.RuneCountInString(ws[kept]) < quoteRunes { // room for the ellipsis
		n += utf8.RuneCountInString(ws[kept]) + 1
		kept++
	}
	if kept == 0 { // one enormous word
		return truncateRunes(ws[0], quoteRunes)
	}
	for kept > 1 && dangling[bare(ws[kept-1])] {
		kept--
	}
	return trimEnd(strings.Join(ws[:kept], " ")) + "…"
}

// trimLead drops what comes before a message's gist: mentions, fillers,
// and greetings with whom they greet ("hi all, ...", "good morning team").
func trimLead(ws []string) []string {
	for len(ws) > 0 {
		w := bare(ws[0])
		switch {
		case strings.HasPrefix(ws[0], "@"), leadFillers[w], strings.Trim(ws[0], ",;:-–—") == "":
			ws = ws[1:]
		case greetings[w], w == "good" && len(ws) > 1 && greetings[bare(ws[1])]:
			g := ws[0]
			ws = ws[1:]
			for len(ws) > 0 && greetings[bare(ws[0])] { // "good morning"
				g, ws = ws[0], ws[1:]
			}
			// "hi all, ..." greets all; in "hey, all tests fail" all is the
			// message's.
			if len(ws) > 0 && !strings.ContainsAny(g, ",.!") && people[bare(ws[0])] {
				ws = ws[1:]
			}
		default:
			return ws
		}
	}
	return ws
}

// trimTail drops what comes after a message's gist: fillers ("please",
// "any idea?"), with the word that joined them ("a question for anyone"),
// and punctuation.
func trimTail(ws []string) []string {
	filler := false
	for {
		n := len(ws)
		if n == 0 {
			return ws
		}
		if ws[n-1] = trimEnd(ws[n-1]); ws[n-1] == "" {
			ws = ws[:n-1]
			continue
		}
		switch last := bare(ws[n-1]); {
		case n > 2 && tailPairs[bare(ws[n-2])+" "+last]:
			ws, filler = ws[:n-2], true
		case n > 1 && tailFillers[last]:
			ws, filler = ws[:n-1], true
		case n > 1 && filler && joiners[last]:
			ws = ws[:n-1]
		default:
			return ws
		}
	}
}

// sentenceOf is text's first question, else its first sentence that names a
// topic, else its first sentence. A sentence ends at a line break, or at
// '.', '!' or '?' before a space.
func sentenceOf(text string) string {
	var all []string
	start := 0
	for i, r := range text {
		end := -1
		switch {
		case r == '\n':
			end = i
		case strings.ContainsRune(".!?", r):
			if next, _ := utf8.DecodeRuneInString(text[i+1:]); i+1 == len(text) || unicode.IsSpace(next) {
				end = i + 1
			}
		}
		if end >= 0 {
			all = append(all, text[start:end])
			start = end
		}
	}
	all = append(all, text[start:])
	var first, topic string
	for _, s := range all {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			continue
		case strings.HasSuffix(s, "?") && !smallTalk(s):
			return s
		case first == "":
			first = s
		}
		if topic == "" && slices.ContainsFunc(wordsOf(s), topical) {
			topic = s
		}
	}
	if topic != "" {
		return topic
	}
	return first
}

// asks reports whether text, quoted as q, asks for something: a question,
// or a request ("explain goroutines to a beginner").
func asks(text, q string) bool {
	if strings.Contains(text, "?") {
		return true
	}
	first, _, _ := strings.Cut(q, " ")
	return askWords[bare(first)]
}

// bare is w lower-case without the punctuation around it.
func bare(w string) string {
	return strings.ToLower(strings.TrimFunc(w, func(r rune) bool { return unicode.IsPunct(r) && r != '\'' && r != '#' }))
}

// trimEnd drops the punctuation, emoji and spaces a quote should not end
// with, keeping closing brackets and quotes ("panic(err)").
func trimEnd(s string) string {
	return strings.TrimRightFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(".,;:!?…-–—~", r) || unicode.Is(unicode.So, r)
	})
}

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

var (
	// greetings open small talk, and a quote sheds them.
	greetings = set("hi hii hiya heya hello hey yo howdy greetings morning afternoon evening gm sup wassup")
	// people are who a greeting greets ("hi all").
	people = set("all everyone everybody folks guys team people y'all yall friends gang there")
	// thanks opens a thank-you, small talk unless it asks something.
	thanks = set("thanks thank thx ty tysm cheers")
	// weather makes a remark small talk unless it asks something.
	weather = set("weather sunny rain rainy raining snow snowing cloudy windy")
	// chatter is small talk's vocabulary: a question made only of it
	// ("how are you?") is small talk too.
	chatter = set(`hi hii hiya heya hello hey yo howdy greetings morning afternoon evening night gm gn good bye goodbye cya later welcome sup wassup
		all everyone everybody folks guys team people y'all yall friends gang
		thanks thank thx ty tysm cheers appreciated appreciate np
		nice weather day today tonight tomorrow sunny sun rain rainy raining snow snowing cloudy windy hot cold warm lovely beautiful great awesome cool weekend
		lol lmao rofl haha hahaha hehe heh wow ok okay k kk yes yeah yep yup no nope sure fine right alright perfect sounds looks agreed agree indeed neat sweet oh ah aha hmm omg funny true same exactly totally +1
		how are you u doing going it it's its is isn't what's whats how's hows up i i'm im am me too so very really such much just a an the`)
	// shortWords are the one- and two-letter words that name no topic
	// ("go" and "ci" do, so length alone does not make a word trivial).
	shortWords = set("a i am an as at be by do he if in is it me my no of oh on or so to up us we ok")
	// leadFillers open a message and say nothing ("so, how do I ...").
	leadFillers = set("so ok okay um uh hmm btw well")
	// tailFillers and tailPairs close a message and say nothing
	// ("... please", "..., any idea?").
	tailFillers = set("please pls plz thanks thx ty lol anyone folks guys everyone")
	tailPairs   = map[string]bool{"any idea": true, "any ideas": true, "thank you": true, "thanks all": true, "thanks everyone": true}
	// joiners join a phrase to what follows, and dangling words leave a
	// sentence unfinished: neither may end a quote that was cut ("how do I
	// install docker on…", "a question for").
	joiners  = set("a an the of to in on at for with and or but from into about than because by as so if my your our their")
	dangling = set(`a an the of to in on at for with and or but so if as by from into about than then because when while
		that which who whose my your our their his her its is are was were be been am i we you he she they it this these those
		do does did can could should would will not no there`)
	// askWords start a question or a request without a question mark.
	askWords = set(`how what why when where which who whom whose can could should would will is are am do does did has have
		any anyone anybody someone somebody explain show tell help review plan describe fix check give suggest teach walk please`)
)

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
