// Package embedded builds, for the transports' tests, one node as `make run`
// wires it: the application over the in-memory adapters and the in-process
// bus, subscribed by application.Subscribe and started in bootstrap's order
// (bus, republisher, signals, presence), presence included, with a dev-mode
// token verifier and issuer and a metrics registry. It cannot reuse
// bootstrap's fx modules: the transports' own tests import it, and
// bootstrap imports the transports, so the graph would be a cycle; it
// shares what a node is made of instead (application.New, Subscribe, and the
// Start and Stop of every part).
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

// New starts a node whose tokens are signed with secret; it stops when the
// test ends. A zero cfg is application.DefaultConfig().
func New(t testing.TB, cfg application.Config, secret []byte) *Node {
	t.Helper()
	if cfg == (application.Config{}) {
		cfg = application.DefaultConfig()
	}
	store, clock := memory.NewEventStore(), memory.Clock{}
	tx, err := application.NewTransactions(store, clock, cfg.TxTimeout)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := memory.NewBus(tx, memory.DefaultBusConfig())
	if err != nil {
		t.Fatal(err)
	}
	signals, lastSeen := memory.NewSignals(), memory.NewLastSeen()
	reg := prometheus.NewRegistry()
	presenceMetrics, err := metrics.NewPresence(reg)
	if err != nil {
		t.Fatal(err)
	}
	app, err := application.New(cfg, store, bus, memory.NewReadModel(), clock, memory.IDs{},
		application.PresencePorts{Signals: signals, LastSeen: lastSeen, Observer: presenceMetrics, Routing: bus})
	if err != nil {
		t.Fatal(err)
	}
	app.Subscribe(bus)
	run(t, bus, app.Republisher, signals, app.Presence)

	verifier, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := auth.NewIssuer(auth.IssuerConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return &Node{App: app, Store: store, Bus: bus, Signals: signals, LastSeen: lastSeen, Verifier: verifier, Issuer: issuer, Registry: reg, Metrics: m}
}

// part is anything of a node with a lifecycle.
type part interface {
	Start(context.Context) error
	Stop(context.Context) error
}

// stopTimeout bounds each part's stop at the end of a test.
const stopTimeout = 5 * time.Second

// run starts parts in order and stops them in the reverse order when the
// test ends, as fx runs bootstrap's hooks.
func run(t testing.TB, parts ...part) {
	t.Helper()
	for _, p := range parts {
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				t.Errorf("stopping the embedded node: %v", err)
			}
		})
	}
}
