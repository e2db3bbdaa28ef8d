package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/mongo"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/message"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/infra"
)

// storeReturnBound is issue 13's rule for the store's return: sends
// succeed again, and live delivery resumes for every conversation, within
// this of the store answering again.
const storeReturnBound = 10 * time.Second

// TestMongoRecoversUnderLoad: two nodes on one broker, twenty senders on
// one to twenty recipients on the other at 100 messages a second in all,
// in conversations of prefilledMessages messages each (what minutes of such
// traffic leave), while the store is stopped for 5 s and started. After its
// return, every sender's sends succeed again, every recipient gets live
// messages again and `sync` answers, each within storeReturnBound, as
// issue 13 asks of the six-JVM failover suite, at a fraction of its cost.
// The conversations' length is the point: on FerretDB a read of a few
// versions used to cost a read of the whole conversation.
func TestMongoRecoversUnderLoad(t *testing.T) {
	t.Parallel()
	m := infra.StartMongoServer(t)
	rmq := infra.StartRocketMQ(t)
	env := mongoEnv(t, m.URI())
	env["CHAT_ROCKETMQ_NAMESRV"] = rmq.NamesrvAddr()
	env["CHAT_ROCKETMQ_TOPIC"] = strings.Replace(env["CHAT_MONGO_DB"], "e2e_", "e2e_topic_", 1)
	var nodes [2]*Node
	for i := range nodes {
		e := maps.Clone(env)
		e[offsetDirEnv] = t.TempDir()
		nodes[i] = StartNode(t, e)
	}
	n1, n2 := nodes[0], nodes[1]
	warmUp(t, n1, n2)
	const (
		pairs    = 20
		interval = 200 * time.Millisecond
	)
	prefill(t, m.URI(), env["CHAT_MONGO_DB"], pairs)
	senders := make([]*Client, pairs)
	recipients := make([]*Client, pairs)
	for i := range pairs {
		senders[i] = n1.Dial(t, fmt.Sprintf("rs%d", i))
		recipients[i] = n2.Dial(t, fmt.Sprintf("rr%d", i))
	}
	syncer := n2.Dial(t, "rr0")
	// One send each, one at a time, before the load: the nodes then hold
	// every conversation in their caches, as the failover suite's nodes do
	// when it stops the store, and the first read of a long conversation
	// is not what is measured.
	warmStart := time.Now()
	for i, s := range senders {
		id := fmt.Sprintf("r%d-warm", i)
		for {
			s.Send(map[string]string{"type": "send", "id": id, "to": fmt.Sprintf("rr%d", i), "body": "warm"})
			if _, err := s.Await(frameTimeout, "ack", byID(id)); err == nil {
				break
			}
			if time.Since(warmStart) > 2*time.Minute {
				t.Fatalf("no first send acked in each conversation within 2 minutes (%d of %d)", i, pairs)
			}
			_, _ = s.Await(0, "error", byID(id))
		}
	}
	t.Logf("a first send in each conversation took %v in all", time.Since(warmStart).Round(time.Millisecond))

	var (
		mu sync.Mutex
		// failed holds each sender's failed send starts; live, each
		// recipient's message arrivals.
		failed = make([][]time.Time, pairs)
		live   = make([][]time.Time, pairs)
		conv   string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range pairs {
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for k := 0; ; {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				id := fmt.Sprintf("r%d-%d", i, k)
				start := time.Now()
				if err := senders[i].write(1, fmt.Appendf(nil, `{"type":"send","id":%q,"to":"rr%d","body":%q}`, id, i, id)); err != nil {
					return
				}
				f, err := senders[i].Await(frameTimeout, "ack", byID(id))
				if err != nil {
					_, _ = senders[i].Await(0, "error", byID(id))
					mu.Lock()
					failed[i] = append(failed[i], start)
					mu.Unlock()
					continue
				}
				if i == 0 {
					mu.Lock()
					conv = f.Conversation
					mu.Unlock()
				}
				k++
			}
		})
		wg.Go(func() {
			for {
				_, err := recipients[i].Await(time.Second, "message", nil)
				select {
				case <-stop:
					return
				default:
				}
				if err == nil {
					mu.Lock()
					live[i] = append(live[i], time.Now())
					mu.Unlock()
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	time.Sleep(5 * time.Second)
	if err := m.Stop(); err != nil {
		t.Fatalf("stopping the store: %v", err)
	}
	time.Sleep(5 * time.Second)
	if err := m.Start(); err != nil {
		t.Fatalf("starting the store: %v", err)
	}
	back := time.Now()
	t.Logf("store back at %s", back.Format("15:04:05.000"))

	// A client asks again while sync is refused, as the failover suite's do.
	syncAnswered := time.Duration(-1)
	mu.Lock()
	c := conv
	mu.Unlock()
	for time.Since(back) < 3*storeReturnBound {
		syncer.Send(map[string]any{"type": "sync", "conversation": c, "after": 0, "limit": 10})
		f, err := syncer.Await(frameTimeout, "messages", nil)
		if err == nil && len(f.Messages) > 0 {
			syncAnswered = time.Since(back)
			break
		}
		_, _ = syncer.Await(0, "error", nil)
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(time.Until(back.Add(storeReturnBound + 5*time.Second)))

	mu.Lock()
	defer mu.Unlock()
	var lastFailure, firstLive []time.Duration
	for i := range pairs {
		lf := time.Duration(0)
		for _, at := range failed[i] {
			lf = max(lf, at.Sub(back))
		}
		lastFailure = append(lastFailure, lf)
		fl := time.Duration(-1)
		for _, at := range live[i] {
			if at.After(back) {
				fl = at.Sub(back)
				break
			}
		}
		firstLive = append(firstLive, fl)
	}
	t.Logf("after the store's return: last failed send by sender %v; first live message by recipient %v; first sync answer %v",
		lastFailure, firstLive, syncAnswered)
	if worst := slices.Max(lastFailure); worst > storeReturnBound {
		t.Errorf("sends failed until %v after the store's return; bound %v", worst, storeReturnBound)
	}
	for i, fl := range firstLive {
		if fl < 0 || fl > storeReturnBound {
			t.Errorf("rr%d got its first live message %v after the store's return (-1: none); bound %v", i, fl, storeReturnBound)
		}
	}
	if syncAnswered < 0 || syncAnswered > storeReturnBound {
		t.Errorf("sync answered %v after the store's return (-1: never within %v); bound %v", syncAnswered, 3*storeReturnBound, storeReturnBound)
	}
}

// prefilledMessages is how long each conversation of
// TestMongoRecoversUnderLoad is before it starts: about what the failover
// suite's conversations hold when it stops the store.
const prefilledMessages = 600

// prefill stores prefilledMessages messages in each conversation between
// rsI and rrI, through the product's own event store, so that the test
// starts on a store with history rather than an empty one.
func prefill(t *testing.T, uri, dbName string, pairs int) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := mongo.Connect(ctx, uri, dbName)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Client().Disconnect(context.Background()) }()
	store := mongo.NewEventStore(db)
	var wg sync.WaitGroup
	errs := make([]error, pairs)
	for i := range pairs {
		wg.Go(func() {
			from, to := user.ID(fmt.Sprintf("rs%d", i)), user.ID(fmt.Sprintf("rr%d", i))
			conv := conversation.New(conversation.IDFor(from, to))
			for seq := 1; seq <= prefilledMessages; seq++ {
				id := message.ID(fmt.Sprintf("pre%d-%d", i, seq))
				if _, err := conv.Post(id, from, to, message.Body(id), time.Now()); err != nil {
					errs[i] = err
					return
				}
				c := ports.Commit{ID: string(id), Stream: conversation.MessagesStream(conv.ID()), Version: conv.Version() + 1,
					Events: conv.Uncommitted(), CommittedAt: time.Now()}
				if errs[i] = store.Append(ctx, c); errs[i] != nil {
					return
				}
				conv.Committed()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("prefilling the conversations: %v", err)
	}
	t.Logf("prefilled %d conversations with %d messages each in %v", pairs, prefilledMessages, time.Since(start).Round(time.Millisecond))
}
