package websocket

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

const testConv = "c_AAAAAAAAAAAAAAAAAAAAAA"

// decodeCase is a frame in, and the frame decoded or part of the
// bad_request message expected of it: err is "" when the frame is valid.
type decodeCase struct {
	name string
	in   string
	want clientFrame
	err  string
}

func TestDecodeSendByConversation(t *testing.T) {
	group := conversation.NewGroupID([16]byte{1})
	checkDecoding(t, []decodeCase{
		{"to a group", `{"type":"send","id":"k","conversation":"` + string(group) + `","body":"hi"}`,
			clientFrame{Type: typeSend, ID: "k", Key: "k", Conversation: group, Body: "hi"}, ""},
		{"by a direct conversation's id", `{"type":"send","id":"k","conversation":"` + testConv + `","body":"hi"}`,
			clientFrame{Type: typeSend, ID: "k", Key: "k", Conversation: testConv, Body: "hi"}, ""},
		{"to and conversation together", `{"type":"send","id":"k","to":"bob","conversation":"` + testConv + `","body":"hi"}`, clientFrame{}, "exclusive"},
		{"a malformed conversation", `{"type":"send","id":"k","conversation":"g_x","body":"hi"}`, clientFrame{}, "conversation id"},
		{"no body", `{"type":"send","id":"k","conversation":"` + testConv + `"}`, clientFrame{}, "missing field body"},
	})
}

func checkDecoding(t *testing.T, tests []decodeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFrame([]byte(tt.in))
			if tt.err == "" {
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("decodeFrame = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || err.Code != wire.CodeBadRequest || !strings.Contains(err.Message, tt.err) {
				t.Fatalf("decodeFrame = %+v, %v; want bad_request containing %q", got, err, tt.err)
			}
		})
	}
}

func TestDecodeFrame(t *testing.T) {
	tests := []decodeCase{
		{"send", `{"type":"send","id":"k-1","to":"1002","body":"hi"}`, clientFrame{Type: "send", ID: "k-1", Key: "k-1", To: "1002", Body: "hi"}, ""},
		{"send, unknown fields ignored", `{"type":"send","id":"k","to":"b","body":"x","extra":[1]}`, clientFrame{Type: "send", ID: "k", Key: "k", To: "b", Body: "x"}, ""},
		{"seed", `{"toId":"1002","msg":"hi"}`, clientFrame{Type: "send", Seed: true, To: "1002", Body: "hi"}, ""},
		{"seed, numeric toId", `{"toId":1002,"msg":"hi"}`, clientFrame{Type: "send", Seed: true, To: "1002", Body: "hi"}, ""},
		{"seed, negative toId", `{"toId":-1,"msg":"hi"}`, clientFrame{}, "toId"},
		{"seed, empty msg", `{"toId":"1002","msg":""}`, clientFrame{}, "empty"},
		{"read", `{"type":"read","conversation":"` + testConv + `","upTo":7}`, clientFrame{Type: "read", Conversation: testConv, UpTo: 7}, ""},
		{"read, upTo missing", `{"type":"read","conversation":"` + testConv + `"}`, clientFrame{}, "missing field upTo"},
		{"read, upTo null", `{"type":"read","conversation":"` + testConv + `","upTo":null}`, clientFrame{}, "missing field upTo"},
		{"read, upTo a string", `{"type":"read","conversation":"` + testConv + `","upTo":"7"}`, clientFrame{}, "non-negative integer"},
		{"read, upTo exponent", `{"type":"read","conversation":"` + testConv + `","upTo":1e3}`, clientFrame{}, "non-negative integer"},
		{"sync", `{"type":"sync","conversation":"` + testConv + `","after":0}`, clientFrame{Type: "sync", Conversation: testConv}, ""},
		{"sync with limit", `{"type":"sync","conversation":"` + testConv + `","after":3,"limit":20}`, clientFrame{Type: "sync", Conversation: testConv, After: 3, Limit: 20}, ""},
		{"sync, limit over the page maximum clamped", `{"type":"sync","conversation":"` + testConv + `","after":3,"limit":9007199254740991}`, clientFrame{Type: "sync", Conversation: testConv, After: 3, Limit: application.MaxPageLimit}, ""},
		{"sync, after missing", `{"type":"sync","conversation":"` + testConv + `"}`, clientFrame{}, "missing field after"},
		{"sync, conversation missing", `{"type":"sync","after":0}`, clientFrame{}, "missing field conversation"},
		{"sync, limit negative", `{"type":"sync","conversation":"` + testConv + `","after":0,"limit":-5}`, clientFrame{}, "limit"},
		{"ping", `{"type":"ping"}`, clientFrame{Type: "ping"}, ""},
		{"ping with id", `{"type":"ping","id":"p1"}`, clientFrame{Type: "ping", ID: "p1"}, ""},
		{"empty", ``, clientFrame{}, "not a JSON object"},
		{"null", `null`, clientFrame{}, "missing field type"},
		{"array", `[]`, clientFrame{}, "not a JSON object"},
		{"string", `"send"`, clientFrame{}, "not a JSON object"},
		{"trailing garbage", `{"type":"ping"} x`, clientFrame{}, "not a JSON object"},
		{"type not a string", `{"type":1}`, clientFrame{}, "type"},
		{"invalid utf-8", "{\"type\":\"ping\",\"x\":\"\xc3\x28\"}", clientFrame{}, "UTF-8"},
		{"a lone high surrogate", `{"type":"send","id":"k","to":"b","body":"\ud800"}`, clientFrame{}, "surrogate"},
		{"a lone low surrogate", `{"type":"send","id":"k","to":"b","body":"\udc00"}`, clientFrame{}, "surrogate"},
		{"a high surrogate before a letter", `{"type":"send","id":"k","to":"b","body":"\ud83dx"}`, clientFrame{}, "surrogate"},
		{"a lone surrogate in another field", `{"type":"ping","x":"\udfff"}`, clientFrame{}, "surrogate"},
		{"an escaped surrogate pair", `{"type":"send","id":"k","to":"b","body":"\ud83d\ude00"}`, clientFrame{Type: "send", ID: "k", Key: "k", To: "b", Body: "\U0001F600"}, ""},
		{"an escaped backslash and u", `{"type":"send","id":"k","to":"b","body":"\\ud800"}`, clientFrame{Type: "send", ID: "k", Key: "k", To: "b", Body: `\ud800`}, ""},
		{"body of 4096 characters", `{"type":"send","id":"k","to":"b","body":"` + strings.Repeat("ж", 4096) + `"}`,
			clientFrame{Type: "send", ID: "k", Key: "k", To: "b", Body: message.Body(strings.Repeat("ж", 4096))}, ""},
		{"body of 4097 characters", `{"type":"send","id":"k","to":"b","body":"` + strings.Repeat("ж", 4097) + `"}`, clientFrame{}, "4096"},
		{"id too long", `{"type":"send","id":"` + strings.Repeat("k", 65) + `","to":"b","body":"x"}`, clientFrame{}, "id must be"},
		{"to too long", `{"type":"send","id":"k","to":"` + strings.Repeat("b", 65) + `","body":"x"}`, clientFrame{}, "user id"},
	}
	checkDecoding(t, tests)
}

