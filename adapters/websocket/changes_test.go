package websocket

import (
	"testing"

	"github.com/evchat/chatd/tests/eventually"
)

// TestEditRecallAndUpdates: edit and recall are answered with changed,
// the peer and the author's other session get updates in rev order, the
// asking session none, and sync shows the current state and the updates.
func TestEditRecallAndUpdates(t *testing.T) {
	h := newHarness(t, Config{})
	alice, aliceOther, bob := h.dial("alice"), h.dial("alice"), h.dial("bob")
	eventually.True(t, "three sessions", func() bool { return h.app.Sessions.Count() == 3 })
	ack := h.send("alice", "m-1", "bob", "hello bob")
	conv := `"` + string(ack.Conversation) + `"`

	alice.sendRaw(`{"type":"edit","id":"e-1","conversation":` + conv + `,"seq":1,"body":"hello, bob"}`)
	if changed := alice.next(typeChanged); changed["id"] != "e-1" || changed["seq"] != 1.0 || changed["rev"] != 1.0 ||
		changed["conversation"] != string(ack.Conversation) {
		t.Fatalf("changed = %v", changed)
	}
	alice.sendRaw(`{"type":"recall","id":"r-1","conversation":` + conv + `,"seq":1}`)
	if changed := alice.next(typeChanged); changed["id"] != "r-1" || changed["rev"] != 2.0 {
		t.Fatalf("changed = %v", changed)
	}
	alice.sendRaw(`{"type":"recall","id":"r-1","conversation":` + conv + `,"seq":1}`)
	if again := alice.next(typeChanged); again["rev"] != 2.0 {
		t.Fatalf("a resent recall answered %v", again)
	}
	for _, c := range []*client{bob, aliceOther} {
		edited := c.next(typeUpdate)
		if edited["rev"] != 1.0 || edited["body"] != "hello, bob" || edited["editedAt"] == nil || edited["recalled"] != nil {
			t.Fatalf("edit update = %v", edited)
		}
		recalled := c.next(typeUpdate)
		if recalled["rev"] != 2.0 || recalled["recalled"] != true || recalled["recalledAt"] == nil || recalled["body"] != nil {
			t.Fatalf("recall update = %v", recalled)
		}
	}

	bob.sendRaw(`{"type":"edit","id":"e-2","conversation":` + conv + `,"seq":1,"body":"mine now"}`)
	if e := bob.next(typeError); e["code"] != "forbidden" || e["id"] != "e-2" {
		t.Fatalf("bob's edit of a recalled message: %v", e)
	}
	carol := h.dial("carol")
	carol.sendRaw(`{"type":"recall","id":"r-3","conversation":` + conv + `,"seq":1}`)
	if e := carol.next(typeError); e["code"] != "not_found" {
		t.Fatalf("an outsider's recall: %v", e)
	}
	alice.sendRaw(`{"type":"edit","id":"e-4","conversation":` + conv + `,"seq":2,"body":"x"}`)
	if e := alice.next(typeError); e["code"] != "not_found" {
		t.Fatalf("an edit of an unknown seq: %v", e)
	}
	alice.sendRaw(`{"type":"edit","id":"e-5","conversation":` + conv + `,"seq":1}`)
	if e := alice.next(typeError); e["code"] != "bad_request" || e["id"] != "e-5" {
		t.Fatalf("an edit without body: %v", e)
	}

	bob.sendRaw(`{"type":"sync","conversation":` + conv + `,"after":0,"changesAfter":1}`)
	page := bob.next(typeMessages)
	m := page["messages"].([]any)[0].(map[string]any)
	if m["recalled"] != true || m["body"] != nil {
		t.Fatalf("sync shows the recalled message as %v", m)
	}
	updates := page["updates"].([]any)
	if len(updates) != 1 || updates[0].(map[string]any)["rev"] != 2.0 {
		t.Fatalf("updates after rev 1: %v", updates)
	}
	bob.sendRaw(`{"type":"sync","conversation":` + conv + `,"after":0}`)
	if page := bob.next(typeMessages); page["updates"] != nil {
		t.Fatalf("a sync without changesAfter answered updates: %v", page)
	}
	alice.sendRaw(`{"type":"ping"}`)
	for {
		f := alice.next(typeUpdate, typePong)
		if f["type"] == typePong {
			break
		}
		t.Fatalf("the asking session got an update: %v", f)
	}
}
