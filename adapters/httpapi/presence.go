package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
)

// presence answers GET /api/presence?users=a,b with each user's presence
// as the asker may see it, by the rules of the WebSocket `presence` frame:
// 1-200 valid user ids.
func (a *API) presence(w http.ResponseWriter, r *http.Request, asker user.ID) {
	var ids []string
	if q := r.URL.Query().Get("users"); q != "" {
		ids = strings.Split(q, ",")
	}
	users, err := presence.ParseUsers(ids)
	if err != nil {
		a.fail(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	views, err := a.deps.App.Presence.Query(ctx, asker, users)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]wire.Presence, len(views))
	for i, v := range views {
		out[i] = wire.PresenceOf(v)
	}
	writeJSON(w, http.StatusOK, out)
}
