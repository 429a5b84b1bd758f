package server

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/llm"
)

// Defaults of Config. Numbers from the issue say so; the others are ours.
const (
	DefaultAddr = "127.0.0.1:7777"
	DefaultData = "persona-data"
	// The chat rules' defaults are chat.DefaultSettings(): the simulator's
	// too, so that a scenario measures what the daemon runs.
	DefaultK            = coord.DefaultK // coordination: one responder per message unless mentioned
	DefaultReplyBudget  = chat.DefaultReplyBudget
	DefaultReplyWindow  = chat.DefaultReplyWindow
	DefaultQuietAfter   = chat.DefaultQuietAfter
	DefaultMaxDepth     = chat.DefaultMaxDepth
	DefaultRespondAbove = chat.DefaultRespondAbove
	DefaultCoordWindow  = coord.DefaultWindow
	DefaultMaxWindow    = chat.DefaultMaxWindow
	DefaultBudgetPerSec = 2  // model calls per second, all personas together
	DefaultBudgetBurst  = 20 // model calls in a burst
	DefaultAckWait      = 2 * time.Minute
	DefaultRetention    = 30 * 24 * time.Hour // a month of chat history
	DefaultMaxBytes     = 1 << 30             // 1 GiB of room stream
)

// Config configures a Daemon. The zero value is valid: it runs the built-in
// personas with the scripted model, an embedded NATS server storing under
// ./persona-data, and the API on 127.0.0.1:7777.
type Config struct {
	// Addr is the HTTP listen address (default 127.0.0.1:7777). Port 0
	// picks a free port; Daemon.Addr tells which.
	Addr string
	// Data is the data directory: the embedded NATS server's storage and
	// the access token (default ./persona-data).
	Data string
	// NATSURL, if set, connects to an existing NATS server or cluster
	// (with JetStream) instead of starting the embedded one.
	NATSURL string
	// ConfigFile is a persona YAML file (see personas.yaml). Empty: Specs,
	// or else the built-in set.
	ConfigFile string
	// Specs are the personas when ConfigFile is empty (nil: built in).
	Specs []PersonaSpec
	// Personas selects which personas of the configuration this daemon
	// runs (default all). Several daemons sharing one NATS cluster each run
	// some; a persona must run in one daemon only.
	Personas []string
	// Replicas is how many copies of the room stream, the buckets and the
	// consumers JetStream keeps (0: 3 when NATSURL's server is clustered,
	// 1 otherwise). An existing asset is never scaled down (assets.go).
	Replicas int
	// Node names this daemon in the cluster's leases (default: made from
	// the host name on first start and kept in Data/node). Two daemons
	// must not share one.
	Node string
	// LeaseTTL is how long a persona's lease lives without renewal
	// (default 10s): a dead daemon's personas are taken over within it
	// and a fifth of it. Every daemon of a cluster should use the same.
	LeaseTTL time.Duration
	// Token is the API's bearer token. Empty: read from TokenFile if set,
	// else $PERSONA_TOKEN, else Data/token, generated there on first start.
	Token string
	// TokenFile is a file that holds the token (a mounted secret, say); it
	// must exist and not be empty. A token file that other users can read
	// is started with a warning.
	TokenFile string

	// Model, if set, answers for every persona (tests, embedding).
	// Otherwise an OpenAI-compatible server is used when ModelBaseURL,
	// $OPENAI_BASE_URL or $OPENAI_API_KEY is set, and the built-in scripted
	// responder when none is.
	Model        llm.Model
	ModelBaseURL string
	ModelAPIKey  string
	ModelName    string
	// ModelOptions are passed to llm.NewOpenAI (BaseURL, APIKey, Model and
	// Limiter are set from the fields above and the budget).
	ModelOptions llm.OpenAIOptions
	// MaxTokens and Temperature are every persona's defaults for a reply
	// (a persona's max_tokens and temperature override them): zero and
	// nil leave them to the model server. The call timeout is
	// ModelOptions.Timeout (a persona's model_timeout overrides it).
	MaxTokens   int
	Temperature *float64
	// ModelSlots is how many model calls run at once on the backend, all
	// personas together (its slots): every call takes one from the slot
	// scheduler (package slots), @mentions first. Zero: 1 for a server on
	// this machine or a private network (a local Ollama, llama.cpp or vLLM
	// serves one request at a time unless told otherwise, e.g.
	// OLLAMA_NUM_PARALLEL), 4 for a hosted one and for the scripted model.
	ModelSlots int
	// BudgetPerSec and BudgetBurst are the compute budget: a token bucket
	// shared by all personas, one token per model call attempt (defaults 2
	// per second, burst 20). Negative BudgetPerSec: unlimited.
	BudgetPerSec float64
	BudgetBurst  int

	// K is how many personas answer a message that mentions nobody
	// (default 1). A mentioned persona is always granted.
	K int
	// ReplyBudget is how many persona messages this daemon posts per room
	// per ReplyWindow (defaults 6 and one minute); replies over it are not
	// sent, and are accounted handled with the note "reply budget". Other
	// daemons' persona messages in the room count too; a reply to a
	// person's @mention is counted, never refused.
	ReplyBudget int
	ReplyWindow time.Duration
	// QuietAfter: a persona's message in a room where no human has spoken
	// for this long is not answered (default 10 minutes).
	QuietAfter time.Duration
	// MaxDepth: a persona's message that is the MaxDepth-th persona reply
	// of a chain is not answered (default 2: a persona may answer another's
	// reply to a human, and nobody answers that).
	MaxDepth int
	// RespondAbove is the confidence (the item's priority for the persona)
	// from which a persona not addressed asks to respond (default 0.4: any
	// fresh human message; another persona's reply only with expertise and
	// recent activity in the room); below, it declines the message.
	RespondAbove float64
	// NoMerge turns off merging a persona's pending messages of one room
	// into one reply (root Options.Coalesce), which is on by default.
	NoMerge bool
	// NoStream asks the model for whole replies instead of streamed ones:
	// the room's live stream then shows no draft while a reply is written.
	NoStream bool
	// OwedOverBudget writes a reply to a person's @mention at once, over
	// the reply budget, instead of waiting until the budget has room
	// (chat.Settings.OwedOverBudget); off by default.
	OwedOverBudget bool
	// CoordWindow is the initial coordination window (default 1.5s): how
	// long a decision waits, from its first thought, for personas that
	// have not thought yet. It adapts to the measured time-to-thought
	// between coord's MinWindow (250ms) and MaxWindow (default 3s).
	CoordWindow time.Duration
	MaxWindow   time.Duration
	// AckWait is how long JetStream waits for an acknowledgement before
	// redelivering (default 2m); held messages are kept alive well within it.
	AckWait time.Duration
	// Retention is how long the room stream keeps a message (default 30
	// days); the accounts and replies buckets keep a key as long, so a
	// message is never redelivered after its ledger entries are gone.
	// Negative: forever. Paging, prompts and quiet rooms see only what the
	// stream keeps, and the daemon reads all of it at start.
	Retention time.Duration
	// Sync is when the embedded NATS server syncs what it stores to disk:
	// "interval" (the default, NATS's: every two minutes, so a 201 means
	// written to the operating system and a power cut can lose up to the
	// last two minutes) or "always" (before every acknowledgement: a 201
	// means on disk, at the cost of an fsync per message). It does not
	// apply with NATSURL, whose servers have their own sync_interval.
	Sync string
	// MaxBytes caps the room stream's size: past it the oldest messages are
	// dropped (default 1 GiB). Negative: no cap.
	MaxBytes int64
	// Persona is the base of every persona's runtime options; the spec's
	// capacity, cadence and thresholds override it.
	Persona persona.Options
	// HTTP configures the API (Token, Logger and Metrics are set by the
	// daemon).
	HTTP HTTPOptions
	// Logger receives the daemon's logs (default slog.Default()).
	Logger *slog.Logger

	// hooks are test seams, zero in production (unexported: only this
	// package's tests set them).
	hooks hooks
}

