// Package embedded builds, for the transports' tests, one node as `make run`
// wires it: the application over the in-memory adapters and the in-process
// bus, with a dev-mode token verifier and issuer and a metrics registry. The
// WebSocket and REST tests drive their transport over it, so both test the
// same node without each spelling its wiring out. Presence is built but
// runs only once a test starts it, so that the tests of other frames do not
// see presence frames between theirs.
package embedded

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/adapters/metrics"
	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/ports"
)

// Node is an embedded node's parts that a transport is built from.
type Node struct {
	App      *application.Application
	Store    *memory.EventStore
	Bus      *memory.Bus
	Signals  *memory.Signals
	LastSeen *memory.LastSeen
	Verifier *auth.Verifier
	Issuer   *auth.Issuer
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
}

// New starts a node whose tokens are signed with secret; the bus stops when
// the test ends. A zero cfg is application.DefaultConfig().
func New(t testing.TB, cfg application.Config, secret []byte) *Node {
	t.Helper()
	if cfg == (application.Config{}) {
		cfg = application.DefaultConfig()
	}
	store, clock := memory.NewEventStore(), memory.Clock{}
	tx, err := application.NewTransactions(store, clock, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := memory.NewBus(tx, memory.DefaultBusConfig())
	if err != nil {
		t.Fatal(err)
	}
	signals, lastSeen := memory.NewSignals(), memory.NewLastSeen()
	app, err := application.New(cfg, store, bus, memory.NewReadModel(), clock, memory.IDs{},
		application.PresencePorts{Signals: signals, LastSeen: lastSeen})
	if err != nil {
		t.Fatal(err)
	}
	bus.Cluster("projector", app.Projector.Handle)
	bus.Broadcast("delivery", func(ctx context.Context, commits []ports.Commit) error {
		_ = app.Presence.ObserveCommits(ctx, commits)
		return app.Delivery.Handle(ctx, commits)
	})
	bus.Start()
	t.Cleanup(func() { _ = bus.Stop(context.Background()) })

	verifier, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := auth.NewIssuer(auth.IssuerConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return &Node{App: app, Store: store, Bus: bus, Signals: signals, LastSeen: lastSeen, Verifier: verifier, Issuer: issuer, Registry: reg, Metrics: m}
}

// StartPresence runs the node's signals and presence until the test ends.
func (n *Node) StartPresence(t testing.TB) {
	t.Helper()
	n.Signals.Start()
	n.App.Presence.Start()
	t.Cleanup(func() {
		_ = n.App.Presence.Stop(context.Background())
		_ = n.Signals.Stop(context.Background())
	})
}
