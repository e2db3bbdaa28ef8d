package websocket

import (
	"encoding/json"
	"strconv"

	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
)

// The forms of a send: to a user, to a conversation by its id (v1.3), and
// the seed's frame without a type.

// decodeSend reads a send to a user (`to`) or, since v1.3, to a
// conversation by its id (`conversation`): one of the two, never both.
func decodeSend(f *clientFrame, raw rawFrame) *frameError {
	switch {
	case raw.ID == nil:
		return badRequest("", "missing field id")
	case raw.To != nil && raw.Conversation != nil:
		return badRequest(f.ID, "to and conversation are exclusive")
	case raw.To == nil && raw.Conversation == nil:
		return badRequest(f.ID, "missing field to")
	case raw.Body == nil:
		return badRequest(f.ID, "missing field body")
	}
	key, err := message.ParseClientID(f.ID)
	if err != nil {
		return badRequest(f.ID, err.Error())
	}
	f.Key = key
	if raw.Conversation != nil {
		if ferr := decodeConversation(f, raw); ferr != nil {
			return ferr
		}
		return parseBody(f, *raw.Body)
	}
	return parseSend(f, *raw.To, *raw.Body)
}

// decodeSeed reads the seed's form; its toId may be a JSON number, since
// the seed's clients used numeric ids such as 1001.
func decodeSeed(raw rawFrame) (clientFrame, *frameError) {
	f := clientFrame{Type: typeSend, Seed: true}
	var to string
	if err := json.Unmarshal(raw.ToID, &to); err != nil {
		if _, err := strconv.ParseUint(string(raw.ToID), 10, 64); err != nil {
			return f, badRequest("", "field toId must be a user id")
		}
		to = string(raw.ToID)
	}
	ferr := parseSend(&f, to, *raw.Msg)
	return f, ferr
}

func parseSend(f *clientFrame, to, body string) *frameError {
	var err error
	if f.To, err = user.ParseID(to); err != nil {
		return badRequest(f.ID, "to: "+err.Error())
	}
	return parseBody(f, body)
}

func parseBody(f *clientFrame, body string) *frameError {
	var err error
	if f.Body, err = message.ParseBody(body); err != nil {
		return badRequest(f.ID, err.Error())
	}
	return nil
}
