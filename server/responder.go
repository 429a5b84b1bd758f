package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/deps"
	"github.com/personaos/persona/llm"
	"github.com/personaos/persona/metrics"
	"github.com/personaos/persona/slots"
)

// Notes the ledger records with a final account.
const (
	noteReplied     = "replied"
	noteNotGranted  = "not granted"
	noteNotRelevant = string(chat.ReasonNotRelevant)
	noteMerged      = "merged into a newer message"
	noteElsewhere   = "addressed to a persona of another daemon"
	noteBudget      = string(chat.ReasonBudget)
	noteQuiet       = string(chat.ReasonQuiet)
	noteSelf        = string(chat.ReasonOwn)
	noteTooDeep     = string(chat.ReasonTooDeep)
	noteAnswered    = "answered before"
	noteTaken       = "K responders already claimed across the cluster"
	noteUndecodable = "undecodable"
	// noteNothingToSay: the model chose not to answer (llm.ErrNothingToSay,
	// as the scripted model does for small talk).
	noteNothingToSay = "nothing to say"
)

// responder is a chat persona's handler: cheap evaluation for coordination,
// and one model call per granted reply. It implements
// persona.Evaluator[chat.Message]; a persona that waits for others in a
// pipeline uses it through persona.Coordinated, without a stream. It sees
// the daemon only through the narrow interfaces below, each of which a
// test can stand in for.
type responder struct {
	name   string
	system string
	model  string // the backend (backendKey)
	// maxTokens and temperature are the persona's, else the daemon's
	// (zero and nil: the server's).
	maxTokens   int
	temperature *float64
	// maxRunes caps a reply (Config.HTTP.MaxContent, as a person's
	// message); mayMention are the personas its replies may @mention
	// (the persona file's may_mention).
	maxRunes   int
	mayMention []string
	dependent  bool
	rules      chat.Settings
	stream     bool // stream the reply's draft to the room (Config.NoStream off)
	log        *slog.Logger
	// stopping is closed when the daemon starts shutting down: a reply
	// waiting for the budget or for a retry gives up at once, and the
	// message stays unacknowledged for the next start.
	stopping <-chan struct{}

	decisions decisions
	accounts  accounts
	rooms     roomView
	replies   replyStore
	// budgets, if set, is the rooms' reply budget counted cluster-wide
	// (roomBudgets), checked after the daemon's own.
	budgets clusterBudget
	// elsewhere counts the personas a message @mentions that run on other
	// daemons (Daemon.elsewhere): addressees this daemon's stream did not
	// count against K.
	elsewhere func(chat.Message) int
	models    modelCaller
	metrics   chatMetrics
	activity  activity

	mu          sync.Mutex
	lastThought *coord.Thought
	// starts is, per room, the first line of the persona's last prompt
	// (llm.StableHistory), and last that prompt, to measure how much of
	// the next one a server's prompt cache could reuse.
	starts map[string]string
	last   *llm.Request
}

// decisions opens a message's coordination decision (Daemon.open).
type decisions interface {
	open(msg chat.Message, now time.Time)
}

// accounts records a note on a persona's account of a message (the ledger)
// and counts a message a guard kept it from answering.
type accounts interface {
	note(persona, id, note string)
	count(persona, reason string)
}

// roomView is what the responder reads and reserves of a room (*rooms).
type roomView interface {
	emit(ev Event)
	history(trigger chat.Message, context []chat.Message) []llm.ChatLine
	reserveReply(room, who string, now, written time.Time, owed, force bool) (release func(), ok bool, next time.Time)
}

// clusterBudget is the rooms' reply budget shared by the cluster's daemons
// (*roomBudgets).
type clusterBudget interface {
	take(ctx context.Context, room string, now time.Time, over bool) (give func(), ok bool, next time.Time, _ error)
}

// replyStore claims and publishes replies exactly once (*replies).
type replyStore interface {
	answeredBefore(ctx context.Context, persona, id string) (answered, republished bool, _ error)
	// claimSlot claims one of n responder slots of message id; release
	// gives it back for a peer when the persona does not answer after all.
	claimSlot(ctx context.Context, persona, id string, n int) (release func(), ok bool, _ error)
	sendReply(ctx context.Context, persona, trigger string, covered []string, out chat.Message) error
}

