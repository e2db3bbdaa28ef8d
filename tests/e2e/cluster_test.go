package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/tests/infra"

	"github.com/evchat/chatd/tests/eventually"
)

// The tests of this file run chatd as a cluster of two nodes on one
// RocketMQ (name server and broker from tests/infra) and one MongoDB-wire
// server, and drive them as clients behind a load balancer would: a user's
// sessions on either node, sends on both. Each cluster has a database and
// a topic of its own.
//
// Each cluster has a topic of its own, and the producer and consumer groups
// are named after it, so clusters on one broker never share a group. The
// subtests of TestCluster still run in sequence, to keep the two cores for
// one cluster's load at a time. The broker-down test has a broker of its
// own, since it stops it.

// offsetDirEnv is the environment variable from which rocketmq-client-go
// reads, once at process start, where broadcast consumers keep their
// offsets (by default under $HOME, shared by every process).
const offsetDirEnv = "rocketmq.client.localOffsetStoreDir"

// topicSeq numbers the topics of the test binary.
var topicSeq counter

// startCluster starts two nodes on rmq and the shared MongoDB-wire server,
// with one database and one topic for the two of them (startClusterOf).
func startCluster(t *testing.T, rmq *infra.RocketMQ) (n1, n2 *Node) {
	t.Helper()
	nodes := startClusterOf(t, rmq, 2)
	return nodes[0], nodes[1]
}

// startClusterOf starts n nodes on rmq and the shared MongoDB-wire server,
// with one database and one topic for all of them. Each node has its own
// node id (StartNode's name, kept by Restart) and its own offset directory,
// so that a restarted node finds its broadcast offsets again.
func startClusterOf(t *testing.T, rmq *infra.RocketMQ, n int) []*Node {
	t.Helper()
	env := mongoEnv(t, SharedMongo(t).URI())
	env["CHAT_ROCKETMQ_NAMESRV"] = rmq.NamesrvAddr()
	env["CHAT_ROCKETMQ_TOPIC"] = strings.Replace(env["CHAT_MONGO_DB"], "e2e_", "e2e_topic_", 1) +
		fmt.Sprintf("_%d", topicSeq.next())
	start := time.Now()
	nodes := make([]*Node, n)
	names := make([]string, n)
	for i := range nodes {
		e := maps.Clone(env)
		e[offsetDirEnv] = t.TempDir()
		nodes[i] = StartNode(t, e)
		names[i] = fmt.Sprintf("%s (%s)", nodes[i].Name, nodes[i].addr)
	}
	t.Logf("cluster: nodes %s on topic %s up in %v", strings.Join(names, ", "), env["CHAT_ROCKETMQ_TOPIC"], time.Since(start).Round(time.Millisecond))
	return nodes
}

// warmUp waits until each node's broadcast consumer delivers. A fresh node
// consumes from the end of the topic once its consumer's first rebalance has
// placed it there, a moment after /healthz answers; a message committed
// before that is not pushed live (a session catches up on it with the next
// message of the conversation or with sync). So a session on one node sends
// to a session on the other until one message arrives live, in both
// directions, and the test logs how long it took and how many were not
// pushed live.
func warmUp(t testing.TB, a, b *Node) {
	t.Helper()
	start := time.Now()
	for i, pair := range [][2]*Node{{a, b}, {b, a}} {
		from, to := pair[0].Dial(t, fmt.Sprintf("warm%d", i)), pair[1].Dial(t, fmt.Sprintf("warm%d", 1-i))
		for k := 0; ; k++ {
			body := fmt.Sprintf("warm-up %d", k)
			from.SendMessage(fmt.Sprintf("warm%d-%d", i, k), to.User, body)
			if _, err := to.Await(500*time.Millisecond, "message", msgWithBody(body)); err == nil {
				t.Logf("warm-up: %s's consumer delivered live after %v; %d earlier message(s) were not pushed live",
					pair[1].Name, time.Since(start).Round(time.Millisecond), k)
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("warm-up: no message from %s reached a session on %s within 30 s (%d sent)", pair[0].Name, pair[1].Name, k+1)
			}
		}
		from.Close()
		to.Close()
	}
}

// receiveMessages reads the `message` frames of conv that c gets until it
// has want of them or timeout passes; frames of other conversations stay
// buffered.
func receiveMessages(c *Client, conv string, want int, timeout time.Duration) ([]Message, error) {
	var got []Message
	deadline := time.Now().Add(timeout)
	for len(got) < want {
		f, err := c.Await(time.Until(deadline), "message", func(f Frame) bool {
			m, err := f.Msg()
			return err == nil && m.Conversation == conv
		})
		if err != nil {
			return got, fmt.Errorf("%s: %d of %d messages (seqs %v), then %v", c.Name, len(got), want, seqs(got), err)
		}
		m, _ := f.Msg()
		got = append(got, m)
	}
	return got, nil
}

// expectSeqs fails unless got holds exactly the seqs of want, in order.
func expectSeqs(t testing.TB, who string, got []Message, want []uint64) {
	t.Helper()
	if !slices.Equal(seqs(got), want) {
		t.Errorf("%s received seqs %v, want %v: each once, in order", who, seqs(got), want)
	}
}

