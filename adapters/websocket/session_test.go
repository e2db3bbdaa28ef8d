package websocket

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/tests/eventually"
)

// The session rules of PROTOCOL.md's "Hardening (v1.2)".

// TestAuthRefreshesTheSessionsToken runs on the bubble's clock, where the
// first token's exp comes at once and to the nanosecond.
func TestAuthRefreshesTheSessionsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPipeHarness(t, Config{})
		shortLived, err := auth.NewIssuer(auth.IssuerConfig{Secret: testSecret, TTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		short, shortExp, err := shortLived.Issue("alice")
		if err != nil {
			t.Fatal(err)
		}
		refreshed, refused := h.dialWith(short), h.dialWith(short)

		fresh, freshExp, err := h.issuer.Issue("alice")
		if err != nil {
			t.Fatal(err)
		}
		refreshed.sendRaw(`{"type":"auth","id":"a1","token":"` + fresh + `"}`)
		want := frame{"type": "authed", "id": "a1", "expiresAt": wire.FormatTime(freshExp)}
		if got := refreshed.next(typeAuthed); !reflect.DeepEqual(got, want) {
			t.Fatalf("answer = %v, want %v", got, want)
		}

		expired, err := auth.NewIssuer(auth.IssuerConfig{Secret: testSecret, Clock: fixedClock(time.Now().Add(-48 * time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		forger, err := auth.NewIssuer(auth.IssuerConfig{Secret: []byte("another-secret-of-at-least-32-bytes")})
		if err != nil {
			t.Fatal(err)
		}
		issue := func(i *auth.Issuer, u user.ID) string {
			tok, _, err := i.Issue(u)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		tests := []struct {
			name, frame, code string
		}{
			{"another user's token", `{"type":"auth","id":"r","token":"` + h.token("bob") + `"}`, "forbidden"},
			{"an expired token", `{"type":"auth","id":"r","token":"` + issue(expired, "alice") + `"}`, "unauthorized"},
			{"a forged token", `{"type":"auth","id":"r","token":"` + issue(forger, "alice") + `"}`, "unauthorized"},
			{"garbage", `{"type":"auth","id":"r","token":"not.a.jwt"}`, "unauthorized"},
			{"no token", `{"type":"auth","id":"r"}`, "bad_request"},
		}
		for _, tt := range tests {
			// No t.Run: subtests cannot run inside a bubble.
			refused.sendRaw(tt.frame)
			if e := refused.next(typeError); e["code"] != tt.code || e["id"] != "r" {
				t.Fatalf("%s: answer = %v, want error %s", tt.name, e, tt.code)
			}
		}

		// The refused session dies at its first token's exp, neither sooner
		// (an expired token did not cut it short) nor later.
		_ = refused.conn.SetReadDeadline(shortExp.Add(2 * time.Second))
		var ce *websocket.CloseError
		for ce == nil {
			_, _, err := refused.conn.ReadMessage()
			if err != nil && !errors.As(err, &ce) {
				t.Fatalf("the session ended without a close frame: %v", err)
			}
		}
		if closedAt := time.Now(); closedAt.Before(shortExp) {
			t.Fatalf("closed at %v, before the token's exp %v", closedAt, shortExp)
		}
		if ce.Code != closeTokenExpired || ce.Text != "token expired" {
			t.Fatalf("close = %d %q, want 4001 \"token expired\"", ce.Code, ce.Text)
		}

		// The refreshed session outlives the first exp.
		time.Sleep(time.Until(shortExp.Add(200 * time.Millisecond)))
		refreshed.sendRaw(`{"type":"ping"}`)
		refreshed.next(typePong)
	})
}

func TestDecodeAuthFrame(t *testing.T) {
	tests := []decodeCase{
		{"auth", `{"type":"auth","token":"t.o.k"}`, clientFrame{Type: "auth", Token: "t.o.k"}, ""},
		{"auth with id", `{"type":"auth","id":"a","token":"t.o.k"}`, clientFrame{Type: "auth", ID: "a", Token: "t.o.k"}, ""},
		{"auth without token", `{"type":"auth"}`, clientFrame{}, "missing field token"},
		{"auth with a null token", `{"type":"auth","token":null}`, clientFrame{}, "missing field token"},
		{"auth with an empty token", `{"type":"auth","token":""}`, clientFrame{}, "missing field token"},
		{"auth with a number for a token", `{"type":"auth","token":7}`, clientFrame{}, "token has the wrong type"},
	}
	checkDecoding(t, tests)
}

// A session that opens after messages were sent has them once its sync
// page is written: the page, not the live push alone, moves the marker
// over them.
func TestASyncPageWrittenCountsAsDelivered(t *testing.T) {
	h := newHarness(t, Config{})
	// An ack comes before the bus delivers: a session that opened between
	// the two is owed the message live. Alice's other session shows when
	// the node has delivered both, so that bob's opens after.
	aliceElsewhere := h.dial("alice")
	ack := h.send("alice", "k1", "bob", "one")
	h.send("alice", "k2", "bob", "two")
	aliceElsewhere.next(typeMessage)
	aliceElsewhere.next(typeMessage)
	bob := h.dial("bob")
	statuses := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.app.Delivery.Wait(ctx)
		page, err := h.app.History.Handle(ctx, application.HistoryQuery{Reader: "alice", Conversation: ack.Conversation})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range page.Messages {
			out = append(out, m.Status)
		}
		return strings.Join(out, ",")
	}
	// Nothing reached bob yet: the two messages were sent before he came.
	bob.sendRaw(`{"type":"ping"}`)
	bob.next(typePong)
	if got := statuses(); got != "sent,sent" {
		t.Fatalf("before bob synced: %s, want sent,sent", got)
	}
	bob.sendRaw(`{"type":"sync","conversation":"` + string(ack.Conversation) + `","after":0}`)
	bob.next(typeMessages)
	eventually.True(t, "the synced messages to be marked delivered", func() bool { return statuses() == "delivered,delivered" })
}

// One timer serves every session's expiry: sessions close in the order of
// their tokens' exp, a refreshed one moves in the queue, and a session
// that ended leaves it. On the bubble's clock, where the exps of 1 and 3 s
// come at once.
func TestExpiriesCloseEachSessionAtItsExp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPipeHarness(t, Config{})
		dialFor := func(ttl time.Duration) (*client, time.Time) {
			issuer, err := auth.NewIssuer(auth.IssuerConfig{Secret: testSecret, TTL: ttl})
			if err != nil {
				t.Fatal(err)
			}
			tok, exp, err := issuer.Issue("alice")
			if err != nil {
				t.Fatal(err)
			}
			return h.dialWith(tok), exp
		}
		later, laterExp := dialFor(3 * time.Second)
		sooner, soonerExp := dialFor(time.Second)
		refreshed, _ := dialFor(time.Second)
		gone, _ := dialFor(time.Second)
		eventually.True(t, "four sessions scheduled", func() bool { return h.srv.tokenExpiries.len() == 4 })

		refreshed.sendRaw(`{"type":"auth","token":"` + h.token("alice") + `"}`)
		refreshed.next(typeAuthed)
		gone.conn.Close()
		eventually.True(t, "the closed session unscheduled", func() bool { return h.srv.tokenExpiries.len() == 3 })

		for _, c := range []struct {
			name   string
			client *client
			exp    time.Time
		}{{"sooner", sooner, soonerExp}, {"later", later, laterExp}} {
			if code := c.client.closeCode(); code != closeTokenExpired {
				t.Fatalf("%s: close code %d, want %d", c.name, code, closeTokenExpired)
			}
			if now := time.Now(); now.Before(c.exp) {
				t.Fatalf("%s closed %v before its exp", c.name, c.exp.Sub(now))
			}
		}
		refreshed.sendRaw(`{"type":"ping"}`)
		refreshed.next(typePong)
		eventually.True(t, "only the refreshed session scheduled", func() bool { return h.srv.tokenExpiries.len() == 1 })
	})
}

// len is how many sessions wait for their deadline.
func (d *deadlines) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queue.Len()
}
