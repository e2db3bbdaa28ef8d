package application

import (
	"context"
	"log/slog"
	"time"

	"github.com/evchat/chatd/ports"
)

// signalOutbox holds this node's signals for one publishing goroutine, so
// that a session opening or a typing frame never waits on the bus.
type signalOutbox struct {
	signals ports.Signals
	// timeout bounds one publication: a signal later than a heartbeat is
	// superseded by the next one anyway.
	timeout time.Duration
	queue   chan ports.Signal
	log     *slog.Logger
}

// outboxSize bounds the signals waiting for the bus; past it they are
// dropped, and the next heartbeat repairs what a lost join or leave broke.
const outboxSize = 4096

func newSignalOutbox(signals ports.Signals, timeout time.Duration, log *slog.Logger) *signalOutbox {
	return &signalOutbox{signals: signals, timeout: timeout, queue: make(chan ports.Signal, outboxSize), log: log}
}

// send queues s for the bus without waiting.
func (o *signalOutbox) send(s ports.Signal) {
	select {
	case o.queue <- s:
	default:
		o.log.Warn("presence signal dropped: the bus is behind", "kind", s.Kind, "user", s.User)
	}
}

// run publishes until stop is closed, then publishes what is queued.
func (o *signalOutbox) run(stop <-chan struct{}) {
	for {
		select {
		case s := <-o.queue:
			o.publish(s)
		case <-stop:
			for {
				select {
				case s := <-o.queue:
					o.publish(s)
				default:
					return
				}
			}
		}
	}
}

func (o *signalOutbox) publish(s ports.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if err := o.signals.Publish(ctx, s); err != nil {
		o.log.Warn("presence signal not published", "kind", s.Kind, "err", err)
	}
}
