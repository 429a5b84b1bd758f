package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Start-up always finishes (issue 14, item 1): catching up with the room
// stream ends when nothing is left to read, even when the stream's last
// sequence holds no message (it expired, or the tail of a block was lost).
func TestStartFinishesWhenTheStreamsLastMessageIsGone(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(map[bool]string{false: "the last one gone", true: "every message gone"}[all], func(t *testing.T) { startWithGone(t, all) })
	}
}

func startWithGone(t *testing.T, all bool) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	d := startDaemon(t, cfg) // shut down below, before the restart
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	post(t, d, "r", "ann", "first")
	post(t, d, "r", "ann", "second")
	waitSettled(t, d)
	before := messages(t, d, "r")
	info, err := d.bus.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	first := last
	if all {
		first = info.State.FirstSeq
	}
	for seq := first; seq <= last; seq++ {
		if err := d.bus.stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	d2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := d2.Start(sctx); err != nil {
		t.Fatalf("start with the stream's last message (seq %d) gone: %v", last, err)
	}
	defer d2.Shutdown(context.Background())
	// The history is what the stream still holds: all but the last.
	got := messages(t, d2, "r")
	if all {
		before = before[:1]
	}
	if len(got) != len(before)-1 {
		t.Fatalf("history after restart has %d messages, want %d (all but the deleted last)", len(got), len(before)-1)
	}
	for i := range got {
		if got[i].ID != before[i].ID {
			t.Fatalf("message %d after restart is %s, want %s", i, got[i].ID, before[i].ID)
		}
	}
}

// A power cut that took the last 100 bytes of the stream's newest block
// while the daemon was stopped (issue 14): it starts within 30 s, healthy,
// with the messages the block still holds whole, and says what it found.
func TestStartFinishesWhenTheNewestBlockLostItsTail(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	d := startDaemon(t, cfg) // shut down below, before the restart
	for i := range 20 {
		post(t, d, "r", "ann", fmt.Sprintf("message %d of 20", i))
	}
	waitSettled(t, d)
	before := messages(t, d, "r")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	blocks, _ := filepath.Glob(filepath.Join(cfg.Data, "jetstream", "*", "streams", streamName, "msgs", "*.blk"))
	if len(blocks) == 0 {
		t.Fatalf("no message block under %s", cfg.Data)
	}
	newest := slices.MaxFunc(blocks, func(a, b string) int {
		na, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(a), ".blk"))
		nb, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(b), ".blk"))
		return na - nb
	})
	fi, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(newest, fi.Size()-100); err != nil {
		t.Fatal(err)
	}

	logs.b.Reset()
	d2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if err := d2.Start(sctx); err != nil {
		t.Fatalf("start after the newest block lost its last 100 bytes: %v", err)
	}
	defer d2.Shutdown(context.Background())
	if ok, why := d2.Health(sctx); !ok {
		t.Fatalf("unhealthy after the start: %s", why)
	}
	got := messages(t, d2, "r")
	if len(got) >= len(before) || len(got) == 0 {
		t.Fatalf("history after restart has %d of %d messages: want the block's whole ones, short of its cut tail", len(got), len(before))
	}
	for i := range got {
		if got[i].ID != before[i].ID {
			t.Fatalf("message %d after restart is %s, want %s", i, got[i].ID, before[i].ID)
		}
	}
	if l := logs.String(); !strings.Contains(l, "rooms caught up") || !strings.Contains(l, fmt.Sprintf("messages=%d", len(got))) ||
		!strings.Contains(l, fmt.Sprintf("missing=%d", len(before)-len(got))) {
		t.Errorf("the start does not say what it found:\n%s", l)
	}
	t.Logf("%d of %d messages after the cut; the start said:\n%s", len(got), len(before), logs)
}

// A client that sends its body a byte at a time holds its connection at
// most the read timeout (issue 14): the server closes it.
func TestSlowBodyConnectionIsClosedAtTheReadTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.HTTP.ReadTimeout = 500 * time.Millisecond
	d := startDaemon(t, cfg)
	c, err := net.Dial("tcp", d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/rooms/r/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's own bound, far above the server's
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server held a slow-body connection for %v", time.Since(start).Round(time.Millisecond))
	}
	t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
}

