package websocket

import (
	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/ports"
)

// The frames of edits and recalls (PROTOCOL v1.3): `edit` and `recall`
// from the client, answered by `changed`; `update` pushed to the other
// sessions.

// decodeChange reads an edit (with its body) or a recall; its id is an
// idempotency key, as a send's is.
func decodeChange(f *clientFrame, raw rawFrame) *frameError {
	if raw.ID == nil {
		return badRequest("", "missing field id")
	}
	key, err := message.ParseClientID(f.ID)
	if err != nil {
		return badRequest(f.ID, err.Error())
	}
	f.Key = key
	if ferr := decodeConversation(f, raw); ferr != nil {
		return ferr
	}
	if f.Seq, err = uintField(raw.Seq, "seq", true); err != nil {
		return badRequest(f.ID, err.Error())
	}
	if f.Type == typeRecall {
		return nil
	}
	if raw.Body == nil {
		return badRequest(f.ID, "missing field body")
	}
	if f.Body, err = message.ParseBody(*raw.Body); err != nil {
		return badRequest(f.ID, err.Error())
	}
	return nil
}

type changedFrame struct {
	Type string `json:"type"`
	wire.Changed
}

type updateFrame struct {
	Type string `json:"type"`
	wire.Update
}

func changedOf(c application.Changed) changedFrame {
	return changedFrame{Type: typeChanged, Changed: wire.ChangedOf(c)}
}

func updateOf(u ports.UpdateView) updateFrame {
	return updateFrame{Type: typeUpdate, Update: wire.UpdateOf(u)}
}
