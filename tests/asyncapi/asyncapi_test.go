package asyncapi_test

import (
	"strings"
	"testing"

	"github.com/evchat/chatd/tests/asyncapi"
)

// tinyDocument has a client and a server frame of the same type, an untyped
// client frame, a reply, $refs through the channel and the components, and
// a close code.
const tinyDocument = `
asyncapi: 3.0.0
info: {title: tiny, version: 1.0.0}
channels:
  chat:
    address: /ws
    x-close-codes:
      - {code: 4001, reason: token expired}
    messages:
      hello: {$ref: '#/components/messages/hello'}
      seed: {$ref: '#/components/messages/seed'}
      welcome: {$ref: '#/components/messages/welcome'}
operations:
  greet:
    action: receive
    channel: {$ref: '#/channels/chat'}
    messages:
      - $ref: '#/channels/chat/messages/hello'
      - $ref: '#/channels/chat/messages/seed'
    reply:
      channel: {$ref: '#/channels/chat'}
      messages: [{$ref: '#/channels/chat/messages/welcome'}]
components:
  messages:
    hello:
      payload:
        type: object
        required: [type, name]
        properties: {type: {const: hello}, name: {$ref: '#/components/schemas/Name'}}
      examples: [{payload: {type: hello, name: ann}}]
    seed:
      payload: {type: object, required: [msg], properties: {msg: {type: string}}}
    welcome:
      payload:
        type: object
        additionalProperties: false
        required: [type, at]
        properties: {type: {const: hello}, at: {type: string, format: date-time}}
  schemas:
    Name: {type: string, pattern: '^[a-z]+$'}
`

func TestCheck(t *testing.T) {
	doc, err := asyncapi.Parse([]byte(tinyDocument))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		dir   asyncapi.Direction
		frame string
		err   string // part of the error, "" when the frame is valid
	}{
		{"a client frame", asyncapi.FromClient, `{"type":"hello","name":"ann"}`, ""},
		{"a $ref'd schema breaks", asyncapi.FromClient, `{"type":"hello","name":"Ann"}`, "/name"},
		{"a client frame as the server's", asyncapi.FromServer, `{"type":"hello","name":"ann"}`, "additional"},
		{"a reply", asyncapi.FromServer, `{"type":"hello","at":"2026-11-30T17:40:16.123Z"}`, ""},
		{"a format is asserted", asyncapi.FromServer, `{"type":"hello","at":"yesterday"}`, "date-time"},
		{"an untyped frame", asyncapi.FromClient, `{"msg":"hi"}`, ""},
		{"an untyped frame breaks", asyncapi.FromClient, `{"text":"hi"}`, "msg"},
		{"an undocumented type", asyncapi.FromClient, `{"type":"bye"}`, `no client frame of type "bye"`},
		{"an untyped server frame", asyncapi.FromServer, `{"at":"2026-11-30T17:40:16Z"}`, `no server frame of type ""`},
		{"a type that is no string", asyncapi.FromClient, `{"type":7}`, "not a string"},
		{"not an object", asyncapi.FromClient, `["hello"]`, "not a JSON object"},
		{"not JSON", asyncapi.FromClient, `{"type":`, "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := doc.Check(tt.dir, []byte(tt.frame))
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Check(%s, %s) = %v, want nil", tt.dir, tt.frame, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Check(%s, %s) = %v, want an error containing %q", tt.dir, tt.frame, err, tt.err)
			}
		})
	}
	rule := func(frame string) string { return asyncapi.Rule(doc.Check(asyncapi.FromClient, []byte(frame))) }
	if a, b := rule(`{"type":"hello","name":"Ann"}`), rule(`{"type":"hello","name":"Bob"}`); a != b || !strings.HasSuffix(a, "#/components/schemas/Name/pattern") {
		t.Errorf("Rule of two names breaking one pattern: %q and %q, want the pattern's place in both", a, b)
	}
	if got := doc.FrameTypes(asyncapi.FromClient); strings.Join(got, ",") != ",hello" {
		t.Errorf("client frame types %q, want the untyped one and hello", got)
	}
	if ex := doc.Examples(); len(ex) != 1 || ex[0].Message != "#/components/messages/hello" || ex[0].Direction != asyncapi.FromClient {
		t.Errorf("examples %+v, want hello's one", ex)
	}
	if !doc.DocumentsCloseCode(4001) || doc.DocumentsCloseCode(1000) {
		t.Error("close codes: want 4001 and not 1000")
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct{ name, document, err string }{
		{"no operations", "asyncapi: 3.0.0\n", "no operations"},
		{"an unknown action", "operations: {x: {action: push}}\n", "action push"},
		{"a $ref out of the document", "operations: {x: {action: send, messages: [{$ref: 'other.yaml#/m'}]}}\n", "does not point into"},
		{"a $ref to nothing", "operations: {x: {action: send, messages: [{$ref: '#/components/messages/m'}]}}\n", "points at nothing"},
		{"two schemas for one type", `
operations: {x: {action: send, messages: [{$ref: '#/components/messages/a'}, {$ref: '#/components/messages/b'}]}}
components:
  messages:
    a: {payload: {properties: {type: {const: t}}}}
    b: {payload: {properties: {type: {const: t}}}}
`, `type "t" have two messages`},
		{"not YAML", "operations: [", "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := asyncapi.Parse([]byte(tt.document)); err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

// TestLoad: the checkout's own document loads and has both directions.
func TestLoad(t *testing.T) {
	doc, err := asyncapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.FrameTypes(asyncapi.FromClient)) == 0 || len(doc.FrameTypes(asyncapi.FromServer)) == 0 {
		t.Fatalf("client frames %q, server frames %q: want both", doc.FrameTypes(asyncapi.FromClient), doc.FrameTypes(asyncapi.FromServer))
	}
}
