package httpapi

import (
	"context"
	"github.com/evchat/chatd/adapters/wire"
	"net/http"
	"strings"

	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/user"
)

// presenceJSON is one user's presence; lastSeen only when offline and known.
type presenceJSON struct {
	User     user.ID `json:"user"`
	Online   bool    `json:"online"`
	LastSeen string  `json:"lastSeen,omitempty"`
}

// presence answers GET /api/presence?users=a,b with each user's presence
// as the asker may see it, by the rules of the WebSocket `presence` frame:
// 1-200 valid user ids.
func (a *API) presence(w http.ResponseWriter, r *http.Request, asker user.ID) {
	if a.deps.App.Presence == nil {
		writeError(w, http.StatusServiceUnavailable, application.CodeUnavailable, "presence is not running on this node")
		return
	}
	var ids []string
	if q := r.URL.Query().Get("users"); q != "" {
		ids = strings.Split(q, ",")
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	views, err := a.deps.App.Presence.Query(ctx, asker, ids)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]presenceJSON, len(views))
	for i, v := range views {
		out[i] = presenceJSON{User: v.User, Online: v.Online}
		if !v.Online && !v.LastSeen.IsZero() {
			out[i].LastSeen = wire.FormatTime(v.LastSeen)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
