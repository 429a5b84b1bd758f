package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// startNATS starts a NATS server with JetStream on a free loopback port.
func startNATS(t *testing.T, opts natsserver.Options) *natsserver.Server {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	ns, err := natsserver.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	return ns
}

func TestNATSCredentialsStayOutOfTheLog(t *testing.T) {
	ns := startNATS(t, natsserver.Options{Username: "persona", Password: "s3cret-pw"})
	var logs syncBuffer
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.NATSURL = strings.Replace(ns.ClientURL(), "nats://", "nats://persona:s3cret-pw@", 1)
	d := startDaemon(t, cfg)
	if err := d.bus.nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the reconnect logged", func() bool { return strings.Contains(logs.String(), "nats reconnected") })
	out := logs.String()
	if strings.Contains(out, "s3cret-pw") {
		t.Errorf("the password is in the log:\n%s", out)
	}
	if !strings.Contains(out, "nats connected") || !strings.Contains(out, ns.Addr().String()) {
		t.Errorf("the log does not say where it connected:\n%s", out)
	}
}

func TestConsumeErrorsWarnWhenTheConsumerIsGoneOrErrorsPersist(t *testing.T) {
	transient := errors.New("no heartbeat received")
	for _, tc := range []struct {
		name string
		errs []error
		want []slog.Level
	}{
		{"a passing error is debug", []error{transient}, []slog.Level{slog.LevelDebug}},
		{"persisting errors warn", []error{transient, transient, transient, transient},
			[]slog.Level{slog.LevelDebug, slog.LevelDebug, slog.LevelWarn, slog.LevelWarn}},
		{"a deleted consumer warns at once", []error{jetstream.ErrConsumerDeleted}, []slog.Level{slog.LevelWarn}},
		{"a missing consumer warns at once", []error{fmt.Errorf("pull: %w", jetstream.ErrConsumerNotFound)}, []slog.Level{slog.LevelWarn}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &levelRecorder{}
			d := &Daemon{log: slog.New(rec)}
			var streak atomic.Int32
			for _, err := range tc.errs {
				d.consumeError("Solo", &streak, err)
			}
			if !slices.Equal(rec.levels, tc.want) {
				t.Errorf("logged at %v, want %v", rec.levels, tc.want)
			}
		})
	}
}

// levelRecorder is a slog.Handler that keeps the level of each record.
type levelRecorder struct{ levels []slog.Level }

func (r *levelRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *levelRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.levels = append(r.levels, rec.Level)
	return nil
}
func (r *levelRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *levelRecorder) WithGroup(string) slog.Handler      { return r }
