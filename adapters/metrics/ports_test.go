package metrics

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evchat/chatd/ports"
)

// storeAnswering is an event store whose every call answers err.
type storeAnswering struct {
	ports.EventStore
	err error
}

func (s storeAnswering) Append(context.Context, ports.Commit) error { return s.err }
func (s storeAnswering) Load(context.Context, string, uint64, uint64) ([]ports.Commit, error) {
	return nil, s.err
}
func (s storeAnswering) FindCommit(context.Context, string) (ports.Commit, error) {
	return ports.Commit{}, s.err
}

// observations is how many calls the series op/outcome of the histogram
// named name has timed.
func observations(t *testing.T, reg *prometheus.Registry, name, op, outcome string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["op"] == op && labels["outcome"] == outcome {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	t.Fatalf("%s has no series op=%q outcome=%q", name, op, outcome)
	return 0
}

func TestMeasuredStoreTimesEachCallByOpAndOutcome(t *testing.T) {
	wrapped := fmt.Errorf("mongo: %w", ports.ErrUnavailable)
	tests := []struct {
		name        string
		err         error
		call        func(ports.EventStore) error
		op, outcome string
	}{
		{"append ok", nil, appendOne, "append", "ok"},
		{"append conflict", ports.ErrVersionConflict, appendOne, "append", "conflict"},
		{"append duplicate", ports.ErrDuplicateCommit, appendOne, "append", "duplicate"},
		{"append unavailable, wrapped", wrapped, appendOne, "append", "unavailable"},
		{"append failing otherwise", errors.New("boom"), appendOne, "append", "error"},
		{"load ok", nil, loadOne, "load", "ok"},
		{"load with an outcome it has no series for", ports.ErrCommitNotFound, loadOne, "load", "error"},
		{"find_commit not found", ports.ErrCommitNotFound, findOne, "find_commit", "not_found"},
		{"find_commit unavailable", ports.ErrUnavailable, findOne, "find_commit", "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			store, err := MeasureStore(reg, storeAnswering{err: tt.err})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.call(store); !errors.Is(err, tt.err) {
				t.Fatalf("the decorator answered %v, want the store's %v", err, tt.err)
			}
			if n := observations(t, reg, "chat_store_seconds", tt.op, tt.outcome); n != 1 {
				t.Fatalf("%s/%s timed %d calls, want 1", tt.op, tt.outcome, n)
			}
			// Every series exists from the start: 5 of append, 3 of load
			// and 4 of find_commit, error included.
			if n := testutil.CollectAndCount(reg, "chat_store_seconds"); n != 12 {
				t.Fatalf("chat_store_seconds has %d series, want 12", n)
			}
		})
	}
}

func appendOne(s ports.EventStore) error { return s.Append(context.Background(), ports.Commit{}) }
func loadOne(s ports.EventStore) error {
	_, err := s.Load(context.Background(), "c", 1, 0)
	return err
}
func findOne(s ports.EventStore) error {
	_, err := s.FindCommit(context.Background(), "id")
	return err
}

// publisherAnswering is a publisher whose Publish ends in state with err
// and whose Republish answers err.
type publisherAnswering struct {
	ports.TransactionalPublisher
	state ports.TxState
	err   error
}

func (p publisherAnswering) Publish(context.Context, ports.Commit) (ports.TxState, error) {
	return p.state, p.err
}
func (p publisherAnswering) Republish(context.Context, ports.Commit) error { return p.err }

func TestMeasuredPublisherTimesEachSendByOpAndOutcome(t *testing.T) {
	tests := []struct {
		name        string
		state       ports.TxState
		err         error
		republish   bool
		op, outcome string
	}{
		{"committed", ports.TxCommit, nil, false, "publish", "commit"},
		{"rolled back", ports.TxRollback, ports.ErrVersionConflict, false, "publish", "rollback"},
		{"unknown", ports.TxUnknown, ports.ErrUnavailable, false, "publish", "unknown"},
		{"republished", ports.TxUnknown, nil, true, "republish", "ok"},
		{"republish unavailable", ports.TxUnknown, ports.ErrUnavailable, true, "republish", "unavailable"},
		{"republish failing otherwise", ports.TxUnknown, errors.New("boom"), true, "republish", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			p, err := MeasurePublisher(reg, publisherAnswering{state: tt.state, err: tt.err})
			if err != nil {
				t.Fatal(err)
			}
			if tt.republish {
				err = p.Republish(context.Background(), ports.Commit{})
			} else {
				var state ports.TxState
				state, err = p.Publish(context.Background(), ports.Commit{})
				if state != tt.state {
					t.Fatalf("the decorator answered %v, want the publisher's %v", state, tt.state)
				}
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("the decorator answered %v, want the publisher's %v", err, tt.err)
			}
			if n := observations(t, reg, "chat_bus_publish_seconds", tt.op, tt.outcome); n != 1 {
				t.Fatalf("%s/%s timed %d calls, want 1", tt.op, tt.outcome, n)
			}
		})
	}
}

func TestMeasuringTwiceOnOneRegistryFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := MeasureStore(reg, storeAnswering{}); err != nil {
		t.Fatal(err)
	}
	if _, err := MeasureStore(reg, storeAnswering{}); err == nil {
		t.Fatal("a second store decorator registered on the same registry")
	}
	if _, err := MeasurePublisher(reg, publisherAnswering{}); err != nil {
		t.Fatal(err)
	}
	if _, err := MeasurePublisher(reg, publisherAnswering{}); err == nil {
		t.Fatal("a second publisher decorator registered on the same registry")
	}
}

func TestATimedObservationAllocatesNothing(t *testing.T) {
	store, err := MeasureStore(prometheus.NewRegistry(), storeAnswering{err: ports.ErrVersionConflict})
	if err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = appendOne(store) }); allocs != 0 {
		t.Fatalf("a measured append allocates %v times, want 0", allocs)
	}
}
