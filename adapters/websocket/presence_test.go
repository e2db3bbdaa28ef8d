package websocket

import (
	"reflect"
	"strings"
	"testing"

	"github.com/evchat/chatd/application"
)

func TestDecodePresenceAndTypingFrames(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want clientFrame
		err  string
	}{
		{"typing", `{"type":"typing","conversation":"` + testConv + `"}`, clientFrame{Type: "typing", Conversation: testConv}, ""},
		{"typing without a conversation", `{"type":"typing"}`, clientFrame{}, "missing field conversation"},
		{"typing in a malformed conversation", `{"type":"typing","conversation":"x"}`, clientFrame{}, "conversation id"},
		{"presence", `{"type":"presence","users":["a","b"]}`, clientFrame{Type: "presence", Users: []string{"a", "b"}}, ""},
		{"presence without users", `{"type":"presence"}`, clientFrame{}, "missing field users"},
		{"presence with users not a list", `{"type":"presence","users":"a,b"}`, clientFrame{}, "users has the wrong type"},
		{"presence with a number for a user", `{"type":"presence","users":[1001]}`, clientFrame{}, "wrong type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFrame([]byte(tt.in))
			if tt.err == "" {
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("decodeFrame = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || err.Code != application.CodeBadRequest || !strings.Contains(err.Message, tt.err) {
				t.Fatalf("decodeFrame = %+v, %v; want bad_request containing %q", got, err, tt.err)
			}
		})
	}
}
