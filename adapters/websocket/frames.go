package websocket

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/presence"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// Frame types of the protocol, as they appear in the `type` field.
const (
	typeSend     = "send"
	typeRead     = "read"
	typeSync     = "sync"
	typePing     = "ping"
	typeTyping   = "typing"
	typePresence = "presence"
	typeAuth     = "auth"
	typeEdit     = "edit"
	typeRecall   = "recall"
	typeChanged  = "changed"
	typeUpdate   = "update"
	typeAuthed   = "authed"
	typeAck      = "ack"
	typeMessage  = "message"
	typeReceipt  = "receipt"
	typeMessages = "messages"
	typePong     = "pong"
	typeError    = "error"
	// typeInvalid labels, in metrics only, a frame that did not decode.
	typeInvalid = "invalid"
)

// clientFrame is a decoded client frame, its fields parsed into the
// domain's types so that the use cases take them as they are. ID is echoed
// as the client wrote it; Key is the same id parsed as a send's
// idempotency key. Seed marks the seed's `{toId, msg}` form, a send whose
// idempotency key the server makes.
type clientFrame struct {
	Type         string
	ID           string
	Key          message.ClientID
	To           user.ID
	Body         message.Body
	Seed         bool
	Conversation conversation.ID
	UpTo         uint64
	After        uint64
	Limit        int
	Users        presence.Users
	Token        string
	// Seq is the message an edit or recall changes.
	Seq uint64
	// ChangesAfter is a sync's rev, when WithChanges says it asked for updates.
	ChangesAfter uint64
	WithChanges  bool
}

// frameError is a frame the server answers with an `error` frame; ID echoes
// the frame's id when it had one, so a client can match the answer.
type frameError struct {
	ID      string
	Code    string
	Message string
}

func (e *frameError) Error() string { return e.Code + ": " + e.Message }

// rawFrame receives a frame's JSON. Pointers and raw numbers tell a missing
// field from a zero one; the numbers stay raw so that only a plain
// non-negative integer up to wire.MaxInteger passes, never 1.5, 1e3, -1,
// "7" or 2^64-1 wrapped around.
type rawFrame struct {
	Type         *string         `json:"type"`
	ID           *string         `json:"id"`
	To           *string         `json:"to"`
	Body         *string         `json:"body"`
	ToID         json.RawMessage `json:"toId"`
	Msg          *string         `json:"msg"`
	Conversation *string         `json:"conversation"`
	UpTo         json.RawMessage `json:"upTo"`
	After        json.RawMessage `json:"after"`
	Limit        json.RawMessage `json:"limit"`
	Users        []string        `json:"users"`
	Token        *string         `json:"token"`
	Seq          json.RawMessage `json:"seq"`
	ChangesAfter json.RawMessage `json:"changesAfter"`
}

// decodeFrame parses and validates one client frame. Every failure is a
// *frameError with a protocol code; the send's `to == sender` rule is left
// to the application, which knows the sender.
func decodeFrame(data []byte) (clientFrame, *frameError) {
	// encoding/json would quietly turn invalid UTF-8, and an escaped lone
	// surrogate, into U+FFFD, storing a body the client never wrote; refuse
	// the frame instead.
	if !utf8.Valid(data) {
		return clientFrame{}, badRequest("", "frame is not valid UTF-8")
	}
	if !wire.ValidEscapes(data) {
		return clientFrame{}, badRequest("", "frame escapes a lone UTF-16 surrogate")
	}
	var raw rawFrame
	err := json.Unmarshal(data, &raw)
	var typeErr *json.UnmarshalTypeError
	if err != nil && (!errors.As(err, &typeErr) || typeErr.Field == "") {
		return clientFrame{}, badRequest("", "frame is not a JSON object")
	}
	// A type error leaves the other fields decoded, so the id can still be echoed.
	var id string
	if raw.ID != nil {
		id = *raw.ID
	}
	if typeErr != nil {
		return clientFrame{}, badRequest(id, "field "+typeErr.Field+" has the wrong type")
	}
	if raw.Type == nil {
		if raw.ToID != nil && raw.Msg != nil {
			return decodeSeed(raw)
		}
		return clientFrame{}, badRequest(id, "missing field type")
	}
	f := clientFrame{Type: *raw.Type, ID: id}
	switch f.Type {
	case typeSend:
		ferr := decodeSend(&f, raw)
		return f, ferr
	case typeRead:
		if err := decodeConversation(&f, raw); err != nil {
			return f, err
		}
		f.UpTo, err = uintField(raw.UpTo, "upTo", true)
	case typeSync:
		if err := decodeConversation(&f, raw); err != nil {
			return f, err
		}
		if f.After, err = uintField(raw.After, "after", true); err != nil {
			break
		}
		var limit uint64
		limit, err = uintField(raw.Limit, "limit", false)
		// Over the page maximum is clamped, as the application would; doing it
		// here keeps up to 2^53-1 from overflowing a 32-bit int.
		f.Limit = int(min(limit, application.MaxPageLimit))
		if err == nil && present(raw.ChangesAfter) {
			f.WithChanges = true
			f.ChangesAfter, err = uintField(raw.ChangesAfter, "changesAfter", true)
		}
	case typeEdit, typeRecall:
		ferr := decodeChange(&f, raw)
		return f, ferr
	case typeTyping:
		ferr := decodeConversation(&f, raw)
		return f, ferr
	case typePresence:
		ferr := decodePresence(&f, raw)
		return f, ferr
	case typeAuth:
		ferr := decodeAuth(&f, raw)
		return f, ferr
	case typePing:
	default:
		return f, badRequest(id, "unknown frame type")
	}
	if err != nil {
		return f, badRequest(id, err.Error())
	}
	return f, nil
}

