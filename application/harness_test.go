package application_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// node is one application over the embedded adapters, as `make run` wires it.
type node struct {
	app   *application.Application
	store ports.EventStore
	rm    *memory.ReadModel
	bus   *memory.Bus
}

// newBus is the in-process bus over store, its transactions settled by
// the store as the application's handler settles them, checked back often.
func newBus(t *testing.T, store ports.EventStore, txTimeout time.Duration) *memory.Bus {
	t.Helper()
	tx, err := application.NewTransactions(store, memory.Clock{}, txTimeout)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := memory.NewBus(tx, memory.BusConfig{CheckInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return bus
}

// newNode is a node on the wall clock. Tests that would wait out the
// node's own delays (the delivered marks gather for 300 ms) build it
// inside a testing/synctest bubble, where those pass at once and
// synctest.Wait shows when nothing more is under way.
func newNode(t *testing.T, cfg application.Config, store ports.EventStore) *node {
	t.Helper()
	return newNodeWithClock(t, cfg, store, memory.Clock{})
}

func newNodeWithClock(t *testing.T, cfg application.Config, store ports.EventStore, clock ports.Clock) *node {
	t.Helper()
	bus := newBus(t, store, cfg.TxTimeout)
	rm := memory.NewReadModel()
	app, err := application.New(cfg, store, bus, rm, clock, memory.IDs{}, memoryPresence())
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, app, store, rm, bus)
}

// startNode subscribes app to bus as bootstrap does and starts the bus;
// when the test ends, it waits for the delivered marks, then stops the bus.
func startNode(t *testing.T, app *application.Application, store ports.EventStore, rm *memory.ReadModel, bus *memory.Bus) *node {
	t.Helper()
	app.Subscribe(bus)
	_ = bus.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		app.Delivery.Wait(ctx)
		_ = bus.Stop(ctx)
	})
	return &node{app: app, store: store, rm: rm, bus: bus}
}

// memoryPresence is presence over in-memory ports of its own, for the
// tests of other use cases: never started, it signals no other node.
func memoryPresence() application.PresencePorts {
	return application.PresencePorts{Signals: memory.NewSignals(), LastSeen: memory.NewLastSeen()}
}

// laterClock is the time by a node whose clock is ahead of the others'.
type laterClock struct{ by time.Duration }

func (c laterClock) Now() time.Time { return time.Now().Add(c.by) }

func testConfig() application.Config {
	cfg := application.DefaultConfig()
	cfg.SendRate, cfg.SendBurst = 1e6, 1e6
	return cfg
}

// fakeSession records what the application pushes to it. With a
// delivery, it reports each message written right away, from a goroutine of
// its own as a prompt client's transport writer would (never under the
// delivery's locks); without, it is a session whose frames never leave its
// queue.
type fakeSession struct {
	id       string
	user     user.ID
	delivery *application.Delivery
	// writing counts the write reports still under way.
	writing sync.WaitGroup

	mu       sync.Mutex
	messages []ports.MessageView
	receipts []ports.Receipt
	updates  []ports.UpdateView
	presence []ports.PresenceView
	typing   []ports.TypingView
	members  []ports.MemberChange
	closed   bool
}

func (s *fakeSession) ID() string    { return s.id }
func (s *fakeSession) User() user.ID { return s.user }
func (s *fakeSession) PushMessage(m ports.MessageView) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.messages = append(s.messages, m)
	if s.delivery != nil {
		s.writing.Go(func() { s.delivery.Written(s, m.Conversation, m.To, m.Seq) })
	}
	return true
}

// close refuses further pushes, as a session being torn down does, and
// waits for the write reports under way: a delivery that found the
// session before it was unregistered may still push, and its report must
// not start while the wait runs.
func (s *fakeSession) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.writing.Wait()
}

// writePage reports a sync page of seqs from through to written, as the
// transport does once it has written the answer to a sync.
func (s *fakeSession) writePage(conv string, from, to uint64) {
	s.delivery.PageWritten(s, conv, from, to)
}

func (s *fakeSession) PushReceipt(r ports.Receipt) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.receipts = append(s.receipts, r)
	return true
}

func (s *fakeSession) PushUpdate(u ports.UpdateView) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates = append(s.updates, u)
	return true
}

func (s *fakeSession) updatesSeen() []ports.UpdateView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ports.UpdateView(nil), s.updates...)
}

func (s *fakeSession) seqs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, len(s.messages))
	for i, m := range s.messages {
		out[i] = m.Seq
	}
	return out
}

func (s *fakeSession) receiptsSeen() []ports.Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ports.Receipt(nil), s.receipts...)
}

func connect(t *testing.T, n *node, id string, u user.ID) *fakeSession {
	t.Helper()
	s := &fakeSession{id: id, user: u, delivery: n.app.Delivery}
	unregister := n.app.Sessions.Register(s)
	// Before the node's cleanup waits for the delivered marks, so that no
	// write report adds one after it.
	t.Cleanup(func() {
		unregister()
		s.close()
	})
	return s
}

func send(t *testing.T, n *node, from user.ID, key, to, body string) application.Ack {
	t.Helper()
	ack, err := n.app.Send.Handle(context.Background(), application.SendMessageCommand{
		Sender: from, ClientID: message.ClientID(key), To: user.ID(to), Body: message.Body(body)})
	if err != nil {
		t.Fatalf("send %s->%s: %v", from, to, err)
	}
	return ack
}