// TestCluster runs the cluster tests that leave the broker up, one after the
// other on one broker (see the top of the file for why not at once).
func TestCluster(t *testing.T) {
	t.Parallel()
	rmq := infra.StartRocketMQ(t)
	t.Run("Guarantees", func(t *testing.T) { testClusterGuarantees(t, rmq) })
	t.Run("ReadYourWrites", func(t *testing.T) { testClusterReadYourWrites(t, rmq) })
	t.Run("KillDuringSends", func(t *testing.T) { testClusterKillDuringSends(t, rmq) })
	t.Run("Churn", func(t *testing.T) { testClusterChurn(t, rmq) })
	t.Run("Prometheus", func(t *testing.T) { testClusterPrometheus(t, rmq) })
}

// testClusterGuarantees checks every guarantee of PROTOCOL.md across two
// nodes: delivery to the recipient's and the sender's other sessions
// wherever they are, receipts, idempotent resends on the other node, sync
// and history from either node, and concurrent senders on both nodes.
func testClusterGuarantees(t *testing.T, rmq *infra.RocketMQ) {
	n1, n2 := startCluster(t, rmq)
	warmUp(t, n1, n2)

	a1 := n1.Dial(t, "alice") // the sending session
	b2 := n2.Dial(t, "bob")   // the recipient, on the other node
	a2 := n2.Dial(t, "alice") // the sender's second session, on the other node
	aliceTok, bobTok := n1.Token(t, "alice"), n2.Token(t, "bob")

	carolTok := n1.Token(t, "carol")

	// 1. The message reaches the recipient and the sender's other session on
	// the other node, never the sending session; the delivered and read
	// markers come back as receipts across the nodes.
	ack := a1.SendMessage("g-1", "bob", "hello from node 1")
	conv := ack.Conversation
	if ack.Seq != 1 {
		t.Errorf("first message: %s, want seq 1", ack)
	}
	for _, c := range []*Client{b2, a2} {
		m, _ := c.Next("message", msgWithBody("hello from node 1")).Msg()
		checkMessage(t, m, ack, "alice", "bob", "hello from node 1")
	}
	// bob's session on node 2 got it: bob's delivered marker moves, and the
	// receipt reaches the sender on node 1 as well as every other session.
	receipt := func(user string, delivered, read uint64) func(Frame) bool {
		return func(f Frame) bool {
			return f.Conversation == conv && f.User == user &&
				(delivered == 0 || f.DeliveredUpTo == delivered) && (read == 0 || f.ReadUpTo == read)
		}
	}
	for _, c := range []*Client{a1, a2, b2} {
		c.Next("receipt", receipt("bob", 1, 0))
	}

	back := b2.SendMessage("g-2", "alice", "hello from node 2")
	if back.Seq != 2 || back.Conversation != conv {
		t.Errorf("reply on node 2: %s, want seq 2 in %s", back, conv)
	}
	for _, c := range []*Client{a1, a2} {
		m, _ := c.Next("message", msgWithBody("hello from node 2")).Msg()
		checkMessage(t, m, back, "bob", "alice", "hello from node 2")
	}
	for _, c := range []*Client{a1, a2, b2} {
		c.Next("receipt", receipt("alice", 2, 0))
	}

	// A read on node 2 is a receipt on node 1, and the other way round.
	b2.Send(map[string]any{"type": "read", "conversation": conv, "upTo": 1})
	for _, c := range []*Client{a1, a2, b2} {
		c.Next("receipt", receipt("bob", 0, 1))
	}
	a1.Send(map[string]any{"type": "read", "conversation": conv, "upTo": 2})
	for _, c := range []*Client{a1, a2, b2} {
		c.Next("receipt", receipt("alice", 0, 2))
	}
	// Nothing else: no session got its own message back, nor one twice.
	for _, c := range []*Client{a1, a2, b2} {
		c.Ping()
	}
	for _, c := range []*Client{a1, a2, b2} {
		c.None("message", nil)
	}
	groupAcrossNodes(t, n1, n2, a1, a2, b2, conv)
	if t.Failed() {
		return
	}

	// 2. Resending an id on the other node is the same send: the original
	// ack, and no second message anywhere.
	b1 := n1.Dial(t, "bob")
	sameAck(t, "resend of g-1 on node 2", a2.SendMessage("g-1", "bob", "hello from node 1"), ack)
	sameAck(t, "resend of g-2 on node 1", b1.SendMessage("g-2", "alice", "hello from node 2"), back)
	status, body := n2.Do(t, http.MethodPost, "/api/messages", aliceTok,
		map[string]string{"id": "g-1", "to": "bob", "body": "hello from node 1"})
	if status != http.StatusCreated {
		t.Errorf("POST /api/messages resend of g-1 on node 2: %d %s, want 201", status, body)
	} else {
		sameAck(t, "REST resend of g-1 on node 2", decodeAck(t, body), ack)
	}
	for _, c := range []*Client{a1, a2, b1, b2} {
		c.None("message", nil)
	}
	next := a2.SendMessage("g-3", "bob", "third")
	if next.Seq != 3 {
		t.Errorf("first new send after the resends: %s, want seq 3", next)
	}
	for _, c := range []*Client{a1, b1, b2} {
		m, _ := c.Next("message", msgWithBody("third")).Msg()
		checkMessage(t, m, next, "alice", "bob", "third")
	}
	a2.None("message", nil)

	// 3. sync and the history answer the same from either node.
	acked := []Frame{ack, back, next}
	for _, c := range []*Client{a1, b2} {
		f := syncPage(c, conv, 0, 0)
		if len(f.Messages) != len(acked) || f.More {
			t.Errorf("%s: sync after 0: %s, want %d messages and no more", c.Name, f, len(acked))
			continue
		}
		for i, m := range f.Messages {
			checkMessage(t, m, acked[i], m.From, m.To, m.Body)
		}
	}
	if f := syncPage(b1, conv, 2, 0); len(f.Messages) != 1 || f.Messages[0].MessageID != next.MessageID {
		t.Errorf("%s: sync after 2: %s, want only seq 3", b1.Name, f)
	}
	h1 := fullHistory(t, n1, aliceTok, conv)
	checkSeqs(t, "history on node 1", h1)
	if len(h1) != 3 {
		t.Errorf("history on node 1: %+v, want 3 messages", h1)
	}
	for i, m := range h1 {
		if i < len(acked) && (m.MessageID != acked[i].MessageID || m.SentAt != acked[i].SentAt) {
			t.Errorf("history on node 1, seq %d: %+v, want the acked %s", m.Seq, m, acked[i])
		}
	}
	// The statuses are projected after the receipts; poll until node 2 says
	// what node 1 says, read for 1 and 2 and delivered for 3 (b1, b2 got it).
	st := func(h []Message) []string {
		out := []string{}
		for _, m := range h {
			out = append(out, m.Status)
		}
		return out
	}
	want := []string{"read", "read", "delivered"}
	var h2 []Message
	if err := eventually.Poll(5*time.Second, func() (bool, error) {
		h1, h2 = fullHistory(t, n1, aliceTok, conv), fullHistory(t, n2, bobTok, conv)
		return slices.Equal(h1, h2) && slices.Equal(st(h1), want), nil
	}); err != nil {
		t.Errorf("history statuses: node 1 %v, node 2 %v, want %v on both\nnode 1 %+v\nnode 2 %+v", st(h1), st(h2), want, h1, h2)
	}

	// A message for a user who is offline is kept: carol reads it with sync
	// on the other node, and the history has it.
	offline := a1.SendMessage("g-c", "carol", "for carol, offline")
	c2 := n2.Dial(t, "carol")
	if f := syncPage(c2, offline.Conversation, 0, 0); len(f.Messages) != 1 {
		t.Errorf("carol's sync on node 2: %s, want the one message", f)
	} else {
		checkMessage(t, f.Messages[0], offline, "alice", "carol", "for carol, offline")
	}
	if h := fullHistory(t, n2, carolTok, offline.Conversation); len(h) != 1 || h[0].MessageID != offline.MessageID {
		t.Errorf("carol's history on node 2: %+v, want %s", h, offline)
	}
	if t.Failed() {
		return
	}

	// 4. Concurrent senders on both nodes in one conversation: the seqs are
	// exactly 1..N, and every session on either node sees every message but
	// its own sends once each, in seq order.
	concurrentAcrossNodes(t, n1, n2)
	if t.Failed() {
		return
	}

	// 5. Edits and recalls (v1.3).
	clusterEditsAndRecalls(t, n1, n2)
}

