package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDevToken(t *testing.T) {
	h := newHarness(t, options{})
	var got map[string]string
	resp := h.do("POST", "/api/dev/token", "", `{"userId":"1001"}`, &got)
	if resp.StatusCode != http.StatusOK || got["userId"] != "1001" || got["token"] == "" {
		t.Fatalf("dev token = %d %v", resp.StatusCode, got)
	}
	if exp, err := time.Parse(time.RFC3339, got["expiresAt"]); err != nil || exp.Before(time.Now()) {
		t.Fatalf("expiresAt = %q, %v", got["expiresAt"], err)
	}
	// The token works on the API.
	req, _ := http.NewRequest("GET", h.url+"/api/conversations", nil)
	req.Header.Set("Authorization", "Bearer "+got["token"])
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("using the dev token: %v, %v", r, err)
	}
	h.wantError("POST", "/api/dev/token", "", `{"userId":"no spaces"}`, 400, "bad_request")
	h.wantError("POST", "/api/dev/token", "", `{}`, 400, "bad_request")
	h.wantError("POST", "/api/dev/token", "", `{"userId":`, 400, "bad_request")

	jwt := newHarness(t, options{jwtMode: true})
	jwt.wantError("POST", "/api/dev/token", "", `{"userId":"1001"}`, 404, "not_found")
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	h := newHarness(t, options{})
	if resp := h.do("GET", "/healthz", "", "", nil); resp.StatusCode != 200 {
		t.Fatalf("healthz = %d", resp.StatusCode)
	}
	if resp := h.do("GET", "/readyz", "", "", nil); resp.StatusCode != 200 {
		t.Fatalf("readyz = %d", resp.StatusCode)
	}
	h.send("alice", "m1", "bob", "counted")
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(text, []byte(`chat_sends_total{outcome="ok",transport="http"} 1`)) {
		t.Fatalf("metrics = %d\n%s", resp.StatusCode, text)
	}

	_ = h.api.Stop(context.Background())
	h.wantError("GET", "/readyz", "", "", 503, "unavailable")
	if resp := h.do("GET", "/healthz", "", "", nil); resp.StatusCode != 200 {
		t.Fatalf("healthz while draining = %d", resp.StatusCode)
	}

	down := newHarness(t, options{checks: []Check{{"broker", pinger{errors.New("connection refused")}}}})
	var e apiError
	if resp := down.do("GET", "/readyz", "", "", &e); resp.StatusCode != 503 || !strings.Contains(e.Message, "broker") {
		t.Fatalf("readyz with the broker down = %d %+v", resp.StatusCode, e)
	}
}

func TestStatusOfEveryCode(t *testing.T) {
	for code, status := range map[string]int{
		"bad_request": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404,
		"too_large": 413, "rate_limited": 429, "unavailable": 503, "internal": 500,
	} {
		if got := statusOf(code); got != status {
			t.Errorf("statusOf(%s) = %d, want %d", code, got, status)
		}
	}
}