// modelCaller makes one model call for a persona, metered and counted
// (Daemon.complete).
type modelCaller interface {
	complete(ctx context.Context, call slots.Call, model string, req llm.Request) (llm.Reply, error)
	// modelFailed records a failed call for the user to see (failures.go).
	modelFailed(persona, id, room, model string, err error)
	// promptReuse records the share of a prompt its persona's previous one
	// shares as a prefix (llm.SharedPrefix).
	promptReuse(persona string, share float64)
}

// chatMetrics counts evaluations, thoughts and responses (*metrics.Metrics).
type chatMetrics interface {
	Evaluation(persona string)
	Thought(persona string)
	Response(persona, room string)
}

// activity records that a persona spoke in a room (*chat.Scorer), which
// raises its score for the room's next messages.
type activity interface {
	Touch(persona, room string, now time.Time)
}

var (
	_ persona.Evaluator[chat.Message] = (*responder)(nil)

	_ decisions     = (*Daemon)(nil)
	_ accounts      = (*Daemon)(nil)
	_ roomView      = (*rooms)(nil)
	_ replyStore    = (*replies)(nil)
	_ clusterBudget = (*roomBudgets)(nil)
	_ modelCaller   = (*Daemon)(nil)
	_ chatMetrics   = (*metrics.Metrics)(nil)
	_ activity      = (*chat.Scorer)(nil)
)

// Evaluate says how much the persona wants to answer. It makes no model
// call: the confidence is the item's priority for this persona (mention,
// expertise, recency, sender and reply depth, from the chat scorer), 1 when
// the persona is addressed. Below Config.RespondAbove a persona that is not
// addressed declines at once: it could only observe, which is never
// granted, and peers need not wait for it. The thought is shown live on the
// room's events.
func (r *responder) Evaluate(ctx context.Context, it persona.Item[chat.Message]) (persona.Thought, error) {
	r.metrics.Evaluation(r.name)
	if r.dependent && it.Status == deps.Skipped {
		return persona.Thought{}, persona.ErrDecline // a prerequisite chose not to engage
	}
	for _, c := range it.Context {
		r.accounts.note(r.name, c.ID, noteMerged)
	}
	if !r.dependent {
		r.decisions.open(it.Payload, time.Now())
	}
	// A merged batch is judged by its best score (chat.Settings.Think).
	score := it.Priority
	for _, c := range it.Context {
		score = max(score, c.Priority)
	}
	conf, intent := r.rules.Think(score, r.addressedBy(it))
	th := coord.Thought{Persona: r.name, Item: it.ID, Key: it.Key, Confidence: conf, Intent: intent, At: time.Now()}
	r.mu.Lock()
	r.lastThought = &th
	r.mu.Unlock()
	r.rooms.emit(Event{Type: "thought", Room: it.Key, Thought: &th})
	if intent != coord.IntentRespond {
		r.accounts.note(r.name, it.ID, noteNotRelevant)
		return persona.Thought{}, persona.ErrDecline
	}
	if !r.dependent {
		r.metrics.Thought(r.name)
	}
	return persona.Thought{Confidence: conf, Intent: intent}, nil
}

func (r *responder) thought() *coord.Thought {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastThought == nil {
		return nil
	}
	t := *r.lastThought
	return &t
}

// Retries of a reply that fails on a bus or KV error (transientError): a
// leader election or a reconnect, not the persona's failure. The reply is
// tried again with backoff until the item's deadline (its Deadline, else
// transientRetryFor after the message was written); meanwhile the message
// stays held, unacknowledged. Past the deadline the error goes to the
// runtime, and Daemon.observe still makes no final account of it.
const (
	transientBackoff    = 100 * time.Millisecond // doubled after each failed try
	transientMaxBackoff = 5 * time.Second
	transientRetryFor   = 10 * time.Minute
)

// maxReplyRunes is the default cap of a model's reply, the API's of a
// person's message (HTTPOptions.MaxContent): a runaway generation is cut,
// not posted and fed into every later prompt.
const maxReplyRunes = defaultMaxContent

