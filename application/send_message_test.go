package application_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/eventually"
)

// TestSendToOneselfIsRefused: the one rule of a send that the transports,
// which parse its fields, cannot check, since they do not know the sender.
func TestSendToOneselfIsRefused(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	_, err := n.app.Send.Handle(context.Background(), application.SendMessageCommand{Sender: "a", ClientID: "k", To: "a", Body: "x"})
	if !errors.Is(err, conversation.ErrSelf) {
		t.Fatalf("err %v, want ErrSelf", err)
	}
	if commits, _ := n.store.Load(context.Background(), string(conversation.IDFor("a", "a")), 1, 0); len(commits) != 0 {
		t.Fatalf("the refused send stored %d commits", len(commits))
	}
}

func TestResendReturnsTheFirstAck(t *testing.T) {
	n := newNode(t, testConfig(), memory.NewEventStore())
	first := send(t, n, "alice", "k-1", "bob", "hello")
	again := send(t, n, "alice", "k-1", "bob", "hello again")
	if first != again {
		t.Fatalf("resend ack %+v differs from first %+v", again, first)
	}
	other := send(t, n, "alice", "k-2", "bob", "second")
	if other.Seq != 2 {
		t.Fatalf("next message got seq %d, want 2", other.Seq)
	}
	seed := send(t, n, "alice", "", "bob", "seed form")
	if seed.ClientID == "" || seed.Seq != 3 {
		t.Fatalf("server-made key: %+v", seed)
	}
}

func TestConcurrentSendersGetGaplessSeqsSeenInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, testConfig(), memory.NewEventStore())
		alice := connect(t, n, "s-alice", "alice")
		bob := connect(t, n, "s-bob", "bob")
		const each = 50
		var wg sync.WaitGroup
		seqs := make(chan uint64, 2*each)
		for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					ack, err := n.app.Send.Handle(context.Background(), application.SendMessageCommand{
						Sender: user.ID(pair[0]), ClientID: message.ClientID(fmt.Sprintf("%s-%d", pair[0], i)), To: user.ID(pair[1]), Body: "x"})
					if err != nil {
						t.Error(err)
						return
					}
					seqs <- ack.Seq
				}
			}()
		}
		wg.Wait()
		close(seqs)
		var got []uint64
		for s := range seqs {
			got = append(got, s)
		}
		slices.Sort(got)
		for i, s := range got {
			if s != uint64(i+1) {
				t.Fatalf("acked seqs are not 1..%d without gaps: %v", 2*each, got)
			}
		}
		want := make([]uint64, 2*each)
		for i := range want {
			want[i] = uint64(i + 1)
		}
		for _, s := range []*fakeSession{alice, bob} {
			eventually.True(t, "every message at "+s.id, func() bool { return len(s.seqs()) == 2*each })
			if !slices.Equal(s.seqs(), want) {
				t.Fatalf("%s saw %v", s.id, s.seqs())
			}
		}
	})
}

func TestRateLimit(t *testing.T) {
	cfg := testConfig()
	cfg.SendRate, cfg.SendBurst = 0.001, 2
	n := newNode(t, cfg, memory.NewEventStore())
	send(t, n, "alice", "k1", "bob", "x")
	send(t, n, "alice", "k2", "bob", "x")
	_, err := n.app.Send.Handle(context.Background(), application.SendMessageCommand{Sender: "alice", ClientID: "k3", To: "bob", Body: "x"})
	if !errors.Is(err, application.ErrRateLimited) {
		t.Fatalf("third send: %v, want rate limited", err)
	}
	send(t, n, "bob", "k1", "alice", "others are not limited by alice")
}

// downStore is a store that cannot be reached.
type downStore struct{ ports.EventStore }

func (downStore) Append(context.Context, ports.Commit) error { return ports.ErrUnavailable }

func TestSendWhileTheStoreIsDownIsUnavailable(t *testing.T) {
	n := newNode(t, testConfig(), downStore{memory.NewEventStore()})
	_, err := n.app.Send.Handle(context.Background(), application.SendMessageCommand{Sender: "alice", ClientID: "k", To: "bob", Body: "x"})
	if !errors.Is(err, ports.ErrUnavailable) {
		t.Fatalf("got %v, want unavailable", err)
	}
}
