package rocketmq

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// MasterChange is what the master watch reports: the brokers the name
// servers now route with a master, and those that lost or regained one
// since the last report (both empty in the first).
type MasterChange struct {
	Brokers  []string
	Lost     []string
	Regained []string
}

// movesReads tells whether broadcast consumers should be rebuilt for the
// change: a master came back, whose queues a consumer may never pull again
// otherwise, or one died while another still serves, whose queues are then
// read from its slave. When no broker is routed with a master at all, a
// rebuilt consumer could not even start (its topic has no route), and a
// name server that has just restarted, and knows no broker yet, looks the
// same: the consumers are left as they are, and rebuilt when masters are
// routed again.
func (c MasterChange) movesReads() bool {
	return len(c.Regained) > 0 || (len(c.Lost) > 0 && len(c.Brokers) > 0)
}

// MasterWatch asks the name servers, every MasterWatchInterval, which
// brokers of the topic have a master, and reports each change to its
// listeners.
//
// The client itself learns that a master died or came back only at its
// route refresh, every 30 s (_PullNameServerInterval in
// rocketmq-client-go/v2 internal/client.go, not configurable), and a pull
// in flight to a dead master waits out a fixed 30 s timeout: the remoting
// client does not fail a request whose connection closed, and
// rmqClient.PullMessage bounds it with 30 s whatever the options
// (WithConsumerPullTimeout is never read; apache/rocketmq-client-go#1131).
// Hence the 33 s stall of cross-node delivery after a broker crash, with
// the 3 s back-off after a failed pull. The name server drops a master from its routes as soon as
// the master's connection closes, so asking it every second tells the
// adapter within a second; the listeners then move sends off the broker
// (brokerFailover) and rebuild the broadcast consumers, whose fresh clients
// read the dead master's queues from its slave, and, once it is back, pull
// its queues from it again (apache/rocketmq-client-go#1071 and #1085:
// consumers that never resume a restarted broker's queues).
type MasterWatch struct {
	interval time.Duration
	query    func(context.Context) ([]string, error)
	// release frees what query holds once the watch stops.
	release func()
	log     *slog.Logger

	mu        sync.Mutex
	listeners []func(MasterChange) error
	stop      context.CancelFunc
	done      sync.WaitGroup
}

// NewMasterWatch returns a watch of cfg's topic; add listeners, then Start.
func NewMasterWatch(cfg Config, log *slog.Logger) *MasterWatch {
	q := newRouteQuerier(cfg.NameServers, cfg.Topic)
	w := newMasterWatch(cfg.MasterWatchInterval, q.routedMasters, log)
	w.release = q.close
	return w
}

func newMasterWatch(interval time.Duration, query func(context.Context) ([]string, error), log *slog.Logger) *MasterWatch {
	return &MasterWatch{interval: interval, query: query, log: log}
}

// Notify adds a listener. A listener that fails is told again at the next
// poll: the same change, or, if the brokers are back as they were, a report
// without one.
func (w *MasterWatch) Notify(f func(MasterChange) error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.listeners = append(w.listeners, f)
}

// Start polls until Stop; with a zero interval it does nothing. The
// polling outlives the start's context.
func (w *MasterWatch) Start(context.Context) error {
	if w.interval <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		w.run(ctx)
	}()
	return nil
}

// Stop ends the polling and waits for the listeners' last call.
func (w *MasterWatch) Stop(context.Context) error {
	if w.stop != nil {
		w.stop()
	}
	w.done.Wait()
	return nil
}

func (w *MasterWatch) run(ctx context.Context) {
	if w.release != nil {
		defer w.release()
	}
	var last []string
	// reported: a first change was told; failed: a listener failed the
	// last one, and is told again even if the brokers are back as they
	// were (a rebuild may have left it without a consumer).
	reported, failed := false, false
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	for {
		brokers, err := w.query(ctx)
		switch {
		case err != nil:
			w.log.Debug("no route from the name servers", "err", err)
		case !reported || failed || !slices.Equal(brokers, last):
			change := MasterChange{Brokers: brokers}
			if reported {
				change.Lost, change.Regained = missingFrom(brokers, last), missingFrom(last, brokers)
			}
			if len(change.Lost) > 0 || len(change.Regained) > 0 {
				w.log.Warn("brokers' masters changed", "routed", brokers, "lost", change.Lost, "regained", change.Regained)
			}
			failed = !w.tell(change)
			if !failed {
				last, reported = brokers, true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// tell reports change to every listener, and whether all took it.
func (w *MasterWatch) tell(change MasterChange) bool {
	w.mu.Lock()
	listeners := slices.Clone(w.listeners)
	w.mu.Unlock()
	ok := true
	for _, f := range listeners {
		if err := f(change); err != nil {
			w.log.Error("a listener failed to follow the brokers' masters; trying again", "err", err)
			ok = false
		}
	}
	return ok
}

// missingFrom lists the elements of of that are not in in.
func missingFrom(in, of []string) []string {
	var out []string
	for _, b := range of {
		if !slices.Contains(in, b) {
			out = append(out, b)
		}
	}
	return out
}
