package mongo

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// viewDoc is one conversation view as stored in `conversations`: as fields
// only what a query or a save's filter names, the rest as one JSON string.
//
// A view save is most of the store's work per message, and FerretDB's
// share of it grows with the fields of the document: it keeps a type
// schema beside each one and decodes, checks and encodes every field of
// the stored view on each update. Views written before migration 6 hold
// the state as fields of their own (the legacy ones below, left out of
// new documents), which readers still accept.
type viewDoc struct {
	ID string `bson:"_id"`
	// Participants is an array, indexed with lastActivity, so that ListFor
	// is one index scan: a direct conversation's pair, or a group's current
	// members, so a removed member's list no longer finds the group.
	Participants []string `bson:"participants"`
	// Revision is the sum of the versions of the conversation's streams,
	// so that an optimistic save is one equality in its filter.
	Revision     int64     `bson:"revision"`
	LastActivity time.Time `bson:"lastActivity"`
	State        string    `bson:"state,omitempty"`
	// SaveToken is unique to the save that wrote the document: a bulk
	// write says how many replaces matched but not which, and the token
	// read back does.
	SaveToken string `bson:"saveToken"`

	MessagesVersion int64       `bson:"messagesVersion,omitempty"`
	ReceiptsVersion int64       `bson:"receiptsVersion,omitempty"`
	LastSeq         int64       `bson:"lastSeq,omitempty"`
	LastMessage     *messageDoc `bson:"lastMessage,omitempty"`
	Members         []memberDoc `bson:"members,omitempty"`
}

// viewState is the JSON of a view's state, keys kept short since they are
// stored with every view.
type viewState struct {
	Kind            string        `json:"k,omitempty"`
	Title           string        `json:"title,omitempty"`
	Owner           string        `json:"owner,omitempty"`
	MessagesVersion uint64        `json:"mv"`
	ReceiptsVersion uint64        `json:"rv"`
	ChangesVersion  uint64        `json:"cv,omitempty"`
	LastSeq         uint64        `json:"seq"`
	LastMessage     *messageState `json:"last,omitempty"`
	Members         []memberState `json:"m"`
}

