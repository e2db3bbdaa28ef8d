package websocket

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/tests/eventually"
)

func TestSendAckAndDelivery(t *testing.T) {
	h := newHarness(t, Config{})
	alice, aliceOther, bob := h.dial("alice"), h.dial("alice"), h.dial("bob")
	eventually.True(t, "three sessions", func() bool { return h.app.Sessions.Count() == 3 })

	alice.sendRaw(`{"type":"send","id":"c-1","to":"bob","body":"hello bob"}`)
	ack := alice.next(typeAck)
	for _, k := range []string{"id", "messageId", "conversation", "seq", "sentAt"} {
		if _, ok := ack[k]; !ok {
			t.Fatalf("ack %v lacks %s", ack, k)
		}
	}
	if ack["id"] != "c-1" || ack["seq"] != 1.0 {
		t.Fatalf("ack = %v", ack)
	}
	if _, err := time.Parse(time.RFC3339Nano, ack["sentAt"].(string)); err != nil {
		t.Fatalf("sentAt: %v", err)
	}
	for _, c := range []*client{bob, aliceOther} {
		m := c.next(typeMessage)["message"].(map[string]any)
		want := map[string]any{"messageId": ack["messageId"], "conversation": ack["conversation"], "seq": 1.0,
			"from": "alice", "to": "bob", "body": "hello bob", "sentAt": ack["sentAt"]}
		if len(m) != len(want) {
			t.Fatalf("message = %v, want %v", m, want)
		}
		for k, v := range want {
			if m[k] != v {
				t.Fatalf("message[%s] = %v, want %v", k, m[k], v)
			}
		}
	}

	// A resend of the same id is the same ack, and no second message.
	alice.sendRaw(`{"type":"send","id":"c-1","to":"bob","body":"hello bob"}`)
	if again := alice.next(typeAck); again["messageId"] != ack["messageId"] || again["seq"] != 1.0 {
		t.Fatalf("resend ack = %v, first %v", again, ack)
	}
	// The sender's own session got no message frame: the next frame it sees
	// after a ping is the pong (receipts aside).
	alice.sendRaw(`{"type":"ping"}`)
	_ = alice.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := alice.conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `"type":"message"`) {
			t.Fatalf("sender's own session got %s", data)
		}
		if string(data) == `{"type":"pong"}` {
			break
		}
	}

	if got := h.counter(t, "chat_sends_total", "outcome", "ok"); got != 2 {
		t.Fatalf("ok sends = %v, want 2", got)
	}
}

func TestSeedForm(t *testing.T) {
	h := newHarness(t, Config{})
	seed, bob := h.dial("1001"), h.dial("1002")
	eventually.True(t, "two sessions", func() bool { return h.app.Sessions.Count() == 2 })
	seed.sendRaw(`{"toId":"1002","msg":"from the seed"}`)
	ack := seed.next(typeAck)
	if id, _ := ack["id"].(string); id == "" {
		t.Fatalf("seed ack has no server-made id: %v", ack)
	}
	if m := bob.next(typeMessage)["message"].(map[string]any); m["body"] != "from the seed" || m["from"] != "1001" {
		t.Fatalf("message = %v", m)
	}
	// The seed's clients wrote numeric ids as numbers.
	seed.sendRaw(`{"toId":1002,"msg":"numeric"}`)
	if ack := seed.next(typeAck); ack["seq"] != 2.0 {
		t.Fatalf("second seed ack = %v", ack)
	}
}

