package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
)

// TestSendAckMessage: an ack to the sending session, the message to every
// session of the recipient and to the sender's other sessions, never back
// to the sending session.
func TestSendAckMessage(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	a1, a2 := n.Dial(t, "alice"), n.Dial(t, "alice")
	b1, b2 := n.Dial(t, "bob"), n.Dial(t, "bob")

	ack := a1.SendMessage("m-1", "bob", "hello bob")
	if ack.Seq != 1 {
		t.Errorf("first message of a conversation: seq %d, want 1", ack.Seq)
	}
	for _, c := range []*Client{b1, b2, a2} {
		f := c.Next("message", msgWithBody("hello bob"))
		m, err := f.Msg()
		if err != nil {
			t.Fatalf("%s: message frame %s: %v", c.Name, f, err)
		}
		checkMessage(t, m, ack, "alice", "bob", "hello bob")
	}

	// The other direction lands in the same conversation with the next seq.
	back := b2.SendMessage("m-2", "alice", "hello alice")
	if back.Conversation != ack.Conversation || back.Seq != 2 {
		t.Errorf("reply: conversation %q seq %d, want %q seq 2", back.Conversation, back.Seq, ack.Conversation)
	}
	for _, c := range []*Client{a1, a2, b1} {
		m, _ := c.Next("message", msgWithBody("hello alice")).Msg()
		checkMessage(t, m, back, "bob", "alice", "hello alice")
	}

	// By now every push of the first message has been made; the sending
	// sessions must not have had their own message echoed.
	a1.Ping()
	b2.Ping()
	for _, c := range []*Client{a1, a2, b1, b2} {
		c.None("message", nil)
	}
}

// TestIdempotentResend: the same id from the same user returns the same ack
// and never makes a second message.
func TestIdempotentResend(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	alice, bob := n.Dial(t, "alice"), n.Dial(t, "bob")

	first := alice.SendMessage("dup-1", "bob", "once")
	bob.Next("message", msgWithBody("once"))
	again := alice.SendMessage("dup-1", "bob", "once")
	if again.Raw != first.Raw {
		t.Errorf("resend: ack %s, want the first ack %s", again, first)
	}
	// A resend from another session of the same user is the same send too.
	other := n.Dial(t, "alice")
	if third := other.SendMessage("dup-1", "bob", "once"); third.Raw != first.Raw {
		t.Errorf("resend from another session: ack %s, want %s", third, first)
	}
	next := alice.SendMessage("dup-2", "bob", "twice")
	if next.Seq != first.Seq+1 {
		t.Errorf("the send after resends: seq %d, want %d (a resend must not take a seq)", next.Seq, first.Seq+1)
	}
	bob.Next("message", msgWithBody("twice"))
	bob.None("message", nil)

	// The same id from another user is another message.
	carol := n.Dial(t, "carol")
	if c := carol.SendMessage("dup-1", "bob", "from carol"); c.MessageID == first.MessageID {
		t.Errorf("carol's dup-1 got alice's message id %q", c.MessageID)
	}

	page := history(t, n, n.Token(t, "bob"), first.Conversation, "")
	if len(page.Messages) != 2 || page.Messages[0].Body != "once" || page.Messages[1].Body != "twice" {
		t.Errorf("history after resends: %+v, want once and twice", page.Messages)
	}
}

// TestSeedForm: {"toId","msg"} is a send with a server-made id.
func TestSeedForm(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	u1, u2 := n.Dial(t, "1001"), n.Dial(t, "1002")

	u1.Send(map[string]string{"toId": "1002", "msg": "seed hello"})
	ack := u1.Next("ack", nil)
	checkAck(t, ack, "")
	if ack.ID == "" {
		t.Errorf("seed-form ack %s: empty id, want a server-made one", ack)
	}
	m, _ := u2.Next("message", msgWithBody("seed hello")).Msg()
	checkMessage(t, m, ack, "1001", "1002", "seed hello")

	// Each seed-form frame is a new message: the server-made ids differ.
	u1.Send(map[string]string{"toId": "1002", "msg": "seed hello"})
	ack2 := u1.Next("ack", nil)
	if ack2.ID == ack.ID || ack2.Seq != ack.Seq+1 {
		t.Errorf("second seed-form send: ack %s after %s, want a new id and seq %d", ack2, ack, ack.Seq+1)
	}
	u2.Next("message", msgWithBody("seed hello"))

	// The seed form is validated like a send.
	for name, frame := range map[string]map[string]string{
		"empty msg":  {"toId": "1002", "msg": ""},
		"bad toId":   {"toId": "no such id!", "msg": "x"},
		"to oneself": {"toId": "1001", "msg": "x"},
	} {
		u1.SendInvalid(frame)
		if e := u1.Next("error", nil); e.Code != "bad_request" {
			t.Errorf("seed form, %s: %s, want code bad_request", name, e)
		}
		u1.Ping()
	}
}

