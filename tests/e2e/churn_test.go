package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/tests/infra"
)

// The churn: while senders on fixed nodes send steadily, each recipient
// keeps moving its one session to a random other node of three, opening
// the new session before it closes the old one, as a phone that changes
// networks does.
const (
	churnPairs        = 6
	churnSendEvery    = 100 * time.Millisecond // per sender: 60 messages a second in all
	churnDuration     = 20 * time.Second
	churnMinSession   = 4 * time.Second
	churnMaxSession   = 8 * time.Second
	churnDrain        = 5 * time.Second
	churnDeliverBound = 3 * time.Second
)

// churnSend is one acked message: its send began at start, its ack came at acked.
type churnSend struct {
	seq          uint64
	id           string
	start, acked time.Time
}

// churnSession is one session of a recipient: open once the upgrade
// completed, closed once the client closed it.
type churnSession struct {
	client       *Client
	open, closed time.Time
}

// testClusterChurn checks the guarantee of routed delivery under churn on
// three nodes: a session receives, live, once and in seq order, every
// message of its conversation committed after its upgrade completed,
// whichever node it is on, while its user moves between nodes. A message
// counts as committed after the upgrade when its send began after it, and
// is owed to a session that stayed open churnDeliverBound after its ack.
func testClusterChurn(t *testing.T, rmq *infra.RocketMQ) {
	nodes := startClusterOf(t, rmq, 3)
	warmUp(t, nodes[0], nodes[1])
	warmUp(t, nodes[1], nodes[2])

	tokens := map[string]string{}
	for i := range churnPairs {
		for _, u := range []string{fmt.Sprintf("cs%d", i), fmt.Sprintf("cr%d", i)} {
			tokens[u] = nodes[0].Token(t, u)
		}
	}
	var (
		mu       sync.Mutex
		sent     = make([][]churnSend, churnPairs)
		sessions = make([][]*churnSession, churnPairs)
		conv     = make([]string, churnPairs)
		failures []error
	)
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	dial := func(n *Node, user string) (*Client, error) {
		conn, _, err := n.DialWS(tokens[user], nil)
		if err != nil {
			return nil, fmt.Errorf("dialing %s as %s: %w", n.Name, user, err)
		}
		return newClient(t, user, conn), nil
	}

	stop := make(chan struct{})
	var running sync.WaitGroup
	for i := range churnPairs {
		sender, recipient := fmt.Sprintf("cs%d", i), fmt.Sprintf("cr%d", i)
		running.Go(func() {
			at := rand.IntN(len(nodes))
			for {
				c, err := dial(nodes[at], recipient)
				if err != nil {
					fail(err)
					return
				}
				s := &churnSession{client: c, open: time.Now()}
				mu.Lock()
				prev := sessions[i]
				sessions[i] = append(sessions[i], s)
				mu.Unlock()
				if len(prev) > 0 {
					last := prev[len(prev)-1]
					last.client.Close()
					last.closed = time.Now()
				}
				select {
				case <-stop:
					return
				case <-time.After(churnMinSession + rand.N(churnMaxSession-churnMinSession)):
				}
				at = (at + 1 + rand.IntN(len(nodes)-1)) % len(nodes)
			}
		})
		running.Go(func() {
			c, err := dial(nodes[i%len(nodes)], sender)
			if err != nil {
				fail(err)
				return
			}
			tick := time.NewTicker(churnSendEvery)
			defer tick.Stop()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				id := fmt.Sprintf("churn-%d-%d", i, k)
				start := time.Now()
				data, _ := json.Marshal(map[string]string{"type": "send", "id": id, "to": recipient, "body": id})
				if err := c.write(websocket.TextMessage, data); err != nil {
					fail(fmt.Errorf("%s: %w", id, err))
					return
				}
				ack, err := c.Await(frameTimeout, "ack", byID(id))
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				conv[i] = ack.Conversation
				sent[i] = append(sent[i], churnSend{seq: ack.Seq, id: ack.MessageID, start: start, acked: time.Now()})
				mu.Unlock()
			}
		})
	}
	time.Sleep(churnDuration)
	close(stop)
	running.Wait()
	time.Sleep(churnDrain)
	end := time.Now()
	if err := errors.Join(failures...); err != nil {
		t.Fatal(err)
	}

	var owed, moves int
	for i := range churnPairs {
		for _, s := range sessions[i] {
			if s.closed.IsZero() {
				s.client.Close()
				s.closed = end
			}
			moves++
			var live []uint64
			for {
				f, err := s.client.Await(0, "message", nil)
				if err != nil {
					break
				}
				if m, err := f.Msg(); err == nil && m.Conversation == conv[i] {
					live = append(live, m.Seq)
				}
			}
			if !slices.IsSorted(live) || len(slices.Compact(slices.Clone(live))) != len(live) {
				t.Errorf("%s (open %v to %v) got seqs %v live: not once each in order", s.client.Name,
					s.open.Format("15:04:05.000"), s.closed.Format("15:04:05.000"), live)
			}
			for _, m := range sent[i] {
				if m.start.Before(s.open) || m.acked.After(s.closed.Add(-churnDeliverBound)) {
					continue
				}
				owed++
				if _, found := slices.BinarySearch(live, m.seq); !found {
					t.Errorf("%s (open %v to %v) never got seq %d (%s) live, sent at %v and acked at %v", s.client.Name,
						s.open.Format("15:04:05.000"), s.closed.Format("15:04:05.000"), m.seq, m.id,
						m.start.Format("15:04:05.000"), m.acked.Format("15:04:05.000"))
				}
			}
		}
	}
	t.Logf("churn: %d sessions on %d nodes, %d messages sent, %d owed to the sessions open when they were sent, all checked",
		moves, len(nodes), countSends(sent), owed)
	if owed == 0 {
		t.Fatal("no message was owed to any session: the churn checked nothing")
	}
}

func countSends(sent [][]churnSend) int {
	n := 0
	for _, s := range sent {
		n += len(s)
	}
	return n
}
