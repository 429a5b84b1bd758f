package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// persona is the daemon binary the tests run, built once by TestMain.
var persona string

// token is every test daemon's API token.
const token = "cluster-test-token"

// daemon is one `persona serve` process of a test, on its own data
// directory and port: killed with SIGKILL it is a crash, and started again
// on the same directory it is the same node.
type daemon struct {
	name string
	dir  string
	addr string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
	mu   *sync.Mutex
}

// startDaemon starts `persona serve` against the cluster's URLs with the
// extra flags, and waits until its API answers.
func startDaemon(t testing.TB, name, urls string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{name: name, dir: t.TempDir(), addr: freeAddr(t), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	d.args = append([]string{"serve", "--nats", urls, "--addr", d.addr, "--data", d.dir, "--token", token,
		"--node", name, "--rate", "100000", "--log-level", "debug"}, extra...)
	d.start(t)
	t.Cleanup(func() { d.kill() })
	return d
}

// start runs the process and waits for its API.
func (d *daemon) start(t testing.TB) {
	t.Helper()
	d.cmd = exec.Command(persona, d.args...)
	d.cmd.Env = cleanEnv()
	w := lockedWriter{d.mu, d.log}
	d.cmd.Stdout, d.cmd.Stderr = w, w
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(d.cmd, d.done)
	poll(t, 60*time.Second, "API of daemon "+d.name, func() bool {
		select {
		case <-d.done:
			t.Fatalf("daemon %s exited:\n%s", d.name, d.logs())
		default:
		}
		resp, err := http.Get("http://" + d.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d.cmd = nil
}

func (d *daemon) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// cleanEnv is the environment without model settings: the daemons answer
// with the built-in scripted model.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OPENAI_") || strings.HasPrefix(kv, "PERSONA_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// freeAddr is a free loopback address.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// client is the test's HTTP client: a POST that takes longer than this
// counts as unavailable.
var client = &http.Client{Timeout: 5 * time.Second}

// post posts a human message and returns its id, or an error for anything
// but 201.
func (d *daemon) post(room, author, content string) (string, error) {
	body, _ := json.Marshal(map[string]string{"author": author, "content": content})
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+"/api/rooms/"+room+"/messages", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST: %s", resp.Status)
	}
	var m struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return "", err
	}
	return m.ID, nil
}

// get returns the body of an API GET, for a failing test's log.
func (d *daemon) get(path string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.Status + " " + b.String()
}

// personaRuns is what /api/personas says of one persona.
type personaRuns struct {
	Name string `json:"name"`
	Here bool   `json:"here"`
	Runs *struct {
		Daemon string    `json:"daemon"`
		Since  time.Time `json:"since"`
	} `json:"runs"`
}

// personas reads /api/personas.
func (d *daemon) personas() ([]personaRuns, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.addr+"/api/personas", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Personas []personaRuns `json:"personas"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out.Personas, nil
}

// owners maps each persona to the daemon d says runs it ("" if none).
func (d *daemon) owners() map[string]string {
	ps, err := d.personas()
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, p := range ps {
		out[p.Name] = ""
		if p.Runs != nil {
			out[p.Name] = p.Runs.Daemon
		}
	}
	return out
}

// stored is a message as the room stream holds it.
type stored struct {
	ID      string   `json:"id"`
	Room    string   `json:"room"`
	Author  string   `json:"author"`
	Kind    string   `json:"kind"`
	Content string   `json:"content"`
	ReplyTo string   `json:"reply_to"`
	Covers  []string `json:"covers"`
	At      time.Time
}

// connectJS connects a JetStream client of the test's own to the cluster,
// with a context of 30 s for what it reads; done closes both.
func connectJS(t testing.TB, urls string) (jetstream.JetStream, context.Context, func()) {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	return js, ctx, func() { cancel(); nc.Close() }
}

// readRooms reads the whole room stream straight from the cluster.
func readRooms(t testing.TB, urls string) []stored {
	t.Helper()
	js, ctx, done := connectJS(t, urls)
	defer done()
	s, err := js.Stream(ctx, "PERSONA_ROOMS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // a gap: nothing is deleted in these tests, but be exact below
		}
		var m stored
		if err := json.Unmarshal(raw.Data, &m); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		m.At = raw.Time
		out = append(out, m)
	}
	return out
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "persona-cluster")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	persona = filepath.Join(dir, "persona")
	build := exec.Command("go", "build", "-o", persona, "github.com/personaos/persona/cmd/persona")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building persona:", err)
		os.Exit(1)
	}
	code := runWithLeakCheck(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// kvEntries reads keys of a bucket straight from the cluster, for a
// failing test's log: each key's value, or the error reading it.
func kvEntries(t testing.TB, urls, bucket string, keys ...string) map[string]string {
	out := map[string]string{}
	js, ctx, done := connectJS(t, urls)
	defer done()
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		out["bucket"] = err.Error()
		return out
	}
	for _, k := range keys {
		if e, err := kv.Get(ctx, k); err != nil {
			out[k] = err.Error()
		} else {
			out[k] = string(e.Value())
		}
	}
	return out
}

// slotHolders reads the responder slots of the replies bucket: for each
// message, the personas holding one of its slots.
func slotHolders(t testing.TB, urls string) map[string]map[string]bool {
	t.Helper()
	js, ctx, done := connectJS(t, urls)
	defer done()
	kv, err := js.KeyValue(ctx, "persona_replies")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeysFiltered(ctx, "slot.>")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for key := range keys.Keys() {
		parts := strings.Split(key, ".")
		if len(parts) != 3 {
			continue
		}
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue // released meanwhile
		}
		if out[parts[1]] == nil {
			out[parts[1]] = map[string]bool{}
		}
		out[parts[1]][string(e.Value())] = true
	}
	return out
}
