package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/personaos/persona/chat"
)

func TestCancelledSubscriptionsLeaveNoRoomBehind(t *testing.T) {
	rs := newRooms(testLogger(t))
	for i := range 1000 {
		_, cancel := rs.subscribe(fmt.Sprintf("room-%d", i))
		cancel()
	}
	if n := len(rs.subs); n != 0 {
		t.Errorf("%d rooms left in the subscriber map after every subscription ended", n)
	}
	_, stay := rs.subscribe("lobby")
	_, leave := rs.subscribe("lobby")
	leave()
	leave() // idempotent
	if n := len(rs.subs["lobby"]); n != 1 {
		t.Errorf("lobby has %d subscribers, want the one still there", n)
	}
	stay()
	if _, ok := rs.subs["lobby"]; ok {
		t.Error("lobby kept after its last subscriber left")
	}
}

func TestRoomIndexKeepsOnlyTheMostRecentIDs(t *testing.T) {
	rs := newRooms(testLogger(t))
	rs.indexCap = 3
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []string
	for i := range 10 {
		m := chat.Message{ID: newMessageID(at.Add(time.Duration(i) * time.Second)), Room: "r", Author: "bob", Kind: chat.Human, At: at}
		ids = append(ids, m.ID)
		seq := uint64(i + 1)
		rs.posted(seq, m) // this daemon's own message is indexed twice:
		rs.apply(seq, m)  // once when stored, once when the follower reads it
	}
	if len(rs.index) != 3 || len(rs.order) != 3 {
		t.Fatalf("index holds %d ids (ring %d), want 3", len(rs.index), len(rs.order))
	}
	for i, id := range ids {
		seq, ok := rs.seq(id)
		if want := i >= 7; ok != want || (ok && seq != uint64(i+1)) {
			t.Errorf("message %d: seq %d, indexed %v; want indexed %v", i, seq, ok, want)
		}
	}
}

