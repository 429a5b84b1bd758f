package server

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/llm"
	"github.com/personaos/persona/state"
)

// crashChildEnv, when set to a data directory, makes the test binary run
// the daemon on it instead of the tests (see TestMain).
const crashChildEnv = "PERSONA_CRASH_CHILD_DATA"

// crashMaxBytesEnv carries -crash.max-bytes to the child (Config.MaxBytes).
const crashMaxBytesEnv = "PERSONA_CRASH_MAX_BYTES"

// crashChild is the daemon of the crash test: the built-in personas with a
// scripted model slow enough that a kill lands mid-work. It prints its
// address and token on one line and runs until SIGTERM.
func crashChild(dir string) int {
	maxBytes, _ := strconv.ParseInt(os.Getenv(crashMaxBytesEnv), 10, 64)
	fast := 20 * time.Millisecond
	d, err := New(Config{
		Addr:         "127.0.0.1:0",
		Data:         dir,
		Model:        llm.Scripted{Delay: 40 * time.Millisecond},
		BudgetPerSec: -1,
		ReplyBudget:  1000,
		MaxBytes:     maxBytes,
		CoordWindow:  500 * time.Millisecond,
		Persona: persona.Options{
			State: state.Config{CadenceIdle: fast, CadenceActive: fast, CadenceTired: fast, CadenceOverwhelmed: fast},
		},
		HTTP:   HTTPOptions{RatePerSec: 10000, RateBurst: 10000},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := d.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("READY %s %s\n", d.Addr(), d.Token())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is a daemon process of the crash test.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	token  string
	stderr *syncBuffer
	client *http.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashMaxBytesEnv+"="+strconv.FormatInt(*crashMaxBytes, 10))
	c := &child{t: t, cmd: cmd, stderr: &syncBuffer{}, client: &http.Client{Timeout: 10 * time.Second}}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() { // owned: ends when the child's stdout closes, which Wait below guarantees
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				ready <- sc.Text()
			}
		}
		close(ready)
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("daemon exited before it was ready:\n%s", c.stderr)
		}
		f := strings.Fields(line)
		c.base, c.token = "http://"+f[1], f[2]
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("daemon not ready after 60s:\n%s", c.stderr)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
		c.client.CloseIdleConnections()
	})
	return c
}

func (c *child) do(method, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// post returns the message's id if the daemon accepted it (201).
func (c *child) post(room, content string) (string, bool) {
	body, _ := json.Marshal(map[string]string{"author": "carol", "content": content})
	code, b, err := c.do("POST", "/api/rooms/"+room+"/messages", string(body))
	if err != nil || code != http.StatusCreated {
		return "", false
	}
	var m wireMessage
	if json.Unmarshal(b, &m) != nil || m.ID == "" {
		c.t.Errorf("201 without a message: %s", b)
		return "", false
	}
	return m.ID, true
}

// responses is how many replies this daemon process has posted
// (persona_chat_responses_total, summed over its labels).
func (c *child) responses() int {
	_, b, err := c.do("GET", "/metrics", "")
	if err != nil {
		return 0
	}
	n := 0.0
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "persona_chat_responses_total"); ok {
			f := strings.Fields(rest)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				n += v
			}
		}
	}
	return int(n)
}

// settled reports whether every persona's consumer has nothing pending or
// unacknowledged, and no inbox holds anything.
func (c *child) settled() bool {
	code, b, err := c.do("GET", "/api/personas", "")
	if err != nil || code != http.StatusOK {
		return false
	}
	var out struct {
		Personas []struct {
			Name     string
			Snapshot struct {
				Counts struct{ Queued, InFlight, Deferred int }
			}
			Backlog *Backlog
		}
	}
	if json.Unmarshal(b, &out) != nil || len(out.Personas) == 0 {
		return false
	}
	for _, p := range out.Personas {
		cn := p.Snapshot.Counts
		if p.Backlog == nil || p.Backlog.Pending > 0 || p.Backlog.Unacked > 0 || cn.Queued+cn.InFlight+cn.Deferred > 0 {
			return false
		}
	}
	return true
}

func (c *child) signal(sig os.Signal) error {
	if err := c.cmd.Process.Signal(sig); err != nil {
		return err
	}
	return c.cmd.Wait()
}

var crashRooms = []string{"alpha", "beta", "gamma"}

var crashTexts = []string{
	"@Helper how do I install the tools?",
	"can someone review this func: func f() { x, err := g(); return x }",
	"@Planner plan the next milestone for the project",
	"explain goroutines to a beginner please",
	"@Teacher what is a closure? an example would help",
	"@CodeReview is this ok: panic(err)",
	"we are stuck on the deadline, any ideas?",
	"thanks all",
}