func TestBadFramesKeepTheConnection(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.dial("alice")
	tests := []struct {
		name, frame, id string
	}{
		{"not json", `hello`, ""},
		{"not an object", `[1,2]`, ""},
		{"unknown type", `{"type":"dance","id":"k1"}`, "k1"},
		{"missing type", `{"id":"k2","to":"bob","body":"x"}`, "k2"},
		{"missing to", `{"type":"send","id":"k3","body":"x"}`, "k3"},
		{"missing body", `{"type":"send","id":"k4","to":"bob"}`, "k4"},
		{"missing id", `{"type":"send","to":"bob","body":"x"}`, ""},
		{"bad id", `{"type":"send","id":"a b","to":"bob","body":"x"}`, "a b"},
		{"empty body", `{"type":"send","id":"k5","to":"bob","body":""}`, "k5"},
		{"body too long", `{"type":"send","id":"k6","to":"bob","body":"` + strings.Repeat("é", 4097) + `"}`, "k6"},
		{"bad to", `{"type":"send","id":"k7","to":"bob smith","body":"x"}`, "k7"},
		{"to oneself", `{"type":"send","id":"k8","to":"alice","body":"x"}`, "k8"},
		{"invalid utf-8", "{\"type\":\"send\",\"id\":\"k9\",\"to\":\"bob\",\"body\":\"\xff\xfe\"}", ""},
		{"wrong field type", `{"type":"send","id":"k10","to":"bob","body":7}`, "k10"},
		{"negative upTo", `{"type":"read","id":"k11","conversation":"c_AAAAAAAAAAAAAAAAAAAAAA","upTo":-1}`, "k11"},
		{"fractional after", `{"type":"sync","conversation":"c_AAAAAAAAAAAAAAAAAAAAAA","after":1.5}`, ""},
		{"bad conversation", `{"type":"sync","conversation":"nope","after":0}`, ""},
		{"no such conversation", `{"type":"sync","id":"k12","conversation":"c_AAAAAAAAAAAAAAAAAAAAAA","after":0}`, "k12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.sendRaw(tt.frame)
			e := c.next(typeError)
			wantCode := "bad_request"
			if tt.name == "no such conversation" {
				wantCode = "not_found"
			}
			if e["code"] != wantCode || e["message"] == "" {
				t.Fatalf("error = %v, want code %s", e, wantCode)
			}
			if id, has := e["id"]; tt.id == "" && has || tt.id != "" && id != tt.id {
				t.Fatalf("error id = %v, want %q", id, tt.id)
			}
			c.sendRaw(`{"type":"ping"}`)
			c.next(typePong)
		})
	}
	t.Run("binary frame", func(t *testing.T) {
		if err := c.conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if e := c.next(typeError); e["code"] != "bad_request" {
			t.Fatalf("error = %v", e)
		}
	})
}

func TestReadReceiptsAndSync(t *testing.T) {
	h := newHarness(t, Config{})
	alice, bob := h.dial("alice"), h.dial("bob")
	eventually.True(t, "two sessions", func() bool { return h.app.Sessions.Count() == 2 })
	var conv string
	for i := range 3 {
		alice.sendRaw(`{"type":"send","id":"m` + string(rune('0'+i)) + `","to":"bob","body":"hi"}`)
		conv = alice.next(typeAck)["conversation"].(string)
	}

	bob.sendRaw(`{"type":"read","conversation":"` + conv + `","upTo":2}`)
	for _, c := range []*client{alice, bob} {
		var r frame
		for r == nil || r["readUpTo"] == nil {
			r = c.next(typeReceipt)
			if _, both := r["deliveredUpTo"]; both && r["readUpTo"] != nil {
				t.Fatalf("receipt carries both markers: %v", r)
			}
		}
		if r["conversation"] != conv || r["user"] != "bob" || r["readUpTo"] != 2.0 {
			t.Fatalf("receipt = %v", r)
		}
	}

	bob.sendRaw(`{"type":"sync","conversation":"` + conv + `","after":1,"limit":1}`)
	page := bob.next(typeMessages)
	msgs := page["messages"].([]any)
	if page["conversation"] != conv || page["more"] != true || len(msgs) != 1 || msgs[0].(map[string]any)["seq"] != 2.0 {
		t.Fatalf("page = %v", page)
	}
	bob.sendRaw(`{"type":"sync","conversation":"` + conv + `","after":3}`)
	if page := bob.next(typeMessages); page["more"] != false || len(page["messages"].([]any)) != 0 {
		t.Fatalf("page past the end = %v", page)
	}

	stranger := h.dial("carol")
	stranger.sendRaw(`{"type":"sync","id":"s1","conversation":"` + conv + `","after":0}`)
	if e := stranger.next(typeError); e["code"] != "not_found" || e["id"] != "s1" {
		t.Fatalf("stranger's sync = %v", e)
	}
	bob.sendRaw(`{"type":"read","conversation":"` + conv + `","upTo":9}`)
	if e := bob.next(typeError); e["code"] != "bad_request" {
		t.Fatalf("read beyond the end = %v", e)
	}
}

