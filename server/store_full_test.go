package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/personaos/persona/llm"
)

// A full store (JetStream's file store capped small, as a full disk would
// stop it): a POST is refused at once with a JSON 507 and stores nothing,
// /healthz says why, and once space is freed (the room stream purged) the
// daemon takes messages again without a restart. Every 201 names a
// message that can be read back.
func TestAFullStoreIsRefusedAtOnceAndRecovers(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.MaxBytes = -1
	cfg.hooks.maxStore = 256 << 10
	d := startDaemon(t, cfg)
	client := &http.Client{}
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, d.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+d.Token())
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, json.NewDecoder(res.Body).Decode(new(any)) == nil)
		return res.StatusCode, b.String()
	}
	post := func(i int) (int, string) { return postBig(t, d, client, i) }

	stored := fillStore(t, post)
	for _, id := range stored {
		if status, _ := do(http.MethodGet, "/api/rooms/r/messages/"+id, ""); status != http.StatusOK {
			t.Fatalf("a 201 for %s, but GET gives %d", id, status)
		}
	}
	status, _ := do(http.MethodGet, "/healthz", "")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("/healthz on a full store: %d, want 503", status)
	}
	if ok, reason := d.Health(context.Background()); ok || !strings.Contains(reason, "store refuses writes") {
		t.Fatalf("Health on a full store: %v %q", ok, reason)
	}

	// Space comes back: the room's messages go.
	if err := d.bus.stream.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	// /healthz sees it by its own probe, before any client writes.
	eventually(t, 30*time.Second, "/healthz ok again after space was freed", func() bool {
		s, _ := do(http.MethodGet, "/healthz", "")
		return s == http.StatusOK
	})
	eventually(t, 30*time.Second, "POSTs stored again after space was freed", func() bool {
		s, _ := post(-1)
		return s == http.StatusCreated
	})
	t.Logf("%d messages stored before the store filled", len(stored))
}

// postBig posts message i of 2 KB, and returns the status with the id
// (201) or the error.
func postBig(t *testing.T, d *Daemon, client *http.Client, i int) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.URL()+"/api/rooms/r/messages",
		strings.NewReader(fmt.Sprintf(`{"author":"ann","content":"%d %s"}`, i, strings.Repeat("x", 2000))))
	req.Header.Set("Authorization", "Bearer "+d.Token())
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("post %d: status %d without a JSON body: %v", i, res.StatusCode, err)
	}
	if res.StatusCode == http.StatusCreated {
		return res.StatusCode, body.ID
	}
	return res.StatusCode, body.Error
}

// fillStore posts until the store refuses with a 507, and returns the ids
// of the messages stored before.
func fillStore(t *testing.T, post func(i int) (int, string)) []string {
	t.Helper()
	var stored []string
	for i := range 1000 {
		start := time.Now()
		status, v := post(i)
		if status == http.StatusCreated {
			stored = append(stored, v)
			continue
		}
		t.Logf("post %d refused after %v", i, time.Since(start)) // a figure for the note, not a check
		if status != http.StatusInsufficientStorage || !strings.Contains(v, "not stored") {
			t.Fatalf("post %d on a filling store: %d %q, want 201 or 507", i, status, v)
		}
		return stored
	}
	t.Fatal("the store never filled")
	return nil
}

// A daemon stopped while its store is full (every account it still has to
// write fails) stops within its shutdown deadline, not after the ledger's
// retries of each account: what it could not write stays unacknowledged,
// for the next start.
func TestShutdownOnAFullStoreEndsAtItsDeadline(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	// A slow model: most messages are still being answered when the store
	// fills, and their replies and accounts then fail to be written.
	cfg.Model = llm.Scripted{Delay: 100 * time.Millisecond}
	cfg.MaxBytes = -1
	cfg.hooks.maxStore = 256 << 10
	d := startDaemon(t, cfg) // stopped below; the cleanup's second Shutdown is a no-op
	client := &http.Client{}
	fillStore(t, func(i int) (int, string) { return postBig(t, d, client, i) })
	const deadline = 3 * time.Second
	sctx, scancel := context.WithTimeout(context.Background(), deadline)
	defer scancel()
	start := time.Now()
	err := d.Shutdown(sctx)
	took := time.Since(start)
	// A bound on a hang, far above the deadline, not a measurement.
	if took > deadline+10*time.Second {
		t.Fatalf("shutdown on a full store took %v with a %v deadline (%v)", took, deadline, err)
	}
	t.Logf("shutdown on a full store took %v with a %v deadline: %v", took.Round(time.Millisecond), deadline, err)
}