// publishAt stores a human message made at 'at' (the id's time) in room.
func publishAt(t *testing.T, b *bus, room string, at time.Time) (string, uint64) {
	t.Helper()
	m := chat.Message{ID: newMessageID(at), Room: room, Author: "bob", Kind: chat.Human, Content: "hi", At: at.UTC()}
	seq, err := b.publish(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return m.ID, seq
}

// testBus is an embedded bus of its own for the test.
func testBus(t *testing.T) *bus {
	t.Helper()
	b, err := openBus(context.Background(), busOptions{StoreDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.close)
	return b
}

func TestFindSeqFindsAnyIDInItsRoom(t *testing.T) {
	ctx := context.Background()
	b := testBus(t)
	base := time.Now().Add(-time.Hour)
	want := map[string]uint64{}
	var inA, inB []string
	for i := range 120 {
		at := base.Add(time.Duration(i) * time.Second)
		room := "a"
		switch {
		case i%3 == 0:
			room = "b"
		case i%7 == 0:
			at = at.Add(-2 * time.Minute) // another daemon, its clock two minutes behind
		}
		id, seq := publishAt(t, b, room, at)
		want[id] = seq
		if room == "a" {
			inA = append(inA, id)
		} else {
			inB = append(inB, id)
		}
	}
	for _, id := range inA {
		seq, ok, err := b.findSeq(ctx, "a", id)
		if err != nil || !ok || seq != want[id] {
			t.Fatalf("findSeq(a, %s) = %d, %v, %v; want %d", id, seq, ok, err, want[id])
		}
	}
	for _, tc := range []struct{ name, room, id string }{
		{"an id of another room is not found", "a", inB[len(inB)/2]},
		{"an id never stored is not found", "a", newMessageID(base.Add(100 * time.Second))},
		{"an id older than the stream is not found", "a", newMessageID(base.Add(-24 * time.Hour))},
		{"an id newer than the stream is not found", "a", newMessageID(time.Now().Add(time.Hour))},
		{"an id of no time is not found", "a", "not-an-id"},
		{"an empty room finds nothing", "c", inA[0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if seq, ok, err := b.findSeq(ctx, tc.room, tc.id); err != nil || ok {
				t.Errorf("findSeq(%s, %s) = %d, %v, %v; want not found", tc.room, tc.id, seq, ok, err)
			}
		})
	}
}

func TestPagingAfterAnIDNoLongerIndexed(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	d := startDaemon(t, cfg)
	d.rooms.mu.Lock()
	d.rooms.indexCap = 2
	d.rooms.mu.Unlock()
	for i := range 8 {
		post(t, d, "r", "bob", fmt.Sprintf("go question %d", i))
		post(t, d, "other", "bob", fmt.Sprintf("go question %d", i))
	}
	waitSettled(t, d)
	all := messages(t, d, "r")
	for i, m := range all {
		got, err := d.Messages(context.Background(), "r", m.ID, 500)
		if err != nil {
			t.Fatalf("after message %d (%s): %v", i, m.ID, err)
		}
		if len(got) != len(all)-i-1 || (len(got) > 0 && got[0].ID != all[i+1].ID) {
			t.Errorf("after message %d: %d messages, want %d", i, len(got), len(all)-i-1)
		}
	}
	if _, err := d.Messages(context.Background(), "r", newMessageID(time.Now()), 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("after an unknown id: %v, want ErrNotFound", err)
	}
}

func TestStreamAndBucketsAreBounded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A store made before the limits existed gets them on the next start.
	b, err := openBus(ctx, busOptions{StoreDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.close()

	cfg := testConfig(t)
	cfg.Data = dir
	cfg.Specs = solo()
	d := startDaemon(t, cfg)
	info, err := d.bus.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.MaxAge != DefaultRetention || c.MaxBytes != DefaultMaxBytes || c.Duplicates != 10*time.Minute {
		t.Errorf("stream max age %v, max bytes %d, duplicates %v; want %v, %d, 10m", c.MaxAge, c.MaxBytes, c.Duplicates, DefaultRetention, int64(DefaultMaxBytes))
	}
	for _, kv := range []struct {
		name string
		st   func() (time.Duration, error)
	}{
		{"accounts", func() (time.Duration, error) { s, err := d.bus.accounts.Status(ctx); return ttl(s, err) }},
		{"replies", func() (time.Duration, error) { s, err := d.bus.replies.Status(ctx); return ttl(s, err) }},
	} {
		if got, err := kv.st(); err != nil || got != DefaultRetention {
			t.Errorf("%s bucket TTL %v (%v), want the stream's %v", kv.name, got, err, DefaultRetention)
		}
	}
	for bucket, want := range map[string]struct {
		bytes   int64
		discard jetstream.DiscardPolicy
	}{
		accountsBucket: {DefaultMaxBytes / 8, jetstream.DiscardOld},
		repliesBucket:  {DefaultMaxBytes / 8, jetstream.DiscardOld},
		leasesBucket:   {leasesMaxBytes, jetstream.DiscardNew},
	} {
		s, err := d.bus.js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		if c := s.CachedInfo().Config; c.MaxBytes != want.bytes || c.Discard != want.discard {
			t.Errorf("bucket %s: max bytes %d, discard %v; want %d, %v", bucket, c.MaxBytes, c.Discard, want.bytes, want.discard)
		}
	}
}

// A full ledger bucket drops its oldest keys to take a new one: the
// accounts of messages acknowledged long ago give way, and no persona is
// stopped by a bucket that refuses its writes.
func TestAFullLedgerBucketDropsItsOldestKeys(t *testing.T) {
	ctx := context.Background()
	b, err := openBus(ctx, busOptions{StoreDir: t.TempDir(), Logger: testLogger(t), MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	capBytes := ledgerMaxBytes(8 << 20)
	value := []byte(strings.Repeat("x", 200))
	n := int(2 * capBytes / int64(len(value))) // twice what fits
	for i := range n {
		if _, err := b.accounts.Put(ctx, fmt.Sprintf("p.m%06d", i), value); err != nil {
			t.Fatalf("put %d of %d into a bucket capped at %d bytes: %v", i, n, capBytes, err)
		}
	}
	s, err := b.js.Stream(ctx, "KV_"+accountsBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := info.State; int64(st.Bytes) > capBytes || st.Msgs >= uint64(n) {
		t.Fatalf("bucket holds %d keys in %d bytes after %d puts; want at most %d bytes", st.Msgs, st.Bytes, n, capBytes)
	}
	if _, err := b.accounts.Get(ctx, "p.m000000"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the oldest key: %v, want it dropped", err)
	}
	if e, err := b.accounts.Get(ctx, fmt.Sprintf("p.m%06d", n-1)); err != nil || string(e.Value()) != string(value) {
		t.Errorf("the newest key: %v", err)
	}
}

func ttl(s interface{ TTL() time.Duration }, err error) (time.Duration, error) {
	if err != nil {
		return 0, err
	}
	return s.TTL(), nil
}

func TestStreamLimitsFromConfig(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retention time.Duration
		maxBytes  int64
		wantAge   time.Duration
		wantBytes int64
		wantErr   bool
	}{
		{name: "zero takes the defaults", wantAge: DefaultRetention, wantBytes: DefaultMaxBytes},
		{name: "negative is unlimited", retention: -1, maxBytes: -1, wantAge: 0, wantBytes: -1},
		{name: "set values are kept", retention: 48 * time.Hour, maxBytes: 1 << 20, wantAge: 48 * time.Hour, wantBytes: 1 << 20},
		{name: "under an hour is refused", retention: time.Minute, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(Config{Retention: tc.retention, MaxBytes: tc.maxBytes, Logger: testLogger(t)})
			if tc.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("New: %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if age, bytes := d.cfg.streamLimits(); age != tc.wantAge || bytes != tc.wantBytes {
				t.Errorf("limits %v, %d; want %v, %d", age, bytes, tc.wantAge, tc.wantBytes)
			}
		})
	}
}

// An id is found however many messages its room holds around it (issue
// 14): with more than findScan of them within findSkew of it, the wide
// scan alone gave up before reaching it.
func TestFindSeqFindsAnIDInABusyRoom(t *testing.T) {
	ctx := context.Background()
	b := testBus(t)
	base := time.Now().Add(-time.Hour)
	var last string
	var lastSeq uint64
	n := findScan + 2000 // all within a few seconds: far more than findScan within findSkew
	for i := range n {
		last, lastSeq = publishAt(t, b, "busy", base.Add(time.Duration(i)*time.Millisecond))
	}
	seq, ok, err := b.findSeq(ctx, "busy", last)
	if err != nil || !ok || seq != lastSeq {
		t.Fatalf("findSeq(busy, the newest of %d) = %d, %v, %v; want %d", n, seq, ok, err, lastSeq)
	}
	// Denser still: all of them within findNear of one another.
	var ids []string
	var seqs []uint64
	for i := range n {
		id, s := publishAt(t, b, "burst", base.Add(time.Duration(i)*100*time.Microsecond))
		ids, seqs = append(ids, id), append(seqs, s)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		seq, ok, err := b.findSeq(ctx, "burst", ids[i])
		if err != nil || !ok || seq != seqs[i] {
			t.Fatalf("findSeq(burst, message %d of %d within %v) = %d, %v, %v; want %d", i, n, time.Duration(n)*100*time.Microsecond, seq, ok, err, seqs[i])
		}
	}
	// Densest: more than findScan within findTight of one another (a
	// million a second), where a capped scan stopped short of the last.
	ids, seqs = ids[:0], seqs[:0]
	for i := range n {
		id, s := publishAt(t, b, "flood", base.Add(time.Duration(i)*time.Microsecond))
		ids, seqs = append(ids, id), append(seqs, s)
	}
	for _, i := range []int{0, n - 1} {
		seq, ok, err := b.findSeq(ctx, "flood", ids[i])
		if err != nil || !ok || seq != seqs[i] {
			t.Fatalf("findSeq(flood, message %d of %d within %v) = %d, %v, %v; want %d", i, n, time.Duration(n)*time.Microsecond, seq, ok, err, seqs[i])
		}
	}
}