// TestDecodeFrameIntegerBounds: every integer field takes 0 to 2^53-1 and
// refuses anything else, never wrapping or clamping it into another value.
func TestDecodeFrameIntegerBounds(t *testing.T) {
	fields := []struct {
		field, frame string
		got          func(clientFrame) uint64
	}{
		{"after", `{"type":"sync","conversation":"` + testConv + `","after":%s}`, func(f clientFrame) uint64 { return f.After }},
		{"upTo", `{"type":"read","conversation":"` + testConv + `","upTo":%s}`, func(f clientFrame) uint64 { return f.UpTo }},
		{"limit", `{"type":"sync","conversation":"` + testConv + `","after":0,"limit":%s}`, func(f clientFrame) uint64 { return uint64(f.Limit) }},
	}
	values := []struct {
		name, text string
		ok         bool
		want       uint64 // after or upTo; limit is clamped to the page maximum
	}{
		{"zero", "0", true, 0},
		{"seven", "7", true, 7},
		{"2^53-1", "9007199254740991", true, wire.MaxInteger},
		{"2^53", "9007199254740992", false, 0},
		{"2^64-1", "18446744073709551615", false, 0},
		{"2^64", "18446744073709551616", false, 0},
		{"negative", "-1", false, 0},
		{"negative zero", "-0", false, 0},
		{"fraction", "1.5", false, 0},
		{"integral fraction", "1.0", false, 0},
		{"exponent", "1e3", false, 0},
		{"string", `"7"`, false, 0},
		{"boolean", "true", false, 0},
	}
	for _, f := range fields {
		for _, v := range values {
			t.Run(f.field+" "+v.name, func(t *testing.T) {
				got, err := decodeFrame([]byte(fmt.Sprintf(f.frame, v.text)))
				if !v.ok {
					if err == nil || err.Code != wire.CodeBadRequest || !strings.Contains(err.Message, f.field) {
						t.Fatalf("decodeFrame = %+v, %v; want bad_request naming %s", got, err, f.field)
					}
					return
				}
				want := v.want
				if f.field == "limit" {
					want = min(want, application.MaxPageLimit)
				}
				if err != nil || f.got(got) != want {
					t.Fatalf("decodeFrame = %+v, %v; want %s %d", got, err, f.field, want)
				}
			})
		}
	}
}