// testClusterReadYourWrites: what a node has acked to a user, or given a
// user, shows at once in what that node answers them next, though the read
// model (projected once per cluster, in batches) lags. Each round uses new
// users, so the read model knows nothing of them yet, and runs in both
// directions; rounds repeat so that a race shows.
//   - The writer lists at once after the acks, and the recipient, on the
//     other node, lists at once after receiving the messages by `sync`:
//     both find the conversation with the right lastSeq and unread.
//   - A contact written to for the first time connects at once on the
//     other node: the writer is pushed that the contact is online.
func testClusterReadYourWrites(t *testing.T, rmq *infra.RocketMQ) {
	n1, n2 := startCluster(t, rmq)
	warmUp(t, n1, n2)
	const rounds = 4
	for r := range rounds {
		for d, pair := range [][2]*Node{{n1, n2}, {n2, n1}} {
			from, to := pair[0], pair[1]
			writer, reader := fmt.Sprintf("ryw-w%d-%d", r, d), fmt.Sprintf("ryw-r%d-%d", r, d)
			w := from.Dial(t, writer)
			var ack Frame
			for k := 1; k <= 3; k++ {
				ack = w.SendMessage(fmt.Sprintf("ryw-%d-%d-%d", r, d, k), reader, fmt.Sprintf("ryw %d", k))
			}
			expectListed(t, from, writer, ack.Conversation, reader, 3, 0)
			rc := to.Dial(t, reader)
			if page := syncPage(rc, ack.Conversation, 0, 0); len(page.Messages) != 3 {
				t.Errorf("%s's sync on %s: %s, want 3 messages", reader, to.Name, page)
			}
			expectListed(t, to, reader, ack.Conversation, writer, 3, 3)
			w.Close()
			rc.Close()

			writer, contact := fmt.Sprintf("ryw-p%d-%d", r, d), fmt.Sprintf("ryw-c%d-%d", r, d)
			w = from.Dial(t, writer)
			w.SendMessage(fmt.Sprintf("ryw-p-%d-%d", r, d), contact, "hello, new contact")
			c := to.Dial(t, contact)
			if _, err := w.Await(frameTimeout, "presence", presenceOf(contact, true)); err != nil {
				t.Errorf("%s on %s wrote to %s, who then connected on %s: no presence push (%v)", writer, from.Name, contact, to.Name, err)
			}
			w.Close()
			c.Close()
		}
	}
}

