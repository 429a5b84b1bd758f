package server

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/inbox"
	"github.com/personaos/persona/llm"
	"github.com/personaos/persona/metrics"
	"github.com/personaos/persona/slots"
)

// Assembling the runtime: metrics, governor, coordination stream, one
// persona per spec with its responder, and the ledger; and the runtime's
// observer, which turns final accounts into acknowledgements.

// note records a note on persona's account of message id (accounts).
func (d *Daemon) note(persona, id, note string) {
	if note != noteMerged {
		d.log.Debug("account note", "persona", persona, "message", id, "note", note)
	}
	d.ledger.note(persona, id, note)
	if note == noteReplied {
		d.tally.add(persona, note) // the cards' answered count
	}
}

// buildRuntime creates the metrics, governor, coordination stream, runtime
// and one persona per spec.
func (d *Daemon) buildRuntime() error {
	if err := d.buildCore(persona.ObserverFunc(d.observe)); err != nil {
		return err
	}
	rp := &replies{bus: d.bus, rooms: d.rooms, log: d.log, failPublish: d.cfg.hooks.failReplyPublish}
	budgets := &roomBudgets{kv: d.bus.replies, budget: d.chat.ReplyBudget, window: d.chat.ReplyWindow}
	for _, s := range d.specs {
		m, opts := d.newMember(s, rp, d)
		m.r.budgets = budgets
		// Coordinated keeps the Evaluator: with a stream the persona
		// coordinates; without one (a pipeline stage) it evaluates, then
		// responds on its own judgement.
		var err error
		if m.p, err = persona.Spawn(d.rt, s.Name, persona.Coordinated[chat.Message](m.r), opts); err != nil {
			return err
		}
		d.addMember(m)
	}
	groups := make(map[string][]string)
	for _, s := range d.specs {
		if !s.Dependent() {
			groups[strings.ToLower(s.Name)] = downstream(d.specs, s.Name)
		}
	}
	accounts := d.bus.accounts
	if d.cfg.hooks.accounts != nil {
		accounts = d.cfg.hooks.accounts(accounts)
	}
	d.ledger = newLedger(d.log, accounts, groups)
	// A message given back comes again well within the ack wait.
	d.ledger.nakDelay = min(d.ledger.nakDelay, d.cfg.AckWait/4)
	d.ledger.skipWrites = d.cfg.hooks.dropFinals
	return nil
}

