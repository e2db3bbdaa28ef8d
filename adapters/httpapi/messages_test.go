package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

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

func (s *session) ID() string { return "bob-1" }

func (s *session) User() user.ID { return "bob" }

func (s *session) PushMessage(m ports.MessageView) bool {
	s.lastSeq.Store(m.Seq)
	if s.delivery != nil {
		go s.delivery.Written(s, m.Conversation, m.To, m.Seq)
	}
	return true
}

func (s *session) PushReceipt(ports.Receipt) bool   { return true }
func (s *session) PushUpdate(ports.UpdateView) bool { return true }

func TestConversationsAndHistory(t *testing.T) {
	h := newHarness(t, options{})
	bob := &session{delivery: h.app.Delivery}
	unregister := h.app.Sessions.Register(bob)
	var conv string
	for i, body := range []string{"one", "two", "three", "four"} {
		conv = h.send("alice", "k"+string(rune('1'+i)), "bob", body).Conversation
	}
	eventually.True(t, "delivery to bob", func() bool { return bob.lastSeq.Load() == 4 })
	unregister()
	h.send("alice", "k5", "bob", "five") // bob is offline: stays sent
	if err := h.app.MarkReceipts.Handle(context.Background(), application.MarkReadCommand{Reader: "bob", Conversation: conversation.ID(conv), UpTo: 2}); err != nil {
		t.Fatal(err)
	}

	var list []map[string]any
	eventually.True(t, "the projection", func() bool {
		list = nil
		h.do("GET", "/api/conversations", "bob", "", &list)
		return len(list) == 1 && list[0]["lastSeq"] == 5.0 && list[0]["readUpTo"] == 2.0 && list[0]["deliveredUpTo"] == 4.0
	})
	row := list[0]
	if len(row) != 8 || row["conversation"] != conv || row["kind"] != "direct" || row["peer"] != "alice" || row["unread"] != 3.0 {
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
