package message_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

func TestParseBody(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{"plain", "hello", nil},
		{"4096 multi-byte characters", strings.Repeat("é", 4096), nil},
		{"emoji counts as one character", strings.Repeat("🎉", 4096), nil},
		{"empty", "", message.ErrEmptyBody},
		{"4097 characters", strings.Repeat("a", 4097), message.ErrBodyTooLong},
		{"invalid UTF-8", "ab\xffcd", message.ErrBodyNotUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := message.ParseBody(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && string(body) != tt.in {
				t.Fatalf("body = %q, want %q", body, tt.in)
			}
			if err != nil && domain.KindOf(err) != domain.Invalid {
				t.Fatalf("kind = %v, want invalid", domain.KindOf(err))
			}
		})
	}
}

func TestParseClientID(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"abc-DEF_123", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"has.dot", false},
		{"has space", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := message.ParseClientID(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseClientID(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
		})
	}
}

func TestIDFor(t *testing.T) {
	a := message.IDFor("alice", "k1")
	tests := []struct {
		name  string
		other message.ID
		same  bool
	}{
		{"same sender and key", message.IDFor("alice", "k1"), true},
		{"other key", message.IDFor("alice", "k2"), false},
		{"other sender", message.IDFor("bob", "k1"), false},
		{"no ambiguity at the separator", message.IDFor("alic", "ek1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (a == tt.other) != tt.same {
				t.Fatalf("IDFor equality = %v, want %v", a == tt.other, tt.same)
			}
		})
	}
}

func TestMessageTransitions(t *testing.T) {
	type step struct {
		op    string // "delivered" or "read"
		by    string
		moved bool
		err   error
		want  message.Status
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"delivered then read", []step{
			{"delivered", "bob", true, nil, message.StatusDelivered},
			{"read", "bob", true, nil, message.StatusRead},
		}},
		{"read implies delivered", []step{
			{"read", "bob", true, nil, message.StatusRead},
			{"delivered", "bob", false, nil, message.StatusRead},
		}},
		{"repeats are harmless", []step{
			{"delivered", "bob", true, nil, message.StatusDelivered},
			{"delivered", "bob", false, nil, message.StatusDelivered},
			{"read", "bob", true, nil, message.StatusRead},
			{"read", "bob", false, nil, message.StatusRead},
		}},
		{"only the recipient marks read", []step{
			{"read", "alice", false, message.ErrNotRecipient, message.StatusSent},
			{"read", "mallory", false, message.ErrNotRecipient, message.StatusSent},
		}},
		{"only the recipient marks delivered", []step{
			{"delivered", "alice", false, message.ErrNotRecipient, message.StatusSent},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := message.Posted("m_1", 1, "alice", "bob", "hi", time.Now())
			if m.Status() != message.StatusSent {
				t.Fatalf("new message status = %s", m.Status())
			}
			for i, s := range tt.steps {
				mark := m.MarkDelivered
				if s.op == "read" {
					mark = m.MarkRead
				}
				moved, err := mark(user.ID(s.by))
				if moved != s.moved || !errors.Is(err, s.err) || m.Status() != s.want {
					t.Fatalf("step %d %s by %s: moved=%v err=%v status=%s; want %v %v %s",
						i, s.op, s.by, moved, err, m.Status(), s.moved, s.err, s.want)
				}
			}
		})
	}
}
