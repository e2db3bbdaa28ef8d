package rocketmq

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// Tags of the commits on the topic, so a consumer can take only what it needs.
const (
	tagMessage = "message"
	tagReceipt = "receipt"
)

// wireCommit is a commit as a message body: JSON, with each event in the
// domain's own encoding under its type name.
type wireCommit struct {
	ID          string      `json:"id"`
	Stream      string      `json:"stream"`
	Version     uint64      `json:"version"`
	CommittedAt time.Time   `json:"committedAt"`
	Origin      string      `json:"origin,omitempty"`
	Events      []wireEvent `json:"events"`
}

type wireEvent struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func encodeCommit(c ports.Commit) ([]byte, error) {
	w := wireCommit{ID: c.ID, Stream: c.Stream, Version: c.Version, CommittedAt: c.CommittedAt, Origin: c.Origin,
		Events: make([]wireEvent, len(c.Events))}
	for i, e := range c.Events {
		data, err := conversation.MarshalEvent(e)
		if err != nil {
			return nil, err
		}
		w.Events[i] = wireEvent{Type: e.EventType(), Data: data}
	}
	return json.Marshal(w)
}

func decodeCommit(body []byte) (ports.Commit, error) {
	var w wireCommit
	if err := json.Unmarshal(body, &w); err != nil {
		return ports.Commit{}, fmt.Errorf("commit body: %w", err)
	}
	c := ports.Commit{ID: w.ID, Stream: w.Stream, Version: w.Version, CommittedAt: w.CommittedAt, Origin: w.Origin,
		Events: make([]conversation.Event, len(w.Events))}
	for i, e := range w.Events {
		ev, err := conversation.UnmarshalEvent(e.Type, e.Data)
		if err != nil {
			return ports.Commit{}, fmt.Errorf("commit %s: %w", w.ID, err)
		}
		c.Events[i] = ev
	}
	return c, nil
}

// tagOf names the kind of stream a commit belongs to.
func tagOf(c ports.Commit) string {
	if _, receipts := conversation.StreamConversation(c.Stream); receipts {
		return tagReceipt
	}
	return tagMessage
}

// shardingKeyOf keeps both streams of a conversation on one queue.
func shardingKeyOf(c ports.Commit) string {
	id, _ := conversation.StreamConversation(c.Stream)
	return string(id)
}
