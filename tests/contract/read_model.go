package contract

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// TestReadModel runs the read model contract against models made by newModel.
func TestReadModel(t *testing.T, newModel func(t *testing.T) ports.ReadModel) {
	t.Run("a saved view reads back equal", func(t *testing.T) {
		t.Parallel()
		rm, ctx := newModel(t), context.Background()
		v := sampleView(uniqueName(t, "c"), uniqueName(t, "u"), uniqueName(t, "u"), time.Now())
		if _, found, err := getView(ctx, rm, v.Conversation); err != nil || found {
			t.Fatalf("before save: found=%v err=%v", found, err)
		}
		if err := saveView(ctx, rm, v, 0); err != nil {
			t.Fatal(err)
		}
		got, found, err := getView(ctx, rm, v.Conversation)
		if err != nil || !found {
			t.Fatalf("after save: found=%v err=%v", found, err)
		}
		assertView(t, got, v)
	})

	t.Run("a save from a stale revision conflicts", func(t *testing.T) {
		t.Parallel()
		rm, ctx := newModel(t), context.Background()
		v := sampleView(uniqueName(t, "c"), uniqueName(t, "u"), uniqueName(t, "u"), time.Now())
		if err := saveView(ctx, rm, v, 0); err != nil {
			t.Fatal(err)
		}
		if err := saveView(ctx, rm, v, 0); !errors.Is(err, ports.ErrRevisionConflict) {
			t.Fatalf("second create: got %v, want ErrRevisionConflict", err)
		}
		next := v
		next.MessagesVersion++
		next.LastSeq++
		if err := saveView(ctx, rm, next, v.Revision()+1); !errors.Is(err, ports.ErrRevisionConflict) {
			t.Fatalf("wrong revision: got %v, want ErrRevisionConflict", err)
		}
		if err := saveView(ctx, rm, next, v.Revision()); err != nil {
			t.Fatalf("right revision: %v", err)
		}
		got, _, _ := getView(ctx, rm, v.Conversation)
		assertView(t, got, next)
	})

	t.Run("exactly one of twenty racing savers wins a revision", func(t *testing.T) {
		t.Parallel()
		rm, ctx := newModel(t), context.Background()
		v := sampleView(uniqueName(t, "c"), uniqueName(t, "u"), uniqueName(t, "u"), time.Now())
		if err := saveView(ctx, rm, v, 0); err != nil {
			t.Fatal(err)
		}
		const savers = 20
		var wg sync.WaitGroup
		errs := make([]error, savers)
		for i := range savers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := v
				next.ReceiptsVersion++
				errs[i] = saveView(ctx, rm, next, v.Revision())
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ports.ErrRevisionConflict):
				t.Errorf("loser got %v, want ErrRevisionConflict", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d savers won, want exactly 1", wins)
		}
	})

	t.Run("a batch of saves settles each view on its own", func(t *testing.T) {
		t.Parallel()
		rm, ctx := newModel(t), context.Background()
		now := time.Now()
		stale := sampleView(uniqueName(t, "c"), uniqueName(t, "u"), uniqueName(t, "u"), now)
		taken := sampleView(uniqueName(t, "c"), uniqueName(t, "u"), uniqueName(t, "u"), now)
		other := sampleView(uniqueName(t, "c"), uniqueName(t, "u"), uniqueName(t, "u"), now)
		for _, v := range []ports.ConversationView{stale, taken, other} {
			if err := saveView(ctx, rm, v, 0); err != nil {
				t.Fatal(err)
			}
		}
		fresh := sampleView(uniqueName(t, "c"), uniqueName(t, "u"), uniqueName(t, "u"), now)
		next := stale
		next.MessagesVersion++
		errs, err := rm.SaveMany(ctx, []ports.ViewSave{
			{View: fresh, Expected: 0},                   // a new view
			{View: next, Expected: stale.Revision()},     // the next revision
			{View: taken, Expected: 0},                   // created already
			{View: next, Expected: stale.Revision() + 5}, // a wrong revision
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []error{nil, nil, ports.ErrRevisionConflict, ports.ErrRevisionConflict}
		for i := range want {
			if !errors.Is(errs[i], want[i]) {
				t.Errorf("save %d: got %v, want %v", i, errs[i], want[i])
			}
		}
		got, err := rm.GetMany(ctx, []string{fresh.Conversation, next.Conversation, taken.Conversation, other.Conversation, uniqueName(t, "missing")})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 {
			t.Fatalf("GetMany found %d views, want 4", len(got))
		}
		assertView(t, got[fresh.Conversation], fresh)
		assertView(t, got[next.Conversation], next)
		assertView(t, got[taken.Conversation], taken)
		assertView(t, got[other.Conversation], other)
	})

	t.Run("a user's list holds their conversations, latest first, limited", func(t *testing.T) {
		t.Parallel()
		rm, ctx := newModel(t), context.Background()
		me, a, b, c := uniqueName(t, "me"), uniqueName(t, "a"), uniqueName(t, "b"), uniqueName(t, "c")
		now := time.Now()
		views := []ports.ConversationView{
			sampleView(uniqueName(t, "c"), me, a, now.Add(-2*time.Minute)),
			sampleView(uniqueName(t, "c"), b, me, now),
			sampleView(uniqueName(t, "c"), me, c, now.Add(-time.Minute)),
			sampleView(uniqueName(t, "c"), a, b, now.Add(time.Minute)),
		}
		for _, v := range views {
			if err := saveView(ctx, rm, v, 0); err != nil {
				t.Fatal(err)
			}
		}
		got, err := rm.ListFor(ctx, user.ID(me), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("got %d conversations, want 3", len(got))
		}
		for i, want := range []int{1, 2, 0} {
			assertView(t, got[i], views[want])
		}
		limited, err := rm.ListFor(ctx, user.ID(me), 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(limited) != 2 || limited[0].Conversation != views[1].Conversation {
			t.Fatalf("limit 2: got %+v", limited)
		}
	})

	t.Run("a group is listed for each current member only", func(t *testing.T) {
		t.Parallel()
		rm, ctx := newModel(t), context.Background()
		owner, stays, leaves := user.ID(uniqueName(t, "o")), user.ID(uniqueName(t, "s")), user.ID(uniqueName(t, "l"))
		v := sampleGroup(uniqueName(t, "g"), time.Now(), owner, stays, leaves)
		if err := saveView(ctx, rm, v, 0); err != nil {
			t.Fatal(err)
		}
		got, _, err := getView(ctx, rm, v.Conversation)
		if err != nil {
			t.Fatal(err)
		}
		assertView(t, got, v)
		for _, u := range []user.ID{owner, stays, leaves} {
			assertListed(ctx, t, rm, u, v.Conversation, true)
		}
		next := v.Clone()
		next.ChangesVersion++
		next.Title = "renamed"
		next.Members = next.Members[:2]
		if err := saveView(ctx, rm, next, v.Revision()); err != nil {
			t.Fatal(err)
		}
		assertListed(ctx, t, rm, leaves, v.Conversation, false)
		assertListed(ctx, t, rm, stays, v.Conversation, true)
		if got, _, _ := getView(ctx, rm, v.Conversation); got.Title != "renamed" || got.Revision() != v.Revision()+1 {
			t.Fatalf("after the change: title %q revision %d, want renamed and %d", got.Title, got.Revision(), v.Revision()+1)
		}
	})

	t.Run("reset empties the model", func(t *testing.T) {
		rm, ctx := newModel(t), context.Background()
		v := sampleView(uniqueName(t, "c"), uniqueName(t, "u"), uniqueName(t, "u"), time.Now())
		if err := saveView(ctx, rm, v, 0); err != nil {
			t.Fatal(err)
		}
		if err := rm.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if _, found, err := getView(ctx, rm, v.Conversation); err != nil || found {
			t.Fatalf("after reset: found=%v err=%v", found, err)
		}
		if list, err := rm.ListFor(ctx, v.Participants[0], 10); err != nil || len(list) != 0 {
			t.Fatalf("after reset: list=%v err=%v", list, err)
		}
	})
}

func sampleView(conv, a, b string, activity time.Time) ports.ConversationView {
	activity = activity.UTC().Truncate(time.Millisecond)
	return ports.ConversationView{
		Conversation:    conv,
		Participants:    [2]user.ID{user.ID(a), user.ID(b)},
		MessagesVersion: 3, ReceiptsVersion: 2, LastSeq: 3,
		LastMessage: &ports.MessageRecord{MessageID: "m_3", Seq: 3, From: user.ID(a), To: user.ID(b),
			Body: `{"$set": "not an operator"}`, SentAt: activity},
		LastActivity: activity,
		Members: []ports.MemberView{
			{User: user.ID(a), DeliveredUpTo: 2, ReadUpTo: 1},
			{User: user.ID(b), DeliveredUpTo: 3, ReadUpTo: 1, Unread: []ports.SeqRun{{From: 2, To: 3}}},
		},
	}
}

func sampleGroup(conv string, activity time.Time, members ...user.ID) ports.ConversationView {
	activity = activity.UTC().Truncate(time.Millisecond)
	v := ports.ConversationView{
		Conversation: conv, Kind: conversation.Group, Title: "a group", Owner: members[0],
		MessagesVersion: 2, ReceiptsVersion: 1, ChangesVersion: 1, LastSeq: 2,
		LastMessage:  &ports.MessageRecord{MessageID: "m_2", Seq: 2, From: members[0], Body: "to all", SentAt: activity},
		LastActivity: activity,
	}
	for i, u := range members {
		m := ports.MemberView{User: u, JoinedAt: activity.Add(-time.Duration(len(members)-i) * time.Minute)}
		if i > 0 {
			m.DeliveredUpTo, m.ReadUpTo, m.Unread = 2, 1, []ports.SeqRun{{From: 2, To: 2}}
		}
		v.Members = append(v.Members, m)
	}
	return v
}

// assertListed checks whether u's list holds conv.
func assertListed(ctx context.Context, t *testing.T, rm ports.ReadModel, u user.ID, conv string, want bool) {
	t.Helper()
	list, err := rm.ListFor(ctx, u, 10)
	if err != nil {
		t.Fatal(err)
	}
	found := slices.ContainsFunc(list, func(v ports.ConversationView) bool { return v.Conversation == conv })
	if found != want {
		t.Fatalf("%s's list holds %s: %v, want %v", u, conv, found, want)
	}
}

func assertView(t *testing.T, got, want ports.ConversationView) {
	t.Helper()
	if !got.LastActivity.Equal(want.LastActivity) {
		t.Errorf("LastActivity = %v, want %v", got.LastActivity, want.LastActivity)
	}
	got.LastActivity, want.LastActivity = time.Time{}, time.Time{}
	if got.LastMessage != nil && want.LastMessage != nil {
		if !got.LastMessage.SentAt.Equal(want.LastMessage.SentAt) {
			t.Errorf("LastMessage.SentAt = %v, want %v", got.LastMessage.SentAt, want.LastMessage.SentAt)
		}
		g, w := *got.LastMessage, *want.LastMessage
		g.SentAt, w.SentAt = time.Time{}, time.Time{}
		got.LastMessage, want.LastMessage = &g, &w
	}
	got, want = got.Clone(), want.Clone()
	for _, v := range []*ports.ConversationView{&got, &want} {
		for i := range v.Members {
			if len(v.Members[i].Unread) == 0 {
				v.Members[i].Unread = nil
			}
			if !v.Members[i].JoinedAt.IsZero() {
				v.Members[i].JoinedAt = v.Members[i].JoinedAt.UTC()
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("view:\n got %+v\nwant %+v", got, want)
	}
}

// getView reads one view through the batch read.
func getView(ctx context.Context, rm ports.ReadModel, id string) (ports.ConversationView, bool, error) {
	views, err := rm.GetMany(ctx, []string{id})
	if err != nil {
		return ports.ConversationView{}, false, err
	}
	v, ok := views[id]
	return v, ok, nil
}

// saveView writes one view through the batch write.
func saveView(ctx context.Context, rm ports.ReadModel, v ports.ConversationView, expected uint64) error {
	errs, err := rm.SaveMany(ctx, []ports.ViewSave{{View: v, Expected: expected}})
	if err != nil {
		return err
	}
	return errs[0]
}
