package server

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/personaos/persona/chat"
)

// findChromium returns the browser's path. Without one the test skips on a
// developer's machine and fails in CI, where .ci/run installs Debian's
// chromium: a dashboard nobody loads in a browser is not tested.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("chromium not found on PATH: install it (apt-get install chromium) to run the dashboard's browser test")
	}
	t.Fatal("chromium not found on PATH, and CI is set: the browser test must run in CI")
	return ""
}

// TestDashboardInBrowser loads the dashboard in headless Chromium with the
// token in the URL fragment, posts a message through the page, and waits for
// a persona's reply to appear from the live stream. It saves a full-page
// screenshot to testdata/artifacts/dashboard.png.
func TestDashboardInBrowser(t *testing.T) {
	chromium := findChromium(t)

	b := newMemBackend()
	b.replyAfter = 300 * time.Millisecond
	b.draftFor = 3 * time.Second
	defer b.Close()
	// A little history, so the page shows a conversation and not only the test's.
	first := b.store(chat.Message{Room: "lobby", Author: "margaret", Kind: chat.Human,
		Content: "Morning! @grace, can you look at the parser before lunch?"})
	b.store(chat.Message{Room: "lobby", Author: "grace", Kind: chat.Persona, ReplyTo: first.ID, Depth: 1,
		Content: "On it. The tokenizer drops the last line when the file has no trailing newline; I'll send a fix."})
	b.store(chat.Message{Room: "lobby", Author: "mallory", Kind: chat.Human,
		Content: `<img src=x onerror="document.title='pwned'"> is shown as text, not markup`})
	b.store(chat.Message{Room: "design", Author: "margaret", Kind: chat.Human, Content: "Notes for the review."})

	ts := httptest.NewServer(newTestHandler(b, HTTPOptions{RatePerSec: 50, RateBurst: 100}))
	defer ts.Close()
	defer ts.Client().CloseIdleConnections()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	const text = "Hello from the browser test"
	err := chromedp.Do(bctx,
		chromedp.Navigate(ts.URL+"/#token="+apiTestToken),
		chromedp.WaitVisible(chromedp.CSS(`#personas .card[data-persona="ada"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
		chromedp.SendKeys(chromedp.CSS("#author"), "linus"),
		chromedp.SendKeys(chromedp.CSS("#content"), text+", @ada!"),
		chromedp.Click(chromedp.CSS("#post-button")),
	)
	if err != nil {
		t.Fatalf("load and post: %v", err)
	}
	// The reply shows as a draft while it is written, then as the reply.
	draft := `[...document.querySelectorAll("#messages .msg.draft-writing")].some(e => e.querySelector(".kind").textContent === "writing…" && e.querySelector(".body").textContent.startsWith("Hello linus!"))`
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](draft, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the reply's draft never appeared: %v", err)
	}
	// The reply comes only through the live stream: the page never reloads.
	reply := `[...document.querySelectorAll("#messages .msg.persona .body")].some(e => e.textContent.includes("You said: ` + text + `"))`
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](reply, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("persona's reply never appeared: %v", err)
	}
	// The card follows the snapshot the next poll brings (handled 12 -> 13).
	handled := `[...document.querySelectorAll('#personas .card[data-persona="ada"] .stat')].some(s => s.textContent === "13handled")`
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](handled, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("persona card did not update: %v", err)
	}

	checks := []struct{ name, expr, want string }{
		{"the draft gave way to the reply", `document.querySelectorAll("#messages .msg.draft").length+""`, "0"},
		{"token left the address bar", `location.href.includes("token") ? "leaked" : "clean"`, "clean"},
		{"thermal state is shown", `document.getElementById("thermal").textContent`, "nominal"},
		{"author is remembered", `localStorage.getItem("persona.author")`, "linus"},
		{"both rooms are listed", `[...document.querySelectorAll("#room-list a")].map(a => a.textContent).join(",")`, "# design,# lobby"},
		{"the reply answers the post", `document.querySelector("#messages .msg.persona:last-of-type .replyto").textContent.startsWith("↪ replying to linus")+""`, "true"},
		{"message text is not markup", `document.querySelectorAll("#messages img").length + document.title`, "0persona"},
		{"chart has a legend per persona", `document.querySelectorAll("#legend .sw").length+""`, "2"},
	}
	for _, c := range checks {
		got, err := chromedp.Run(bctx, chromedp.Evaluate[string](c.expr))
		if err != nil || got != c.want {
			t.Errorf("%s: got %q (%v), want %q", c.name, got, err, c.want)
		}
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join("testdata", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dashboard.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("dashboard screenshot: %s", abs)

	// Close the browser before the server, so its streams end first.
	if err := chromedp.Cancel(bctx); err != nil {
		t.Logf("closing browser: %v", err)
	}
}
