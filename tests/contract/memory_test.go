package contract_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/contract"
)

func TestMemoryEventStore(t *testing.T) {
	contract.TestEventStore(t, func(*testing.T) ports.EventStore { return memory.NewEventStore() })
}

func TestMemoryReadModel(t *testing.T) {
	contract.TestReadModel(t, func(*testing.T) ports.ReadModel { return memory.NewReadModel() })
}

// The in-process bus is one process: its nodes are views of the one bus,
// each with a node id of its own.
func TestMemoryTransactionalPublisher(t *testing.T) {
	features := contract.TxBusFeatures{Settle: 5 * time.Second, Quiet: 200 * time.Millisecond, Routes: true}
	contract.TestTransactionalPublisher(t, features, func(t *testing.T, h ports.TransactionHandler, nodes int) contract.TxBus {
		bus, err := memory.NewBus(h, memory.BusConfig{CheckInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		subscribers, ids := make([]ports.Subscriber, nodes), make([]string, nodes)
		for i := range subscribers {
			ids[i] = fmt.Sprintf("node-%d", i)
			subscribers[i] = bus.OnNode(ids[i])
		}
		return contract.TxBus{Publisher: bus, Nodes: subscribers, NodeIDs: ids, Start: func(t *testing.T) {
			_ = bus.Start(context.Background())
			t.Cleanup(func() { _ = bus.Stop(context.Background()) })
		}}
	})
}
