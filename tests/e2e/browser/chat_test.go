package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// stepTimeout bounds one step of a user; the whole test takes ~10 s when
// things work.
const stepTimeout = 15 * time.Second

// Viewports: a desktop and a phone (CSS pixels of an iPhone 12-14).
var (
	desktop = viewport{name: "desktop", width: 1280, height: 800}
	phone   = viewport{name: "phone", width: 390, height: 844, mobile: true}
)

type viewport struct {
	name          string
	width, height int64
	mobile        bool
}

// TestChatInBrowser: two people, each in their own browser context (no
// shared storage), on the node URL of their own, sign in, start a
// conversation, exchange messages live, see each other's read marks, and
// one of them reloads and finds the history, paging back to the first
// message by scrolling up. Then a third person joins them in a group
// (chatInAGroup).
func TestChatInBrowser(t *testing.T) {
	chromium, err := chromiumPath()
	if err != nil {
		t.Fatal(err) // never a skip: `make test` installs chromium first
	}
	urlA, urlB := nodeURLs(t)
	artifacts := filepath.Join(repoRoot(t), "tests", "e2e", "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	// Bob's connection goes through a relay the test can cut.
	bobNet := startProxy(t, urlB)

	browser := startBrowser(t, chromium)
	alice := openUser(t, browser, "alice", urlA, desktop, artifacts)
	bob := openUser(t, browser, "bob", bobNet.URL(), phone, artifacts)

	alice.signIn()
	bob.signIn()

	// Both pages outlive their first tokens: each renews its dev token
	// halfway to exp and hands it to its live session, which the server
	// would otherwise close with 4001 (and the page sign out) at exp.
	time.Sleep(devTokenTTL + 2*time.Second)

	// Alice starts the conversation. The body holds markup, which must
	// show as text.
	hello := `Hello Bob! <b>not bold</b> <img src=x onerror="alert(1)">`
	alice.do("start a conversation with bob",
		chromedp.SendKeys(chromedp.ID("new-conv-user"), "bob"),
		pressEnter(),
		chromedp.WaitVisible(chromedp.ID("composer-input")),
	)
	alice.send(hello)
	alice.do("see her message acked", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="1"]`)))

	// Bob sees it in his list, unread, and opens it.
	bob.do("see the unread badge", chromedp.WaitVisible(chromedp.CSS(`button.conv[data-peer="alice"] .badge[data-unread="1"]`)))
	bob.screenshot("list")
	bob.do("open the conversation",
		chromedp.Click(chromedp.CSS(`button.conv[data-peer="alice"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li.msg.theirs[data-seq="1"]`)),
	)
	if got := bob.eval(`document.querySelector('li.msg[data-seq="1"] .bubble').textContent`); got != hello {
		t.Errorf("bob sees the body %q, want %q", got, hello)
	}
	if n := bob.eval(`String(document.querySelectorAll('#message-list b, #message-list img').length)`); n != "0" {
		t.Errorf("a message body was rendered as markup: %s elements", n)
	}

	// Bob has it open and visible, so alice's message turns read.
	alice.do("see her message read", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="1"][data-status="read"]`)))

	// Bob answers; alice has the conversation open, so it is read at once.
	reply := "Hi Alice 👋 — got it.\nSecond line."
	bob.send(reply)
	alice.do("receive bob's reply live", chromedp.WaitVisible(chromedp.CSS(`li.msg.theirs[data-seq="2"]`)))
	if got := alice.eval(`document.querySelector('li.msg[data-seq="2"] .bubble').textContent`); got != reply {
		t.Errorf("alice sees the reply %q, want %q", got, reply)
	}
	bob.do("see his reply read", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="2"][data-status="read"]`)))
	alice.send("Great, see you at 10 in the usual room?")
	bob.do("receive it", chromedp.WaitVisible(chromedp.CSS(`li.msg.theirs[data-seq="3"]`)))
	alice.do("see it read", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="3"][data-status="read"]`)))

	// Bob's network drops. Alice writes meanwhile, and so does Bob: his
	// message waits, unacked, and is sent when the page has reconnected
	// (with back-off) and caught up with sync.
	bob.ignoreConsole(true) // failed connection attempts are logged as errors
	bobNet.Down()
	bob.do("notice the connection is gone", chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="waiting"]`)))
	alice.send("Are you still there?")
	alice.do("see it acked", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="4"]`)))
	bob.send("Sorry, my train went into a tunnel.")
	bob.do("see it waiting", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-status="sending"]`)))
	bob.screenshot("offline")
	time.Sleep(time.Second) // a reconnect attempt or two fail first
	bobNet.Up()
	bob.do("reconnect", chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="open"]`)))
	bob.do("catch up with the missed message", chromedp.WaitVisible(chromedp.CSS(`li.msg.theirs[data-seq="4"]`)))
	bob.do("get the resent message acked", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="5"]`)))
	alice.do("receive the resent message", chromedp.WaitVisible(chromedp.CSS(`li.msg.theirs[data-seq="5"]`)))
	if n := alice.eval(`String(document.querySelectorAll('li.msg.theirs').length)`); n != "2" {
		t.Errorf("alice sees %s messages from bob, want 2 (a resend must not make a second message)", n)
	}
	bob.do("see it read", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="5"][data-status="read"]`)))
	bob.ignoreConsole(false)
	alice.screenshot("chat")

	// A body over the limit is refused with a message to the person.
	bob.do("try a message that is too long",
		chromedp.SetValue(chromedp.ID("composer-input"), strings.Repeat("x", 4097)),
		chromedp.Click(chromedp.ID("composer-send")),
		chromedp.WaitVisible(chromedp.ID("pane-error")),
	)
	if got := bob.eval(`document.getElementById('pane-error').textContent`); !strings.Contains(got, "too long") {
		t.Errorf("the too-long error reads %q", got)
	}
	bob.eval(`(() => { const t = document.getElementById('composer-input'); t.value = '';
		t.dispatchEvent(new Event('input')); return ''; })()`)

	// More history than one page, sent from alice's other "device" (the
	// REST API): both pages get them live, alice's as her own messages.
	const extra = 40
	alice.sendREST(t, "bob", extra)
	last := 5 + extra
	alice.do("receive her own REST messages", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`li.msg.own[data-seq="%d"]`, last))))
	bob.do("receive the REST messages", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`li.msg.theirs[data-seq="%d"]`, last))))
	alice.do("see them read", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`li.msg.own[data-seq="%d"][data-status="read"]`, last))))

	alice.screenshot("conversation")
	bob.screenshot("conversation")

	// Bob reloads: still signed in (session storage), the conversation
	// opens again from the URL, with the latest page of history only.
	bob.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`li.msg[data-seq="%d"]`, last))))
	if n := bob.eval(`String(document.querySelectorAll('li.msg[data-seq="1"]').length)`); n != "0" {
		t.Errorf("after the reload the first message is there before any scrolling; want it on an older page")
	}
	// Scrolling up pages back to the first message.
	bob.do("scroll up to the first message",
		void(chromedp.Poll[bool](`(() => { const b = document.getElementById('messages'); b.scrollTop = 0;
			b.dispatchEvent(new Event('scroll')); return !!document.querySelector('li.msg[data-seq="1"]'); })()`,
			chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout))),
		chromedp.WaitVisible(chromedp.ID("history-start")),
	)
	if got := bob.eval(`document.querySelector('li.msg[data-seq="1"] .bubble').textContent`); got != hello {
		t.Errorf("after the reload bob's first message reads %q, want %q", got, hello)
	}
	if got := bob.eval(`String(document.querySelectorAll('#message-list li.msg').length)`); got != fmt.Sprint(last) {
		t.Errorf("after paging back bob sees %s messages, want %d", got, last)
	}
	bob.do("his own message keeps its read mark", chromedp.WaitVisible(chromedp.CSS(`li.msg.own[data-seq="2"][data-status="read"]`)))
	bob.screenshot("history")

	// On the phone, Back shows the list again, now with nothing unread.
	bob.do("go back to the list",
		chromedp.Click(chromedp.ID("back")),
		chromedp.WaitVisible(chromedp.CSS(`button.conv[data-peer="alice"]`)),
	)
	if n := bob.eval(`String(document.querySelectorAll('.badge').length)`); n != "0" {
		t.Errorf("bob's list still shows %s unread badges", n)
	}

	// Groups, edits and recalls (v1.3), with a third person on alice's node.
	carol := openUser(t, browser, "carol", urlA, desktop, artifacts)
	carol.signIn()
	chatInAGroup(t, alice, bob, carol)
	carol.checkConsole()

	// The dark scheme, for a look at its contrast.
	alice.do("switch to the dark scheme", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	alice.screenshot("dark")

	alice.checkConsole()
	bob.checkConsole()
}

