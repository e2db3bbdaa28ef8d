package websocket

import (
	"context"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// The frames of PROTOCOL.md's "Presence and typing (v1.1)".

type presenceFrame struct {
	Type string `json:"type"`
	wire.Presence
}

type typingFrame struct {
	Type         string  `json:"type"`
	Conversation string  `json:"conversation"`
	User         user.ID `json:"user"`
}

func presenceOf(p ports.PresenceView) presenceFrame {
	return presenceFrame{Type: typePresence, Presence: wire.PresenceOf(p)}
}

func typingOf(t ports.TypingView) typingFrame {
	return typingFrame{Type: typeTyping, Conversation: t.Conversation, User: t.User}
}

// decodePresence parses the users of a `presence` frame.
func decodePresence(f *clientFrame, raw rawFrame) *frameError {
	if raw.Users == nil {
		return badRequest(f.ID, "missing field users")
	}
	users, err := presence.ParseUsers(raw.Users)
	if err != nil {
		return badRequest(f.ID, err.Error())
	}
	f.Users = users
	return nil
}

// PushPresence queues a presence frame; false when the session is full or closing.
func (s *session) PushPresence(p ports.PresenceView) bool {
	return s.push(typePresence, presenceOf(p))
}

// PushTyping queues a typing frame; false when the session is full or closing.
func (s *session) PushTyping(t ports.TypingView) bool {
	return s.push(typeTyping, typingOf(t))
}

func (s *session) handleTyping(ctx context.Context, f clientFrame) error {
	return s.srv.app.Typing.Handle(ctx, application.TypingCommand{User: s.user, Conversation: f.Conversation})
}

// handlePresence answers with one presence frame per user asked for, as
// the session's user may see them.
func (s *session) handlePresence(ctx context.Context, f clientFrame) error {
	views, err := s.srv.app.Presence.Query(ctx, s.user, f.Users)
	if err != nil {
		return err
	}
	for _, v := range views {
		s.reply(typePresence, presenceOf(v))
	}
	return nil
}
