package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestBadFrames: every bad frame short of an oversized one is answered with
// an `error` frame of code bad_request, echoing the frame's id when it had a
// valid one, and the session stays usable.
func TestBadFrames(t *testing.T) {
	t.Parallel()
	n := StartNode(t, nil)
	alice := n.Dial(t, "alice")
	ack := alice.SendMessage("seed-1", "bob", "so that a conversation exists")
	conv := ack.Conversation

	cases := []struct {
		name  string
		frame string
		id    string // the id the error must echo, "" when not checked
	}{
		{"not JSON", `hello`, ""},
		{"truncated JSON", `{"type":"send","id":"t1"`, ""},
		{"JSON array", `[{"type":"ping"}]`, ""},
		{"JSON string", `"ping"`, ""},
		{"unknown type", `{"type":"dance","id":"u1"}`, "u1"},
		{"no type", `{"id":"n1","to":"bob","body":"x"}`, "n1"},
		{"send without id", `{"type":"send","to":"bob","body":"x"}`, ""},
		{"send without to", `{"type":"send","id":"s1","body":"x"}`, "s1"},
		{"send without body", `{"type":"send","id":"s2","to":"bob"}`, "s2"},
		{"send with empty body", `{"type":"send","id":"s3","to":"bob","body":""}`, "s3"},
		{"send with a 4097-char body", `{"type":"send","id":"s4","to":"bob","body":"` + strings.Repeat("é", 4097) + `"}`, "s4"},
		{"send to an invalid id", `{"type":"send","id":"s5","to":"bob smith","body":"x"}`, "s5"},
		{"send to an empty id", `{"type":"send","id":"s6","to":"","body":"x"}`, "s6"},
		{"send to a 65-char id", `{"type":"send","id":"s7","to":"` + strings.Repeat("b", 65) + `","body":"x"}`, "s7"},
		{"send to oneself", `{"type":"send","id":"s8","to":"alice","body":"x"}`, "s8"},
		{"send with a bad id", `{"type":"send","id":"has space","to":"bob","body":"x"}`, ""},
		{"send with a 65-char id", `{"type":"send","id":"` + strings.Repeat("i", 65) + `","to":"bob","body":"x"}`, ""},
		{"send with a numeric body", `{"type":"send","id":"s9","to":"bob","body":7}`, ""},
		{"read without conversation", `{"type":"read","upTo":1}`, ""},
		{"read without upTo", `{"type":"read","conversation":"` + conv + `"}`, ""},
		{"read with a string upTo", `{"type":"read","conversation":"` + conv + `","upTo":"1"}`, ""},
		{"read with a negative upTo", `{"type":"read","conversation":"` + conv + `","upTo":-1}`, ""},
		{"sync without conversation", `{"type":"sync","after":0}`, ""},
		{"sync without after", `{"type":"sync","conversation":"` + conv + `"}`, ""},
		{"sync with a fractional limit", `{"type":"sync","conversation":"` + conv + `","after":0,"limit":1.5}`, ""},
		{"sync with an exponent after", `{"type":"sync","conversation":"` + conv + `","after":1e3}`, ""},
		// Above 2^53-1 (v1.2): 2^64-1 once wrapped around to sync from seq 1.
		{"sync with after 2^64-1", `{"type":"sync","conversation":"` + conv + `","after":18446744073709551615}`, ""},
		{"sync with after 2^53", `{"type":"sync","conversation":"` + conv + `","after":9007199254740992}`, ""},
		{"sync with limit 2^64-1", `{"type":"sync","conversation":"` + conv + `","after":0,"limit":18446744073709551615}`, ""},
		{"read with upTo 2^64-1", `{"type":"read","conversation":"` + conv + `","upTo":18446744073709551615}`, ""},
		// Lone surrogates (v1.2), which decoding would turn into U+FFFD.
		{"send with a lone high surrogate", `{"type":"send","id":"u1","to":"bob","body":"\ud800"}`, ""},
		{"send with a lone low surrogate", `{"type":"send","id":"u2","to":"bob","body":"\udc00"}`, ""},
		{"send with a high surrogate before a letter", `{"type":"send","id":"u3","to":"bob","body":"\ud83dx"}`, ""},
	}
	for _, tc := range cases {
		alice.SendInvalid([]byte(tc.frame))
		e, err := alice.Await(frameTimeout, "error", nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			alice.Ping()
			continue
		}
		if e.Code != "bad_request" || e.ErrText() == "" {
			t.Errorf("%s: got %s, want an error with code bad_request and a message", tc.name, e)
		}
		if tc.id != "" && e.ID != tc.id {
			t.Errorf("%s: error %s does not echo id %q", tc.name, e, tc.id)
		}
		// The session is still open and served in order.
		alice.Ping()
	}

	// Invalid UTF-8 in a text frame, written as raw bytes since a JSON
	// encoder would have replaced them.
	alice.SendInvalid([]byte("{\"type\":\"send\",\"id\":\"utf\",\"to\":\"bob\",\"body\":\"bad \xff\xfe bytes\"}"))
	if e := alice.Next("error", nil); e.Code != "bad_request" {
		t.Errorf("invalid UTF-8: got %s, want code bad_request", e)
	}
	alice.Ping()

	// None of the bad sends made a message: the next one gets seq 2, and
	// the limits are inclusive (4096 characters, counted as characters).
	full := strings.Repeat("é", 4096)
	if a := alice.SendMessage("ok-1", "bob", full); a.Seq != 2 {
		t.Errorf("first good send after the bad ones: seq %d, want 2", a.Seq)
	}
	alice.SendMessage(strings.Repeat("i", 64), strings.Repeat("b", 64), "64-char id and user id")

	// An escaped surrogate pair is one character, stored as sent; REST
	// refuses a lone surrogate as the WebSocket does.
	alice.SendRaw(websocket.TextMessage, []byte(`{"type":"send","id":"pair-1","to":"bob","body":"\ud83d\ude00"}`))
	if a := alice.Next("ack", byID("pair-1")); a.Seq != 3 {
		t.Errorf("send with an escaped pair: seq %d, want 3", a.Seq)
	}
	tok := n.Token(t, "alice")
	status, body := n.Do(t, http.MethodPost, "/api/messages", tok, []byte(`{"id":"rest-u1","to":"bob","body":"\ud800"}`))
	expectError(t, "POST /api/messages with a lone surrogate", status, body, http.StatusBadRequest, "bad_request")
	status, body = n.Do(t, http.MethodGet, "/api/conversations/"+conv+"/messages?after=2", tok, nil)
	if status != http.StatusOK || !strings.Contains(string(body), "\"body\":\"\U0001F600\"") || strings.Contains(string(body), "\ufffd") {
		t.Errorf("history after the pair: %d %s, want the one emoji as sent", status, body)
	}
	alice.None("error", nil)
}