// startBrowser starts headless Chromium with a fresh profile, as root
// allows it (no sandbox), with every background download turned off.
func startBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		// Both users' tabs must count as visible: the page only marks as
		// read what the person can see.
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// The first Do starts the browser; it must not carry a timeout, or the
	// timeout would end the browser.
	if err := chromedp.Do(ctx); err != nil {
		cancelAlloc()
		t.Fatalf("starting chromium %s: %v", chromium, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// user is one person's tab, in a browser context of its own.
type user struct {
	t         *testing.T
	name      string
	url       string
	vp        viewport
	ctx       context.Context
	artifacts string

	mu      sync.Mutex
	console []string // errors and exceptions the page logged
	ignore  bool     // while true, console errors are expected
}

func (u *user) ignoreConsole(on bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ignore = on
}

func openUser(t *testing.T, browser context.Context, name, url string, vp viewport, artifacts string) *user {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	u := &user{t: t, name: name, url: url, vp: vp, ctx: ctx, artifacts: artifacts}
	var opts []chromedp.EmulateViewportOption
	if vp.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	// The first action creates the tab, without a timeout (see startBrowser).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.width, vp.height, opts...)); err != nil {
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				u.mu.Lock()
				if !u.ignore {
					u.console = append(u.console, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
				}
				u.mu.Unlock()
			}
		}
	}()
	return u
}

