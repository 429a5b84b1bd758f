package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	bctx := newBrowser(t, ctx, chromium, 1440, 1000, false)

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
	// The card follows the snapshot the next poll brings (answered 9 -> 10).
	handled := `[...document.querySelectorAll('#personas .card[data-persona="ada"] .stat')].some(s => s.textContent === "10answered")`
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

	saveScreenshot(t, bctx, "dashboard.png")

	// Close the browser before the server, so its streams end first.
	if err := chromedp.Cancel(bctx); err != nil {
		t.Logf("closing browser: %v", err)
	}
}

// newBrowser starts headless Chromium showing a viewport width x height
// (a phone's, touch and all, with mobile) and returns its tab's context,
// cancelled when the test ends.
func newBrowser(t *testing.T, ctx context.Context, chromium string, width, height int64, mobile bool) context.Context {
	t.Helper()
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
		chromedp.WindowSize(int(width), int(height)),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(width, height, opts...)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// saveScreenshot saves a full-page screenshot to testdata/artifacts/name
// and logs its path.
func saveScreenshot(t *testing.T, bctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join("testdata", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("dashboard screenshot: %s", abs)
	return abs
}

// TestDashboardLongRoomInBrowser opens a room of 5,000 messages on a
// phone's screen (390 px) and a desktop's (1440 px): the newest message is
// in sight at once, scrolling to the top pages older ones in without
// moving what is read, the chart opens with the daemon's samples, a
// message answered before a reload still shows its thought and decision
// after it, and the page never scrolls sideways. It saves a screenshot of
// each to testdata/artifacts/.
func TestDashboardLongRoomInBrowser(t *testing.T) {
	chromium := findChromium(t)
	for _, size := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{
		{"phone 390px", 390, 844, true},
		{"desktop 1440px", 1440, 900, false},
	} {
		t.Run(size.name, func(t *testing.T) {
			b := newMemBackend()
			b.replyAfter = 200 * time.Millisecond
			defer b.Close()
			const n = 5000
			for i := range n {
				m := chat.Message{Room: "lobby", Author: "margaret", Kind: chat.Human, Content: fmt.Sprintf("message %04d", i)}
				if i%7 == 3 {
					m.Author, m.Kind, m.Depth = "grace", chat.Persona, 1
				}
				b.store(m)
			}
			ts := httptest.NewServer(newTestHandler(b, HTTPOptions{RatePerSec: 50, RateBurst: 100}))
			defer ts.Close()
			defer ts.Client().CloseIdleConnections()

			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			bctx := newBrowser(t, ctx, chromium, size.width, size.height, size.mobile)
			poll := func(what, expr string) {
				t.Helper()
				if _, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
					got, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("messages").innerText.slice(-400)`))
					t.Fatalf("%s: %v; the room's end reads %q", what, err, got)
				}
			}
			// inSight is true when the newest message (not a draft) says want and
			// lies inside both the list's box and the window.
			inSight := func(want string) string {
				return `(() => {
					const ol = document.getElementById("messages");
					const all = ol.querySelectorAll(":scope > .msg:not(.draft)");
					const last = all[all.length - 1];
					if (!last || !last.textContent.includes(` + strconv.Quote(want) + `)) return false;
					const r = last.getBoundingClientRect(), o = ol.getBoundingClientRect();
					return r.top >= Math.max(o.top, 0) - 1 && r.bottom <= Math.min(o.bottom, innerHeight) + 1;
				})()`
			}
			if err := chromedp.Do(bctx,
				chromedp.Navigate(ts.URL+"/#token="+apiTestToken),
				chromedp.WaitVisible(chromedp.CSS(`#personas .card[data-persona="ada"]`)),
				chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
			); err != nil {
				t.Fatalf("load: %v", err)
			}
			poll("the newest message is in sight after open", inSight("message 4999"))
			poll("the chart opens with the samples of the last minutes", `Number(document.getElementById("chart").dataset.points) >= 120`)

			// Scrolled to the top, the page before the first comes in above it.
			firstTop := `document.querySelector('#messages .msg[data-id="m004901"]').getBoundingClientRect().top`
			top0, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`document.getElementById("messages").scrollTop = 0, `+firstTop))
			if err != nil {
				t.Fatal(err)
			}
			poll("scrolling to the top pages older messages in",
				`document.querySelectorAll("#messages .msg").length === 200 && document.querySelector("#messages .msg").textContent.includes("message 4800")`)
			if top1, err := chromedp.Run(bctx, chromedp.Evaluate[float64](firstTop)); err != nil || top1 < top0-2 || top1 > top0+2 {
				t.Errorf("the message read before the older page came in moved from %.0f to %.0f px (%v)", top0, top1, err)
			}

			// A message answered before a reload keeps its trail after it.
			text := "Trail check at " + size.name
			if err := chromedp.Do(bctx,
				chromedp.SendKeys(chromedp.CSS("#author"), "linus"),
				chromedp.SendKeys(chromedp.CSS("#content"), text+", @ada"),
				chromedp.Click(chromedp.CSS("#post-button")),
			); err != nil {
				t.Fatalf("post: %v", err)
			}
			poll("the reply is in sight", inSight("You said: "+text))
			trail := `(() => {
				const msg = [...document.querySelectorAll("#messages .msg.human")].find(e => e.textContent.includes(` + strconv.Quote(text) + `));
				if (!msg) return false;
				let notes = "";
				for (let e = msg.nextElementSibling; e && e.classList.contains("note"); e = e.nextElementSibling) notes += e.textContent + "|";
				return notes.includes("ada is thinking: respond") && notes.includes("decided: ada answers");
			})()`
			poll("the thought and decision follow the message", trail)
			if err := chromedp.Do(bctx,
				chromedp.Reload(),
				chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
			); err != nil {
				t.Fatalf("reload: %v", err)
			}
			poll("the reply is in sight after the reload", inSight("You said: "+text))
			poll("the thought and decision are shown again after the reload", trail)

			for _, c := range []struct{ name, expr, want string }{
				{"no sideways scroll", `document.documentElement.scrollWidth <= innerWidth ? "fits" : document.documentElement.scrollWidth + " > " + innerWidth`, "fits"},
				{"the newest page only after the reload", `document.querySelectorAll("#messages .msg").length + ""`, "100"},
				{"the cards say answered, not handled", `[...document.querySelectorAll('#personas .card[data-persona="ada"] .stat .k')].map(e => e.textContent).join(",")`,
					"inbox,in flight,answered,left to a peer,held back,declined,deferred,expired,failed"},
				{"one state word per card", `[...document.querySelectorAll("#personas .card")].map(c => c.querySelector(".mood").textContent + (c.textContent.includes("asleep") ? "+asleep" : "")).join(",")`, "active,idle"},
				{"each card says where its persona runs", `[...document.querySelectorAll("#personas .card .where")].map(e => e.textContent).join(" | ")`,
					"runs here (node-a) since 3 min ago | runs on node-b at 127.0.0.1:9 since 1 min ago: its counts are there"},
				{"every count says what it means", `[...document.querySelectorAll("#personas .stat")].every(s => s.title.length > 10) + ""`, "true"},
			} {
				got, err := chromedp.Run(bctx, chromedp.Evaluate[string](c.expr))
				if err != nil || got != c.want {
					t.Errorf("%s: got %q (%v), want %q", c.name, got, err, c.want)
				}
			}
			if size.mobile {
				// The composer is on screen without scrolling the page.
				got, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => { const r = document.getElementById("post-button").getBoundingClientRect(); return r.bottom <= innerHeight && r.right <= innerWidth; })()`))
				if err != nil || !got {
					t.Errorf("the post button is off screen at %d px (%v)", size.width, err)
				}
			}
			saveScreenshot(t, bctx, fmt.Sprintf("dashboard-%dpx.png", size.width))
			if err := chromedp.Cancel(bctx); err != nil {
				t.Logf("closing browser: %v", err)
			}
		})
	}
}

// TestDashboardScreenshotForDocs writes docs/dashboard.png from a real
// daemon with the built-in personas and scripted model, after a few
// messages and a minute of samples. It runs only when
// $PERSONA_DASHBOARD_PNG names the file to write:
//
//	PERSONA_DASHBOARD_PNG=$PWD/docs/dashboard.png go test -run TestDashboardScreenshotForDocs ./server
func TestDashboardScreenshotForDocs(t *testing.T) {
	// The dashboard of a real daemon with the built-in personas and the
	// demo responder shows their replies and the decision trail. With
	// PERSONA_DASHBOARD_PNG set it waits for a minute of chart samples and
	// writes the README's picture there (docs/dashboard.png); otherwise
	// the screenshot goes to testdata/artifacts.
	out := os.Getenv("PERSONA_DASHBOARD_PNG")
	samples := 12
	if out == "" {
		out, samples = filepath.Join("testdata", "artifacts", "dashboard-real.png"), 1
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	chromium := findChromium(t)
	t.Setenv("OPENAI_BASE_URL", "")
	t.Setenv("OPENAI_API_KEY", "")
	d := startDaemon(t, Config{
		Addr:   "127.0.0.1:0",
		Data:   t.TempDir(),
		Logger: testLogger(t),
		HTTP:   HTTPOptions{RatePerSec: 100, RateBurst: 200},
	})
	for _, m := range []struct{ author, content string }{
		{"alice", "@Teacher can you explain what a goroutine is?"},
		{"bob", "my go build fails with a nil map panic, any idea?"},
		{"carol", "@Planner we ship v0.3 on Friday: what should we cut to make it?"},
		{"alice", "@CodeReview is `counts := map[string]int{}` then `counts[k]++` in a loop fine?"},
	} {
		// Each waits for its answer, at a conversation's pace.
		asked := post(t, d, "general", m.author, m.content)
		eventually(t, time.Minute, "a reply to "+m.content, func() bool {
			return len(repliesTo(messages(t, d, "general"), asked.ID)) > 0
		})
	}
	eventually(t, 2*time.Minute, "the chart's samples", func() bool { return len(d.Samples("Teacher")) >= samples })

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	bctx := newBrowser(t, ctx, chromium, 1440, 900, false)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(d.URL()+"#token="+d.Token()),
		chromedp.WaitVisible(chromedp.CSS(`#personas .card[data-persona="Teacher"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#conn[data-state="live"]`)),
	); err != nil {
		t.Fatalf("load: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelectorAll("#messages .note-decision").length > 0`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the trail never showed: %v", err)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s", out)
	if err := chromedp.Cancel(bctx); err != nil {
		t.Logf("closing browser: %v", err)
	}
}