func TestModelTextIsCleanedAndBounded(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  plain answer  ", "plain answer"},
		{"a\x00b\x1b[31mred\x1b[0m\r\nline two\tend", "ab[31mred[0m\nline two\tend"},
		{"@Teacher, ask @bob (@Planner) but mail x@y.z", "Teacher, ask bob (Planner) but mail x@y.z"},
		{"@Ann here you go, and @ann again; not @anne", "@Ann here you go, and @ann again; not anne"},
		{"zero\u200bwidth", "zerowidth"},
		{"@@Teacher", "Teacher"},
	} {
		if got := cleanModelText(tc.in, []string{"ann"}, 0); got != tc.want {
			t.Errorf("cleanModelText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A persona file's may_mention keeps those mentions.
	if got := cleanModelText("@Teacher, ask @Planner", []string{"ann", "Planner"}, 0); got != "Teacher, ask @Planner" {
		t.Errorf("with may_mention [Planner]: %q", got)
	}
	long := cleanModelText(strings.Repeat("é", 3*maxReplyRunes), nil, 0)
	if n := utf8.RuneCountInString(long); n != maxReplyRunes || !strings.HasSuffix(long, "…") {
		t.Fatalf("a runaway reply is %d runes, want %d ending in an ellipsis", n, maxReplyRunes)
	}
	// The cap is the daemon's (Config.HTTP.MaxContent), as for a person.
	if short := cleanModelText(strings.Repeat("é", 100), nil, 10); utf8.RuneCountInString(short) != 10 {
		t.Fatalf("with a cap of 10: %q", short)
	}
}

func TestTokenFromTheEnvironmentAndALostTokenFileIsReported(t *testing.T) {
	t.Setenv(EnvToken, "from-the-env")
	cfg := testConfig(t)
	cfg.Specs = solo()
	d := startDaemon(t, cfg)
	if d.Token() != "from-the-env" {
		t.Fatalf("token %q, want $%s's", d.Token(), EnvToken)
	}
	tok, fresh, err := loadToken(t.TempDir(), "")
	if err != nil || !fresh || len(tok) != 48 {
		t.Fatalf("a new directory: token %q, fresh %v, %v", tok, fresh, err)
	}
	dir := t.TempDir()
	first, _, _ := loadToken(dir, "")
	again, fresh, _ := loadToken(dir, "")
	if again != first || fresh {
		t.Fatalf("the kept token %q came back as %q (fresh %v)", first, again, fresh)
	}
}

// The token from a file (a mounted secret): it must exist, and a file
// other users can read is started with a warning, as is a kept token file
// made readable to them.
func TestTokenFromAFileAndItsModeIsChecked(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "persona-token")
	if err := os.WriteFile(secret, []byte("from-a-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.TokenFile = secret
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	d := startDaemon(t, cfg)
	if d.Token() != "from-a-file" {
		t.Fatalf("token %q, want the file's", d.Token())
	}
	if l := logs.String(); !strings.Contains(l, "token file is open to other users") || !strings.Contains(l, "mode=0644") {
		t.Errorf("no warning for a token file of mode 0644:\n%s", l)
	}

	cfg2 := testConfig(t)
	cfg2.Specs = solo()
	cfg2.TokenFile = filepath.Join(t.TempDir(), "missing")
	d2, err := New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Start(context.Background()); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("start with a missing token file: %v, want an error naming it", err)
	}
	d2.Shutdown(context.Background())

	// The token kept in the data directory, made readable to others.
	logs3 := &syncBuffer{}
	cfg3 := testConfig(t)
	cfg3.Specs = solo()
	if _, _, err := loadToken(cfg3.Data, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(cfg3.Data, "token"), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg3.Logger = slog.New(slog.NewTextHandler(logs3, nil))
	startDaemon(t, cfg3)
	if l := logs3.String(); !strings.Contains(l, "token file is open to other users") {
		t.Errorf("no warning for a kept token file of mode 0640:\n%s", l)
	}
}

// A stream cap the disk cannot hold is refused with the flag to change.
func TestAStreamCapTheDiskCannotHoldNamesTheFlag(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.MaxBytes = 1 << 52 // 4 PiB
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = d.Start(ctx)
	defer d.Shutdown(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--max-bytes") || !strings.Contains(err.Error(), cfg.Data) {
		t.Fatalf("start with a 4 PiB cap: %v; want an error naming --max-bytes and the directory", err)
	}
	// The value the error offers is one that starts.
	var fits int64
	if i := strings.LastIndex(err.Error(), "(--max-bytes "); i < 0 {
		t.Fatalf("the error offers no value that fits: %v", err)
	} else if _, serr := fmt.Sscanf(err.Error()[i:], "(--max-bytes %d fits)", &fits); serr != nil {
		t.Fatalf("the error's value: %v in %v", serr, err)
	}
	cfg.MaxBytes = fits
	startDaemon(t, cfg)
	t.Logf("4 PiB refused; %d bytes (%.1f GiB) fits and starts", fits, float64(fits)/(1<<30))
}

// --sync always reaches the embedded server (it syncs before it
// acknowledges), is said at start, and a value that is neither is refused.
func TestSyncAlwaysReachesTheEmbeddedServer(t *testing.T) {
	var logs lockedBuffer
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Sync = SyncAlways
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	d := startDaemon(t, cfg)
	if !d.bus.ns.JetStreamConfig().SyncAlways {
		t.Error("the embedded server does not sync always")
	}
	if !strings.Contains(logs.String(), "sync=always") {
		t.Errorf("start-up log does not say sync=always:\n%s", logs.String())
	}
	m := post(t, d, "r", "ann", "@Solo is this on disk?")
	eventually(t, 10*time.Second, "answered", func() bool { return len(repliesTo(messages(t, d, "r"), m.ID)) == 1 })

	bad := testConfig(t)
	bad.Sync = "sometimes"
	if _, err := New(bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "--sync") {
		t.Fatalf("New with sync %q: %v, want ErrInvalid naming --sync", bad.Sync, err)
	}
}