// do runs steps with a timeout; on failure it saves a screenshot and
// fails the test.
func (u *user) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		u.screenshot("failed")
		u.t.Fatalf("%s: %s: %v", u.name, what, err)
	}
}

func (u *user) eval(expr string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		u.t.Fatalf("%s: evaluating %s: %v", u.name, expr, err)
	}
	return v
}

func (u *user) signIn() {
	u.t.Helper()
	u.do("sign in",
		chromedp.Navigate(u.url+"/"),
		chromedp.WaitVisible(chromedp.ID("signin-user")),
		chromedp.SendKeys(chromedp.ID("signin-user"), u.name),
		pressEnter(),
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="open"]`)),
	)
	if got := u.eval(`document.getElementById('me-name').textContent`); got != u.name {
		u.t.Fatalf("%s is signed in as %q", u.name, got)
	}
}

// send types body into the message box and presses Enter, as a person does.
func (u *user) send(body string) {
	u.t.Helper()
	lines := strings.Split(body, "\n")
	steps := []chromedp.Action[chromedp.Void]{chromedp.Focus(chromedp.ID("composer-input"))}
	for i, line := range lines {
		if i > 0 {
			// Shift+Enter starts a new line; a plain Enter would send.
			steps = append(steps, chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierShift)))
		}
		steps = append(steps, chromedp.SendKeys(chromedp.ID("composer-input"), line))
	}
	steps = append(steps, pressEnter())
	u.do("send a message", steps...)
}

// sendREST sends n messages as this user through POST /api/messages, with
// a token of its own: another device of the same person.
func (u *user) sendREST(t *testing.T, to string, n int) {
	t.Helper()
	var tok struct{ Token string }
	postJSON(t, u.url+"/api/dev/token", "", map[string]string{"userId": u.name}, http.StatusOK, &tok)
	for i := range n {
		body := map[string]string{"id": fmt.Sprintf("rest-%d", i), "to": to, "body": fmt.Sprintf("Message %d of the long history", i+1)}
		postJSON(t, u.url+"/api/messages", tok.Token, body, http.StatusCreated, nil)
	}
}

func postJSON(t *testing.T, url, token string, body any, want int, out any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		t.Fatalf("POST %s: %d %s, want %d", url, resp.StatusCode, b.String(), want)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: decoding: %v", url, err)
		}
	}
}

// screenshot saves the viewport as tests/e2e/artifacts/<user>-<viewport>-<what>.png.
func (u *user) screenshot(what string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		u.t.Errorf("%s: screenshot %s: %v", u.name, what, err)
		return
	}
	path := filepath.Join(u.artifacts, fmt.Sprintf("%s-%s-%s.png", u.name, u.vp.name, what))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		u.t.Errorf("writing %s: %v", path, err)
		return
	}
	u.t.Logf("screenshot: %s", path)
}

// checkConsole fails the test for any error the page logged: a CSP or
// Trusted Types violation, an uncaught exception, a failed request.
func (u *user) checkConsole() {
	u.t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, line := range u.console {
		u.t.Errorf("%s's page logged an error: %s", u.name, line)
	}
}

// void turns an action with a value into a step of do.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := a(ctx, t)
		return err
	})
}

// pressEnter presses Enter in the focused element as a keyboard does: one
// keyDown carrying the text, so that a page calling preventDefault on it
// gets no newline. (SendKeys sends the character as a separate event,
// which preventDefault cannot stop, leaving a stray newline in the box.)
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
			ev := input.DispatchKeyEventParams{Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13}
			if typ == input.DispatchKeyEventTypeKeyDown {
				ev.Text = "\r"
			}
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, ev); err != nil {
				return err
			}
		}
		return nil
	})
}