type messageState struct {
	MessageID string    `json:"id"`
	Seq       uint64    `json:"seq"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Body      string    `json:"body,omitempty"`
	SentAt    time.Time `json:"at"`
	EditedAt  time.Time `json:"edited,omitzero"`
	// RecalledAt set means the message was recalled, and Body is empty.
	RecalledAt time.Time `json:"recalled,omitzero"`
}

type memberState struct {
	User          string `json:"u"`
	DeliveredUpTo uint64 `json:"d,omitempty"`
	ReadUpTo      uint64 `json:"r,omitempty"`
	// Unread is runs of seqs, each [from, to].
	Unread   [][2]uint64 `json:"unread,omitempty"`
	JoinedAt *time.Time  `json:"j,omitempty"`
}

// The legacy fields of a view written before migration 6.
type messageDoc struct {
	MessageID string    `bson:"messageId"`
	Seq       int64     `bson:"seq"`
	From      string    `bson:"from"`
	To        string    `bson:"to"`
	Body      string    `bson:"body"`
	SentAt    time.Time `bson:"sentAt"`
}

type memberDoc struct {
	User          string `bson:"user"`
	DeliveredUpTo int64  `bson:"deliveredUpTo"`
	ReadUpTo      int64  `bson:"readUpTo"`
	// Unread is runs of seqs, documents rather than [from, to] pairs
	// because FerretDB v1 refuses nested arrays. Migration 4 turned the
	// earlier list of seqs into these.
	Unread []runDoc `bson:"unread"`
}

type runDoc struct {
	From int64 `bson:"f"`
	To   int64 `bson:"t"`
}

func toViewDoc(v ports.ConversationView) (viewDoc, error) {
	state := viewState{Kind: string(v.Kind), Title: v.Title, Owner: string(v.Owner),
		MessagesVersion: v.MessagesVersion, ReceiptsVersion: v.ReceiptsVersion, ChangesVersion: v.ChangesVersion,
		LastSeq: v.LastSeq, Members: make([]memberState, len(v.Members))}
	if m := v.LastMessage; m != nil {
		state.LastMessage = &messageState{MessageID: m.MessageID, Seq: m.Seq, From: string(m.From), To: string(m.To),
			Body: m.Body, SentAt: m.SentAt, EditedAt: m.EditedAt, RecalledAt: m.RecalledAt}
	}
	for i, m := range v.Members {
		var unread [][2]uint64
		for _, run := range m.Unread {
			unread = append(unread, [2]uint64{run.From, run.To})
		}
		state.Members[i] = memberState{User: string(m.User), DeliveredUpTo: m.DeliveredUpTo, ReadUpTo: m.ReadUpTo, Unread: unread}
		if !m.JoinedAt.IsZero() {
			state.Members[i].JoinedAt = &m.JoinedAt
		}
	}
	data, err := json.Marshal(state)
	if err != nil {
		return viewDoc{}, fmt.Errorf("encode view %s: %w", v.Conversation, err)
	}
	participants := []string{string(v.Participants[0]), string(v.Participants[1])}
	if v.IsGroup() {
		participants = make([]string, len(v.Members))
		for i, m := range v.Members {
			participants[i] = string(m.User)
		}
	}
	return viewDoc{ID: v.Conversation, Participants: participants,
		Revision: int64(v.Revision()), LastActivity: v.LastActivity, State: string(data)}, nil
}

func fromViewDoc(d viewDoc) (ports.ConversationView, error) {
	v := ports.ConversationView{Conversation: d.ID, LastActivity: d.LastActivity}
	if d.State == "" {
		fromLegacyViewDoc(d, &v)
		return v, nil
	}
	var state viewState
	if err := json.Unmarshal([]byte(d.State), &state); err != nil {
		return ports.ConversationView{}, fmt.Errorf("decode view %s: %w", d.ID, err)
	}
	v.Kind, v.Title, v.Owner = conversation.Kind(state.Kind), state.Title, user.ID(state.Owner)
	if !v.IsGroup() {
		readPair(d, &v)
	}
	v.MessagesVersion, v.ReceiptsVersion, v.ChangesVersion = state.MessagesVersion, state.ReceiptsVersion, state.ChangesVersion
	v.LastSeq = state.LastSeq
	if m := state.LastMessage; m != nil {
		v.LastMessage = &ports.MessageRecord{MessageID: m.MessageID, Seq: m.Seq, From: user.ID(m.From),
			To: user.ID(m.To), Body: m.Body, SentAt: m.SentAt, EditedAt: m.EditedAt, RecalledAt: m.RecalledAt}
	}
	for _, m := range state.Members {
		member := ports.MemberView{User: user.ID(m.User), DeliveredUpTo: m.DeliveredUpTo, ReadUpTo: m.ReadUpTo}
		if m.JoinedAt != nil {
			member.JoinedAt = *m.JoinedAt
		}
		for _, run := range m.Unread {
			member.Unread = append(member.Unread, ports.SeqRun{From: run[0], To: run[1]})
		}
		v.Members = append(v.Members, member)
	}
	return v, nil
}

// readPair reads a direct conversation's pair from its indexed field.
func readPair(d viewDoc, v *ports.ConversationView) {
	for i, p := range d.Participants {
		if i < len(v.Participants) {
			v.Participants[i] = user.ID(p)
		}
	}
}

func fromLegacyViewDoc(d viewDoc, v *ports.ConversationView) {
	readPair(d, v)
	v.MessagesVersion, v.ReceiptsVersion, v.LastSeq = uint64(d.MessagesVersion), uint64(d.ReceiptsVersion), uint64(d.LastSeq)
	if m := d.LastMessage; m != nil {
		v.LastMessage = &ports.MessageRecord{MessageID: m.MessageID, Seq: uint64(m.Seq), From: user.ID(m.From),
			To: user.ID(m.To), Body: m.Body, SentAt: m.SentAt}
	}
	for _, m := range d.Members {
		member := ports.MemberView{User: user.ID(m.User), DeliveredUpTo: uint64(m.DeliveredUpTo), ReadUpTo: uint64(m.ReadUpTo)}
		for _, run := range m.Unread {
			member.Unread = append(member.Unread, ports.SeqRun{From: uint64(run.From), To: uint64(run.To)})
		}
		v.Members = append(v.Members, member)
	}
}