// TestPostMessage: POST /api/messages is a send; it answers 201 with the ack
// and shares the idempotency keys of the WebSocket.
func TestPostMessage(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	aliceTok := n.Token(t, "alice")
	bob, bob2 := n.Dial(t, "bob"), n.Dial(t, "bob")

	status, body := n.Do(t, http.MethodPost, "/api/messages", aliceTok, map[string]string{"id": "r-1", "to": "bob", "body": "over rest"})
	if status != http.StatusCreated {
		t.Fatalf("POST /api/messages: %d %s, want 201", status, body)
	}
	ack := decodeAck(t, body)
	checkAck(t, ack, "r-1")
	for _, c := range []*Client{bob, bob2} {
		m, _ := c.Next("message", msgWithBody("over rest")).Msg()
		checkMessage(t, m, ack, "alice", "bob", "over rest")
	}

	status, body = n.Do(t, http.MethodPost, "/api/messages", aliceTok, map[string]string{"id": "r-1", "to": "bob", "body": "over rest"})
	if status != http.StatusCreated {
		t.Errorf("POST /api/messages resend: %d %s, want 201", status, body)
	}
	if again := decodeAck(t, body); again.MessageID != ack.MessageID || again.Seq != ack.Seq || again.SentAt != ack.SentAt {
		t.Errorf("POST /api/messages resend: ack %s, want %s", again, ack)
	}
	// The same key over the WebSocket is the same send.
	alice := n.Dial(t, "alice")
	if ws := alice.SendMessage("r-1", "bob", "over rest"); ws.MessageID != ack.MessageID || ws.Seq != ack.Seq {
		t.Errorf("WebSocket resend of a REST send: ack %s, want %s", ws, ack)
	}
	bob.None("message", nil)

	for name, req := range map[string]any{
		"empty body":   map[string]string{"id": "r-2", "to": "bob", "body": ""},
		"long body":    map[string]string{"id": "r-2", "to": "bob", "body": strings.Repeat("x", 4097)},
		"to oneself":   map[string]string{"id": "r-2", "to": "alice", "body": "x"},
		"bad to":       map[string]string{"id": "r-2", "to": "b b", "body": "x"},
		"bad id":       map[string]string{"id": "r 2", "to": "bob", "body": "x"},
		"missing id":   map[string]string{"to": "bob", "body": "x"},
		"missing to":   map[string]string{"id": "r-2", "body": "x"},
		"missing body": map[string]string{"id": "r-2", "to": "bob"},
		"not JSON":     []byte("{"),
	} {
		status, body := n.Do(t, http.MethodPost, "/api/messages", aliceTok, req)
		expectError(t, "POST /api/messages "+name, status, body, http.StatusBadRequest, "bad_request")
	}
}

func decodeAck(t testing.TB, body []byte) Frame {
	t.Helper()
	var f Frame
	mustUnmarshal(t, body, &f)
	mustUnmarshal(t, body, &f.Fields)
	f.Raw = string(body)
	return f
}

// TestDeliveryRightAfterUpgrade: a session is open, for delivery, as soon as
// the client has the upgrade's answer; a message sent right then reaches it.
// The window is small, so many senders and fresh sessions race at once; the
// first miss ends the test, since each costs a full frame timeout.
func TestDeliveryRightAfterUpgrade(t *testing.T) {
	t.Parallel()
	const pairs, rounds = 8, 50
	n := StartNode(t, map[string]string{"CHAT_SEND_RATE": "10000", "CHAT_SEND_BURST": "10000"})
	var wg sync.WaitGroup
	var missed atomic.Bool
	var checked atomic.Int32
	for p := range pairs {
		from, to := fmt.Sprintf("sender%d", p), fmt.Sprintf("receiver%d", p)
		sender := n.Dial(t, from)
		toTok := n.Token(t, to)
		wg.Go(func() {
			for r := 0; r < rounds && !missed.Load(); r++ {
				conn, resp, err := n.DialWS(toTok, nil)
				if err != nil {
					t.Errorf("dialing /ws as %s: %v (response %v)", to, err, statusOf(resp))
					return
				}
				fresh := newClient(t, to, conn) // no ping: the race is the point
				id := fmt.Sprintf("race-%d-%d", p, r)
				frame, _ := json.Marshal(map[string]string{"type": "send", "id": id, "to": to, "body": id})
				if err := sender.write(websocket.TextMessage, frame); err != nil {
					t.Errorf("%s: %v", sender.Name, err)
					return
				}
				ack, err := sender.Await(frameTimeout, "ack", byID(id))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := fresh.Await(frameTimeout, "message", msgWithBody(id)); err != nil {
					missed.Store(true)
					t.Errorf("a session opened just before message %s (ack %s) did not get it: %v", id, ack, err)
				}
				checked.Add(1)
				fresh.Close()
			}
		})
	}
	wg.Wait()
	t.Logf("%d fresh sessions checked", checked.Load())
}
