// Package txbatch is what every transactional bus adapter does the same way
// with a batch of commits that share one half message: run their local
// transactions side by side (so that the store can group their appends into
// one write), decide how the batch ends, tell each commit's caller how its
// publication ended, and answer a checkback of the whole batch. A batch
// commits only when every commit of it is stored; a commit that lost its
// version race must not reach a subscriber, so such a batch rolls back and
// the commits it did store are its survivors, which the adapter publishes
// again (ports.TransactionalPublisher). Choosing which commits wait together,
// and carrying the batch, is each adapter's own.
package txbatch

import (
	"context"
	"errors"
	"sync"

	"github.com/evchat/chatd/ports"
)

// Member is one commit of a batch and its caller's side of it.
type Member struct {
	// Ctx is the caller's context, under which its local transaction runs.
	Ctx    context.Context
	Commit ports.Commit
	// Body is the commit as the adapter carries it; its length bounds a batch.
	Body []byte
	// Stored says a local transaction of an earlier batch stored the commit:
	// that batch did not commit, and its local transaction now only checks
	// that the commit is stored where it was.
	Stored bool

	// State and Err are the outcome of the member's local transaction,
	// then of its publication once Settle has run.
	State ports.TxState
	Err   error
}

// ErrNotConfirmed explains a stored member whose check did not find it
// where its earlier batch stored it: the store did not answer.
var ErrNotConfirmed = errors.New("stored commit not confirmed by the store")

// RunLocal runs the local transaction of every member, side by side, and
// returns how the batch ends: commit when every member's does, unknown when
// any member's outcome is unknown (checkback settles the batch), rollback
// otherwise.
func RunLocal(h ports.TransactionHandler, members []*Member) ports.TxState {
	if len(members) == 1 {
		runOne(h, members[0])
	} else {
		var wg sync.WaitGroup
		for _, m := range members {
			wg.Go(func() { runOne(h, m) })
		}
		wg.Wait()
	}
	states := make([]ports.TxState, len(members))
	for i, m := range members {
		states[i] = m.State
	}
	return End(states)
}

func runOne(h ports.TransactionHandler, m *Member) {
	if !m.Stored {
		m.State, m.Err = h.ExecuteLocal(m.Ctx, m.Commit)
		return
	}
	m.State, m.Err = h.Check(m.Ctx, m.Commit), nil
	if m.State != ports.TxCommit {
		m.Err = ErrNotConfirmed
	}
}

// End is how a batch whose commits' outcomes are states ends.
func End(states []ports.TxState) ports.TxState {
	end := ports.TxCommit
	for _, s := range states {
		switch s {
		case ports.TxUnknown:
			return ports.TxUnknown
		case ports.TxRollback:
			end = ports.TxRollback
		}
	}
	return end
}

// Settle tells each member of a batch that ended in end how its publication
// ended, and returns the survivors: the members that the batch stored but
// did not publish, marked Stored, which must be published again. Their
// callers are told nothing yet.
func Settle(members []*Member, end ports.TxState) []*Member {
	var survivors []*Member
	for _, m := range members {
		switch {
		case end == ports.TxCommit:
			m.State, m.Err = ports.TxCommit, nil
		case m.State == ports.TxCommit:
			m.Stored = true
			survivors = append(survivors, m)
		}
	}
	return survivors
}

// Unexecuted gives each member the outcome it keeps if the batch ends
// before the local transactions run (a broker that rolls the half message
// back unexecuted): rollback, for nothing was stored, or unknown for a member
// stored by an earlier batch, which now has no half message that would
// publish it (a resend finds it stored).
func Unexecuted(members []*Member) {
	for _, m := range members {
		m.State, m.Err = ports.TxRollback, nil
		if m.Stored {
			m.State = ports.TxUnknown
		}
	}
}

// Unsent settles the members of a batch whose half message the bus did not
// take, so that no local transaction ran, explained by err.
func Unsent(members []*Member, err error) {
	Unexecuted(members)
	for _, m := range members {
		m.Err = err
	}
}

// Outcomes are the members' outcomes, in order.
func Outcomes(members []*Member) []ports.TxOutcome {
	out := make([]ports.TxOutcome, len(members))
	for i, m := range members {
		out[i] = ports.TxOutcome{State: m.State, Err: m.Err}
	}
	return out
}

// Check answers a checkback of a whole batch: commit when every commit is
// stored, unknown while any outcome is unknown, rollback otherwise, with the
// commits that are stored all the same, which the adapter must republish:
// their only half message is this one, and it is being rolled back.
func Check(ctx context.Context, h ports.TransactionHandler, commits []ports.Commit) (ports.TxState, []ports.Commit) {
	states := make([]ports.TxState, len(commits))
	for i, c := range commits {
		states[i] = h.Check(ctx, c)
	}
	end := End(states)
	if end != ports.TxRollback {
		return end, nil
	}
	var stored []ports.Commit
	for i, c := range commits {
		if states[i] == ports.TxCommit {
			stored = append(stored, c)
		}
	}
	return end, stored
}

// Bounds limit a batch, so that one half message stays well within the
// bus's message size and one slow commit holds few others up, and the
// batches of one lane in flight at once (Lanes), so that a commit waits
// for company only when that many round trips are under way already.
type Bounds struct {
	MaxCommits  int
	MaxBytes    int
	MaxInFlight int
}

// Take returns the longest prefix of waiting within b; never empty when
// waiting is not, so an outsized commit goes out alone.
func (b Bounds) Take(waiting []*Member) int {
	n, size := 0, 0
	for n < len(waiting) && n < b.MaxCommits {
		size += len(waiting[n].Body)
		if n > 0 && size > b.MaxBytes {
			break
		}
		n++
	}
	return n
}
