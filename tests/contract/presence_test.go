package contract_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/adapters/mongo"
	"github.com/evchat/chatd/adapters/rocketmq"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/contract"
)

// The in-process signal bus is one process: its nodes share the one bus.
func TestMemorySignals(t *testing.T) {
	features := contract.SignalFeatures{Settle: 5 * time.Second, Quiet: 100 * time.Millisecond}
	contract.TestSignals(t, features, func(t *testing.T, nodes int) contract.SignalBus {
		s := memory.NewSignals()
		bus := contract.SignalBus{Start: func(t *testing.T) {
			_ = s.Start(context.Background())
			t.Cleanup(func() { _ = s.Stop(context.Background()) })
		}}
		for range nodes {
			bus.Nodes = append(bus.Nodes, s)
		}
		return bus
	})
}

func TestMemoryLastSeen(t *testing.T) {
	contract.TestLastSeenStore(t, func(*testing.T) ports.LastSeenStore { return memory.NewLastSeen() })
}

func TestMongoLastSeen(t *testing.T) {
	contract.TestLastSeenStore(t, func(t *testing.T) ports.LastSeenStore { return mongo.NewLastSeen(freshDatabase(t)) })
}

func TestRocketMQSignals(t *testing.T) {
	features := contract.SignalFeatures{Settle: 15 * time.Second, Quiet: 2 * time.Second}
	contract.TestSignals(t, features, func(t *testing.T, nodes int) contract.SignalBus {
		cfg := caseConfig(t)
		var adapters []*rocketmq.Signals
		bus := contract.SignalBus{}
		for range nodes {
			node := cfg
			node.NodeID = "signals_" + strings.ToLower(rand.Text()[:8])
			s, err := rocketmq.NewSignals(node, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			adapters = append(adapters, s)
			bus.Nodes = append(bus.Nodes, s)
		}
		bus.Start = func(t *testing.T) {
			for _, s := range adapters {
				if err := s.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Stop(context.Background()) })
			}
			for _, s := range adapters {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				err := s.WarmUp(ctx)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		return bus
	})
}