// cleanModelText is a model's reply as the room may show it: control
// characters (NUL, ESC, ...) but newlines and tabs dropped, as the API
// refuses them from a person; '@' made plain before any name but those of
// the people it answers (answering), so that a model cannot call other
// personas or people into the room on its own (answering also holds the
// persona file's may_mention); and at most max runes (0: maxReplyRunes),
// cut with an ellipsis.
func cleanModelText(s string, answering []string, max int) string {
	if max <= 0 {
		max = maxReplyRunes
	}
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsControl(r) && r != '\n' && r != '\t' || unicode.Is(unicode.Cf, r) {
			continue
		}
		if n == max-1 {
			b.WriteRune('…')
			break
		}
		b.WriteRune(r)
		n++
	}
	out := b.String()
	for { // "@@Teacher" takes two rounds: a match consumes the '@' before it
		next := mentionSign.ReplaceAllStringFunc(out, func(m string) string {
			sub := mentionSign.FindStringSubmatch(m)
			if slices.ContainsFunc(answering, func(a string) bool { return strings.EqualFold(a, sub[2]) }) {
				return m
			}
			return sub[1] + sub[2]
		})
		if next == out {
			return out
		}
		out = next
	}
}

// mentionSign matches an '@' that would make a mention, with its name
// (chat.Mentions: not after a name's character, so "x@y.z" is left
// alone).
var mentionSign = regexp.MustCompile(`(^|[^A-Za-z0-9_-])@([A-Za-z0-9_-]+)`)

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// retryDeadline is until when a transient failure of it is retried.
func retryDeadline(it persona.Item[chat.Message]) time.Time {
	if !it.Deadline.IsZero() {
		return it.Deadline
	}
	at := it.Payload.At
	if at.IsZero() {
		at = it.Created
	}
	return at.Add(transientRetryFor)
}

// Respond writes and publishes the persona's reply (respondOnce), and
// tries again with backoff while it fails on a transient bus or KV error,
// until the item's deadline or ctx ends (shutdown, or an urgent arrival
// preempting non-urgent work): the runtime's own retries are immediate, and
// an outage outlasts them.
func (r *responder) Respond(ctx context.Context, it persona.Item[chat.Message], dec coord.Decision) (any, error) {
	wait := transientBackoff
	until := retryDeadline(it)

	for try := 1; ; try++ {
		out, err := r.respondOnce(ctx, it, dec)
		r.log.Debug("respond", "persona", r.name, "message", it.ID, "merged", len(it.Context), "granted", dec.Granted, "reasons", dec.Reasons, "item", dec.Item, "replied", out != nil, "err", err)
		if err == nil || !isTransient(err) || ctx.Err() != nil || !time.Now().Add(wait).Before(until) {
			return out, err
		}
		r.log.Warn("reply failed on a bus error; retrying", "persona", r.name, "message", it.ID, "try", try, "retry_in", wait, "err", err)
		if werr := r.sleep(ctx, wait); werr != nil {
			return nil, err
		}
		wait = min(2*wait, transientMaxBackoff)
	}
}

