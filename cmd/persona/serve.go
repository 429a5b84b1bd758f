package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/personaos/persona/server"
)

// newServeCmd is `persona serve`: the chat daemon.
func newServeCmd() *cobra.Command {
	var (
		cfg          server.Config
		personas     string
		logLevel     string
		rateHTTP     float64
		maxTokens    int
		temperature  float64
		modelTimeout time.Duration
		rules        ruleFlags // the policy flags persona sim takes too
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the chat daemon: personas, NATS JetStream delivery, HTTP API and dashboard",
		Long: `Run the chat daemon.

With no flags it starts an embedded NATS server with JetStream storing under
./persona-data, the four built-in personas (Helper, CodeReview, Teacher,
Planner) answering with a built-in scripted responder, and the HTTP API and
dashboard on 127.0.0.1:7777. It prints the dashboard URL with its token.

A model server speaking the OpenAI chat API (Ollama, llama.cpp, vLLM, OpenAI)
is used when --model-url, $OPENAI_BASE_URL or $OPENAI_API_KEY is set; the key
comes from --api-key or $OPENAI_API_KEY and the model from --model or
$PERSONA_MODEL.

--nats URL[,URL...] uses an existing NATS server or cluster (with JetStream)
instead of the embedded one; the daemon starts while some of the servers are
down. On a cluster the stream and buckets keep 3 copies (--replicas). Several
daemons can share one cluster, each started with every persona: a persona runs
in one daemon at a time, under a lease in JetStream, and the daemons spread
them; when a daemon dies, another takes its personas over within the lease
TTL (--lease-ttl, 10s). --personas limits the personas a daemon may run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			if personas != "" {
				cfg.Personas = strings.Split(personas, ",")
			}
			cfg.HTTP.RatePerSec = rateHTTP
			if cmd.Flags().Changed("temperature") {
				if temperature < 0 || temperature > 2 {
					return fmt.Errorf("--temperature %g: want 0 to 2", temperature)
				}
				cfg.Temperature = &temperature
			}
			if maxTokens < 0 {
				return fmt.Errorf("--max-tokens %d: want 0 (the server's default) or more", maxTokens)
			}
			cfg.MaxTokens = maxTokens
			if modelTimeout < 0 {
				return fmt.Errorf("--model-timeout %v: want a positive duration", modelTimeout)
			}
			cfg.ModelOptions.Timeout = modelTimeout
			rules.config(&cfg)
			d, err := server.New(cfg)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := d.Start(ctx); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "persona: listening on %s\n", d.Addr())
			fmt.Fprintf(out, "dashboard: %s#token=%s\n", d.URL(), d.Token())
			<-ctx.Done()
			fmt.Fprintln(out, "persona: shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return d.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", server.DefaultAddr, "HTTP listen address (port 0 picks a free one)")
	f.StringVar(&cfg.Data, "data", server.DefaultData, "data directory: JetStream storage and the access token")
	f.StringVar(&cfg.NATSURL, "nats", "", "URLs (comma-separated) of an existing NATS server or cluster instead of the embedded one")
	f.IntVar(&cfg.Replicas, "replicas", 0, "copies of the room stream, buckets and consumers on a NATS cluster (default 3 when clustered, 1 otherwise); an existing asset is never scaled down")
	f.StringVar(&cfg.Node, "node", "", "this daemon's name in the cluster's persona leases (default: made from the host name, kept in the data directory)")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", 0, "life of a persona's lease without renewal: a dead daemon's personas move within it (default 10s)")
	f.StringVar(&cfg.ConfigFile, "config", "", "persona YAML file (default: the built-in set, see personas.yaml)")
	f.StringVar(&personas, "personas", "", "comma-separated personas of the configuration this daemon may run (default all; the cluster's daemons spread them)")
	f.StringVar(&cfg.Token, "token", "", "API bearer token (default: --token-file, else $PERSONA_TOKEN, which ps does not show; else generated on first start and kept in the data directory)")
	f.IntVar(&cfg.HTTP.MaxContent, "max-content", 0, "most characters in a message, a person's or a model's reply (0: 8000)")
	f.StringVar(&cfg.TokenFile, "token-file", "", "file holding the API bearer token (a mounted secret); it must exist, and should be readable by its owner only")
	f.StringVar(&cfg.ModelBaseURL, "model-url", "", "base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1 (default $OPENAI_BASE_URL; none: scripted responder)")
	f.StringVar(&cfg.ModelName, "model", "", "model name (default $PERSONA_MODEL, then gpt-4o-mini)")
	f.StringVar(&cfg.ModelAPIKey, "api-key", "", "API key (default $OPENAI_API_KEY)")
	f.IntVar(&maxTokens, "max-tokens", 0, "most tokens in a reply, for every persona without its own max_tokens (0: the server's default)")
	f.Float64Var(&temperature, "temperature", 0, "sampling temperature, 0 to 2, for every persona without its own (default: the server's)")
	f.DurationVar(&modelTimeout, "model-timeout", 0, "timeout of one model call attempt, for every persona without its own model_timeout (default 60s)")
	f.BoolVar(&cfg.NoStream, "no-stream", false, "ask the model for whole replies, not streamed ones (the live stream then shows no draft being written)")
	f.IntVar(&cfg.ModelSlots, "model-slots", 0, "model calls at once on the backend, all personas together; @mentions get a slot first (default 1 for a local server, 4 otherwise)")
	rules.register(f, "answer each pending message of a room separately instead of merging them")
	f.DurationVar(&cfg.Retention, "retention", server.DefaultRetention, "how long rooms keep a message, and the ledger its entries (negative: forever)")
	f.StringVar(&cfg.Sync, "sync", server.SyncInterval, "when the embedded store syncs to disk: interval (every 2 minutes: a 201 means written to the OS) or always (before every acknowledgement: a 201 means on disk)")
	f.Int64Var(&cfg.MaxBytes, "max-bytes", server.DefaultMaxBytes, "size cap of the room stream in bytes; the oldest messages go first (negative: no cap)")
	f.Float64Var(&rateHTTP, "rate", 0, "HTTP requests per second per client, counted by each daemon (default 5)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