// expectListed checks, with one GET /api/conversations on n, that u's list
// holds conv with peer, lastSeq (and the last message at it) and unread.
func expectListed(t *testing.T, n *Node, u, conv, peer string, lastSeq, unread uint64) {
	t.Helper()
	list := conversations(t, n, n.Token(t, u))
	for _, c := range list {
		if c.Conversation != conv {
			continue
		}
		if c.Peer != peer || c.LastSeq != lastSeq || c.Unread != unread || c.LastMessage == nil || c.LastMessage.Seq != lastSeq {
			t.Errorf("%s's list on %s at once: %+v (last message %+v), want peer %s, lastSeq %d, unread %d",
				u, n.Name, c, c.LastMessage, peer, lastSeq, unread)
		}
		return
	}
	t.Errorf("%s's list on %s at once lacks %s: %+v", u, n.Name, conv, list)
}

// concurrentAcrossNodes: each of two users has a sending session on each
// node, all four send at once, and each user has a listening session too.
func concurrentAcrossNodes(t *testing.T, n1, n2 *Node) {
	const perSender = 25
	sending := []*Client{n1.Dial(t, "erin"), n1.Dial(t, "frank"), n2.Dial(t, "erin"), n2.Dial(t, "frank")}
	peer := map[string]string{"erin": "frank", "frank": "erin"}
	listening := []*Client{n2.Dial(t, "erin"), n1.Dial(t, "frank")}
	first := sending[0].SendMessage("cc-first", "frank", "cc-first")
	conv := first.Conversation

	start := time.Now()
	acks := make([][]Frame, len(sending))
	errs := make([]error, len(sending))
	refused := make([][]string, len(sending))
	var wg sync.WaitGroup
	for i, c := range sending {
		wg.Go(func() {
			for k := range perSender {
				id := fmt.Sprintf("cc%d-%d", i, k)
				ack, r, err := c.sendResending(id, peer[c.User], id)
				refused[i] = append(refused[i], r...)
				if err != nil {
					errs[i] = err
					return
				}
				acks[i] = append(acks[i], ack)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("sender %d (%s): %v", i, sending[i].Name, err)
		}
		if len(refused[i]) > 0 {
			// Neither the store nor the broker was down: see clusterSender.
			t.Logf("sender %d (%s): %d send(s) answered with unavailable while the store and the broker were up, acked when resent: %v",
				i, sending[i].Name, len(refused[i]), refused[i])
		}
	}
	if t.Failed() {
		return
	}
	total := len(sending)*perSender + 1
	t.Logf("concurrent senders: %d sends on two nodes acked in %v", total-1, time.Since(start).Round(time.Millisecond))

	byseq := make([]*Frame, total+1)
	byseq[first.Seq] = &first
	own := make([]map[uint64]bool, len(sending))
	for i, as := range acks {
		own[i] = map[uint64]bool{}
		for k, a := range as {
			if a.Conversation != conv || a.Seq < 1 || int(a.Seq) > total {
				t.Fatalf("sender %d: ack %s outside seqs 1..%d of %s", i, a, total, conv)
			}
			if byseq[a.Seq] != nil {
				t.Errorf("seq %d acked twice: %s and %s", a.Seq, byseq[a.Seq], a)
			}
			byseq[a.Seq] = &as[k]
			own[i][a.Seq] = true
			if k > 0 && a.Seq <= as[k-1].Seq {
				t.Errorf("sender %d: seq %d acked after %d", i, a.Seq, as[k-1].Seq)
			}
		}
	}
	own[0][first.Seq] = true
	for q := 1; q <= total; q++ {
		if byseq[q] == nil {
			t.Errorf("seq %d was never acked: the seqs have a gap", q)
		}
	}
	if t.Failed() {
		return
	}

	all := append(slices.Clone(sending), listening...)
	var check sync.WaitGroup
	for i, c := range all {
		check.Go(func() {
			var want []uint64
			for q := uint64(1); q <= uint64(total); q++ {
				if i >= len(own) || !own[i][q] {
					want = append(want, q)
				}
			}
			got, err := receiveMessages(c, conv, len(want), 3*frameTimeout)
			if err != nil {
				t.Error(err)
				return
			}
			expectSeqs(t, c.Name, got, want)
			for _, m := range got {
				if a := byseq[m.Seq]; m.MessageID != a.MessageID || m.Body != a.ID {
					t.Errorf("%s: message %+v, want the acked %s", c.Name, m, a)
				}
			}
		})
	}
	check.Wait()
	for _, c := range all {
		c.None("message", nil)
	}
	tok := n2.Token(t, "erin")
	for _, n := range []*Node{n1, n2} {
		h := fullHistory(t, n, tok, conv)
		checkSeqs(t, "history on "+n.Name, h)
		if len(h) != total {
			t.Errorf("history on %s: %d messages, want %d", n.Name, len(h), total)
		}
	}
}

// testClusterKillDuringSends: sessions on both nodes send continuously, two
// of the conversations with a sender on each node, when node 1 is killed
// with SIGKILL. Node 2 keeps taking sends and delivering to its sessions;
// every message acked by either node is in the history with its seq and
// messageId, each conversation's seqs are 1..N, and every session on node
// 2 has seen every message of its conversation that it did not send once,
// in order. Node 1, restarted with the same node id, works again.
//
// The half message of a send that node 1 stored but had not committed on
// the broker when it died is settled later by checkback through node 2 (the
// first checkback comes 30-60 s after), which this test does not wait for:
// node 2's sessions get such a message by the gap fill of the next one.
func testClusterKillDuringSends(t *testing.T, rmq *infra.RocketMQ) {
	n1, n2 := startCluster(t, rmq)
	warmUp(t, n1, n2)
	nodes := []*Node{n1, n2}
	plan := []struct {
		node     int
		from, to string
	}{
		{0, "alice", "bob"}, {1, "bob", "alice"}, // one conversation, senders on both nodes
		{0, "carol", "dave"}, {1, "dave", "carol"}, // another
		{1, "erin", "frank"}, // and one only on the surviving node
	}
	senders := make([]*clusterSender, len(plan))
	for i, p := range plan {
		senders[i] = &clusterSender{sender: sender{c: nodes[p.node].Dial(t, p.from), to: p.to}}
	}
	// Listening sessions on the surviving node, one per conversation.
	listeners := []*Client{n2.Dial(t, "alice"), n2.Dial(t, "carol"), n2.Dial(t, "frank")}
	// And a listener on node 1, so that node 1 is delivering when it dies.
	n1.Dial(t, "dave")
	// A group's owner changes its membership on node 1 meanwhile, watched
	// by a member on node 2 (checkGroupAfterKill).
	group := groupCall(t, n1, http.MethodPost, "/api/groups", n1.Token(t, "gowner"),
		map[string]any{"title": "kill", "members": []string{"gwatch"}}, http.StatusCreated)
	toggler := &memberToggler{conv: group.Conversation, owner: "gowner", token: n1.Token(t, "gowner"), user: "gtoggled"}
	groupWatch := n2.Dial(t, "gwatch")

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, s := range senders {
		wg.Go(func() { s.run(fmt.Sprintf("k%d", i), stop) })
	}
	wg.Go(func() { toggler.run(n1, stop) })
	waitAcks := func(what string, min int64, since []int64, ss []*clusterSender) {
		t.Helper()
		start := time.Now()
		if err := eventually.Poll(20*time.Second, func() (bool, error) {
			ready := time.Since(start) > time.Second
			for i, s := range ss {
				ready = ready && s.count.Load()-since[i] >= min
			}
			return ready, nil
		}); err != nil {
			close(stop)
			wg.Wait()
			for i, s := range ss {
				t.Errorf("%s: sender %s: %d acks in 20 s; error %v", what, s.c.Name, s.count.Load()-since[i], s.err)
			}
			t.FailNow()
		}
	}
	waitAcks("before the kill", 5, make([]int64, len(senders)), senders)
	n1.Kill()
	killedAt := time.Now()
	// Node 2's senders go on: their conversations' next sends after the kill
	// must be taken by node 2 alone.
	survivors := []*clusterSender{senders[1], senders[3], senders[4]}
	since := make([]int64, len(survivors))
	for i, s := range survivors {
		since[i] = s.count.Load()
	}
	waitAcks("after the kill", 10, since, survivors)
	close(stop)
	wg.Wait()
	t.Logf("node 2 took %d more sends in %v after node 1 was killed",
		func() (k int64) {
			for i, s := range survivors {
				k += s.count.Load() - since[i]
			}
			return k
		}(), time.Since(killedAt).Round(time.Millisecond))

	total := 0
	for i, s := range senders {
		if s.err != nil {
			t.Errorf("sender %d (%s on %s): %v", i, s.c.Name, nodes[plan[i].node].Name, s.err)
		}
		if plan[i].node == 1 && s.inFlight != "" {
			t.Errorf("sender %d on the surviving node ended with %s unacked", i, s.inFlight)
		}
		total += len(s.acked)
		if len(s.refused) > 0 {
			// Neither the store nor the broker was down: see clusterSender.
			t.Logf("sender %d (%s on %s): %d send(s) answered with unavailable while the store and the broker were up, acked when resent: %v",
				i, s.c.Name, nodes[plan[i].node].Name, len(s.refused), s.refused)
		}
	}
	t.Logf("%d sends acked in all", total)
	if t.Failed() {
		return
	}
	if code, ok := n2.Wait(0); ok {
		t.Fatalf("node 2 exited (%d) when node 1 was killed", code)
	}
	readyz(t, n2, http.StatusOK, 5*time.Second)
	checkGroupAfterKill(t, n2, toggler, groupWatch, n2.Token(t, "gwatch"))

	// What each conversation must hold: every acked message at its seq, and
	// at most the one send node 1 had in flight.
	type conversationCheck struct {
		reader   string
		listener *Client
		acked    map[uint64]Frame
		maybe    map[string]bool
		hist     []Message
	}
	convs := map[string]*conversationCheck{}
	var order []string
	for i, s := range senders {
		conv := s.acked[0].Conversation
		cc := convs[conv]
		if cc == nil {
			cc = &conversationCheck{reader: plan[i].from, listener: listeners[len(order)],
				acked: map[uint64]Frame{}, maybe: map[string]bool{}}
			convs[conv] = cc
			order = append(order, conv)
		}
		for _, a := range s.acked {
			if a.Conversation != conv {
				t.Fatalf("sender %d: ack %s outside its conversation %s", i, a, conv)
			}
			if prev, dup := cc.acked[a.Seq]; dup {
				t.Errorf("seq %d of %s acked twice: %s and %s", a.Seq, conv, prev, a)
			}
			cc.acked[a.Seq] = a
		}
		if s.inFlight != "" {
			cc.maybe[s.inFlight] = true
		}
	}
	if len(convs) != 3 {
		t.Fatalf("%d conversations, want 3", len(convs))
	}
	for _, conv := range order {
		cc := convs[conv]
		cc.hist = fullHistory(t, n2, n2.Token(t, cc.reader), conv)
		hist := cc.hist
		checkAfterKill(t, conv, hist, cc.acked, cc.maybe)
	}
	if t.Failed() {
		return
	}

	// Every session of node 2 saw its conversation: the listeners all of
	// it, the senders all but their own sends; each message once, in order.
	// The last messages of each conversation are node 2's, sent after the
	// kill, so anything node 1 stored and never got onto the bus is filled
	// in before them.
	var check sync.WaitGroup
	watch := func(c *Client, conv string, own map[uint64]bool) {
		check.Go(func() {
			var want []uint64
			for _, m := range convs[conv].hist {
				if !own[m.Seq] {
					want = append(want, m.Seq)
				}
			}
			got, err := receiveMessages(c, conv, len(want), 3*frameTimeout)
			if err != nil {
				t.Error(err)
				return
			}
			expectSeqs(t, c.Name, got, want)
		})
	}
	for _, conv := range order {
		watch(convs[conv].listener, conv, nil)
	}
	for i, s := range senders {
		if plan[i].node == 1 {
			own := map[uint64]bool{}
			for _, a := range s.acked {
				own[a.Seq] = true
			}
			watch(s.c, s.acked[0].Conversation, own)
		}
	}
	check.Wait()
	for _, c := range listeners {
		c.None("message", nil)
	}
	if t.Failed() {
		return
	}

	// Node 1 comes back with the same node id and offset directory, so its
	// broadcast consumer resumes from the offsets it last saved.
	start := time.Now()
	n1.Restart()
	t.Logf("node 1 restarted in %v", time.Since(start).Round(time.Millisecond))
	readyz(t, n1, http.StatusOK, 10*time.Second)
	ab := order[0]
	lastAB := uint64(len(convs[ab].hist))
	b1 := n1.Dial(t, "bob")
	start = time.Now()
	ack := listeners[0].SendMessage("after-restart-1", "bob", "after restart 1")
	if ack.Seq != lastAB+1 {
		t.Errorf("first send after the restart on node 2: %s, want seq %d", ack, lastAB+1)
	}
	// The consumer of the restarted node may first replay what came after
	// its last saved offset; those pushes are older messages of the
	// conversation, in order, before this one.
	got, err := receiveMessages(b1, ab, 1, 15*time.Second)
	for err == nil && got[len(got)-1].Seq < ack.Seq {
		var more []Message
		more, err = receiveMessages(b1, ab, 1, 15*time.Second)
		got = append(got, more...)
	}
	if err != nil {
		t.Fatalf("a session on the restarted node 1: %v", err)
	}
	t.Logf("restarted node 1 delivered live %v after the send; the session got %d replayed message(s) before it",
		time.Since(start).Round(time.Millisecond), len(got)-1)
	if !slices.IsSortedFunc(got, func(a, b Message) int { return int(a.Seq) - int(b.Seq) }) || got[len(got)-1].Seq != ack.Seq ||
		len(slices.CompactFunc(slices.Clone(got), func(a, b Message) bool { return a.Seq == b.Seq })) != len(got) {
		t.Errorf("%s on the restarted node received seqs %v: want increasing, once each, ending at %d", b1.Name, seqs(got), ack.Seq)
	}
	// And it takes sends again, delivered on node 2.
	a1 := n1.Dial(t, "alice")
	ack2 := a1.SendMessage("after-restart-2", "bob", "after restart 2")
	if ack2.Seq != ack.Seq+1 {
		t.Errorf("send on the restarted node 1: %s, want seq %d", ack2, ack.Seq+1)
	}
	for _, c := range []*Client{listeners[0], senders[1].c, b1} {
		m, _ := c.Next("message", msgWithBody("after restart 2")).Msg()
		checkMessage(t, m, ack2, "alice", "bob", "after restart 2")
	}
	checkSeqs(t, "history after the restart", fullHistory(t, n1, n1.Token(t, "alice"), ab))
}

// clusterSender is a sender (see TestMongoKillDuringSends) that, as a client
// should, resends the same id when a send is answered with `unavailable`.
//
// With senders on both nodes going flat out in one conversation, the node
// whose cached aggregate is behind (it learns of the other node's commits
// from the bus, or not at all for a conversation it has not cached) can
// lose the optimistic-concurrency race on every one of its attempts (8, one
// right after the other) and answer "conversation too busy" with
// `unavailable`, though the store and the broker are up. The cluster tests
// log those refusals rather than fail on them: they are about what is
// delivered and what a kill loses, and a resend of the same id is safe by
// the protocol. A resend that is refused maxRefusals times fails the test.
type clusterSender struct {
	sender
	refused []string // the error frames answered to sends that were resent
}

// clusterSendPause is a sender's pause between an ack and its next send.
// Two senders of one conversation on two nodes that send back to back, as
// fast as acks come, starve the one whose node is behind: its version is
// taken again before its append lands, every time (on FerretDB an attempt
// takes longer than the other node's whole cycle). A pause of this much,
// still 20 messages a second or more for each, leaves room for both.
const clusterSendPause = 20 * time.Millisecond

func (s *clusterSender) run(prefix string, stop <-chan struct{}) {
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		case <-time.After(clusterSendPause):
		}
		id := fmt.Sprintf("%s-%d", prefix, k)
		s.inFlight = id
		ack, refused, err := s.c.sendResending(id, s.to, id)
		s.refused = append(s.refused, refused...)
		if err != nil {
			if !s.c.ended() {
				s.err = err
			}
			return // when the node is gone, the frame may or may not have left
		}
		s.inFlight = ""
		s.acked = append(s.acked, ack)
		s.count.Add(1)
	}
}

