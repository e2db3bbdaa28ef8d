package webui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

var assetRef = regexp.MustCompile(`"(/assets/[a-z]+\.[a-z]+)\?v=([0-9a-f]{16})"`)

func TestPage(t *testing.T) {
	srv := newServer(t)
	resp, body := get(t, srv.URL+"/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-cache",
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("GET / %s = %q, want %q", k, got, want)
		}
	}
	refs := assetRef.FindAllStringSubmatch(body, -1)
	if len(refs) != 3 {
		t.Fatalf("the page names %d hashed assets, want 3 (icon, style, script): %v", len(refs), refs)
	}
	// Every asset the page names is served, immutable under its hash.
	for _, ref := range refs {
		resp, _ := get(t, srv.URL+ref[1]+"?v="+ref[2], nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", ref[1], resp.StatusCode)
		}
		if got := resp.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s?v=HASH Cache-Control = %q", ref[1], got)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s has no CSP", ref[1])
		}
	}
}

func TestAssetTypesAndCaching(t *testing.T) {
	srv := newServer(t)
	for path, ct := range map[string]string{
		"/assets/app.js":    "text/javascript; charset=utf-8",
		"/assets/style.css": "text/css; charset=utf-8",
		"/assets/icon.svg":  "image/svg+xml",
	} {
		resp, _ := get(t, srv.URL+path, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), ct)
		}
		// Without the current hash (an old page, a hand-typed URL) the
		// answer must be revalidated, or a new release would be missed.
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s without a hash Cache-Control = %q, want no-cache", path, got)
		}
		resp, _ = get(t, srv.URL+path+"?v=0000000000000000", nil)
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s with a stale hash Cache-Control = %q, want no-cache", path, got)
		}
		// A browser's copy that is current gets a 304.
		etag := resp.Header.Get("ETag")
		resp, body := get(t, srv.URL+path, map[string]string{"If-None-Match": etag})
		if resp.StatusCode != http.StatusNotModified || body != "" {
			t.Errorf("GET %s If-None-Match %s = %d, want 304", path, etag, resp.StatusCode)
		}
	}
}

func TestNotFound(t *testing.T) {
	srv := newServer(t)
	for _, path := range []string{"/assets/", "/assets/nope.js", "/assets/../webui.go", "/static/app.js", "/other"} {
		resp, _ := get(t, srv.URL+path, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
	resp, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", resp.StatusCode)
	}
}

// TestHandlerAlone: the handler works mounted without Register too.
func TestHandlerAlone(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	resp, body := get(t, srv.URL+"/index.html", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>chatd</title>") {
		t.Errorf("GET /index.html = %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv.URL+"/nope", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", resp.StatusCode)
	}
}

// TestNoHTMLSinks: the page must put user text in with textContent only.
// The CSP's Trusted Types make the browser refuse these sinks anyway; this
// catches them before a browser does.
func TestNoHTMLSinks(t *testing.T) {
	js, err := staticFS.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	// Property and call forms only, so that the file's own comment saying
	// "no innerHTML" does not count.
	for _, sink := range []string{".innerHTML", ".outerHTML", ".insertAdjacentHTML(", "document.write(", "eval(", "new Function(", "setAttribute('on"} {
		if strings.Contains(string(js), sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
}