// buildCore creates what the personas share, none of which touches the
// bus: the metrics, governor, coordination stream, runtime (reporting to
// obs) and scorer. The chat parity test builds a daemon's personas on it
// without NATS.
func (d *Daemon) buildCore(obs persona.Observer) error {
	d.reg = prometheus.NewRegistry()
	var err error
	if d.metrics, err = metrics.New(d.reg, metrics.Options{}); err != nil {
		return err
	}
	d.suppressed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "persona", Name: "chat_not_answered_total",
		Help: "Messages a persona did not answer by a conversation guard: reason own message|quiet room|reply chain too deep|reply budget|answered before.",
	}, []string{"persona", "reason"})
	unanswered := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "persona", Name: "questions_unanswered",
		Help: "Human messages that no reply answered within 5 minutes of being written: no persona message replied to it, nor covered it as merged context addressed to its author. Counted over the room stream as this daemon read it, history included.",
	}, func() float64 { return float64(d.rooms.unanswered(time.Now())) })
	overBudget := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "persona", Name: "owed_replies_over_budget_total",
		Help: "Replies owed to a person (an @mention) written over the room's reply budget: they waited one pacing interval (window/budget) for it and nothing merged them away.",
	}, func() float64 { return float64(d.rooms.overBudget()) })
	d.modelFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "persona", Name: "model_failures_total",
		Help: "Model calls that failed, by persona and class: rejected (a 4xx such as an unknown model)|rate_limited|unavailable (5xx, timeouts, connection errors)|empty_reply|timeout|other. The server's own message is in /api/personas (last_model_failure), in the room's system note and in the log.",
	}, []string{"persona", "class"})
	d.promptPrefix = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "persona", Name: "prompt_prefix_reused_ratio",
		Help:    "Share of a model call's prompt (system prompt and history, in characters) that the same persona's previous call shares as a prefix: what a model server's prompt cache could reuse. The history's window stays put between calls (llm.StableHistory) to keep it high.",
		Buckets: []float64{0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99},
	}, []string{"persona"})
	if err := errors.Join(
		d.reg.Register(d.suppressed),
		d.reg.Register(d.modelFailures),
		d.reg.Register(d.promptPrefix),
		d.reg.Register(unanswered),
		d.reg.Register(overBudget),
		d.reg.Register(collectors.NewGoCollector()),
		d.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	d.gov = govern.New(govern.Policy{})
	d.meter = &govern.Meter{}
	so := d.chat.Stream
	so.Logger = d.log
	so.OnDecision = func(dec coord.Decision) {
		d.metrics.Decision(len(dec.Granted))
		d.rooms.emit(Event{Type: "decision", Room: dec.Key, Decision: &dec})
	}
	d.stream = coord.New(so)
	d.rt = persona.NewRuntime(persona.RuntimeOptions{
		Logger:   d.log,
		Observer: obs,
		Governor: persona.GovernorFunc(func() persona.Adjustment { return persona.Adjustment(d.gov.Adjust()) }),
		Budget:   d.budgetLevel,
	})
	if err := errors.Join(d.metrics.WatchRuntime(d.rt.Snapshots), d.metrics.WatchGovernor(d.gov)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	w := chat.DefaultWeights()
	w.Urgent = d.cfg.Persona.State.Defaults().Urgent
	d.scorer = chat.NewScorer(w)
	d.byName = make(map[string]*member)
	return nil
}

// newMember is spec s's member with its responder, which answers through
// rp and accounts to acc, and its persona's options (coordinated on the
// daemon's stream unless it waits for others). The caller spawns its
// persona, then adds it (addMember).
func (d *Daemon) newMember(s PersonaSpec, rp replyStore, acc accounts) (*member, persona.Options) {
	d.scorer.AddProfile(chat.Profile{Name: s.Name, Expertise: slices.Clone(s.Expertise)})
	m := &member{spec: s}
	m.r = &responder{
		name: s.Name, system: s.SystemPrompt(), model: backendKey(s), dependent: s.Dependent(),
		maxTokens: cmp.Or(s.MaxTokens, d.cfg.MaxTokens), temperature: cmp.Or(s.Temperature, d.cfg.Temperature),
		maxRunes: d.cfg.HTTP.MaxContent, mayMention: slices.Clone(s.MayMention),
		rules: d.chat, log: d.log, stopping: d.stopping, stream: !d.cfg.NoStream,
		decisions: d, accounts: acc, rooms: d.rooms, replies: rp, models: d, elsewhere: d.elsewhere,
		metrics: d.metrics, activity: d.scorer,
	}
	opts := d.personaOptions(s)
	if !s.Dependent() {
		opts.Coordination = d.stream
	}
	return m, opts
}

// addMember adds a member whose persona is spawned.
func (d *Daemon) addMember(m *member) {
	if !m.spec.Dependent() {
		d.thinkers = append(d.thinkers, m.spec.Name)
	}
	d.members = append(d.members, m)
	d.byName[strings.ToLower(m.spec.Name)] = m
}

// personaOptions are the runtime options of one persona: the daemon's base
// with the spec's overrides.
func (d *Daemon) personaOptions(s PersonaSpec) persona.Options {
	o := d.cfg.Persona
	o.Coalesce = !d.chat.NoMerge
	// An urgent item (an @mention) never waits behind its own persona's
	// non-urgent model call: the call's context is cancelled and the item
	// goes back to the inbox. The responder's every step honours its
	// context, so the cancelled call costs no reply.
	o.Preempt = true
	// Nor behind its own persona's urgent reply, while a second call
	// would start at once: a model slot free with no @mention waiting for
	// one, and a compute-budget token. With the slots full a second call
	// of one persona only delays the others' and merges less (persona sim
	// scenarios/urgent-overload.yaml measures it).
	// A negative Config.Persona.Lane runs without one.
	o.Lane = max(o.Lane, 0)
	if d.cfg.Persona.Lane == 0 {
		o.Lane = 1
	}
	o.LaneOpen = func() bool {
		return d.slots != nil && d.slots.Open(slots.Addressed) && (d.limiter == nil || d.limiter.Tokens() >= 1)
	}
	if s.Dependent() {
		// A source persona's items carry the score the intake guard read
		// (deliver); a dependent's are released by the pipeline and scored
		// for it by the runtime.
		o.Scorer = persona.Scorer[chat.Message](d.scorer)
	}
	if s.Capacity > 0 {
		o.Capacity = s.Capacity
	}
	if o.Capacity <= 0 {
		o.Capacity = inbox.DefaultCapacity
	}
	o.State = s.StateConfig(o.State)
	o.WaitsFor = slices.Clone(s.WaitsFor)
	return o
}

// downstream returns name and every persona that waits for it, directly or
// not, lower-case.
func downstream(specs []PersonaSpec, name string) []string {
	out := []string{strings.ToLower(name)}
	for i := 0; i < len(out); i++ {
		for _, s := range specs {
			if slices.ContainsFunc(s.WaitsFor, func(w string) bool { return strings.EqualFold(w, out[i]) }) &&
				!slices.Contains(out, strings.ToLower(s.Name)) {
				out = append(out, strings.ToLower(s.Name))
			}
		}
	}
	return out
}

// observe is the runtime's observer: metrics, and the final accounts that
// release JetStream messages.
func (d *Daemon) observe(e persona.Event) {
	d.metrics.Observe(e)
	switch e.Kind {
	case persona.EventError:
		d.transientMu.Lock()
		if isTransient(e.Err) {
			d.transientAt[e.Persona] = e.At
		} else {
			delete(d.transientAt, e.Persona)
		}
		d.transientMu.Unlock()
	case persona.EventFailed:
		if d.state.Load() == 2 {
			// Shutdown cancelled the handler: not the message's fault. It
			// stays unacknowledged and is handled after the next start.
			return
		}
		// The last attempt failed on a bus or KV error (the error event
		// of the same attempt, with its time, comes just before; the items
		// merged into it share that time): infrastructure is never a final
		// account. The message goes back to JetStream and comes again,
		// until retryDeadline; the replies bucket keeps it answered once.
		d.transientMu.Lock()
		at, ok := d.transientAt[e.Persona]
		d.transientMu.Unlock()
		if t, known := idTime(e.ItemID); ok && at.Equal(e.At) && (!known || time.Now().Before(t.Add(transientRetryFor))) {
			d.ledger.retry(e.Persona, e.ItemID)
			return
		}
		d.ledger.final(e.Persona, e.ItemID, e.Kind.String(), e.At)
		reason := "unknown"
		if e.Err != nil {
			reason = llm.Reason(e.Err)
		}
		d.log.Info("message not answered: it failed", "persona", e.Persona, "room", e.Key, "message", e.ItemID, "reason", reason)
		d.settleFailure(e)
	case persona.EventExpired:
		d.log.Info("message not answered: it expired", "persona", e.Persona, "room", e.Key, "message", e.ItemID, "waited", e.Wait.Round(time.Millisecond))
		d.ledger.final(e.Persona, e.ItemID, e.Kind.String(), e.At)
		d.settleFailure(e)
	case persona.EventHandled, persona.EventDeclined:
		d.ledger.final(e.Persona, e.ItemID, e.Kind.String(), e.At)
		d.settleFailure(e)
	case persona.EventNotGranted:
		d.log.Debug("not granted", "persona", e.Persona, "message", e.ItemID)
		d.ledger.note(e.Persona, e.ItemID, noteNotGranted)
	}
}

// count records a message a guard kept a persona from answering.
func (d *Daemon) count(persona, reason string) {
	d.suppressed.WithLabelValues(persona, reason).Inc()
	d.tally.add(persona, reason) // the cards' outcome counts
}
