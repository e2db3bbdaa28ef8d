package e2e

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestConcurrentSenders: four sessions of two users send into one
// conversation at once. The seqs are exactly 1..N, and every session sees
// every message it should (all but its own sends) once each, in seq order.
func TestConcurrentSenders(t *testing.T) {
	t.Parallel()
	const senders, perSender = 4, 50
	const total = senders * perSender
	// The default burst would allow this too; a high limit keeps the test
	// about ordering and not about the rate limit.
	n := StartNode(t, map[string]string{"CHAT_SEND_RATE": "10000", "CHAT_SEND_BURST": "10000"})

	users := []string{"alice", "bob"}
	sending := make([]*Client, senders)
	for i := range sending {
		sending[i] = n.Dial(t, users[i%2])
	}
	// Listeners send nothing, so they must see all N messages.
	listening := []*Client{n.Dial(t, "alice"), n.Dial(t, "bob")}
	// Seq 1 is made before the race so that every session knows the
	// conversation, and so that the listeners' counts start from it.
	first := sending[0].SendMessage("warmup", "bob", "warmup")
	conv := first.Conversation

	var wg sync.WaitGroup
	acks := make([][]uint64, senders)
	errs := make(chan error, senders)
	for i, c := range sending {
		wg.Go(func() {
			to := users[(i+1)%2]
			for k := range perSender {
				id := fmt.Sprintf("c%d-%d", i, k)
				frame, _ := json.Marshal(map[string]string{"type": "send", "id": id, "to": to, "body": id})
				if err := c.write(websocket.TextMessage, frame); err != nil {
					errs <- fmt.Errorf("sender %d: %v", i, err)
					return
				}
				ack, err := c.Await(frameTimeout, "ack", byID(id))
				if err != nil {
					errs <- fmt.Errorf("sender %d: %v", i, err)
					return
				}
				if ack.Conversation != conv {
					errs <- fmt.Errorf("sender %d: ack %s in another conversation than %s", i, ack, conv)
					return
				}
				acks[i] = append(acks[i], ack.Seq)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	// Every seq 1..N+1 acked exactly once, and each sender's acks rise.
	want := total + 1
	seen := make([]int, want+1)
	seen[first.Seq]++
	for i, s := range acks {
		for k, q := range s {
			if q < 1 || int(q) > want {
				t.Fatalf("sender %d: seq %d outside 1..%d", i, q, want)
			}
			seen[q]++
			if k > 0 && q <= s[k-1] {
				t.Errorf("sender %d: seq %d acked after %d", i, q, s[k-1])
			}
		}
	}
	for q := 1; q <= want; q++ {
		if seen[q] != 1 {
			t.Errorf("seq %d acked %d times, want once", q, seen[q])
		}
	}

	own := func(c *Client) map[uint64]bool {
		m := map[uint64]bool{}
		for i, s := range sending {
			if s == c {
				for _, q := range acks[i] {
					m[q] = true
				}
			}
		}
		if c == sending[0] {
			m[first.Seq] = true
		}
		return m
	}
	all := append(append([]*Client{}, sending...), listening...)
	var check sync.WaitGroup
	for _, c := range all {
		check.Go(func() {
			mine := own(c)
			expect := make([]uint64, 0, want)
			for q := uint64(1); q <= uint64(want); q++ {
				if !mine[q] {
					expect = append(expect, q)
				}
			}
			got := make([]uint64, 0, len(expect))
			deadline := time.Now().Add(2 * frameTimeout)
			for len(got) < len(expect) {
				f, err := c.Await(time.Until(deadline), "message", nil)
				if err != nil {
					t.Errorf("%s: %d of %d messages, then %v", c.Name, len(got), len(expect), err)
					return
				}
				m, err := f.Msg()
				if err != nil || m.Conversation != conv {
					t.Errorf("%s: unexpected message frame %s", c.Name, f)
					return
				}
				got = append(got, m.Seq)
			}
			for i := range expect {
				if got[i] != expect[i] {
					t.Errorf("%s: message %d has seq %d, want %d (got %v)", c.Name, i, got[i], expect[i], got)
					return
				}
			}
		})
	}
	check.Wait()
	// Nothing more: no duplicate came after the last expected message.
	for _, c := range all {
		c.None("message", nil)
	}
}
