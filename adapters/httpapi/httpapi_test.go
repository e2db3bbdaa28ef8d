package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/embedded"
)

var testSecret = []byte("httpapi-test-secret-of-at-least-32")

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

type harness struct {
	t      *testing.T
	app    *application.Application
	api    *API
	url    string
	issuer *auth.Issuer
}

type options struct {
	jwtMode bool
	appCfg  application.Config
	cfg     Config
	checks  []Check
}

// newHarness serves the API over the application built on the in-memory
// adapters, as the embedded default wires it.
func newHarness(t *testing.T, o options) *harness {
	t.Helper()
	n := embedded.New(t, o.appCfg, testSecret)
	app, issuer := n.App, n.Issuer
	deps := Deps{App: app, Verifier: n.Verifier, Issuer: issuer, Gatherer: n.Registry, Metrics: n.Metrics,
		Checks: append([]Check{{"store", n.Store}, {"broker", n.Bus}}, o.checks...)}
	if o.jwtMode {
		deps.Issuer = nil
	}
	api, err := New(o.cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &harness{t: t, app: app, api: api, url: hs.URL, issuer: issuer}
}

func (h *harness) token(u string) string {
	h.t.Helper()
	tok, _, err := h.issuer.Issue(user.ID(u))
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// do sends a request as u ("" for none) and decodes the JSON answer into out.
func (h *harness) do(method, path, u, body string, out any) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if u != "" {
		req.Header.Set("Authorization", "Bearer "+h.token(u))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %d %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp
}

type apiError struct{ Code, Message string }

// wantError checks an error answer's status and code.
func (h *harness) wantError(method, path, u, body string, status int, code string) {
	h.t.Helper()
	var e apiError
	resp := h.do(method, path, u, body, &e)
	if resp.StatusCode != status || e.Code != code || e.Message == "" {
		h.t.Fatalf("%s %s %s = %d %+v; want %d %s", method, path, body, resp.StatusCode, e, status, code)
	}
}

type ack struct {
	ID, MessageID, Conversation, SentAt string
	Seq                                 uint64
}

func (h *harness) send(from, id, to, body string) ack {
	h.t.Helper()
	var a ack
	payload, _ := json.Marshal(map[string]string{"id": id, "to": to, "body": body})
	if resp := h.do("POST", "/api/messages", from, string(payload), &a); resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("send = %d %+v", resp.StatusCode, a)
	}
	return a
}

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

func TestSendMessage(t *testing.T) {
	h := newHarness(t, options{cfg: Config{MaxBodyBytes: 1024}})
	first := h.send("alice", "k-1", "bob", "hello")
	if first.ID != "k-1" || first.Seq != 1 || first.MessageID == "" || first.Conversation == "" {
		t.Fatalf("ack = %+v", first)
	}
	if _, err := time.Parse(time.RFC3339Nano, first.SentAt); err != nil {
		t.Fatal(err)
	}
	if again := h.send("alice", "k-1", "bob", "hello"); again != first {
		t.Fatalf("resend ack = %+v, first %+v", again, first)
	}
	tests := []struct {
		name, user, body string
		status           int
		code             string
	}{
		{"no token", "", `{"id":"a","to":"bob","body":"x"}`, 401, "unauthorized"},
		{"missing id", "alice", `{"to":"bob","body":"x"}`, 400, "bad_request"},
		{"empty id", "alice", `{"id":"","to":"bob","body":"x"}`, 400, "bad_request"},
		{"missing to", "alice", `{"id":"a","body":"x"}`, 400, "bad_request"},
		{"missing body", "alice", `{"id":"a","to":"bob"}`, 400, "bad_request"},
		{"empty body", "alice", `{"id":"a","to":"bob","body":""}`, 400, "bad_request"},
		{"bad to", "alice", `{"id":"a","to":"b b","body":"x"}`, 400, "bad_request"},
		{"to oneself", "alice", `{"id":"a","to":"alice","body":"x"}`, 400, "bad_request"},
		{"wrong type", "alice", `{"id":"a","to":"bob","body":1}`, 400, "bad_request"},
		{"not json", "alice", `hello`, 400, "bad_request"},
		{"invalid utf-8", "alice", "{\"id\":\"a\",\"to\":\"bob\",\"body\":\"\xff\"}", 400, "bad_request"},
		{"a lone high surrogate", "alice", `{"id":"a","to":"bob","body":"\ud800"}`, 400, "bad_request"},
		{"a lone low surrogate", "alice", `{"id":"a","to":"bob","body":"x\udc00"}`, 400, "bad_request"},
		{"a surrogate pair reversed", "alice", `{"id":"a","to":"bob","body":"\ude00\ud83d"}`, 400, "bad_request"},
		{"too large", "alice", `{"id":"a","to":"bob","body":"` + strings.Repeat("x", 2000) + `"}`, 413, "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.wantError("POST", "/api/messages", tt.user, tt.body, tt.status, tt.code)
		})
	}
}