// fffdEscape matches an escaped U+FFFD, which a client may well send.
var fffdEscape = regexp.MustCompile(`(?i)\\ufffd`)

var protocolCodes = map[string]bool{
	"bad_request": true, "too_large": true, "unauthorized": true, "forbidden": true,
	"not_found": true, "rate_limited": true, "unavailable": true, "internal": true,
}

// FuzzDecodeFrame checks that the decoder never panics and that whatever it
// accepts is a frame the rest of the session can act on without checking
// again, and whatever it refuses carries a protocol code.
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"send","id":"k-1","to":"1002","body":"hi"}`,
		`{"toId":"1002","msg":"hi"}`,
		`{"toId":1002,"msg":"hi"}`,
		`{"type":"read","conversation":"` + testConv + `","upTo":3}`,
		`{"type":"sync","conversation":"` + testConv + `","after":0,"limit":50}`,
		`{"type":"ping"}`,
		`{"type":"ping","id":"p"}`,
		`{"type":"typing","conversation":"` + testConv + `"}`,
		`{"type":"send","id":"k","to":"b","body":""}`,
		`{"type":"sync","conversation":"x","after":-1}`,
		`{"type":"read","conversation":"` + testConv + `","upTo":1.5e2}`,
		`{"type":"sync","conversation":"` + testConv + `","after":18446744073709551615}`,
		`{"type":"read","conversation":"` + testConv + `","upTo":9007199254740992}`,
		`{"type":7,"id":{}}`,
		`null`, `[]`, `{}`, `{"`, `garbage`, "",
		"{\"type\":\"send\",\"id\":\"k\",\"to\":\"b\",\"body\":\"\xff\"}",
		"\xc3\x28",
		`{"type":"send","id":"k","to":"b","body":"\ud83d\ude00 \ud800 \ufffd"}`,
		`{"type":"send","id":"k","to":"b","body":"\udc00\ud83d"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeFrame(data)
		if err != nil {
			if !protocolCodes[err.Code] || err.Message == "" {
				t.Fatalf("error %+v has no protocol code or message", err)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("accepted invalid UTF-8 %q", data)
		}
		// Nothing accepted is rewritten: a U+FFFD the frame did not spell
		// can only come from a lone surrogate the decoder replaced.
		if strings.Count(string(got.Body), "\uFFFD") > bytes.Count(data, []byte("\uFFFD"))+len(fffdEscape.FindAll(data, -1)) {
			t.Fatalf("accepted %q, whose body decoded to %q", data, got.Body)
		}
		switch got.Type {
		case typeSend:
			if _, e := user.ParseID(string(got.To)); e != nil {
				t.Fatalf("accepted send to %q", got.To)
			}
			if _, e := message.ParseBody(string(got.Body)); e != nil {
				t.Fatalf("accepted body %q", got.Body)
			}
			if _, e := message.ParseClientID(got.ID); e != nil && !got.Seed {
				t.Fatalf("accepted id %q", got.ID)
			}
		case typeRead, typeSync, typeTyping:
			if _, e := conversation.ParseID(string(got.Conversation)); e != nil {
				t.Fatalf("accepted conversation %q", got.Conversation)
			}
			if got.Limit < 0 || got.Limit > application.MaxPageLimit {
				t.Fatalf("accepted limit %d", got.Limit)
			}
			if got.After > wire.MaxInteger || got.UpTo > wire.MaxInteger {
				t.Fatalf("accepted after %d, upTo %d beyond 2^53-1", got.After, got.UpTo)
			}
		case typePresence:
			if got.Users == nil {
				t.Fatal("accepted presence without users")
			}
		case typePing:
		default:
			t.Fatalf("accepted type %q", got.Type)
		}
	})
}

// benchFrames are a typical send of about 100 bytes, plain and with escapes
// (a newline and an emoji as a surrogate pair), for the decoder's cost.
var benchFrames = []struct{ name, frame string }{
	{"plain", `{"type":"send","id":"k-1732950000123","to":"1002","body":"hello there, see you at eight? bring the map"}`},
	{"escaped", `{"type":"send","id":"k-1732950000123","to":"1002","body":"hello\nthere \ud83d\ude00 see you at eight?"}`},
}

func BenchmarkDecodeFrame(b *testing.B) {
	for _, bf := range benchFrames {
		data := []byte(bf.frame)
		b.Run(fmt.Sprintf("%s %dB", bf.name, len(data)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := decodeFrame(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