// respondOnce writes and publishes the persona's reply to the item's newest
// message, merged older ones riding along as context. In order: a message
// answered before (a redelivery after a crash) is not answered again; the
// room's reply budget must have room; then one model call; then the reply
// is claimed in the replies bucket (create-only: exactly one claim per
// persona and message ever succeeds) and published.
func (r *responder) respondOnce(ctx context.Context, it persona.Item[chat.Message], dec coord.Decision) (any, error) {
	m := it.Payload
	done, again, err := r.replies.answeredBefore(ctx, r.name, m.ID)
	if err != nil {
		return nil, err
	}
	if again {
		// An earlier attempt claimed the reply and failed to publish it
		// (a bus error): this attempt published it.
		r.accounts.note(r.name, it.ID, noteReplied)
		r.metrics.Response(r.name, m.Room)
	}
	// A merged message this persona answered already (a redelivery after
	// a bus error or a takeover, merged before the ledger knew) rides
	// along as history, not as a message the reply answers again. They
	// are looked up once the budget has room (a reply that waits for it
	// is tried again), unless the trigger itself was answered before.
	var ctxMsgs []chat.Message
	unanswered := func() error {
		ctxMsgs = make([]chat.Message, 0, len(it.Context))
		for _, c := range it.Context {
			answered, _, err := r.replies.answeredBefore(ctx, r.name, c.ID)
			if err != nil {
				return err
			}
			if !answered {
				ctxMsgs = append(ctxMsgs, c.Payload)
			}
		}
		return nil
	}
	if done {
		if err := unanswered(); err != nil {
			return nil, err
		}
		if len(ctxMsgs) == 0 {
			if !again {
				r.accounts.note(r.name, it.ID, noteAnswered)
				r.accounts.count(r.name, noteAnswered)
			}
			return nil, nil
		}
		// The trigger was answered before (delivered again after a
		// takeover or a restart), but messages merged into it since were
		// not: the reply answers the newest of them, with the others.
		i := 0
		for j, c := range ctxMsgs {
			if !c.At.Before(ctxMsgs[i].At) {
				i = j
			}
		}
		m = ctxMsgs[i]
		ctxMsgs = slices.Delete(ctxMsgs, i, i+1)
	}
	// An owed reply waits at most one pacing interval (chat.Budget.OwedBy)
	// after the oldest message it
	// answers: merging newer ones into it does not push it further back.
	written := m.At
	if written.IsZero() {
		written = it.Created
	}
	for _, c := range it.Context {
		if at := c.Payload.At; !at.IsZero() && at.Before(written) {
			written = at
		}
	}
	human := chat.Waits(m.Kind)
	for _, c := range it.Context {
		human = human || chat.Waits(c.Payload.Kind)
	}
	// The budget before the responder slot: a persona the budget holds
	// back claims no slot, so a peer can still answer.
	release, ok, err := r.reserve(ctx, m.Room, written, r.owed(it), human)
	if err != nil {
		return nil, err // persona.Later: back in the inbox until the reply is due; or a bus error
	}
	if !ok {
		r.accounts.note(r.name, it.ID, noteBudget)
		r.accounts.count(r.name, noteBudget)
		r.log.Info("reply budget spent: not replying", "persona", r.name, "room", m.Room, "message", m.ID)
		return nil, nil
	}
	if !done {
		if err := unanswered(); err != nil {
			release()
			return nil, err
		}
	}
	// giveBudget gives back the budget's reply alone: a reply claimed in
	// the replies bucket keeps its responder slot even if its publish
	// failed, since the retry publishes it (answeredBefore).
	giveBudget := release
	addressee := r.addressedBy(it) || dec.Reasons[r.name] == coord.ReasonAddressee
	if addressee && (done || len(ctxMsgs) < len(it.Context)) && !r.names(m) && !slices.ContainsFunc(ctxMsgs, r.names) {
		// What named this persona it answered before: the reply answers
		// only messages that do not, for which it needs a slot.
		addressee = false
	}
	if dec.IsGranted(r.name) && !addressee {
		// The stream granted this persona among this daemon's personas;
		// across daemons sharing the cluster, the first to claim one of
		// the message's slots answer: K of them, less its addressees,
		// who answer anyway: those the stream granted here and those
		// that run on other daemons. Every daemon counts the same
		// slots, so the cluster answers as one daemon would. An
		// addressee claims nothing (of the trigger, or of a message
		// merged into it that the reply answers: not one it answered
		// before, whose mention is settled), and neither does a persona that
		// answers after its prerequisites (waits_for), which no stream
		// coordinates.
		// The slot is the granted message's: a persona granted an older
		// message, now merged into a newer one, answers through that grant.
		// A granted message the persona answered before (the trigger of
		// a redelivery) gives way to the message the reply answers.
		slot, granted := m.ID, m
		if dec.Item != "" && dec.Item != it.ID {
			for _, c := range ctxMsgs {
				if c.ID == dec.Item {
					slot, granted = c.ID, c
				}
			}
		}
		n := r.rules.Stream.K
		for _, p := range dec.Granted {
			if dec.Reasons[p] == coord.ReasonAddressee {
				n--
			}
		}
		if r.elsewhere != nil {
			n -= r.elsewhere(granted)
		}
		free, ok, err := r.replies.claimSlot(ctx, r.name, slot, n)
		if err != nil {
			release()
			return nil, err
		}
		if !ok {
			release()
			r.accounts.note(r.name, it.ID, noteTaken)
			r.accounts.count(r.name, noteTaken)
			return nil, nil
		}
		budget := release
		release = func() { budget(); free() }
	}
	req := llm.Request{
		Persona:     r.name,
		System:      r.system,
		MaxTokens:   r.maxTokens,
		Temperature: r.temperature,
	}
	r.mu.Lock()
	var start string
	req.History, start = llm.StableHistory(r.name, r.rooms.history(m, ctxMsgs), 0, 0, r.starts[m.Room])
	if r.starts == nil {
		r.starts = map[string]string{}
	}
	r.starts[m.Room] = start
	if r.last != nil {
		r.models.promptReuse(r.name, llm.SharedPrefix(*r.last, req))
	}
	prev := req // a copy: req changes below, outside the lock
	r.last = &prev
	r.mu.Unlock()
	// The model client's retries end at the item's deadline: a slow or
	// failing server costs a message at most until then (and a message
	// delivered again past it one more minute), not a fixed count of fixed
	// timeouts.
	mctx, cancel := context.WithDeadline(ctx, later(retryDeadline(it), time.Now().Add(time.Minute)))
	draft := r.draft(m)
	if draft != nil {
		req.OnText = draft.text
	}
	reply, err := r.models.complete(mctx, slots.Call{Persona: r.name, Class: r.class(it), Key: m.Room}, r.model, req)
	cancel()
	end := time.Now()
	if errors.Is(err, errPutBack) {
		release()
		draft.end(DraftSuperseded)
		return nil, persona.Later(end) // back in the inbox, merged again with what came meanwhile
	}
	if errors.Is(err, llm.ErrNothingToSay) {
		// The model worked and chose silence: nothing is posted, no
		// failure is shown, and the budget's reply is given back.
		release()
		draft.end(DraftSuperseded) // shown only if the model streamed text before it chose silence
		r.accounts.note(r.name, it.ID, noteNothingToSay)
		r.accounts.count(r.name, noteNothingToSay)
		return nil, nil
	}
	if err != nil {
		release()
		if ctx.Err() == nil { // not preempted, not shutting down: the model failed
			draft.end(DraftFailed)
			r.models.modelFailed(r.name, it.ID, m.Room, r.model, err)
		} else {
			draft.end(DraftSuperseded) // preempted (or shutting down): it is answered again
		}
		return nil, fmt.Errorf("persona %s: model: %w", r.name, err)
	}
	// The reply answers every message merged into it, and addresses each
	// person who wrote one (chat.Covers).
	cover := chat.Covers(m, ctxMsgs)
	out := chat.Message{
		ID: newMessageID(end), Room: m.Room, Author: r.name, Kind: chat.Persona,
		Content: chat.Address(cleanModelText(reply.Content, slices.Concat([]string{m.Author}, cover.Askers, r.mayMention), r.maxRunes), cover.Askers), At: end.UTC(), ReplyTo: m.ID, Depth: m.Depth + 1,
	}
	if err := r.replies.sendReply(ctx, r.name, m.ID, cover.Merged, out); err != nil {
		giveBudget()
		draft.end(DraftSuperseded)
		if errors.Is(err, errAnswered) {
			r.accounts.note(r.name, it.ID, noteAnswered)
			r.accounts.count(r.name, noteAnswered)
			return nil, nil
		}
		return nil, err
	}
	draft.end(DraftSent, out)
	r.accounts.note(r.name, it.ID, noteReplied)
	r.metrics.Response(r.name, m.Room)
	r.activity.Touch(r.name, m.Room, end)
	return out, nil
}

