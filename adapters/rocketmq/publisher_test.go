package rocketmq

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/ports"
)

// scriptedProducer answers each SendMessageInTransaction with the next
// outcome of its script (the last one repeating). SendOK stores the half
// message and runs the local transaction, as the client does; the other
// statuses roll it back unexecuted, as the client does.
type scriptedProducer struct {
	p        *Publisher
	outcomes []sendOutcome
	sends    atomic.Int32
	// halves are the half messages it was sent, in order.
	mu     sync.Mutex
	halves []*primitive.Message
}

type sendOutcome struct {
	err    error
	status primitive.SendStatus
}

func (s *scriptedProducer) Start() error    { return nil }
func (s *scriptedProducer) Shutdown() error { return nil }

func (s *scriptedProducer) SendMessageInTransaction(_ context.Context, msg *primitive.Message) (*primitive.TransactionSendResult, error) {
	n := int(s.sends.Add(1)) - 1
	s.mu.Lock()
	s.halves = append(s.halves, msg)
	s.mu.Unlock()
	o := s.outcomes[min(n, len(s.outcomes)-1)]
	if o.err != nil {
		return nil, o.err
	}
	state := primitive.RollbackMessageState
	if o.status == primitive.SendOK {
		state = listener{s.p}.ExecuteLocalTransaction(msg)
	}
	return &primitive.TransactionSendResult{SendResult: &primitive.SendResult{Status: o.status}, State: state}, nil
}

type countingHandler struct{ local atomic.Int32 }

func (h *countingHandler) ExecuteLocal(context.Context, ports.Commit) (ports.TxState, error) {
	h.local.Add(1)
	return ports.TxCommit, nil
}
func (h *countingHandler) Check(context.Context, ports.Commit) ports.TxState { return ports.TxCommit }

