package websocket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// The session rules of PROTOCOL.md's "Hardening (v1.2)".

// withPresence sets presence up on the harness's node, as the embedded
// default wires it, with the default grace: a user whose session was
// registered, even for an instant, stays online for seconds after.
func (h *harness) withPresence() *harness {
	h.t.Helper()
	signals := memory.NewSignals()
	p, err := application.NewPresence(h.app, application.PresenceConfig{Node: "test"}, signals, memory.NewLastSeen(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.node.Bus.Broadcast("presence-peers", p.ObserveCommits)
	p.Start()
	signals.Start()
	h.t.Cleanup(func() {
		_ = p.Stop(context.Background())
		_ = signals.Stop(context.Background())
	})
	return h
}

// send stores a message as the application would for a client of from's.
func (h *harness) send(from, key, to, body string) application.Ack {
	h.t.Helper()
	ack, err := h.app.Send.Handle(context.Background(), application.SendMessageCommand{
		Sender: user.ID(from), ClientID: message.ClientID(key), To: user.ID(to), Body: message.Body(body)})
	if err != nil {
		h.t.Fatal(err)
	}
	return ack
}

// sessionOf waits for u's session to be served and returns it.
func (h *harness) sessionOf(u user.ID) *session {
	h.t.Helper()
	var found *session
	waitFor(h.t, string(u)+"'s session", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		for s := range h.srv.sessions {
			if s.user == u {
				found = s
			}
		}
		return found != nil
	})
	return found
}

// smallBuffersDialer dials with a small receive buffer, so that a client
// that does not read holds few frames in its socket.
var smallBuffersDialer = websocket.Dialer{
	NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = conn.(*net.TCPConn).SetReadBuffer(4096)
		}
		return conn, err
	},
}

func TestSlowReaderIsMarkedDeliveredOnlyOverWhatItRead(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 4, WriteTimeout: 200 * time.Millisecond})
	conn, _, err := smallBuffersDialer.Dial(h.wsURL()+"?token="+h.token("bob"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess := h.sessionOf("bob")
	if err := sess.conn.NetConn().(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}

	var read uint64
	readOne := func() error {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		var f struct{ Message wire.Message }
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %.80s: %v", data, err)
		}
		read = max(read, f.Message.Seq)
		return nil
	}
	// Bob reads the first message, then nothing while alice sends the rest:
	// the socket buffers fill, then bob's queue, and bob is disconnected
	// with frames still queued.
	const sent = 60
	body := strings.Repeat("x", 4000)
	ack := h.send("alice", "k0", "bob", body)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for read == 0 {
		if err := readOne(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < sent; i++ {
		h.send("alice", fmt.Sprint("k", i), "bob", body)
	}
	waitFor(t, "bob's slow session to be dropped", func() bool { return h.app.Sessions.Count() == 0 })
	for readOne() == nil {
	}
	if read >= sent {
		t.Fatalf("bob read up to message %d of %d; the test needs some read and some dropped", read, sent)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.app.Delivery.Wait(ctx)
	page, err := h.app.History.Handle(ctx, application.HistoryQuery{Reader: "alice", Conversation: ack.Conversation, Limit: sent})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Messages {
		if m.Status != "sent" && m.Seq > read {
			t.Fatalf("message %d is %s, but bob read only up to %d", m.Seq, m.Status, read)
		}
	}
}

// presenceAskOf200 is a `presence` frame asking for the most users one
// frame may: 200 answers to a single request.
func presenceAskOf200(t *testing.T) []byte {
	t.Helper()
	users := make([]string, 200)
	for i := range users {
		users[i] = fmt.Sprintf("u%03d", i)
	}
	ask, err := json.Marshal(map[string]any{"type": "presence", "users": users})
	if err != nil {
		t.Fatal(err)
	}
	return ask
}

func TestPromptClientIsNeverDroppedForItsOwnAnswers(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 16}).withPresence()
	c := h.dial("alice")
	ask := presenceAskOf200(t)
	c.sendRaw(string(ask))
	c.sendRaw(string(ask))
	for range 2 * 200 {
		c.next(typePresence)
	}
	c.sendRaw(`{"type":"ping"}`)
	c.next(typePong)
}

func TestUnreadAnswersAreBounded(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 16, WriteTimeout: 200 * time.Millisecond}).withPresence()
	conn, _, err := smallBuffersDialer.Dial(h.wsURL()+"?token="+h.token("alice"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := h.sessionOf("alice").conn.NetConn().(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	ask := presenceAskOf200(t)
	// The client asks and asks and reads none of the answers.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if conn.WriteMessage(websocket.TextMessage, ask) != nil {
				return
			}
		}
	}()
	waitFor(t, "the session that reads no answers to be dropped", func() bool { return h.app.Sessions.Count() == 0 })
	conn.Close()
	<-stopped
}