// The crash test's load. CI runs it as below; the README's figure comes
// from a longer run of the same test:
//
//	go test -run TestCrashLosesNothing -count=1 -timeout 60m ./server -args -crash.kills=18 -crash.posters=8 -crash.life=3s -crash.posts=0 -crash.max-bytes=8589934592
var (
	crashKills   = flag.Int("crash.kills", 2, "SIGKILLs of the daemon in TestCrashLosesNothing, each under load")
	crashPosters = flag.Int("crash.posters", 2, "clients posting throughout TestCrashLosesNothing, each retrying on the next daemon, with its Idempotency-Key, a POST it got no answer to")
	crashLife    = flag.Duration("crash.life", 0, "least time each daemon of TestCrashLosesNothing runs under load before it is killed")
	crashPosts   = flag.Int("crash.posts", 100, "most POSTs a load client of TestCrashLosesNothing sends each daemon (0: no limit)")
	// The ledger buckets take an eighth of it each and drop their oldest
	// keys when full: a run of hundreds of thousands of messages needs
	// more than the default to keep every account the test checks.
	crashMaxBytes = flag.Int64("crash.max-bytes", 0, "the daemons' --max-bytes in TestCrashLosesNothing (0: the default)")
)

// loadClient posts to the crash test's daemons one message at a time, as a
// careful client does: a POST it got no answer to (the daemon died under
// it) is sent again, with the same Idempotency-Key, to the next daemon.
type loadClient struct {
	id, n   int
	pending string // the content of the POST not yet answered, if any
	// accepted maps the content of each answered POST to its message id;
	// replayed counts the answers that were a replay (200).
	accepted map[string]string
	replayed int
}

// run posts to c until stop is closed or c stops answering; with once, it
// only settles the pending POST.
func (lc *loadClient) run(c *child, stop <-chan struct{}, once bool) {
	for sent := 0; ; sent++ {
		if lc.pending == "" {
			if once || (*crashPosts > 0 && sent >= *crashPosts) {
				return
			}
			select {
			case <-stop:
				return
			default:
			}
			lc.n++
			lc.pending = fmt.Sprintf("load %d-%d: how do I keep a cache warm?", lc.id, lc.n)
		}
		body, _ := json.Marshal(map[string]string{"author": fmt.Sprintf("client%d", lc.id), "content": lc.pending})
		req, _ := http.NewRequest("POST", c.base+"/api/rooms/"+crashRooms[lc.id%len(crashRooms)]+"/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", lc.pending[len("load "):strings.IndexByte(lc.pending, ':')])
		resp, err := c.client.Do(req)
		if err != nil {
			return // the daemon is gone: the POST waits for the next one
		}
		var m wireMessage
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated, http.StatusOK:
			if m.ID == "" {
				c.t.Errorf("%d without a message", resp.StatusCode)
				return
			}
			if resp.StatusCode == http.StatusOK {
				lc.replayed++
			}
			lc.accepted[lc.pending] = m.ID
			lc.pending = ""
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			// Sent again at once: the daemon is starting or shedding.
		default:
			c.t.Errorf("POST answered %d", resp.StatusCode)
			return
		}
	}
}