// draft begins the live draft of the reply to m; nil (a no-op) when the
// reply is not streamed.
func (r *responder) draft(m chat.Message) *drafting {
	if !r.stream {
		return nil
	}
	return newDrafting(r.rooms.emit, r.name, m.Room, m.ID, time.Now())
}

// class is the slot class of the reply to it: owed to a person who named
// the persona (an @mention) first, then a person's conversation, then
// persona chatter.
func (r *responder) class(it persona.Item[chat.Message]) slots.Class {
	switch {
	case r.owed(it):
		return slots.Addressed
	case chat.Waits(it.Payload.Kind) || slices.ContainsFunc(it.Context, func(c persona.Item[chat.Message]) bool { return chat.Waits(c.Payload.Kind) }):
		return slots.Human
	}
	return slots.Persona
}

// reserve takes one reply of room's budget for a message written at
// written. A reply that is not owed is refused when the budget is spent.
// An owed one is never refused: until it is due (chat.Budget.Due: the
// budget has room, paced to one per ReplyWindow/ReplyBudget after the
// persona's own last reply), and at most until chat.Budget.OwedBy (that
// pacing interval after its message, or after the persona's last reply if
// later), reserve returns
// persona.Later(due): the persona puts the item back until then and works
// on meanwhile (its other rooms do not wait), and the room's messages that
// arrive meanwhile merge into that reply, which addresses each of their
// askers: the budget is kept by merging, not by silence. Past that wait
// the reply is taken regardless, counted over the budget.
func (r *responder) reserve(ctx context.Context, room string, written time.Time, owed, human bool) (release func(), ok bool, _ error) {
	return r.reserveAs(ctx, r.name, room, written, owed, human)
}

