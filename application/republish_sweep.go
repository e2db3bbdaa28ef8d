package application

import (
	"context"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// Sweep sends again every commit due now, and gives up on those sent
// maxRepublishes times already. Start calls it sweepsPerWait times per
// RepublishAfter.
func (r *Republisher) Sweep(ctx context.Context) {
	now := r.clock.Now()
	var due []ports.Commit
	var gaveUp []string
	r.mu.Lock()
	// newest is the latest watch start of a commit still out, per
	// conversation.
	newest := map[conversation.ID]time.Time{}
	for _, a := range r.awaiting {
		if conv := laneOf(a.commit); a.watched.After(newest[conv]) {
			newest[conv] = a.watched
		}
	}
	for id, a := range r.awaiting {
		if a.due.IsZero() || now.Before(a.due) || !r.passedBy(a, now, newest) {
			continue
		}
		if a.republished >= maxRepublishes {
			r.unwatch(id, a)
			gaveUp = append(gaveUp, id)
			continue
		}
		a.republished++
		a.due = now.Add(r.after << a.republished)
		r.awaiting[id] = a
		due = append(due, a.commit)
	}
	if len(r.awaiting) < maxAwaiting {
		r.overflowing = false
	}
	r.mu.Unlock()
	if len(gaveUp) > 0 {
		r.log.Warn("commits acked here never came back on the bus; leaving them to checkback",
			"commits", len(gaveUp), "first", gaveUp[0], "republished", maxRepublishes)
	}
	if len(due) > 0 {
		r.log.Info("republishing commits acked here that did not come back on the bus",
			"commits", len(due), "first", due[0].ID, "after", r.after)
		r.republish(ctx, due)
	}
}

// passedBy tells whether the bus has passed a, due now, so that its absence
// means it was lost rather than late; r.mu is held.
func (r *Republisher) passedBy(a awaited, now time.Time, newest map[conversation.ID]time.Time) bool {
	conv := laneOf(a.commit)
	if l := r.lanes[conv]; l != nil && !l.passed.Before(a.acked) {
		return true
	}
	if newest[conv].After(a.acked) && now.Before(a.due.Add(laneHoldWaits*r.after)) {
		return false
	}
	return !r.passed.Before(a.acked) || !now.Before(a.due.Add(r.after))
}

// republish sends the commits, a few at a time, each for at most twice
// RepublishAfter, time for a try on a broker that hangs and a retry on
// another: one that fails is due again after its back-off.
func (r *Republisher) republish(ctx context.Context, commits []ports.Commit) {
	slots := make(chan struct{}, republishWorkers)
	var (
		wg       sync.WaitGroup
		failedMu sync.Mutex
		failed   int
		lastErr  error
	)
	for _, c := range commits {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			ctx, cancel := context.WithTimeout(ctx, 2*r.after)
			defer cancel()
			// To every node: the route is seconds old by now, and a
			// republish is rare enough to cost nothing.
			c.Route = ports.RouteToAll()
			if err := r.publisher.Republish(ctx, c); err != nil {
				failedMu.Lock()
				failed, lastErr = failed+1, err
				failedMu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		r.log.Warn("commits not republished; trying again after a back-off", "commits", failed, "err", lastErr)
	}
}

// Start sweeps in the background until Stop. The sweeps outlive the start's
// context, which ends once the node has started.
func (r *Republisher) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		ticker := time.NewTicker(max(r.after/sweepsPerWait, 10*time.Millisecond))
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				r.Sweep(ctx)
			}
		}
	}()
	return nil
}

// Stop ends the sweeps, abandoning any republish under way, or returns
// when ctx ends.
func (r *Republisher) Stop(ctx context.Context) error {
	r.cancel()
	finished := make(chan struct{})
	go func() { r.done.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