// maxRefusals bounds how often sendResending resends one id.
const maxRefusals = 20

// sendResending sends a message and waits for its ack; a send answered with
// `unavailable` is sent again with the same id, as a client should, up to
// maxRefusals times. refused lists the error frames of those answers.
func (c *Client) sendResending(id, to, body string) (ack Frame, refused []string, err error) {
	frame, _ := json.Marshal(map[string]string{"type": "send", "id": id, "to": to, "body": body})
	for {
		if err := c.write(websocket.TextMessage, frame); err != nil {
			return Frame{}, refused, err
		}
		f, err := c.reply(id, 2*frameTimeout)
		if err != nil {
			return Frame{}, refused, err
		}
		if f.Type == "ack" {
			return f, refused, nil
		}
		if f.Code != "unavailable" || len(refused) >= maxRefusals {
			return Frame{}, refused, fmt.Errorf("send %s: %s (after %d refusals %v)", id, f, len(refused), refused)
		}
		refused = append(refused, f.Raw)
	}
}

// reply waits for the ack or the error frame of the send id.
func (c *Client) reply(id string, timeout time.Duration) (Frame, error) {
	deadline := time.Now().Add(timeout)
	for {
		if f, err := c.Await(0, "error", byID(id)); err == nil {
			return f, nil
		}
		f, err := c.Await(min(50*time.Millisecond, time.Until(deadline)), "ack", byID(id))
		if err == nil || c.ended() || time.Now().After(deadline) {
			return f, err
		}
	}
}