func (r *responder) reserveAs(ctx context.Context, name, room string, written time.Time, owed, human bool) (release func(), ok bool, _ error) {
	now := time.Now()
	release, ok, next := r.rooms.reserveReply(room, name, now, written, owed, r.rules.OwedOverBudget)
	if ok && r.budgets != nil {
		// The cluster's count of the room's replies: an owed reply that
		// has waited its pacing interval goes over it, as over the
		// daemon's own.
		over := owed && (r.rules.OwedOverBudget || !now.Before(written.Add(r.pace())))
		give, cok, cnext, err := r.budgets.take(ctx, room, now, over)
		switch {
		case err != nil:
			release()
			return nil, false, err
		case !cok:
			release()
			ok, next = false, cnext
			if owed && written.Add(r.pace()).Before(next) {
				next = written.Add(r.pace())
			}
		default:
			local := release
			release = func() { local(); give() }
		}
	}
	if ok {
		return release, ok, nil
	}
	release = func() {}
	if !owed {
		// A person's question waits for the budget (chat.Waits), merged
		// with what follows it; persona chatter is refused.
		if !human || r.rules.OwedOverBudget || next.IsZero() {
			return release, false, nil
		}
		return nil, false, persona.Later(maxTime(next, now.Add(time.Millisecond)).Add(chat.Stagger(name)))
	}
	return nil, false, persona.Later(maxTime(next, now.Add(time.Millisecond)).Add(chat.Stagger(name)))
}

// pace is the room budget's pacing interval: the window over the budget
// (chat.Budget.Pace).
func (r *responder) pace() time.Duration {
	return r.rules.ReplyWindow / time.Duration(max(1, r.rules.ReplyBudget))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// errStopping ends a wait of the responder when the daemon shuts down.
var errStopping = errors.New("daemon shutting down")

// sleep waits d, or until ctx ends or the daemon starts shutting down.
func (r *responder) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.stopping:
		return errStopping
	case <-t.C:
		return nil
	}
}

// owed reports whether a person addressed this persona in it or in an item
// merged into it (chat.Owed): the reply budget counts the reply but never
// refuses it.
func (r *responder) owed(it persona.Item[chat.Message]) bool {
	names := func(x persona.Item[chat.Message]) bool {
		return slices.ContainsFunc(x.Addressees, func(a string) bool { return strings.EqualFold(a, r.name) })
	}
	merged := false // a merged item names the persona
	for _, c := range it.Context {
		if names(c) {
			if chat.Owed(c.Payload.Kind, true) {
				return true
			}
			merged = true
		}
	}
	if !chat.Owed(it.Payload.Kind, names(it)) {
		return false
	}
	if !merged {
		return true
	}
	// The trigger's addressees are the union of the merged items' (the
	// runtime's coalesce); only when a merged persona message named this
	// persona must the trigger's own mentions be read again.
	return chat.Mentioned(it.Payload.Content, r.name)
}

// names reports whether msg @mentions this persona (and is not its own).
func (r *responder) names(msg chat.Message) bool {
	return !strings.EqualFold(msg.Author, r.name) && chat.Mentioned(msg.Content, r.name)
}

// addressedBy reports whether it (or an item merged into it) names this
// persona.
func (r *responder) addressedBy(it persona.Item[chat.Message]) bool {
	return slices.ContainsFunc(it.Addressees, func(a string) bool { return strings.EqualFold(a, r.name) })
}

// outcome names a model call's result for metrics.
func outcome(err error) string {
	switch {
	case err == nil, errors.Is(err, llm.ErrNothingToSay): // a call that chose silence worked
		return "ok"
	case errors.Is(err, llm.ErrRateLimited):
		return "rate_limited"
	default:
		return "error"
	}
}