// hooks are a daemon's test seams. Each is read once, by the step it
// wraps: the ledger's writer (dropFinals, accounts) and Post
// (beforePublish).
type hooks struct {
	// dropFinals makes the ledger drop every final account without
	// writing or acknowledging it: a crash just before each ack.
	dropFinals bool
	// accounts, if set, wraps the accounts bucket the ledger writes to
	// (tests inject failures).
	accounts func(jetstream.KeyValue) jetstream.KeyValue
	// maxStore, if set, caps the embedded server's JetStream file store
	// (a full disk, in small).
	maxStore int64
	// beforePublish, if set, runs in Post just before the publish.
	beforePublish func()
	// failReplyPublish, if set, runs before each reply's publish; an error
	// fails the publish as a bus error would.
	failReplyPublish func(chat.Message) error
	// questionHorizon, if set, replaces questionHorizon.
	questionHorizon time.Duration
}

// The values of Config.Sync.
const (
	SyncInterval = "interval"
	SyncAlways   = "always"
)

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Sync == "" {
		c.Sync = SyncInterval
	}
	if c.Data == "" {
		c.Data = DefaultData
	}
	if c.BudgetPerSec == 0 {
		c.BudgetPerSec = DefaultBudgetPerSec
	}
	if c.BudgetBurst <= 0 {
		c.BudgetBurst = DefaultBudgetBurst
	}
	if c.K <= 0 {
		c.K = DefaultK
	}
	if c.ReplyBudget <= 0 {
		c.ReplyBudget = DefaultReplyBudget
	}
	if c.ReplyWindow <= 0 {
		c.ReplyWindow = DefaultReplyWindow
	}
	if c.QuietAfter <= 0 {
		c.QuietAfter = DefaultQuietAfter
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.RespondAbove <= 0 {
		c.RespondAbove = DefaultRespondAbove
	}
	if c.CoordWindow <= 0 {
		c.CoordWindow = DefaultCoordWindow
	}
	if c.MaxWindow <= 0 {
		c.MaxWindow = DefaultMaxWindow
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// settings are the chat rules' settings of a defaulted Config:
// chat.DefaultSettings with the fields the Config sets.
func (c Config) settings() chat.Settings {
	s := chat.DefaultSettings()
	s.QuietAfter, s.ReplyBudget, s.ReplyWindow = c.QuietAfter, c.ReplyBudget, c.ReplyWindow
	s.MaxDepth, s.RespondAbove, s.NoMerge = c.MaxDepth, c.RespondAbove, c.NoMerge
	s.OwedOverBudget = c.OwedOverBudget
	s.Stream.Window, s.Stream.MaxWindow, s.Stream.K = c.CoordWindow, c.MaxWindow, c.K
	return s
}

// streamLimits are Retention and MaxBytes in JetStream's terms: 0 and -1
// mean unlimited.
func (c Config) streamLimits() (maxAge time.Duration, maxBytes int64) {
	maxAge, maxBytes = max(c.Retention, 0), c.MaxBytes
	if maxBytes < 0 {
		maxBytes = -1
	}
	return maxAge, maxBytes
}

// minRetention is the shortest Config.Retention: a message must outlive
// the time it may wait for its personas and its redeliveries.
const minRetention = time.Hour