// TestOversizedFrame: a frame over CHAT_MAX_FRAME_BYTES gets `too_large`
// and then a close with 1009; other sessions are unaffected.
func TestOversizedFrame(t *testing.T) {
	t.Parallel()
	n := StartNode(t, map[string]string{"CHAT_MAX_FRAME_BYTES": "4096"})
	alice, other := n.Dial(t, "alice"), n.Dial(t, "alice")

	// A frame of the limit exactly passes.
	prefix, suffix := `{"type":"send","id":"fits","to":"bob","body":"`, `"}`
	body := strings.Repeat("x", 4096-len(prefix)-len(suffix))
	alice.SendRaw(websocket.TextMessage, []byte(prefix+body+suffix))
	checkAck(t, alice.Next("ack", byID("fits")), "fits")

	big := `{"type":"send","id":"big","to":"bob","body":"` + strings.Repeat("x", 4000) + strings.Repeat("y", 200) + `"}`
	alice.SendInvalid([]byte(big))
	e, err := alice.Await(frameTimeout, "error", nil)
	if err != nil {
		t.Errorf("oversized frame: %v", err)
	} else if e.Code != "too_large" {
		t.Errorf("oversized frame: got %s, want an error with code too_large", e)
	}
	if code := alice.WaitClose(frameTimeout); code != websocket.CloseMessageTooBig {
		t.Errorf("oversized frame: close code %d, want %d", code, websocket.CloseMessageTooBig)
	}
	other.Ping()
	other.None("message", msgWithBody(strings.Repeat("x", 4000)+strings.Repeat("y", 200)))
}