// ended tells whether the connection has ended.
func (c *Client) ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// TestClusterBrokerDown: with the broker stopped, sends on both nodes are
// answered with `unavailable` (never an ack) and /readyz is 503 on both;
// when the broker is back, both nodes recover by themselves: /readyz 200,
// sends acked and delivered across the nodes, and nothing refused was
// stored. It logs how long each step of the recovery took.
func TestClusterBrokerDown(t *testing.T) {
	t.Parallel()
	// A broker of its own: stopping a shared one would fail the others.
	rmq := infra.StartRocketMQ(t)
	n1, n2 := startCluster(t, rmq)
	warmUp(t, n1, n2)
	a1, b2 := n1.Dial(t, "alice"), n2.Dial(t, "bob")
	aliceTok, bobTok := n1.Token(t, "alice"), n2.Token(t, "bob")
	first := a1.SendMessage("bd-1", "bob", "before")
	b2.Next("message", msgWithBody("before"))
	last := b2.SendMessage("bd-2", "alice", "before, back")
	a1.Next("message", msgWithBody("before, back"))
	conv := first.Conversation
	for _, n := range []*Node{n1, n2} {
		readyz(t, n, http.StatusOK, 5*time.Second)
	}

	start := time.Now()
	stopped := start
	if err := rmq.StopBroker(); err != nil {
		t.Fatalf("stopping the broker: %v", err)
	}
	t.Logf("broker stopped (and unrouted) in %v", time.Since(start).Round(time.Millisecond))

	// Each try of the half message fails fast on a refused connection; the
	// send's context (CHAT_TX_TIMEOUT, 6 s) bounds them all.
	const downReply = 15 * time.Second
	for _, s := range []struct {
		c      *Client
		id, to string
	}{{a1, "bd-down-1", "bob"}, {b2, "bd-down-2", "alice"}} {
		start := time.Now()
		s.c.Send(map[string]string{"type": "send", "id": s.id, "to": s.to, "body": "while down " + s.id})
		e, err := s.c.Await(downReply, "error", byID(s.id))
		if err != nil {
			t.Fatalf("send while the broker is down: %v", err)
		}
		t.Logf("%s: send while the broker is down answered in %v: %s", s.c.Name, time.Since(start).Round(time.Millisecond), e)
		if e.Code != "unavailable" {
			t.Errorf("%s: send while the broker is down: %s, want code unavailable", s.c.Name, e)
		}
	}
	status, body := n2.Do(t, http.MethodPost, "/api/messages", aliceTok,
		map[string]string{"id": "bd-down-rest", "to": "bob", "body": "while down, REST"})
	expectError(t, "POST /api/messages on node 2 while the broker is down", status, body, http.StatusServiceUnavailable, "unavailable")
	for _, n := range []*Node{n1, n2} {
		t.Logf("%s: /readyz 503 after %v", n.Name, readyz(t, n, http.StatusServiceUnavailable, 15*time.Second).Round(time.Millisecond))
		if status, body := n.Do(t, http.MethodGet, "/healthz", "", nil); status != http.StatusOK {
			t.Errorf("%s: /healthz while the broker is down: %d %s, want 200", n.Name, status, body)
		}
	}
	a1.None("ack", nil)
	b2.None("ack", nil)
	a1.None("message", nil)
	b2.None("message", nil)
	a1.Ping() // the sessions live on
	b2.Ping()
	if t.Failed() {
		return
	}

	start = time.Now()
	if err := rmq.StartBroker(); err != nil {
		t.Fatalf("starting the broker again: %v", err)
	}
	back := time.Now()
	t.Logf("broker back and routed in %v", back.Sub(start).Round(time.Millisecond))
	// The nodes find it by themselves: the client's route refresh runs
	// every 30 s, so recovery may take about that long.
	const recovery = 90 * time.Second
	for _, n := range []*Node{n1, n2} {
		readyz(t, n, http.StatusOK, recovery-time.Since(back))
		t.Logf("%s: /readyz 200 %v after the broker was back", n.Name, time.Since(back).Round(time.Millisecond))
	}

	// Sends on both nodes are acked again, and delivered across. Each
	// acked message is awaited, not resent: once acked it must arrive.
	next := a1.SendMessage("bd-3", "bob", "after, from node 1")
	t.Logf("first send on node 1 acked %v after the broker was back", time.Since(back).Round(time.Millisecond))
	if next.Seq != last.Seq+1 {
		t.Errorf("first send after the outage: %s, want seq %d (the refused sends left no seq behind)", next, last.Seq+1)
	}
	if _, err := b2.Await(recovery-time.Since(back), "message", msgWithBody("after, from node 1")); err != nil {
		t.Fatalf("a message acked on node 1 after the outage never reached node 2: %v", err)
	}
	t.Logf("node 2 delivered it %v after the broker was back, %v after it was killed",
		time.Since(back).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	next2 := b2.SendMessage("bd-4", "alice", "after, from node 2")
	if _, err := a1.Await(recovery-time.Since(back), "message", msgWithBody("after, from node 2")); err != nil {
		t.Fatalf("a message acked on node 2 after the outage never reached node 1: %v", err)
	}
	t.Logf("node 1 delivered node 2's %v after the broker was back, %v after it was killed",
		time.Since(back).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	a1.Next("receipt", func(f Frame) bool { return f.User == "bob" && f.DeliveredUpTo == next.Seq })

	// The refused sends were not stored: resending them makes new messages.
	again := a1.SendMessage("bd-down-1", "bob", "while down bd-down-1")
	if again.Seq != next2.Seq+1 {
		t.Errorf("resend of the refused bd-down-1: %s, want a new message at seq %d", again, next2.Seq+1)
	}
	b2.Next("message", msgWithBody("while down bd-down-1"))
	for _, h := range [][]Message{fullHistory(t, n1, aliceTok, conv), fullHistory(t, n2, bobTok, conv)} {
		checkSeqs(t, "history after the outage", h)
		if len(h) != 5 {
			t.Errorf("history after the outage: %+v, want 5 messages", h)
		}
		for _, m := range h {
			if strings.Contains(m.Body, "while down, REST") || m.Body == "while down bd-down-2" {
				t.Errorf("a send refused while the broker was down was stored: %+v", m)
			}
		}
	}
}
