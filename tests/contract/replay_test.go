package contract_test

import (
	"testing"

	"github.com/evchat/chatd/adapters/memory"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/contract"
)

func TestMemoryReplay(t *testing.T) {
	contract.TestReplay(t, func(*testing.T) (ports.EventStore, ports.ReadModel) {
		return memory.NewEventStore(), memory.NewReadModel()
	})
}

func TestMemoryRecalledEraser(t *testing.T) {
	contract.TestRecalledEraser(t, func(*testing.T) (contract.ErasingStore, ports.ReadModel) {
		return memory.NewEventStore(), memory.NewReadModel()
	})
}
