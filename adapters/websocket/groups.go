package websocket

import (
	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// The frames of PROTOCOL.md's "Groups, edits and recalls (v1.3)" that
// tell of a group's membership.

const typeMember = "member"

type memberFrame struct {
	Type         string  `json:"type"`
	Conversation string  `json:"conversation"`
	User         user.ID `json:"user"`
	Change       string  `json:"change"`
	By           user.ID `json:"by"`
	At           string  `json:"at"`
}

func memberOf(m ports.MemberChange) memberFrame {
	return memberFrame{Type: typeMember, Conversation: m.Conversation, User: m.User, Change: m.Change, By: m.By,
		At: wire.FormatTime(m.At)}
}

// PushMember queues a member frame; false when the session is full or closing.
func (s *session) PushMember(m ports.MemberChange) bool {
	return s.push(typeMember, memberOf(m))
}