// TestPublishSendsAgainWhatTheBrokerDidNotTake: a half message the broker
// refused under flow control, or stored without its slave (and the client
// rolled back unexecuted), is sent again until it is taken or the caller's
// deadline passes; any other failure ends the Publish at once.
func TestPublishSendsAgainWhatTheBrokerDidNotTake(t *testing.T) {
	busy := sendOutcome{err: errors.New("CODE: 2, DESC: [TIMEOUT_CLEAN_QUEUE]broker busy, start flow control for a while, period in queue: 233ms, size of queue: 0")}
	refused := sendOutcome{err: errors.New("dial tcp 127.0.0.1:10911: connect: connection refused")}
	noSlave := sendOutcome{status: primitive.SendFlushSlaveTimeout}
	taken := sendOutcome{status: primitive.SendOK}
	tests := []struct {
		name      string
		outcomes  []sendOutcome
		deadline  time.Duration
		wantState ports.TxState
		wantErr   bool
		// wantSends is the number of sends; with orMore, the least.
		wantSends int32
		orMore    bool
		wantLocal int32
	}{
		{"taken at once", []sendOutcome{taken}, 5 * time.Second, ports.TxCommit, false, 1, false, 1},
		{"busy twice, then taken", []sendOutcome{busy, busy, taken}, 5 * time.Second, ports.TxCommit, false, 3, false, 1},
		{"not on the slave twice, then taken", []sendOutcome{noSlave, noSlave, taken}, 5 * time.Second, ports.TxCommit, false, 3, false, 1},
		{"another failure is not sent again", []sendOutcome{refused, taken}, 5 * time.Second, ports.TxRollback, true, 1, false, 0},
		{"busy until the deadline", []sendOutcome{busy}, time.Second, ports.TxRollback, true, 2, true, 0},
		{"not on the slave until the deadline", []sendOutcome{noSlave}, time.Second, ports.TxRollback, false, 2, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &countingHandler{}
			p := &Publisher{cfg: DefaultConfig(), handler: h, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			p.selector = newBrokerFailover(time.Minute, time.Now)
			tx := &scriptedProducer{p: p, outcomes: tt.outcomes}
			p.tx = tx
			ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
			defer cancel()
			c := ports.Commit{ID: "m1", Stream: "conv", Version: 1, CommittedAt: time.Now()}
			state, err := p.Publish(ctx, c)
			if state != tt.wantState || (err != nil) != tt.wantErr {
				t.Fatalf("Publish = %v, %v; want %v, error %v", state, err, tt.wantState, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ports.ErrUnavailable) {
				t.Fatalf("error %v is not ErrUnavailable", err)
			}
			if got := tx.sends.Load(); got != tt.wantSends && !(tt.orMore && got > tt.wantSends) {
				t.Fatalf("%d sends, want %d", got, tt.wantSends)
			}
			if got := h.local.Load(); got != tt.wantLocal {
				t.Fatalf("%d local transactions, want %d", got, tt.wantLocal)
			}
		})
	}
}

// deadMasterProducer stands for the client with broker-a's master dead
// under a try in flight: its first try goes to broker-a and waits, as the
// client's remoting layer does on a closed connection, until its context
// ends; it then retries as the client does, through the selector. Later
// tries go where the selector says and are taken.
type deadMasterProducer struct {
	p       *Publisher
	queues  []*primitive.MessageQueue
	waiting chan struct{}
	sends   atomic.Int32
	// retried is what the selector answered the abandoned try's retry;
	// resent where the next try went.
	retried *primitive.MessageQueue
	resent  string
}

func (d *deadMasterProducer) Start() error    { return nil }
func (d *deadMasterProducer) Shutdown() error { return nil }

func (d *deadMasterProducer) SendMessageInTransaction(ctx context.Context, msg *primitive.Message) (*primitive.TransactionSendResult, error) {
	q := d.p.selector.Select(msg, d.queues, "")
	if d.sends.Add(1) == 1 {
		if q.BrokerName != "broker-a" {
			return nil, errors.New("the test's conversation must hash to broker-a")
		}
		close(d.waiting)
		<-ctx.Done()
		d.retried = d.p.selector.Select(msg, d.queues, q.BrokerName)
		return nil, errors.New("wait response timeout")
	}
	d.resent = q.BrokerName
	state := listener{d.p}.ExecuteLocalTransaction(msg)
	return &primitive.TransactionSendResult{SendResult: &primitive.SendResult{Status: primitive.SendOK}, State: state}, nil
}

// TestPublishAbandonsATryToADeadMaster: when the master watch reports the
// master a try is waiting on as lost, the try is given up at once, its
// retries are not written anywhere, and the half message goes to a live
// broker, well within the send timeout.
func TestPublishAbandonsATryToADeadMaster(t *testing.T) {
	h := &countingHandler{}
	p := &Publisher{cfg: DefaultConfig(), handler: h, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	p.selector = newBrokerFailover(time.Minute, time.Now)
	p.trackFlights()
	queues := queuesOf(8, "broker-a", "broker-b")
	tx := &deadMasterProducer{p: p, queues: queues, waiting: make(chan struct{})}
	p.tx = tx
	stream := keyOn(t, "broker-a", queues)

	type outcome struct {
		state ports.TxState
		err   error
	}
	done := make(chan outcome, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		state, err := p.Publish(ctx, ports.Commit{ID: "m1", Stream: stream, Version: 1, CommittedAt: time.Now()})
		done <- outcome{state, err}
	}()
	<-tx.waiting
	if err := p.FollowMasters(MasterChange{Brokers: []string{"broker-b"}, Lost: []string{"broker-a"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-done:
		if o.state != ports.TxCommit || o.err != nil {
			t.Fatalf("Publish = %v, %v; want a commit", o.state, o.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Publish still waits on the dead master")
	}
	if tx.retried != nil {
		t.Fatalf("the abandoned try's retry was sent to %s/%d", tx.retried.BrokerName, tx.retried.QueueId)
	}
	if tx.resent != "broker-b" || tx.sends.Load() != 2 || h.local.Load() != 1 {
		t.Fatalf("resent to %q after %d sends and %d local transactions; want broker-b, 2, 1", tx.resent, tx.sends.Load(), h.local.Load())
	}
}
