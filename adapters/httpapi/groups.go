package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
)

// The routes of groups (PROTOCOL v1.3) and of every member's markers.

func (a *API) createGroup(w http.ResponseWriter, r *http.Request, uid user.ID) {
	var req struct {
		Title   *string   `json:"title"`
		Members *[]string `json:"members"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	if req.Members == nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "missing field members")
		return
	}
	title, ok := parseTitle(w, req.Title)
	if !ok {
		return
	}
	members, ok := a.parseUsers(w, "members", *req.Members)
	if !ok {
		return
	}
	answerGroupWith(a, w, r, http.StatusCreated, a.deps.App.Groups.Create,
		application.CreateGroupCommand{Creator: uid, Title: title, Members: members})
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request, uid user.ID) {
	id, ok := a.groupID(w, r)
	if !ok {
		return
	}
	answerGroupWith(a, w, r, http.StatusOK, a.deps.App.Groups.Get, application.GetGroupQuery{Reader: uid, Conversation: id})
}

func (a *API) renameGroup(w http.ResponseWriter, r *http.Request, uid user.ID) {
	id, ok := a.groupID(w, r)
	if !ok {
		return
	}
	var req struct {
		Title *string `json:"title"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	title, ok := parseTitle(w, req.Title)
	if !ok {
		return
	}
	answerGroupWith(a, w, r, http.StatusOK, a.deps.App.Groups.Rename,
		application.RenameGroupCommand{By: uid, Conversation: id, Title: title})
}

func (a *API) changeMembers(w http.ResponseWriter, r *http.Request, uid user.ID) {
	id, ok := a.groupID(w, r)
	if !ok {
		return
	}
	var req struct {
		Add    []string `json:"add"`
		Remove []string `json:"remove"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	cmd := application.ChangeMembersCommand{By: uid, Conversation: id}
	if cmd.Add, ok = a.parseUsers(w, "add", req.Add); !ok {
		return
	}
	if cmd.Remove, ok = a.parseUsers(w, "remove", req.Remove); !ok {
		return
	}
	answerGroupWith(a, w, r, http.StatusOK, a.deps.App.Groups.ChangeMembers, cmd)
}

func (a *API) receipts(w http.ResponseWriter, r *http.Request, uid user.ID) {
	id, err := conversation.ParseID(r.PathValue("id"))
	if err != nil {
		a.fail(w, conversation.ErrNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	list, err := a.deps.App.Receipts.Handle(ctx, application.ReceiptsQuery{Reader: uid, Conversation: id})
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]receiptJSON, len(list))
	for i, m := range list {
		out[i] = receiptJSON(m)
	}
	writeJSON(w, http.StatusOK, out)
}

// answerGroupWith runs a group use case and answers the group it returns. A
// change runs to its end even if the client goes away, as a send does: it
// may be committing already.
func answerGroupWith[C any](a *API, w http.ResponseWriter, r *http.Request, status int, h application.Handler[C, application.Group], cmd C) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.cfg.RequestTimeout)
	defer cancel()
	g, err := h.Handle(ctx, cmd)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, status, groupJSONOf(g))
}

// groupID is the group a path names; a malformed id names none, which for
// a path is a 404.
func (a *API) groupID(w http.ResponseWriter, r *http.Request) (conversation.ID, bool) {
	id, err := conversation.ParseID(r.PathValue("id"))
	if err != nil || id.Kind() != conversation.Group {
		a.fail(w, conversation.ErrNotFound)
		return "", false
	}
	return id, true
}

// parseTitle parses a request's title, or answers 400.
func parseTitle(w http.ResponseWriter, s *string) (conversation.Title, bool) {
	if s == nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "missing field title")
		return "", false
	}
	title, err := conversation.ParseTitle(*s)
	if err != nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, err.Error())
		return "", false
	}
	return title, true
}

// parseUsers parses a list of user ids, or answers 400 naming the field.
func (a *API) parseUsers(w http.ResponseWriter, field string, ids []string) ([]user.ID, bool) {
	out := make([]user.ID, len(ids))
	for i, s := range ids {
		u, err := user.ParseID(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, wire.CodeBadRequest, fmt.Sprintf("%s[%d]: %v", field, i, err))
			return nil, false
		}
		out[i] = u
	}
	return out, true
}

type groupJSON struct {
	Conversation conversation.ID `json:"conversation"`
	Kind         string          `json:"kind"`
	Title        string          `json:"title"`
	// Owner is absent from the answer to the last member's leaving.
	Owner     user.ID   `json:"owner,omitempty"`
	Members   []user.ID `json:"members"`
	CreatedAt string    `json:"createdAt"`
}

func groupJSONOf(g application.Group) groupJSON {
	members := g.Members
	if members == nil {
		members = []user.ID{}
	}
	return groupJSON{Conversation: g.Conversation, Kind: string(conversation.Group), Title: string(g.Title),
		Owner: g.Owner, Members: members, CreatedAt: wire.FormatTime(g.CreatedAt)}
}

type receiptJSON struct {
	User          user.ID `json:"user"`
	DeliveredUpTo uint64  `json:"deliveredUpTo"`
	ReadUpTo      uint64  `json:"readUpTo"`
}