// TestEscapedSurrogates: a body is stored as the client wrote it; an escaped
// surrogate pair is one character, and a lone surrogate, which decoding
// would have rewritten to U+FFFD, is refused in every JSON body.
func TestEscapedSurrogates(t *testing.T) {
	h := newHarness(t, options{})
	var a ack
	if resp := h.do("POST", "/api/messages", "alice", `{"id":"k","to":"bob","body":"smile \ud83d\ude00"}`, &a); resp.StatusCode != http.StatusCreated {
		t.Fatalf("send with an escaped pair = %d %+v", resp.StatusCode, a)
	}
	var p struct{ Messages []struct{ Body string } }
	h.do("GET", "/api/conversations/"+a.Conversation+"/messages", "bob", "", &p)
	if len(p.Messages) != 1 || p.Messages[0].Body != "smile \U0001F600" {
		t.Fatalf("stored %+v, want the body as sent", p.Messages)
	}
	// Any JSON body: the token request's too, refused before its user id is read.
	var e apiError
	resp := h.do("POST", "/api/dev/token", "", `{"userId":"\udbff"}`, &e)
	if resp.StatusCode != http.StatusBadRequest || e.Code != "bad_request" || !strings.Contains(e.Message, "surrogate") {
		t.Fatalf("dev token for a lone surrogate = %d %+v", resp.StatusCode, e)
	}
}

func TestSendRateLimited(t *testing.T) {
	cfg := application.DefaultConfig()
	cfg.SendRate, cfg.SendBurst = 0.001, 1
	h := newHarness(t, options{appCfg: cfg})
	h.send("alice", "a1", "bob", "one")
	var e apiError
	resp := h.do("POST", "/api/messages", "alice", `{"id":"a2","to":"bob","body":"two"}`, &e)
	if resp.StatusCode != http.StatusTooManyRequests || e.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second send = %d %+v", resp.StatusCode, e)
	}
}

// session stands for a connected client of bob's, so that delivered
// markers move: with a delivery, it reports each message written right
// away, from a goroutine as a transport's writer would.
type session struct {
	lastSeq  atomic.Uint64
	delivery *application.Delivery
}

func (s *session) ID() string    { return "bob-1" }
func (s *session) User() user.ID { return "bob" }
func (s *session) PushMessage(m ports.MessageView) bool {
	s.lastSeq.Store(m.Seq)
	if s.delivery != nil {
		go s.delivery.Written(s, m.Conversation, m.To, m.Seq)
	}
	return true
}
func (s *session) PushReceipt(ports.Receipt) bool { return true }

