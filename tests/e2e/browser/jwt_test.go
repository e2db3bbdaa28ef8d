package browser

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestSignInWithToken: on a jwt-mode node the dev token endpoint answers
// 404; the page notices, asks for a token instead, and signs in with the
// pasted one.
func TestSignInWithToken(t *testing.T) {
	chromium, err := chromiumPath()
	if err != nil {
		t.Fatal(err)
	}
	url := startNode(t, "browser-jwt", map[string]string{"CHAT_AUTH_MODE": "jwt"})
	browser := startBrowser(t, chromium)
	carol := openUser(t, browser, "carol", url, desktop, t.TempDir())

	// The 404 that tells the mode, and the 401 of the forged token, are
	// logged by the browser.
	carol.ignoreConsole(true)
	carol.do("try a user id",
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(chromedp.ID("signin-user")),
		chromedp.SendKeys(chromedp.ID("signin-user"), "carol"),
		pressEnter(),
		chromedp.WaitVisible(chromedp.ID("signin-token")),
	)
	carol.do("paste a forged token",
		chromedp.SetValue(chromedp.ID("signin-token"), hs256(t, "carol", []byte("not-the-secret-0123456789abcdef0123"))),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("signin-error")),
	)
	if got := carol.eval(`document.getElementById('signin-error').textContent`); got != "The server refused this token." {
		t.Errorf("a forged token shows %q", got)
	}
	carol.ignoreConsole(false)
	carol.do("paste a good token",
		chromedp.SetValue(chromedp.ID("signin-token"), hs256(t, "carol", []byte(testSecret))),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#conn-status[data-state="open"]`)),
	)
	if got := carol.eval(`document.getElementById('me-name').textContent`); got != "carol" {
		t.Errorf("signed in as %q, want carol", got)
	}
	carol.checkConsole()
}

// hs256 makes the token an identity provider would issue.
func hs256(t *testing.T, sub string, secret []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, err := json.Marshal(map[string]any{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	signed := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}
