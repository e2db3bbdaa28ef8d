package wire

import (
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Presence is one user's presence, as the `presence` frame and
// GET /api/presence both answer it; lastSeen only when offline and known.
type Presence struct {
	User     user.ID `json:"user"`
	Online   bool    `json:"online"`
	LastSeen string  `json:"lastSeen,omitempty"`
}

// PresenceOf shapes a presence view.
func PresenceOf(p ports.PresenceView) Presence {
	out := Presence{User: p.User, Online: p.Online}
	if !p.Online && !p.LastSeen.IsZero() {
		out.LastSeen = FormatTime(p.LastSeen)
	}
	return out
}