func TestTooLargeFrameClosesWith1009(t *testing.T) {
	h := newHarness(t, Config{MaxFrameBytes: 1024})
	for _, size := range []int{1025, 1 << 20} {
		c := h.dial("alice")
		c.sendRaw(`{"type":"send","id":"x","to":"bob","body":"` + strings.Repeat("a", size) + `"}`)
		if e := c.next(typeError); e["code"] != "too_large" {
			t.Fatalf("error = %v", e)
		}
		if code := c.closeCode(); code != websocket.CloseMessageTooBig {
			t.Fatalf("close code = %d, want 1009", code)
		}
	}
	// A frame of exactly the limit is read and judged on its content.
	c := h.dial("alice")
	frame := `{"type":"ping","pad":"` + strings.Repeat("a", 1024-len(`{"type":"ping","pad":""}`)) + `"}`
	c.sendRaw(frame)
	c.next(typePong)
}

// TestKeepAlive runs on the bubble's clock: on the wall clock, with a
// 50 ms interval, a loaded machine delayed pongs past the read deadline and
// dropped the session the test meant to keep.
func TestKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		h := newPipeHarness(t, Config{PingInterval: interval})
		alice, alicePings := h.dial("alice"), &pingCounter{answer: true}
		alice.readAll(alicePings)
		// Answering, the session outlives many read deadlines (twice the
		// interval each), and is pinged once an interval.
		time.Sleep(10*interval + interval/2)
		synctest.Wait()
		if got := alicePings.Load(); got != 10 || h.app.Sessions.Count() != 1 {
			t.Fatalf("after 10.5 intervals: %d pings, %d sessions; want 10 pings and alice's session", got, h.app.Sessions.Count())
		}

		// A client that answers no ping is dropped once twice the interval
		// has passed without a frame from it, and not before. Each session
		// is pinged on its own schedule, from its opening: bob an interval
		// after his, not at alice's next ping.
		bob, bobPings := h.dial("bob"), &pingCounter{}
		bob.readAll(bobPings)
		time.Sleep(interval / 2)
		synctest.Wait()
		if got := bobPings.Load(); got != 0 {
			t.Fatalf("half an interval after bob's opening, at alice's ping: bob pinged %d times, want 0", got)
		}
		time.Sleep(3*interval/2 - time.Millisecond)
		synctest.Wait()
		if got := h.app.Sessions.Count(); got != 2 || bobPings.Load() != 1 {
			t.Fatalf("just before bob's deadline: %d sessions, bob pinged %d times; want 2 and 1", got, bobPings.Load())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := h.app.Sessions.Count(); got != 1 {
			t.Fatalf("at bob's deadline: %d sessions, want alice's only", got)
		}
	})
}

// pingCounter counts the pings a client gets, and answers them if answer.
type pingCounter struct {
	atomic.Int32
	answer bool
}

// readAll reads c in a goroutine of its own until the connection ends,
// counting (and answering, if p says so) the pings.
func (c *client) readAll(p *pingCounter) {
	c.conn.SetPingHandler(func(data string) error {
		p.Add(1)
		if !p.answer {
			return nil
		}
		return c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := c.conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
}

func TestShutdownClosesSessionsWith1001(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := h.dial("alice"), h.dial("bob")
	eventually.True(t, "two sessions", func() bool { return h.app.Sessions.Count() == 2 })
	a.sendRaw(`{"type":"send","id":"last","to":"bob","body":"before the drain"}`)
	a.next(typeAck)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- h.srv.Stop(ctx)
	}()
	for _, c := range []*client{a, b} {
		if code := c.closeCode(); code != websocket.CloseGoingAway {
			t.Fatalf("close code = %d, want 1001", code)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := h.app.Sessions.Count(); n != 0 {
		t.Fatalf("%d sessions left registered", n)
	}
	_, resp, err := websocket.DefaultDialer.Dial(h.wsURL()+"?token="+h.token("alice"), nil)
	if err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown = %v, %v; want 503", resp, err)
	}
}