func TestRefusedUpgradesLeaveNoTrace(t *testing.T) {
	h := newHarness(t, Config{}).withPresence()
	h.send("alice", "k1", "bob", "hello")
	bob := h.dial("bob")
	aliceOnline := func() bool {
		bob.sendRaw(`{"type":"presence","users":["alice"]}`)
		return bob.next(typePresence)["online"] == true
	}

	token := h.token("alice")
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {key}}
	with := func(name, value string) http.Header {
		header := upgrade.Clone()
		if value == "" {
			header.Del(name)
		} else {
			header.Set(name, value)
		}
		return header
	}
	tests := []struct {
		name   string
		header http.Header
		status int
		code   string
	}{
		{"foreign origin", with("Origin", "https://evil.example"), http.StatusForbidden, "forbidden"},
		{"plain GET", http.Header{}, http.StatusBadRequest, "bad_request"},
		{"no Upgrade header", with("Upgrade", ""), http.StatusBadRequest, "bad_request"},
		{"another version", with("Sec-Websocket-Version", "8"), http.StatusBadRequest, "bad_request"},
		{"no key", with("Sec-Websocket-Key", ""), http.StatusBadRequest, "bad_request"},
		{"a key of the wrong size", with("Sec-Websocket-Key", "c2hvcnQ="), http.StatusBadRequest, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, h.hs.URL+"/ws?token="+token, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tt.header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Code, Message string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != tt.status || body.Code != tt.code {
				t.Fatalf("answer = %d %+v (%v); want %d %s", resp.StatusCode, body, err, tt.status, tt.code)
			}
		})
	}
	if n := h.app.Sessions.Count(); n != 1 {
		t.Fatalf("%d sessions registered, want bob's only", n)
	}
	if aliceOnline() {
		t.Fatal("a refused upgrade put alice online")
	}
	// The same request with nothing to refuse does move presence.
	h.dial("alice")
	waitFor(t, "alice online", aliceOnline)
}

func TestSessionsPerUserAreCapped(t *testing.T) {
	h := newHarness(t, Config{MaxSessionsPerUser: 2})
	first := h.dial("alice")
	h.dial("alice")
	_, resp, err := websocket.DefaultDialer.Dial(h.wsURL()+"?token="+h.token("alice"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third dial = %v, %v; want HTTP 429", resp, err)
	}
	var body struct{ Code, Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Code != "too_many_sessions" || body.Message == "" {
		t.Fatalf("body = %+v, %v", body, err)
	}
	h.dial("bob") // the cap is per user
	if n := h.app.Sessions.Count(); n != 3 {
		t.Fatalf("%d sessions registered, want 3", n)
	}
	first.conn.Close()
	waitFor(t, "alice's first session to end", func() bool { return h.app.Sessions.Count() == 2 })
	h.dial("alice")
}

func TestAuthRefreshesTheSessionsToken(t *testing.T) {
	h := newHarness(t, Config{})
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
		t.Run(tt.name, func(t *testing.T) {
			refused.sendRaw(tt.frame)
			if e := refused.next(typeError); e["code"] != tt.code || e["id"] != "r" {
				t.Fatalf("answer = %v, want error %s", e, tt.code)
			}
		})
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
	waitFor(t, "the synced messages to be marked delivered", func() bool { return statuses() == "delivered,delivered" })
}

// One timer serves every session's expiry: sessions close in the order of
// their tokens' exp, a refreshed one moves in the queue, and a session
// that ended leaves it.
func TestExpiriesCloseEachSessionAtItsExp(t *testing.T) {
	h := newHarness(t, Config{})
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
	waitFor(t, "four sessions scheduled", func() bool { return h.srv.expiries.len() == 4 })

	refreshed.sendRaw(`{"type":"auth","token":"` + h.token("alice") + `"}`)
	refreshed.next(typeAuthed)
	gone.conn.Close()
	waitFor(t, "the closed session unscheduled", func() bool { return h.srv.expiries.len() == 3 })

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
	waitFor(t, "only the refreshed session scheduled", func() bool { return h.srv.expiries.len() == 1 })
}

// len is how many sessions wait for their exp.
func (e *expiries) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queue)
}
