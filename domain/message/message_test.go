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

func TestEditAndRecall(t *testing.T) {
	sentAt := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const window = 15 * time.Minute
	type step struct {
		op    string // "edit" or "recall"
		by    user.ID
		after time.Duration // since sentAt
		err   error
	}
	tests := []struct {
		name     string
		steps    []step
		body     message.Body // after the steps
		edited   bool
		recalled bool
	}{
		{"the author edits within the window", []step{{"edit", "alice", time.Minute, nil}}, "edited", true, false},
		{"the author edits again", []step{{"edit", "alice", time.Minute, nil}, {"edit", "alice", 2 * time.Minute, nil}}, "edited", true, false},
		{"the edge of the window is within it", []step{{"edit", "alice", window, nil}}, "edited", true, false},
		{"past the window the author may not edit", []step{{"edit", "alice", window + time.Millisecond, message.ErrEditWindowClosed}}, "hi", false, false},
		{"another user may not edit", []step{{"edit", "bob", time.Minute, message.ErrNotAuthor}}, "hi", false, false},
		{"the author recalls within the window", []step{{"recall", "alice", time.Minute, nil}}, "", false, true},
		{"an edited message can be recalled", []step{{"edit", "alice", time.Minute, nil}, {"recall", "alice", 2 * time.Minute, nil}}, "", true, true},
		{"past the window the author may not recall", []step{{"recall", "alice", window + time.Second, message.ErrEditWindowClosed}}, "hi", false, false},
		{"another user may not recall", []step{{"recall", "bob", time.Minute, message.ErrNotAuthor}}, "hi", false, false},
		{"a recalled message is not edited", []step{{"recall", "alice", time.Minute, nil}, {"edit", "alice", 2 * time.Minute, message.ErrRecalled}}, "", false, true},
		{"a recalled message is not recalled twice", []step{{"recall", "alice", time.Minute, nil}, {"recall", "alice", 2 * time.Minute, message.ErrRecalled}}, "", false, true},
		{"a recalled message is refused to others alike", []step{{"recall", "alice", time.Minute, nil}, {"edit", "bob", 2 * time.Minute, message.ErrRecalled}}, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := message.Posted("m_1", 1, "alice", "bob", "hi", sentAt)
			for i, s := range tt.steps {
				var err error
				if s.op == "edit" {
					err = m.Edit(s.by, "edited", sentAt.Add(s.after), window)
				} else {
					err = m.Recall(s.by, sentAt.Add(s.after), window)
				}
				if !errors.Is(err, s.err) {
					t.Fatalf("step %d %s by %s: err = %v, want %v", i, s.op, s.by, err, s.err)
				}
				if err != nil && domain.KindOf(err) != domain.Forbidden {
					t.Fatalf("step %d: kind %v, want forbidden", i, domain.KindOf(err))
				}
			}
			if m.Body != tt.body || m.EditedAt().IsZero() == tt.edited || m.Recalled() != tt.recalled || m.RecalledAt().IsZero() == tt.recalled {
				t.Fatalf("body %q edited %v recalled %v at %v; want %q %v %v", m.Body, m.EditedAt(), m.Recalled(), m.RecalledAt(), tt.body, tt.edited, tt.recalled)
			}
		})
	}
}

func TestApplyIgnoresTheRules(t *testing.T) {
	// Replay applies what was accepted long ago: the window has passed by
	// now, and that must not undo the stored change.
	sentAt := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	m := message.Posted("m_1", 1, "alice", "bob", "hi", sentAt)
	m.ApplyEdit("edited", sentAt.Add(time.Minute))
	if m.Body != "edited" || !m.EditedAt().Equal(sentAt.Add(time.Minute)) {
		t.Fatalf("replayed edit: body %q at %v", m.Body, m.EditedAt())
	}
	m.ApplyRecall(sentAt.Add(2 * time.Minute))
	if m.Body != "" || !m.Recalled() {
		t.Fatalf("replayed recall kept body %q, recalled %v", m.Body, m.Recalled())
	}
}
