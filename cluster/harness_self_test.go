package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestHarnessSurvivesLeaderKill proves the harness does what the cluster
// tests rely on: an R3 stream keeps taking writes when its leader is killed,
// another node leads it meanwhile, and the killed node rejoins from its store
// and catches up, with no message lost or stored twice. The leader lookups of
// the harness are checked against what a client is told.
func TestHarnessSurvivesLeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "K", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Name(c.KVLeader(t, "K")), clientLeader(t, js, "KV_K"); got != want {
		t.Fatalf("KVLeader: %s, the client is told %s", got, want)
	}

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	publishAll(t, js, 0, 200)
	old := c.StreamLeader(t, "T")
	if got, want := c.Name(old), clientLeader(t, js, "T"); got != want {
		t.Fatalf("StreamLeader: %s, the client is told %s", got, want)
	}

	killed := time.Now()
	c.Kill(old)
	next := c.WaitStreamLeader(t, "T", readyTimeout)
	t.Logf("leader %s killed; %s leads after %v", c.Name(old), c.Name(next), time.Since(killed).Round(time.Millisecond))
	publishAll(t, js, 200, 400)
	if lead := clientLeader(t, js, "T"); lead == c.Name(old) {
		t.Fatalf("the client is told the killed node %s leads", lead)
	}

	restarted := time.Now()
	c.Restart(t, old)
	poll(t, readyTimeout, "catch-up of the restarted node", func() bool {
		return c.nodes[old].srv.JetStreamIsStreamCurrent(natsserver.DEFAULT_GLOBAL_ACCOUNT, "T") && replicasCurrent(ctx, js, "T")
	})
	t.Logf("%s restarted and current after %v", c.Name(old), time.Since(restarted).Round(time.Millisecond))

	checkMessages(t, js, "T", 400)
}

// publishAll publishes messages from..to-1 to the stream's subjects in order,
// each with its own Nats-Msg-Id, retrying each until the cluster stores it:
// the stream deduplicates a retry whose first attempt was stored unacked.
func publishAll(t *testing.T, js jetstream.JetStream, from, to int) {
	t.Helper()
	var retried int
	var slowest time.Duration
	for i := from; i < to; i++ {
		start := time.Now()
		if n := publishRetry(t, js, i); n > 0 {
			retried++
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("published %d..%d: %d needed a retry, slowest %v", from, to-1, retried, slowest.Round(time.Millisecond))
}

// publishRetry publishes message i until it is acknowledged, backing off
// between attempts, and fails the test after 30s. It returns how many
// attempts failed.
func publishRetry(t *testing.T, js jetstream.JetStream, i int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	backoff := 10 * time.Millisecond
	for failed := 0; ; failed++ {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := js.Publish(ctx, fmt.Sprintf("t.%d", i), fmt.Appendf(nil, "%d", i), jetstream.WithMsgID(msgID(i)))
		cancel()
		if err == nil {
			return failed
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %d: still failing after 30s: %v", i, err)
		}
		wait := time.NewTimer(backoff)
		select {
		case <-wait.C:
		case <-t.Context().Done():
			wait.Stop()
			t.Fatal(t.Context().Err())
		}
		backoff = min(2*backoff, time.Second)
	}
}

// msgID is message i's Nats-Msg-Id.
func msgID(i int) string { return fmt.Sprintf("m%d", i) }

// clientLeader is the server name a client is told leads stream.
func clientLeader(t *testing.T, js jetstream.JetStream, stream string) string {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.Cluster.Leader
}

// replicasCurrent reports whether the stream's leader counts every replica
// as online and current; an error (no leader yet) counts as not.
func replicasCurrent(ctx context.Context, js jetstream.JetStream, stream string) bool {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return false
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		return false
	}
	for _, r := range info.Cluster.Replicas {
		if r.Offline || !r.Current {
			return false
		}
	}
	return true
}

// checkMessages checks the stream holds exactly messages 0..n-1, once each
// and in the order published.
func checkMessages(t *testing.T, js jetstream.JetStream, stream string, n int) {
	t.Helper()
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(n) || info.State.FirstSeq != 1 || info.State.LastSeq != uint64(n) {
		t.Fatalf("stream %s: %d messages, seq %d..%d; want %d, seq 1..%d", stream, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, n, n)
	}
	for i := range n {
		m, err := s.GetMsg(t.Context(), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != msgID(i) {
			t.Fatalf("seq %d: message %q, want %q", i+1, got, msgID(i))
		}
	}
}
