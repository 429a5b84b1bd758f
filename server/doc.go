// Package server is the chat daemon behind `persona serve`: NATS JetStream
// delivery, chat personas on the persona runtime, coordination, the
// governor and metrics (Daemon, this package's non-HTTP files), and the
// HTTP API, live events and dashboard over the Backend interface
// (NewHandler, the http*.go files).
//
// # The daemon
//
// Daemon is the small Main-like type: New checks the configuration, Start
// starts everything and binds the HTTP address before returning (a port in
// use is an error at once; port 0 works and Addr tells the real one),
// Shutdown stops it all. By default it starts an embedded NATS server with
// JetStream storing under Config.Data, opening no network port (clients
// connect in-process); Config.NATSURL uses an existing server or cluster
// instead. The HTTP API's bearer token is Config.Token, or generated on
// first start and kept in Data/token.
//
// # Delivery and accounting
//
// A posted message is stored in the stream PERSONA_ROOMS under
// persona.rooms.<room>.msgs before Post returns (the API's 201), with its id
// as Nats-Msg-Id so a retried publish is stored once. Persona replies go to
// the same stream. Each persona that waits for nobody has a durable pull
// consumer (persona_<name>, explicit ack, ack wait 2 minutes, at most twice
// its inbox capacity unacknowledged) over every room; each delivery is
// checked by the conversation guards below, scored by the chat scorer and
// delivered to the persona's inbox as a persona.Item keyed by room, with
// the @mentioned personas as addressees. The runtime's life cycle,
// coordination and governor decide what happens to it.
//
// A message addressed to a persona is never held behind that persona's
// backlog: when max-ack-pending messages wait unacknowledged the durable
// consumer delivers nothing more, so the room follower (which reads every
// new message) hands each addressed message to its persona at once, held
// in the ledger without an ack handle (Daemon.express). The durable
// delivery still comes: it finds the message held, and its handle is the
// one acknowledged once the message is accounted, or, for an addressed
// message, finds its account in the ledger and is acknowledged. Each
// message keeps exactly one account per persona. The personas preempt
// (persona.Options.Preempt): an urgent message cancels its persona's
// ordinary model call in progress, whose message goes back to the inbox.
//
// A message is acknowledged only when it has a final account: the runtime
// reported it handled, declined, expired or failed, or a guard skipped it.
// The account is first written to the KV bucket persona_accounts (key
// "<persona>.<message id>"), then the message is acknowledged. A write that
// still fails after a few retries with backoff is not acknowledged: the
// delivery is dropped and negatively acknowledged, so JetStream delivers it
// again within seconds and it is accounted then. A bus or KV error while
// replying (the replies bucket, the reply's publish) is never final: the
// responder tries again with backoff until the message's deadline (10
// minutes after it was written) while the message stays unacknowledged,
// and a message the runtime still fails on such an error is given back to
// JetStream, not accounted failed. Only the persona's decision or its
// model's failure (after the runtime's attempts) is final. Queued and
// deferred messages stay unacknowledged, kept alive with InProgress while
// their persona holds them; what a full inbox cannot hold waits in
// JetStream (the consumer's max-ack-pending), not in memory. For a persona
// that waits for others (waits_for), the message of its prerequisite is
// acknowledged only when the whole pipeline has accounted for it.
//
// So a crash loses nothing: after a restart each persona's consumer is
// reset to its ack floor and every unacknowledged message comes again. A
// message whose accounts are already written is acknowledged and dropped;
// any other is handled again. Before replying, a persona claims the
// message in the KV bucket persona_replies with a create-only write that
// holds the reply itself, so no persona answers a message twice: a
// redelivered message it already claimed is not answered again, and a claim
// whose reply never reached the stream (a crash between the two) is
// published then, under its own id.
//
// # Conversation guards
//
// The guards are package chat's rules (chat.Settings; the meaning of each
// is in chat's doc.go), with Config's numbers over chat.DefaultSettings:
// the simulator applies the same rules with the same defaults. A message is
// decoded once at intake (its mentions, addressees and score for the
// persona); the guard, the delivery (the score is the item's priority) and
// the decision read that value.
//
//   - A human's message outranks persona chatter: the chat scorer adds for
//     a human sender and subtracts for a persona and per level of reply
//     depth, so a persona busy for a while answers the human first.
//   - Pending messages of one room merge (persona.Options.Coalesce; off with
//     Config.NoMerge): the newest is answered, the older ones are its
//     context, so a persona never answers a conversation that moved on;
//     the reply addresses every human whose message it merged.
//   - Each room has a reply budget: at most Config.ReplyBudget persona
//     messages per minute (default 6): this daemon's replies and the other
//     daemons' persona messages it sees. A reply over it is not sent; the
//     message is accounted handled, noted "reply budget". A reply to a
//     person's @mention is never refused: once half the budget is spent it
//     waits until due (chat.Budget.Due: paced to one per window/budget, at
//     most that interval after its message, chat.Budget.OwedBy; then it
//     is written over the budget and counted in
//     persona_owed_replies_over_budget_total), and the room's messages that arrive meanwhile merge
//     into the persona's next reply, which addresses each asker. The budget
//     is kept by merging; an @mentioned persona always answers a human.
//     While it waits, the persona's other rooms wait too.
//   - Persona-to-persona exchanges damp out: replies lose priority with
//     depth, a persona's message at depth Config.MaxDepth (default 2) is not
//     answered, and neither is one in a room where no human has spoken for
//     Config.QuietAfter (default 10 minutes): the room is quiet until a
//     human speaks.
//   - No human posts under a persona's name or display name: any persona
//     of the configuration (run here or by another daemon) or seen writing
//     in the stream, checked in memory.
//   - A persona never takes in its own message, nor one that scores below
//     Config.RespondAbove for it without mentioning it (it could only
//     decline it), and a persona answers a message at most once.
//
// Every message a guard keeps from a persona is accounted ("skipped" with a
// note, or "handled" with a note) and counted in
// persona_chat_not_answered_total{persona,reason}. The gauge
// persona_questions_unanswered counts the human messages no persona
// message answered within 5 minutes: none replied to it, nor covered it as
// merged context (the reply's covers on the wire) addressed to its author.
//
// # Coordination
//
// One coord.Stream per daemon decides who answers: K personas (default 1),
// a mentioned persona always. The responder's Evaluate is cheap (no model
// call): its confidence is the item's priority for the persona, 1 when
// addressed. Respond makes the one model call, over the persona's system
// prompt and the room's recent messages (llm.BuildHistory), and publishes
// the reply. A decision is opened when the first persona evaluates the
// message, with the personas to which it is relevant as expected thinkers
// (chat.Settings.Expected), and its window counts from the first thought
// (1.5 s adapting up to Config.MaxWindow, 3 s): a window started at
// delivery could close, during a burst across rooms, before anyone had
// looked at the message. Personas that wait for others
// (waits_for) are not coordinated: they answer after their prerequisites
// on their own judgement.
//
// Across daemons sharing a NATS cluster, a persona runs in the one daemon
// that holds its lease (leases.go): the others stand by and take it over
// when the lease expires, and a hand-over drains what the persona holds
// first. Each daemon's stream grants up to K of the personas it runs, and
// a granted persona that is not addressed then claims one of the message's
// responder slots in the replies bucket (create-only keys): K of them,
// less the addressees on every daemon; the first claims across the cluster
// answer, the others account the message as taken, and a slot is given
// back on any non-answer. A message that mentions personas of other
// daemons only (as many as K) is left to them. The room reply budget is
// counted in the replies bucket too (roomBudgets: one key per room,
// compare-and-set), after each daemon's own, so N daemons keep the limit
// of one. The compute budget, the HTTP rate limit and the governor's heat
// stay per daemon: they measure the machine.
//
// # Model and budget
//
// With no model server configured the daemon answers with llm.Scripted.
// Config.ModelBaseURL (or $OPENAI_BASE_URL, or just $OPENAI_API_KEY) selects
// an OpenAI-compatible server; a persona's model overrides the model name.
// All model calls share one token bucket, the compute budget (default 2
// calls per second, burst 20), whose level slows cadences and feeds the
// governor.
//
// A reply is streamed (llm.Request.OnText) unless Config.NoStream: the
// room's live events carry it as a Draft while it is written, at most ten
// updates a second, and then how it ended: sent (with the stored
// message), superseded (preempted for an @mention, or put back, to be
// written again with newer messages) or failed. Drafts are not stored.
//
// # Concurrency and resources
//
// Every Daemon method is safe for concurrent use. The goroutines the daemon
// starts (HTTP server, governor sampler, keep-alive, ledger writer) are
// owned and stopped by Shutdown; NATS client and embedded server goroutines
// end with the connection and the server. Shutdown lets HTTP requests in
// flight finish (a POST being stored is answered 201), ending live streams
// first; only when its context ends are requests cancelled.
//
// What is stored is bounded: the room stream keeps a message for
// Config.Retention (default 30 days) and at most Config.MaxBytes (default 1
// GiB, oldest dropped first), and the accounts and replies buckets keep a
// key as long as the stream keeps a message (their TTL is the retention),
// so no message can come back after its ledger entries expired. Each of
// the two also takes at most an eighth of Config.MaxBytes (128 MiB by
// default, some 700 000 accounts) and, when full, drops its oldest keys rather
// than refuse a write: they belong to messages acknowledged long before,
// which JetStream does not deliver again. A merged reply is stored once;
// the messages it covers point at it. The lease bucket takes at most 16
// MiB. The caps are reserved on disk as the stream's is; with an
// unlimited MaxBytes the buckets are unlimited too. The room
// follower reads the retained stream at start (so paging, prompts and quiet
// rooms are right from the first request) and keeps in memory the stream
// sequences of the 100 000 most recent message ids (a few megabytes), per
// room the last 50 messages, and the names of personas seen writing.
// Paging after an older id finds it in the stream instead: a binary search
// on the time in the id (ids sort by the clock of the daemon that made
// them, so it allows five minutes of skew between daemons), then a short
// scan; an id is looked up only in the room it is paged in. Rooms
// themselves are not forgotten while the stream keeps a message of theirs.
//
// A page is also read backwards, newest first (MessagesBefore: the API's
// order=newest and before=<id>, which the dashboard opens a room with):
// the stream is read forward in windows that end at the cursor and double
// in length, each from its start, until the page is full, so a page costs
// about one direct get per room message read, whatever the room's length.
// For the dashboard to open as it was left, the daemon also keeps, in
// memory only, each room's last 200 thoughts and decisions of the last
// hour (Trail; at most 256 rooms, the stalest forgotten first) and each
// persona's sample every 5 s of the last 5 minutes (Samples, taken on the
// governor sampler's tick), and counts each persona's replies and the
// messages a guard kept from it (PersonaInfo.Outcomes). A restart forgets
// them.
//
// # Testing code that uses it
//
// Start a Daemon with Addr "127.0.0.1:0", a t.TempDir() as Data, a
// Config.Model fake (or ModelBaseURL pointing at an httptest server), and
// quick cadences in Config.Persona; call Backend methods directly or the
// HTTP API at Addr. NATS runs outside any synctest bubble, so wait on
// observable state (Subscribe's events, GET /api/personas backlogs) with a
// deadline. This package's tests show the pattern, including a crash test
// that kills a daemon process with SIGKILL.
package server
