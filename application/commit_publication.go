package application

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/evchat/chatd/ports"
)

// commitPublication commits through the transactional publisher and tells
// whoever must know of a commit when it is committed or comes back on the
// bus: the republisher, which watches a commit from its publication until
// the bus brings it back, and the hooks.
type commitPublication struct {
	publisher   ports.TransactionalPublisher
	republisher *Republisher

	// onCommit hears of every commit this node's publish committed, the
	// moment it did, and onObserve of every commit the bus brings: what
	// this node has just written must show in what it answers next (peers
	// for presence, the conversation list), and the bus brings the commit
	// back only later, after a join signal or a list request may have come.
	hooksMu   sync.RWMutex
	onCommit  []func(ports.Commit)
	onObserve []func(ports.Commit)
}

// afterCommit makes fn hear of each commit published from now on.
func (p *commitPublication) afterCommit(fn func(ports.Commit)) {
	p.hooksMu.Lock()
	defer p.hooksMu.Unlock()
	p.onCommit = append(p.onCommit, fn)
}

// afterObserve makes fn hear of each commit the bus brings from now on.
func (p *commitPublication) afterObserve(fn func(ports.Commit)) {
	p.hooksMu.Lock()
	defer p.hooksMu.Unlock()
	p.onObserve = append(p.onObserve, fn)
}

// publish commits c through the transactional publisher and explains any
// outcome but COMMIT with an error callers can test with errors.Is.
func (p *commitPublication) publish(ctx context.Context, c ports.Commit) error {
	p.republisher.publishing(c)
	state, err := p.publisher.Publish(ctx, c)
	if state == ports.TxCommit {
		p.republisher.acked(c)
		p.committed(c)
		return nil
	}
	// Not acked: a commit stored all the same is the resend's to find
	// (SendMessage.firstAck), or checkback's to publish.
	p.republisher.forget(c.ID)
	if state == ports.TxRollback && (errors.Is(err, ports.ErrVersionConflict) || errors.Is(err, ports.ErrDuplicateCommit)) {
		return err
	}
	if err == nil {
		err = errors.New("transaction not settled")
	}
	if errors.Is(err, ports.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %v", ports.ErrUnavailable, err)
}

// foundStored answers for c, found stored when a resend asked for it: the
// transaction that stored it did not answer, and its message may be
// waiting for checkback.
func (p *commitPublication) foundStored(c ports.Commit) {
	p.committed(c)
	p.republisher.ackedFromStore(c)
}

// committed tells the hooks of a commit that is stored and answered for.
func (p *commitPublication) committed(c ports.Commit) {
	p.hooksMu.RLock()
	defer p.hooksMu.RUnlock()
	for _, fn := range p.onCommit {
		fn(c)
	}
}

// observed is told of each commit the bus brings to this node.
func (p *commitPublication) observed(c ports.Commit) {
	p.republisher.seen(c.ID)
	p.hooksMu.RLock()
	defer p.hooksMu.RUnlock()
	for _, fn := range p.onObserve {
		fn(c)
	}
}
