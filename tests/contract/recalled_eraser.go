package contract

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

// ErasingStore is an event store that erases recalled bodies and scans
// for replay.
type ErasingStore interface {
	ports.EventStore
	ports.StreamScanner
	ports.RecalledEraser
}

// TestRecalledEraser checks that EraseRecalled leaves no recalled body in
// the store (neither the post's nor an earlier edit's), touches nothing
// else, finds nothing the second time, and that replay afterwards still
// rebuilds the views: newPorts gives a store and a read model of the case's own.
func TestRecalledEraser(t *testing.T, newPorts func(t *testing.T) (ErasingStore, ports.ReadModel)) {
	store, rm := newPorts(t)
	ctx := context.Background()
	app := projectingApp(t, store, rm)
	alice, bob := user.ID(uniqueName(t, "alice")), user.ID(uniqueName(t, "bob"))
	var conv conversation.ID
	for i, body := range []string{"kept", "secret one", "secret two"} {
		ack, err := app.Send.Handle(ctx, application.SendMessageCommand{Sender: alice, ClientID: message.ClientID(fmt.Sprint("m", i)),
			To: bob, Body: message.Body(body)})
		if err != nil {
			t.Fatal(err)
		}
		conv = ack.Conversation
	}
	edit := func(seq uint64, key, body string) {
		if _, err := app.Edit.Handle(ctx, application.EditMessageCommand{Author: alice, ClientID: message.ClientID(key),
			Conversation: conv, Seq: seq, Body: message.Body(body)}); err != nil {
			t.Fatal(err)
		}
	}
	recall := func(seq uint64, key string) {
		if _, err := app.Recall.Handle(ctx, application.RecallMessageCommand{Author: alice, ClientID: message.ClientID(key),
			Conversation: conv, Seq: seq}); err != nil {
			t.Fatal(err)
		}
	}
	edit(1, "e1", "kept, edited")
	edit(2, "e2", "secret one, edited")
	recall(2, "r2")
	recall(3, "r3")

	// The post of 2, its edit, and the post of 3.
	if n, err := store.EraseRecalled(ctx); err != nil || n != 3 {
		t.Fatalf("EraseRecalled = %d, %v; want 3 commits rewritten", n, err)
	}
	if n, err := store.EraseRecalled(ctx); err != nil || n != 0 {
		t.Fatalf("EraseRecalled again = %d, %v; want 0", n, err)
	}
	var kept []string
	if err := store.Scan(ctx, func(c ports.Commit) error {
		if id, _ := conversation.StreamOf(c.Stream); id != conv {
			return nil
		}
		for _, ev := range c.Events {
			data, err := conversation.MarshalEvent(ev)
			if err != nil {
				return err
			}
			if strings.Contains(string(data), "secret") {
				t.Errorf("%s@%d still holds a recalled body: %s", c.Stream, c.Version, data)
			}
			if strings.Contains(string(data), "kept") {
				kept = append(kept, string(data))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 2 {
		t.Fatalf("the post and edit of message 1 were touched: %v", kept)
	}

	eventually.True(t, "the projector to fold the recall", func() bool {
		v, found, err := getView(ctx, rm, string(conv))
		return err == nil && found && v.ChangesVersion == 4
	})
	if err := application.Replay(ctx, store, rm); err != nil {
		t.Fatal(err)
	}
	v, found, err := getView(ctx, rm, string(conv))
	if err != nil || !found {
		t.Fatalf("view after replay: found=%v err=%v", found, err)
	}
	if m := v.LastMessage; m == nil || m.Seq != 3 || m.Body != "" || m.RecalledAt.IsZero() || v.ChangesVersion != 4 {
		t.Fatalf("last message after erasure and replay: %+v (changes %d)", m, v.ChangesVersion)
	}
	page, err := app.History.Handle(ctx, application.HistoryQuery{Reader: bob, Conversation: conv})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 3 || page.Messages[0].Body != "kept, edited" || page.Messages[1].Body != "" || page.Messages[1].RecalledAt.IsZero() {
		t.Fatalf("history after erasure: %+v", page.Messages)
	}
}
