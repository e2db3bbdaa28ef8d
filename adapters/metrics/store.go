package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evchat/chatd/ports"
)

// measuredStore times the event store's calls that a send or a delivery
// waits for; Ping (readiness) and whatever else passes through untimed.
type measuredStore struct {
	ports.EventStore
	append, load, findCommit timedOp
}

// MeasureStore decorates an event store: each Append, Load and FindCommit
// is timed into chat_store_seconds by op and outcome, so that the store's
// share of chat_send_ack_seconds shows apart from the bus's.
func MeasureStore(reg prometheus.Registerer, store ports.EventStore) (ports.EventStore, error) {
	vec, err := newPortHistogram(reg, "chat_store_seconds",
		"Event store calls by op (append, load, find_commit) and outcome (ok, conflict, duplicate, not_found, unavailable, error).")
	if err != nil {
		return nil, err
	}
	return &measuredStore{
		EventStore: store,
		append:     newTimedOp(vec, "append", OutcomeOK, outcomeConflict, outcomeDuplicate, outcomeUnavailable),
		load:       newTimedOp(vec, "load", OutcomeOK, outcomeUnavailable),
		findCommit: newTimedOp(vec, "find_commit", OutcomeOK, outcomeNotFound, outcomeUnavailable),
	}, nil
}

func (s *measuredStore) Append(ctx context.Context, c ports.Commit) error {
	start := time.Now()
	err := s.EventStore.Append(ctx, c)
	s.append.since(outcomeOf(err), start)
	return err
}

func (s *measuredStore) Load(ctx context.Context, stream string, from, to uint64) ([]ports.Commit, error) {
	start := time.Now()
	commits, err := s.EventStore.Load(ctx, stream, from, to)
	s.load.since(outcomeOf(err), start)
	return commits, err
}

func (s *measuredStore) FindCommit(ctx context.Context, id string) (ports.Commit, error) {
	start := time.Now()
	c, err := s.EventStore.FindCommit(ctx, id)
	s.findCommit.since(outcomeOf(err), start)
	return c, err
}
