package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// The routes of messages and conversations: each parses its request into
// the domain's types, runs its use case and shapes the answer.

func (a *API) sendMessage(w http.ResponseWriter, r *http.Request, uid user.ID) {
	var req struct {
		ID   *string `json:"id"`
		To   *string `json:"to"`
		Body *string `json:"body"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	var missing string
	switch {
	case req.ID == nil:
		missing = "id"
	case req.To == nil:
		missing = "to"
	case req.Body == nil:
		missing = "body"
	}
	if missing != "" {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "missing field "+missing)
		return
	}
	cmd, err := parseSend(uid, *req.ID, *req.To, *req.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), a.cfg.RequestTimeout)
	defer cancel()
	ack, err := a.send.Handle(ctx, cmd)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, wire.AckOf(ack))
}

// parseSend parses a send's fields into the command. The application
// makes a key for an empty id (the seed's WebSocket form); REST has no such
// form, so an empty id is refused here.
func parseSend(sender user.ID, id, to, body string) (application.SendMessageCommand, error) {
	cmd := application.SendMessageCommand{Sender: sender}
	var err error
	if cmd.ClientID, err = message.ParseClientID(id); err != nil {
		return cmd, err
	}
	if cmd.To, err = user.ParseID(to); err != nil {
		return cmd, fmt.Errorf("to: %w", err)
	}
	cmd.Body, err = message.ParseBody(body)
	return cmd, err
}

func (a *API) conversations(w http.ResponseWriter, r *http.Request, uid user.ID) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	list, err := a.deps.App.Conversations.Handle(ctx, uid)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]conversationJSON, len(list))
	for i, c := range list {
		out[i] = conversationJSON{Conversation: c.Conversation, Kind: string(c.Kind), Peer: c.Peer, Title: c.Title,
			Members: c.Members, LastSeq: c.LastSeq, DeliveredUpTo: c.DeliveredUpTo, ReadUpTo: c.ReadUpTo, Unread: c.Unread}
		if c.LastMessage != nil {
			m := wire.MessageOf(*c.LastMessage)
			out[i].LastMessage = &m
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) history(w http.ResponseWriter, r *http.Request, uid user.ID) {
	// A malformed id names no conversation, which for a path is a 404.
	id, err := conversation.ParseID(r.PathValue("id"))
	if err != nil {
		a.fail(w, conversation.ErrNotFound)
		return
	}
	q := application.HistoryQuery{Reader: uid, Conversation: id}
	var limit uint64
	for _, p := range []struct {
		name string
		dst  *uint64
	}{{"after", &q.After}, {"before", &q.Before}, {"limit", &limit}} {
		v := r.URL.Query().Get(p.name)
		if v == "" {
			continue
		}
		n, ok := wire.ParseInteger(v)
		if !ok {
			writeError(w, http.StatusBadRequest, wire.CodeBadRequest,
				fmt.Sprintf("%s must be a non-negative integer of at most %d", p.name, uint64(wire.MaxInteger)))
			return
		}
		*p.dst = n
	}
	// The application clamps to its page maximum; clamping first keeps a
	// value of up to 2^53-1 from overflowing a 32-bit int.
	q.Limit = int(min(limit, application.MaxPageLimit))
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	page, err := a.deps.App.History.Handle(ctx, q)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, pageJSON{Messages: wire.MessagesOf(page.Messages), More: page.More})
}

// JSON shapes, named as PROTOCOL.md names them.

type pageJSON struct {
	Messages []wire.Message `json:"messages"`
	More     bool           `json:"more"`
}

// conversationJSON is a direct conversation with its peer, or a group
// with its title and members instead.
type conversationJSON struct {
	Conversation  string        `json:"conversation"`
	Kind          string        `json:"kind"`
	Peer          user.ID       `json:"peer,omitempty"`
	Title         string        `json:"title,omitempty"`
	Members       []user.ID     `json:"members,omitempty"`
	LastSeq       uint64        `json:"lastSeq"`
	DeliveredUpTo uint64        `json:"deliveredUpTo"`
	ReadUpTo      uint64        `json:"readUpTo"`
	Unread        int           `json:"unread"`
	LastMessage   *wire.Message `json:"lastMessage"`
}