// A daemon SIGKILLed under load, again and again, loses nothing it
// accepted and stores nothing twice: every message it answered 201 (or
// 200, to a retry) is in the stream once, every persona has a final
// account of every message, and none answered one twice.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemon processes")
	}
	dir := t.TempDir()
	var accepted []string
	clients := make([]*loadClient, *crashPosters)
	for i := range clients {
		clients[i] = &loadClient{id: i, accepted: map[string]string{}}
	}
	load := func(c *child, once bool) (stop func()) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		for _, lc := range clients {
			wg.Go(func() { lc.run(c, done, once) })
		}
		return func() { close(done); wg.Wait() }
	}

	for life := range *crashKills {
		c := startChild(t, dir)
		stop := load(c, false)
		// The script: an owed mention or a question per room, besides the
		// load, so that some of the work a kill lands on is a reply.
		n := 24
		if life > 0 {
			n = 6
		}
		for i := range n {
			if id, ok := c.post(crashRooms[i%3], crashTexts[(i+life)%len(crashTexts)]); ok {
				accepted = append(accepted, id)
			} else if life == 0 {
				t.Fatalf("post %d of %d refused by a healthy daemon", i, n)
			}
		}
		// Kill it mid-load: some replies are out, most of the work is not done.
		until := time.Now().Add(*crashLife)
		eventually(t, 20*time.Second+*crashLife, "replies before the kill", func() bool {
			return !time.Now().Before(until) && c.responses() >= 2
		})
		if life == 0 && c.settled() {
			t.Log("warning: the daemon finished everything before the kill")
		}
		if err := c.signal(syscall.SIGKILL); err == nil {
			t.Fatal("daemon survived SIGKILL?")
		}
		stop()
	}

	last := startChild(t, dir)
	load(last, true)() // every client's unanswered POST, answered now
	for i := range 6 {
		if id, ok := last.post(crashRooms[i%3], crashTexts[(i+3)%len(crashTexts)]); ok {
			accepted = append(accepted, id)
		}
	}
	loaded, replayed := map[string]string{}, 0
	for _, lc := range clients {
		maps.Copy(loaded, lc.accepted)
		replayed += lc.replayed
		if lc.pending != "" {
			t.Errorf("client %d's POST %q never answered", lc.id, lc.pending)
		}
	}
	for _, id := range loaded {
		accepted = append(accepted, id)
	}
	settle := 45*time.Second + time.Duration(len(accepted))*3*time.Millisecond
	deadline := time.Now().Add(settle)
	for !last.settled() {
		if time.Now().After(deadline) {
			_, b, _ := last.do("GET", "/api/personas", "")
			t.Fatalf("after %v not every message is accounted:\n%s\n%s", settle, b, last.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling a separate process: nothing to wait on
	}
	if err := last.signal(syscall.SIGTERM); err != nil {
		t.Fatalf("clean shutdown: %v\n%s", err, last.stderr)
	}
	if s := last.stderr.String(); strings.Contains(s, "level=ERROR") {
		t.Errorf("errors logged:\n%s", s)
	}

	all := verifyLedger(t, dir, accepted)
	stored := map[string]int{}
	for _, m := range all {
		if m.Kind == chat.Human && strings.HasPrefix(m.Content, "load ") {
			stored[m.Content]++
		}
	}
	for content, id := range loaded {
		if stored[content] != 1 {
			t.Errorf("%q (answered as %s) stored %d times", content, id, stored[content])
		}
	}
	t.Logf("%d SIGKILLs under load: %d messages accepted (%d by %d load clients, %d of them answered by a replay after a kill); %d load messages stored, %d stored twice",
		*crashKills, len(accepted), len(loaded), len(clients), replayed, len(stored), len(stored)-countOnce(stored))
}

// countOnce counts the keys of m whose count is 1.
func countOnce(m map[string]int) int {
	n := 0
	for _, v := range m {
		if v == 1 {
			n++
		}
	}
	return n
}

// verifyLedger opens the data directory of a stopped daemon and checks,
// from what JetStream stored: every accepted message is in the stream;
// every persona has a final account of every message; no persona answered a
// message twice; every reply was claimed in the replies bucket.
func verifyLedger(t *testing.T, dir string, accepted []string) []chat.Message {
	t.Helper()
	// A direct get or two per message and persona: a long run's are many.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+time.Duration(len(accepted))*2*time.Millisecond)
	defer cancel()
	b, err := openBus(ctx, busOptions{StoreDir: dir, Logger: slog.New(slog.DiscardHandler), MaxBytes: cmp.Or(*crashMaxBytes, DefaultMaxBytes)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()

	var all []chat.Message
	for seq := uint64(1); ; seq++ {
		raw, err := b.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := decodeWire(raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
	byID := map[string]chat.Message{}
	for _, m := range all {
		if _, dup := byID[m.ID]; dup {
			t.Errorf("message %s stored twice", m.ID)
		}
		byID[m.ID] = m
	}
	for _, id := range accepted {
		if _, ok := byID[id]; !ok {
			t.Errorf("accepted message %s is not in the stream", id)
		}
	}
	answered := map[string]int{}
	replies := 0
	for _, m := range all {
		if m.Kind == chat.Persona {
			replies++
			answered[m.Author+" -> "+m.ReplyTo]++
			if _, ok := byID[m.ReplyTo]; !ok {
				t.Errorf("reply %s answers unknown message %s", m.ID, m.ReplyTo)
			}
			if _, err := b.replies.Get(ctx, ledgerKey(m.Author, m.ReplyTo)); err != nil {
				t.Errorf("reply %s by %s has no claim: %v", m.ID, m.Author, err)
			}
		}
	}
	for pair, n := range answered {
		if n > 1 {
			t.Errorf("%s answered %d times", pair, n)
		}
	}
	accounts := map[string]int{}
	for _, m := range all {
		for _, p := range []string{"Helper", "CodeReview", "Teacher", "Planner"} {
			e, err := b.accounts.Get(ctx, ledgerKey(p, m.ID))
			if err != nil {
				t.Errorf("%s has no account of %s (%s by %s): %v", p, m.ID, m.Kind, m.Author, err)
				continue
			}
			var r Record
			_ = json.Unmarshal(e.Value(), &r)
			accounts[r.Account+"/"+r.Note]++
		}
	}
	t.Logf("%d messages (%d accepted from a human, %d persona replies); accounts: %v", len(all), len(accepted), replies, accounts)
	if replies == 0 {
		t.Error("no persona replied at all")
	}
	return all
}
