package websocket

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

func TestSlowReaderIsMarkedDeliveredOnlyOverWhatItRead(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 4, WriteTimeout: 200 * time.Millisecond})
	conn, _, err := smallBuffersDialer.Dial(h.wsURL()+"?token="+h.token("bob"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess := h.sessionOf("bob")
	if err := sess.in.Conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
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
	eventually.True(t, "bob's slow session to be dropped", func() bool { return h.app.Sessions.Count() == 0 })
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
	h := newHarness(t, Config{SendQueue: 16})
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
	h := newHarness(t, Config{SendQueue: 16, WriteTimeout: 200 * time.Millisecond})
	conn, _, err := smallBuffersDialer.Dial(h.wsURL()+"?token="+h.token("alice"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := h.sessionOf("alice").in.Conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
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
	eventually.True(t, "the session that reads no answers to be dropped", func() bool { return h.app.Sessions.Count() == 0 })
	conn.Close()
	<-stopped
}

func TestSlowClientIsDisconnected(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 8, WriteTimeout: 200 * time.Millisecond})
	h.dial("alice") // never reads
	// The application registers a session before its upgrade answer, the
	// server once the upgrade is done: wait for the latter.
	var sess *session
	eventually.True(t, "the session", func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		for s := range h.srv.sessions {
			sess = s
		}
		return sess != nil
	})

	// Pushes fill the socket buffers, then the queue; none may block.
	body := strings.Repeat("x", 4096)
	refused := false
	start := time.Now()
	for i := 0; i < 100_000 && !refused; i++ {
		refused = !sess.PushMessage(ports.MessageView{MessageID: "m", Conversation: "c", Seq: uint64(i), Body: body, SentAt: time.Now()})
	}
	if !refused {
		t.Fatal("a session that never reads accepted 100000 pushes")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("pushing took %v", d)
	}
	eventually.True(t, "the slow session to be dropped", func() bool { return h.app.Sessions.Count() == 0 })
	if sess.PushReceipt(ports.Receipt{Conversation: "c", User: "bob", ReadUpTo: 1}) {
		t.Fatal("a dropped session accepted a push")
	}
}