func decodeAuth(f *clientFrame, raw rawFrame) *frameError {
	if raw.Token == nil || *raw.Token == "" {
		return badRequest(f.ID, "missing field token")
	}
	f.Token = *raw.Token
	return nil
}

func decodeConversation(f *clientFrame, raw rawFrame) *frameError {
	if raw.Conversation == nil {
		return badRequest(f.ID, "missing field conversation")
	}
	id, err := conversation.ParseID(*raw.Conversation)
	if err != nil {
		return badRequest(f.ID, err.Error())
	}
	f.Conversation = id
	return nil
}

// present tells a field given from one missing or null.
func present(raw json.RawMessage) bool { return raw != nil && !bytes.Equal(raw, []byte("null")) }

// uintField parses an integer field of 0 to wire.MaxInteger; a missing
// optional one is 0.
func uintField(raw json.RawMessage, name string, required bool) (uint64, error) {
	if !present(raw) {
		if required {
			return 0, errors.New("missing field " + name)
		}
		return 0, nil
	}
	n, ok := wire.ParseInteger(string(raw))
	if !ok {
		return 0, errors.New("field " + name + " must be a non-negative integer of at most " + maxIntegerText)
	}
	return n, nil
}

var maxIntegerText = strconv.FormatUint(wire.MaxInteger, 10)

func badRequest(id, msg string) *frameError {
	return &frameError{ID: id, Code: wire.CodeBadRequest, Message: msg}
}

// Server frames. Each is encoded as it stands, so the JSON names here are
// the protocol's.

type ackFrame struct {
	Type string `json:"type"`
	wire.Ack
}

type messageFrame struct {
	Type    string       `json:"type"`
	Message wire.Message `json:"message"`
}

// receiptFrame omits the marker that did not move, as ports.Receipt leaves it zero.
type receiptFrame struct {
	Type          string  `json:"type"`
	Conversation  string  `json:"conversation"`
	User          user.ID `json:"user"`
	DeliveredUpTo uint64  `json:"deliveredUpTo,omitempty"`
	ReadUpTo      uint64  `json:"readUpTo,omitempty"`
}

// messagesFrame answers a sync; Updates is there only when the sync asked
// for changesAfter.
type messagesFrame struct {
	Type         string          `json:"type"`
	Conversation string          `json:"conversation"`
	Messages     []wire.Message  `json:"messages"`
	More         bool            `json:"more"`
	Updates      *[]wire.Message `json:"updates,omitempty"`
}

// authedFrame answers an `auth` frame with the session's new expiry.
type authedFrame struct {
	Type      string `json:"type"`
	ID        string `json:"id,omitempty"`
	ExpiresAt string `json:"expiresAt"`
}

type pongFrame struct {
	Type string `json:"type"`
}

type errorFrame struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func ackOf(a application.Ack) ackFrame { return ackFrame{Type: typeAck, Ack: wire.AckOf(a)} }

func messageOf(m ports.MessageView) messageFrame {
	return messageFrame{Type: typeMessage, Message: wire.MessageOf(m)}
}

func authedOf(id string, expiresAt time.Time) authedFrame {
	return authedFrame{Type: typeAuthed, ID: id, ExpiresAt: wire.FormatTime(expiresAt)}
}

func errorOf(id, code, msg string) errorFrame {
	return errorFrame{Type: typeError, ID: id, Code: code, Message: msg}
}

func receiptOf(r ports.Receipt) receiptFrame {
	return receiptFrame{Type: typeReceipt, Conversation: r.Conversation, User: r.User,
		DeliveredUpTo: r.DeliveredUpTo, ReadUpTo: r.ReadUpTo}
}

func messagesOf(p application.Page) messagesFrame {
	f := messagesFrame{Type: typeMessages, Conversation: p.Conversation, More: p.More, Messages: wire.MessagesOf(p.Messages)}
	if p.Updates != nil {
		updates := wire.MessagesOf(p.Updates)
		f.Updates = &updates
	}
	return f
}
