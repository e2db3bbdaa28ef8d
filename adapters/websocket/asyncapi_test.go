package websocket

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/asyncapi"
)

// TestAsyncAPIDocumentParses runs the AsyncAPI parser (npm @asyncapi/parser,
// installed by `make asyncapi-deps`) on asyncapi.yaml; any diagnostic of
// error severity fails the test, and so does a missing node or parser.
func TestAsyncAPIDocumentParses(t *testing.T) {
	out, err := exec.Command("node", "asyncapi_check/check.mjs", "asyncapi.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("node asyncapi_check/check.mjs asyncapi.yaml: %v (run `make asyncapi-deps` when node or the parser is missing)\n%s", err, out)
	}
	t.Logf("%s", out)
}

func loadAsyncAPI(t *testing.T) *asyncapi.Document {
	t.Helper()
	doc, err := asyncapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestServerFramesMatchAsyncAPI encodes one frame of every server type with
// the adapter's own constructors and holds it to the document, so that a
// field renamed or added on one side fails here; the document must have no
// server frame this test does not encode.
func TestServerFramesMatchAsyncAPI(t *testing.T) {
	doc := loadAsyncAPI(t)
	at := time.Date(2026, 11, 30, 17, 40, 16, 123e6, time.FixedZone("CET", 3600))
	conv := conversation.IDFor("1001", "1002")
	view := ports.MessageView{MessageID: string(message.IDFor("1001", "k-1")), Conversation: string(conv), Seq: 7,
		From: "1001", To: "1002", Body: "see you at eight?", SentAt: at}
	edited, recalled := view, view
	edited.Body, edited.EditedAt = "nine?", at
	recalled.Body, recalled.RecalledAt = "", at
	recalledUpdate := recalled
	recalledUpdate.Rev = 3
	frames := []struct {
		name  string
		frame any
	}{
		{"ack", ackOf(application.Ack{ClientID: "k-1", MessageID: view.MessageID, Conversation: conv, Seq: 7, SentAt: at})},
		{"message", messageOf(view)},
		{"message of a group", messageOf(ports.MessageView{MessageID: view.MessageID, Conversation: string(conversation.NewGroupID([16]byte{1})),
			Seq: 1, From: "1001", Body: "to all", SentAt: at})},
		{"receipt delivered", receiptOf(ports.Receipt{Conversation: string(conv), User: "1002", DeliveredUpTo: 7})},
		{"receipt read", receiptOf(ports.Receipt{Conversation: string(conv), User: "1002", ReadUpTo: 7})},
		{"receipt both", receiptOf(ports.Receipt{Conversation: string(conv), User: "1002", DeliveredUpTo: 7, ReadUpTo: 6})},
		{"messages", messagesOf(application.Page{Conversation: string(conv), Messages: []ports.MessageView{view}, More: true})},
		{"messages empty", messagesOf(application.Page{Conversation: string(conv)})},
		{"pong", pongFrame{Type: typePong}},
		{"authed", authedOf("a1", at)},
		{"authed without id", authedOf("", at)},
		{"typing", typingOf(ports.TypingView{Conversation: string(conv), User: "1001"})},
		{"member added", memberOf(ports.MemberChange{Conversation: string(conversation.NewGroupID([16]byte{1})), User: "1003",
			Change: ports.MemberJoined, By: "1001", At: at})},
		{"member left", memberOf(ports.MemberChange{Conversation: string(conversation.NewGroupID([16]byte{1})), User: "1003",
			Change: ports.MemberLeft, By: "1003", At: at})},
		{"presence online", presenceOf(ports.PresenceView{User: "1002", Online: true, LastSeen: at})},
		{"presence offline", presenceOf(ports.PresenceView{User: "1002", LastSeen: at})},
		{"presence never seen", presenceOf(ports.PresenceView{User: "1002"})},
		{"message edited", messageOf(edited)},
		{"message recalled", messageOf(recalled)},
		{"messages with updates", messagesOf(application.Page{Conversation: string(conv), Messages: []ports.MessageView{edited},
			Updates: []ports.MessageView{recalledUpdate}})},
		{"messages without updates", messagesOf(application.Page{Conversation: string(conv), Updates: []ports.MessageView{}})},
		{"changed", changedOf(application.Changed{ClientID: "e-1", Conversation: conv, Seq: 7, Rev: 2})},
		{"update edited", updateOf(ports.UpdateView{Conversation: string(conv), Seq: 7, Rev: 2, Body: "nine?", EditedAt: at})},
		{"update recalled", updateOf(ports.UpdateView{Conversation: string(conv), Seq: 7, Rev: 3, RecalledAt: at})},
		{"error", errorOf("k-1", wire.CodeBadRequest, "missing field body")},
		{"error without id", errorOf("", wire.CodeTooLarge, "frame larger than 65536 bytes")},
	}
	var encoded []string
	for _, f := range frames {
		data, err := json.Marshal(f.frame)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		var typed struct{ Type string }
		_ = json.Unmarshal(data, &typed)
		encoded = append(encoded, typed.Type)
		if err := doc.Check(asyncapi.FromServer, data); err != nil {
			t.Errorf("%s %s: %v", f.name, data, err)
		}
	}
	for _, typ := range doc.FrameTypes(asyncapi.FromServer) {
		if !slices.Contains(encoded, typ) {
			t.Errorf("the document has a server frame %q that this test does not encode", typ)
		}
	}
}

// TestErrorCodesMatchAsyncAPI: every code an error frame can carry is in the
// document's enum; too_many_sessions answers an upgrade, never a frame.
func TestErrorCodesMatchAsyncAPI(t *testing.T) {
	doc := loadAsyncAPI(t)
	for _, code := range []string{wire.CodeBadRequest, wire.CodeTooLarge, wire.CodeUnauthorized, wire.CodeForbidden,
		wire.CodeNotFound, wire.CodeRateLimited, wire.CodeUnavailable, wire.CodeInternal} {
		data, _ := json.Marshal(errorOf("", code, "m"))
		if err := doc.Check(asyncapi.FromServer, data); err != nil {
			t.Errorf("error code %s: %v", code, err)
		}
	}
	data, _ := json.Marshal(errorOf("", wire.CodeTooManySessions, "m"))
	if doc.Check(asyncapi.FromServer, data) == nil {
		t.Errorf("the document lets an error frame carry %s, which only an upgrade's HTTP answer carries", wire.CodeTooManySessions)
	}
}

// TestCloseCodesMatchAsyncAPI: every close code the adapter sends is in the
// document's x-close-codes.
func TestCloseCodesMatchAsyncAPI(t *testing.T) {
	doc := loadAsyncAPI(t)
	for _, code := range []int{websocket.CloseGoingAway, websocket.ClosePolicyViolation, websocket.CloseMessageTooBig, closeTokenExpired} {
		if !doc.DocumentsCloseCode(code) {
			t.Errorf("close code %d is not in the document's x-close-codes", code)
		}
	}
}

// TestAsyncAPIExamples: every example the document gives fits its message's
// schema, which the AsyncAPI parser does not check.
func TestAsyncAPIExamples(t *testing.T) {
	doc := loadAsyncAPI(t)
	if len(doc.Examples()) == 0 {
		t.Fatal("the document has no examples")
	}
	for _, ex := range doc.Examples() {
		if err := doc.Check(ex.Direction, ex.Payload); err != nil {
			t.Errorf("example of %s %s: %v", ex.Message, ex.Payload, err)
		}
	}
}

// Verdicts on a client frame, of the document's schemas and of decodeFrame.
const (
	bothAccept = iota
	bothRefuse
	// serverOnly: the rule is one JSON Schema cannot state (UTF-8, escapes,
	// the spelling of a number), which the document leaves in its prose.
	serverOnly
	// lenient: the decoder takes a null as an absent field; the document
	// asks clients to leave the field out.
	lenient
)

// TestClientFramesAgreeWithAsyncAPI holds the document's client schemas to
// the decoder: what one accepts the other accepts, but for the rules each
// case names.
func TestClientFramesAgreeWithAsyncAPI(t *testing.T) {
	doc := loadAsyncAPI(t)
	conv := `"` + string(conversation.IDFor("1001", "1002")) + `"`
	users := make([]string, 201)
	for i := range users {
		users[i] = strconv.Quote("u" + strconv.Itoa(i))
	}
	cases := []struct {
		name    string
		frame   string
		verdict int
	}{
		{"send", `{"type":"send","id":"k-1","to":"1002","body":"hi"}`, bothAccept},
		{"send, unknown field", `{"type":"send","id":"k","to":"b","body":"x","extra":[1]}`, bothAccept},
		{"send, 4096 characters", `{"type":"send","id":"k","to":"b","body":"` + strings.Repeat("ж", 4096) + `"}`, bothAccept},
		{"send, 4097 characters", `{"type":"send","id":"k","to":"b","body":"` + strings.Repeat("ж", 4097) + `"}`, bothRefuse},
		{"send, empty body", `{"type":"send","id":"k","to":"b","body":""}`, bothRefuse},
		{"send, numeric body", `{"type":"send","id":"k","to":"b","body":7}`, bothRefuse},
		{"send, no id", `{"type":"send","to":"b","body":"x"}`, bothRefuse},
		{"send, id with a space", `{"type":"send","id":"k 1","to":"b","body":"x"}`, bothRefuse},
		{"send, id with a dot", `{"type":"send","id":"k.1","to":"b","body":"x"}`, bothRefuse},
		{"send, 65-char id", `{"type":"send","id":"` + strings.Repeat("k", 65) + `","to":"b","body":"x"}`, bothRefuse},
		{"send, to with a dot", `{"type":"send","id":"k","to":"b.c","body":"x"}`, bothAccept},
		{"send, to with a space", `{"type":"send","id":"k","to":"b c","body":"x"}`, bothRefuse},
		{"send, 65-char to", `{"type":"send","id":"k","to":"` + strings.Repeat("b", 65) + `","body":"x"}`, bothRefuse},
		{"send, no to", `{"type":"send","id":"k","body":"x"}`, bothRefuse},
		{"send to a group", `{"type":"send","id":"k","conversation":"g_AQAAAAAAAAAAAAAAAAAAAA","body":"x"}`, bothAccept},
		{"send by a direct conversation's id", `{"type":"send","id":"k","conversation":` + conv + `,"body":"x"}`, bothAccept},
		{"send, to and conversation", `{"type":"send","id":"k","to":"b","conversation":` + conv + `,"body":"x"}`, bothRefuse},
		{"send, malformed conversation", `{"type":"send","id":"k","conversation":"g_short","body":"x"}`, bothRefuse},
		{"send, a lone surrogate", `{"type":"send","id":"k","to":"b","body":"\ud800"}`, serverOnly},
		{"send, invalid UTF-8", "{\"type\":\"send\",\"id\":\"k\",\"to\":\"b\",\"body\":\"\xc3\x28\"}", serverOnly},
		{"seed", `{"toId":"1002","msg":"hi"}`, bothAccept},
		{"seed, numeric toId", `{"toId":1002,"msg":"hi"}`, bothAccept},
		{"seed, negative toId", `{"toId":-1,"msg":"hi"}`, bothRefuse},
		{"seed, empty msg", `{"toId":"1002","msg":""}`, bothRefuse},
		{"seed, bad toId", `{"toId":"no such id!","msg":"x"}`, bothRefuse},
		{"no type, no seed fields", `{"id":"n1","to":"bob","body":"x"}`, bothRefuse},
		{"unknown type", `{"type":"dance"}`, bothRefuse},
		{"type not a string", `{"type":1}`, bothRefuse},
		{"not an object", `[{"type":"ping"}]`, bothRefuse},
		{"read", `{"type":"read","conversation":` + conv + `,"upTo":7}`, bothAccept},
		{"read, upTo 2^53-1", `{"type":"read","conversation":` + conv + `,"upTo":9007199254740991}`, bothAccept},
		{"read, upTo 2^53", `{"type":"read","conversation":` + conv + `,"upTo":9007199254740992}`, bothRefuse},
		{"read, upTo negative", `{"type":"read","conversation":` + conv + `,"upTo":-1}`, bothRefuse},
		{"read, upTo fraction", `{"type":"read","conversation":` + conv + `,"upTo":1.5}`, bothRefuse},
		{"read, upTo a string", `{"type":"read","conversation":` + conv + `,"upTo":"7"}`, bothRefuse},
		{"read, upTo 1e3", `{"type":"read","conversation":` + conv + `,"upTo":1e3}`, serverOnly},
		{"read, upTo 1.0", `{"type":"read","conversation":` + conv + `,"upTo":1.0}`, serverOnly},
		{"read, no upTo", `{"type":"read","conversation":` + conv + `}`, bothRefuse},
		{"read, malformed conversation", `{"type":"read","conversation":"c_short","upTo":1}`, bothRefuse},
		{"read, conversation of the wrong prefix", `{"type":"read","conversation":"m_AAAAAAAAAAAAAAAAAAAAAA","upTo":1}`, bothRefuse},
		{"sync", `{"type":"sync","conversation":` + conv + `,"after":0}`, bothAccept},
		{"sync with limit", `{"type":"sync","conversation":` + conv + `,"after":3,"limit":501}`, bothAccept},
		{"sync, limit negative", `{"type":"sync","conversation":` + conv + `,"after":0,"limit":-5}`, bothRefuse},
		{"sync, limit null", `{"type":"sync","conversation":` + conv + `,"after":0,"limit":null}`, lenient},
		{"sync, no after", `{"type":"sync","conversation":` + conv + `}`, bothRefuse},
		{"sync, no conversation", `{"type":"sync","after":0}`, bothRefuse},
		{"sync with changesAfter", `{"type":"sync","conversation":` + conv + `,"after":0,"changesAfter":0}`, bothAccept},
		{"sync, changesAfter negative", `{"type":"sync","conversation":` + conv + `,"after":0,"changesAfter":-1}`, bothRefuse},
		{"sync, changesAfter null", `{"type":"sync","conversation":` + conv + `,"after":0,"changesAfter":null}`, lenient},
		{"edit", `{"type":"edit","id":"e-1","conversation":` + conv + `,"seq":3,"body":"nine?"}`, bothAccept},
		{"edit, no body", `{"type":"edit","id":"e-1","conversation":` + conv + `,"seq":3}`, bothRefuse},
		{"edit, empty body", `{"type":"edit","id":"e-1","conversation":` + conv + `,"seq":3,"body":""}`, bothRefuse},
		{"edit, no seq", `{"type":"edit","id":"e-1","conversation":` + conv + `,"body":"x"}`, bothRefuse},
		{"edit, no id", `{"type":"edit","conversation":` + conv + `,"seq":3,"body":"x"}`, bothRefuse},
		{"edit, id with a dot", `{"type":"edit","id":"e.1","conversation":` + conv + `,"seq":3,"body":"x"}`, bothRefuse},
		{"recall", `{"type":"recall","id":"r-1","conversation":` + conv + `,"seq":3}`, bothAccept},
		{"recall, seq a string", `{"type":"recall","id":"r-1","conversation":` + conv + `,"seq":"3"}`, bothRefuse},
		{"recall, no conversation", `{"type":"recall","id":"r-1","seq":3}`, bothRefuse},
		{"ping", `{"type":"ping"}`, bothAccept},
		{"ping with id", `{"type":"ping","id":"p1"}`, bothAccept},
		{"ping with a numeric id", `{"type":"ping","id":1}`, bothRefuse},
		{"ping with a null id", `{"type":"ping","id":null}`, lenient},
		// The decoder reads every field any frame defines, whatever the type,
		// so a stray `to` of the wrong type is refused even on a ping.
		{"ping with a numeric to", `{"type":"ping","to":1}`, serverOnly},
		{"auth", `{"type":"auth","id":"a1","token":"x.y.z"}`, bothAccept},
		{"auth, empty token", `{"type":"auth","token":""}`, bothRefuse},
		{"auth, no token", `{"type":"auth"}`, bothRefuse},
		{"typing", `{"type":"typing","conversation":` + conv + `}`, bothAccept},
		{"typing, no conversation", `{"type":"typing"}`, bothRefuse},
		{"presence", `{"type":"presence","users":["1002","alice","1002"]}`, bothAccept},
		{"presence, 200 users", `{"type":"presence","users":[` + strings.Join(users[:200], ",") + `]}`, bothAccept},
		{"presence, 201 users", `{"type":"presence","users":[` + strings.Join(users, ",") + `]}`, bothRefuse},
		{"presence, no users", `{"type":"presence","users":[]}`, bothRefuse},
		{"presence, users not a list", `{"type":"presence","users":"bob"}`, bothRefuse},
		{"presence, a bad user id", `{"type":"presence","users":["bob","not ok"]}`, bothRefuse},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			docErr := doc.Check(asyncapi.FromClient, []byte(c.frame))
			_, decodeErr := decodeFrame([]byte(c.frame))
			want := map[int][2]bool{bothAccept: {true, true}, bothRefuse: {false, false}, serverOnly: {true, false}, lenient: {false, true}}[c.verdict]
			if got := [2]bool{docErr == nil, decodeErr == nil}; got != want {
				t.Fatalf("%s: the document accepts it: %v (%v); the decoder accepts it: %v (%v); want %v and %v",
					c.frame, got[0], docErr, got[1], decodeErr, want[0], want[1])
			}
		})
	}
}
