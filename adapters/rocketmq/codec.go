package rocketmq

import (
	"bytes"
	"encoding/json"
	"errors"
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
// domain's own encoding under its type name. A batch's body is a JSON array
// of them.
type wireCommit struct {
	ID          string      `json:"id"`
	Stream      string      `json:"stream"`
	Version     uint64      `json:"version"`
	CommittedAt time.Time   `json:"committedAt"`
	Origin      string      `json:"origin,omitempty"`
	Events      []wireEvent `json:"events"`
	// Nodes is the commit's own propNodes value: a routed consumer gets a
	// batch when any of its commits is routed to it, and keeps only those.
	Nodes string `json:"nodes,omitempty"`
}

type wireEvent struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// encodeCommit encodes c routed to nodes (propNodes).
func encodeCommit(c ports.Commit, nodes string) ([]byte, error) {
	w := wireCommit{ID: c.ID, Stream: c.Stream, Version: c.Version, CommittedAt: c.CommittedAt, Origin: c.Origin,
		Events: make([]wireEvent, len(c.Events)), Nodes: nodes}
	for i, e := range c.Events {
		data, err := conversation.MarshalEvent(e)
		if err != nil {
			return nil, err
		}
		w.Events[i] = wireEvent{Type: e.EventType(), Data: data}
	}
	return json.Marshal(w)
}

// encodeBatch joins encoded commits into one body; a lone commit stays as
// it is, as a release without batches wrote it.
func encodeBatch(bodies [][]byte) []byte {
	if len(bodies) == 1 {
		return bodies[0]
	}
	return append(append([]byte{'['}, bytes.Join(bodies, []byte{','})...), ']')
}

// decodeWire reads a message body: one commit, or a batch of them.
func decodeWire(body []byte) ([]wireCommit, error) {
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		var ws []wireCommit
		if err := json.Unmarshal(body, &ws); err != nil {
			return nil, fmt.Errorf("batch body: %w", err)
		}
		if len(ws) == 0 {
			return nil, errors.New("batch body: no commit")
		}
		return ws, nil
	}
	var w wireCommit
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("commit body: %w", err)
	}
	return []wireCommit{w}, nil
}

// decodeCommits reads every commit of a message body.
func decodeCommits(body []byte) ([]ports.Commit, error) {
	ws, err := decodeWire(body)
	if err != nil {
		return nil, err
	}
	commits := make([]ports.Commit, len(ws))
	for i, w := range ws {
		if commits[i], err = fromWire(w); err != nil {
			return nil, err
		}
	}
	return commits, nil
}

func fromWire(w wireCommit) (ports.Commit, error) {
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

// tagOf names the kind of stream a commit belongs to. A changes-stream
// commit (membership, edit, recall) is tagged as a message: sessions are
// pushed its frames as they are a message's, with the same urgency.
func tagOf(c ports.Commit) string {
	if _, kind := conversation.StreamOf(c.Stream); kind == conversation.StreamReceipts {
		return tagReceipt
	}
	return tagMessage
}

// shardingKeyOf keeps every stream of a conversation on one queue.
func shardingKeyOf(c ports.Commit) string {
	id, _ := conversation.StreamOf(c.Stream)
	return string(id)
}
