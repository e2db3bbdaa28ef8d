package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evchat/chatd/ports"
)

// measuredPublisher times the transactional publisher's sends; Ping
// (readiness) passes through untimed.
type measuredPublisher struct {
	ports.TransactionalPublisher
	publish, republish timedOp
}

// MeasurePublisher decorates a transactional publisher: each Publish is
// timed into chat_bus_publish_seconds by the state its transaction ended
// in (commit, rollback, unknown), each Republish by ok, unavailable or
// error. A Publish's time includes its local transaction, the append that
// chat_store_seconds times on its own: the bus's share is the difference.
func MeasurePublisher(reg prometheus.Registerer, publisher ports.TransactionalPublisher) (ports.TransactionalPublisher, error) {
	vec, err := newPortHistogram(reg, "chat_bus_publish_seconds",
		"Bus publications by op: publish (half message, local transaction and end; outcome commit, rollback or unknown) "+
			"and republish (outcome ok, unavailable or error).")
	if err != nil {
		return nil, err
	}
	return &measuredPublisher{
		TransactionalPublisher: publisher,
		publish:                newTimedOp(vec, "publish", ports.TxCommit.String(), ports.TxRollback.String(), ports.TxUnknown.String()),
		republish:              newTimedOp(vec, "republish", OutcomeOK, outcomeUnavailable),
	}, nil
}

func (p *measuredPublisher) Publish(ctx context.Context, c ports.Commit) (ports.TxState, error) {
	start := time.Now()
	state, err := p.TransactionalPublisher.Publish(ctx, c)
	p.publish.since(state.String(), start)
	return state, err
}

func (p *measuredPublisher) Republish(ctx context.Context, c ports.Commit) error {
	start := time.Now()
	err := p.TransactionalPublisher.Republish(ctx, c)
	p.republish.since(outcomeOf(err), start)
	return err
}