func TestConversationsAndHistory(t *testing.T) {
	h := newHarness(t, options{})
	bob := &session{delivery: h.app.Delivery}
	unregister := h.app.Sessions.Register(bob)
	var conv string
	for i, body := range []string{"one", "two", "three", "four"} {
		conv = h.send("alice", "k"+string(rune('1'+i)), "bob", body).Conversation
	}
	waitFor(t, "delivery to bob", func() bool { return bob.lastSeq.Load() == 4 })
	unregister()
	h.send("alice", "k5", "bob", "five") // bob is offline: stays sent
	if err := h.app.MarkRead.Handle(context.Background(), application.MarkReadCommand{Reader: "bob", Conversation: conversation.ID(conv), UpTo: 2}); err != nil {
		t.Fatal(err)
	}

	var list []map[string]any
	waitFor(t, "the projection", func() bool {
		list = nil
		h.do("GET", "/api/conversations", "bob", "", &list)
		return len(list) == 1 && list[0]["lastSeq"] == 5.0 && list[0]["readUpTo"] == 2.0 && list[0]["deliveredUpTo"] == 4.0
	})
	row := list[0]
	if len(row) != 7 || row["conversation"] != conv || row["peer"] != "alice" || row["unread"] != 3.0 {
		t.Fatalf("row = %v", row)
	}
	if last := row["lastMessage"].(map[string]any); last["body"] != "five" || last["seq"] != 5.0 {
		t.Fatalf("lastMessage = %v", last)
	}
	var empty []map[string]any
	if resp := h.do("GET", "/api/conversations", "carol", "", &empty); resp.StatusCode != 200 || empty == nil || len(empty) != 0 {
		t.Fatalf("carol's list = %d %v", resp.StatusCode, empty)
	}

	type page struct {
		Messages []map[string]any
		More     bool
	}
	var p page
	h.do("GET", "/api/conversations/"+conv+"/messages", "alice", "", &p)
	want := []string{"read", "read", "delivered", "delivered", "sent"}
	if len(p.Messages) != 5 || p.More {
		t.Fatalf("page = %+v", p)
	}
	for i, m := range p.Messages {
		if m["seq"] != float64(i+1) || m["status"] != want[i] || m["from"] != "alice" || m["to"] != "bob" {
			t.Fatalf("message %d = %v, want status %s", i, m, want[i])
		}
	}
	for query, seqs := range map[string][]float64{
		"?after=1&limit=2":  {2, 3},
		"?before=5&limit=2": {3, 4},
		"?limit=2":          {4, 5},
	} {
		p = page{}
		h.do("GET", "/api/conversations/"+conv+"/messages"+query, "bob", "", &p)
		if len(p.Messages) != 2 || p.Messages[0]["seq"] != seqs[0] || p.Messages[1]["seq"] != seqs[1] || !p.More {
			t.Fatalf("%s = %+v", query, p)
		}
	}
	// A stranger learns nothing: the answer is that of an unknown conversation.
	var stranger, unknown apiError
	strangerResp := h.do("GET", "/api/conversations/"+conv+"/messages", "carol", "", &stranger)
	unknownResp := h.do("GET", "/api/conversations/c_AAAAAAAAAAAAAAAAAAAAAA/messages", "bob", "", &unknown)
	if strangerResp.StatusCode != 404 || unknownResp.StatusCode != 404 || stranger != unknown || unknown.Code != "not_found" {
		t.Fatalf("a stranger's history %d %+v, an unknown one %d %+v; want both 404 not_found alike",
			strangerResp.StatusCode, stranger, unknownResp.StatusCode, unknown)
	}
	h.wantError("GET", "/api/conversations/nope/messages", "bob", "", 404, "not_found")
	h.wantError("GET", "/api/conversations/"+conv+"/messages?after=-1", "bob", "", 400, "bad_request")
	h.wantError("GET", "/api/conversations/"+conv+"/messages?limit=x", "bob", "", 400, "bad_request")
	h.wantError("GET", "/api/conversations/"+conv+"/messages", "", "", 401, "unauthorized")
	h.wantError("GET", "/api/conversations", "", "", 401, "unauthorized")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHistoryIntegerBounds: after, before and limit take 0 to 2^53-1; a
// larger value is a 400, never wrapped around to page from seq 1.
func TestHistoryIntegerBounds(t *testing.T) {
	h := newHarness(t, options{})
	conv := h.send("alice", "k1", "bob", "one").Conversation
	h.send("alice", "k2", "bob", "two")
	values := []struct {
		name, text string
		ok         bool
	}{
		{"zero", "0", true},
		{"2^53-1", "9007199254740991", true},
		{"2^53", "9007199254740992", false},
		{"2^64-1", "18446744073709551615", false},
		{"2^64", "18446744073709551616", false},
		{"negative", "-1", false},
		{"fraction", "1.5", false},
		{"exponent", "1e3", false},
		{"signed", "%2B1", false},
		{"not a number", "x", false},
	}
	for _, param := range []string{"after", "before", "limit"} {
		for _, v := range values {
			t.Run(param+" "+v.name, func(t *testing.T) {
				h := &harness{t: t, app: h.app, api: h.api, url: h.url, issuer: h.issuer}
				path := "/api/conversations/" + conv + "/messages?" + param + "=" + v.text
				if !v.ok {
					h.wantError("GET", path, "bob", "", 400, "bad_request")
					return
				}
				var p struct{ Messages []map[string]any }
				if resp := h.do("GET", path, "bob", "", &p); resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				if param == "after" && v.text != "0" && len(p.Messages) != 0 {
					t.Fatalf("after %s returned %v", v.text, p.Messages)
				}
			})
		}
	}
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

	h.api.Drain()
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
