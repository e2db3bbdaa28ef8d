package application_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// groupHistory is a group's commits on its three streams: created by ann
// with bob, a message of ann's, cid joins, a message of bob's, bob reads
// it all, ann (the owner) leaves and bob takes over, and a rename.
func groupHistory(t *testing.T, store ports.EventStore) (changes, messages, receipts []ports.Commit) {
	t.Helper()
	id := conversation.NewGroupID([16]byte{7})
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	changeCommit := func(events ...conversation.Event) {
		changes = append(changes, ports.Commit{ID: "ch" + string(rune('0'+len(changes))), Stream: conversation.ChangesStream(id),
			Version: uint64(len(changes) + 1), Events: events})
	}
	post := func(from user.ID, sentAt time.Time) {
		seq := uint64(len(messages) + 1)
		messages = append(messages, ports.Commit{ID: "m" + string(rune('0'+seq)), Stream: conversation.MessagesStream(id), Version: seq,
			Events: []conversation.Event{conversation.MessagePosted{Conversation: id, Seq: seq, MessageID: "m", From: from, Body: "hi", SentAt: sentAt}}})
	}
	changeCommit(conversation.GroupCreated{Conversation: id, Title: "team", Owner: "ann", Members: []user.ID{"ann", "bob"}, At: at})
	post("ann", at.Add(time.Second))
	changeCommit(conversation.MemberAdded{Conversation: id, User: "cid", By: "ann", At: at.Add(2 * time.Second)})
	post("bob", at.Add(3*time.Second))
	receipts = append(receipts, ports.Commit{ID: "r1", Stream: conversation.ReceiptsStream(id), Version: 1,
		Events: []conversation.Event{conversation.DeliveredUpTo{Conversation: id, User: "bob", Seq: 2}, conversation.ReadUpTo{Conversation: id, User: "bob", Seq: 2}}})
	changeCommit(conversation.MemberRemoved{Conversation: id, User: "ann", By: "ann", At: at.Add(4 * time.Second)},
		conversation.OwnerChanged{Conversation: id, Owner: "bob", At: at.Add(4 * time.Second)})
	changeCommit(conversation.GroupRenamed{Conversation: id, Title: "team 2", By: "cid", At: at.Add(5 * time.Second)})
	for _, c := range append(append(append([]ports.Commit(nil), changes...), messages...), receipts...) {
		if err := store.Append(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	return changes, messages, receipts
}

func TestProjectionFoldsAGroupWhateverTheBatches(t *testing.T) {
	store := memory.NewEventStore()
	changes, messages, receipts := groupHistory(t, store)
	all := append(append(append([]ports.Commit(nil), messages...), receipts...), changes...)
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	want := []ports.MemberView{
		{User: "bob", DeliveredUpTo: 2, ReadUpTo: 2, JoinedAt: at},
		{User: "cid", JoinedAt: at.Add(2 * time.Second), Unread: []ports.SeqRun{{From: 2, To: 2}}},
	}
	for _, tt := range []struct {
		name    string
		batches [][]ports.Commit
	}{
		{"one batch, messages listed first", [][]ports.Commit{all}},
		{"commit by commit, in commit order", [][]ports.Commit{changes[:1], messages[:1], changes[1:2], messages[1:], receipts, changes[2:]}},
		{"the last of each stream alone, the gaps filled from the store", [][]ports.Commit{changes[len(changes)-1:], messages[len(messages)-1:], receipts}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := projectedBy(t, store, tt.batches...)
			if !v.IsGroup() || v.Title != "team 2" || v.Owner != "bob" || v.LastSeq != 2 || v.Revision() != 7 {
				t.Fatalf("view: group %v title %q owner %q lastSeq %d revision %d; want a group, team 2, bob, 2, 7",
					v.IsGroup(), v.Title, v.Owner, v.LastSeq, v.Revision())
			}
			if v = withoutEmptyRuns(v); !reflect.DeepEqual(v.Members, want) {
				t.Fatalf("members:\n got %+v\nwant %+v", v.Members, want)
			}
		})
	}
}

func TestReplayOfAGroupEqualsItsLiveProjection(t *testing.T) {
	store := memory.NewEventStore()
	changes, messages, receipts := groupHistory(t, store)
	live := projectedBy(t, store, append(append(append([]ports.Commit(nil), messages...), receipts...), changes...))
	rm := memory.NewReadModel()
	if err := application.Replay(context.Background(), store, rm); err != nil {
		t.Fatal(err)
	}
	replayed, err := rm.GetMany(context.Background(), []string{live.Conversation})
	if err != nil {
		t.Fatal(err)
	}
	if got := withoutEmptyRuns(replayed[live.Conversation]); !reflect.DeepEqual(got, withoutEmptyRuns(live)) {
		t.Fatalf("replayed:\n got %+v\nwant %+v", got, live)
	}
	for u, want := range map[user.ID]int{"ann": 0, "bob": 1, "cid": 1} {
		if list, _ := rm.ListFor(context.Background(), u, 10); len(list) != want {
			t.Errorf("%s lists %d conversations, want %d", u, len(list), want)
		}
	}
}

// withoutEmptyRuns makes a member's empty unread runs nil, as an equal view
// may hold either.
func withoutEmptyRuns(v ports.ConversationView) ports.ConversationView {
	v = v.Clone()
	for i := range v.Members {
		if len(v.Members[i].Unread) == 0 {
			v.Members[i].Unread = nil
		}
	}
	return v
}
