package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/evchat/chatd/tests/infra"

	"github.com/evchat/chatd/tests/eventually"
)

// The tests of this file run chatd on CHAT_MONGO_URI against the
// MongoDB-wire server of tests/infra (FerretDB over PostgreSQL): what is
// acked must survive a graceful restart and a kill -9, and a store that
// goes away must make sends fail with `unavailable` and the node recover by
// itself. Every test uses a database of its own, so the tests that do not
// stop the server share one (starting one costs 1-3 s of a 2-core runner).

// sharedMongo is the server of the tests that leave it running; it is
// launched by the first test that asks and closed by TestMain.
var sharedMongo struct {
	once sync.Once
	m    *infra.Mongo
	err  error
}

// SharedMongo returns the shared MongoDB-wire server, failing (never
// skipping) the test when it cannot be started.
func SharedMongo(t testing.TB) *infra.Mongo {
	t.Helper()
	sharedMongo.once.Do(func() {
		start := time.Now()
		sharedMongo.m, sharedMongo.err = infra.LaunchMongo()
		if sharedMongo.err == nil {
			t.Logf("infra: shared mongo up at %s in %v", sharedMongo.m.URI(), time.Since(start).Round(time.Millisecond))
		}
	})
	if sharedMongo.err != nil {
		t.Fatalf("infra: %v", sharedMongo.err)
	}
	return sharedMongo.m
}

// closeSharedMongo is called by TestMain once every test has run.
func closeSharedMongo() {
	if sharedMongo.m != nil {
		sharedMongo.m.Close()
	}
}

// dbSeq numbers the databases of the test binary.
var dbSeq counter

// mongoEnv is the environment of a node on uri with a database of its own:
// the test's name (lower case, FerretDB's PostgreSQL handler maps a
// database to a schema) plus the process id and a counter, so that reruns
// with -count and parallel tests never meet in one database. The send
// limit is lifted: these tests are about durability, not the rate limit.
func mongoEnv(t testing.TB, uri string) map[string]string {
	name := strings.ToLower(strings.TrimPrefix(t.Name(), "TestMongo"))
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, name)
	if len(name) > 20 {
		name = name[:20]
	}
	return map[string]string{
		"CHAT_MONGO_URI":  uri,
		"CHAT_MONGO_DB":   fmt.Sprintf("e2e_%s_%d_%d", name, os.Getpid(), dbSeq.next()),
		"CHAT_SEND_RATE":  "10000",
		"CHAT_SEND_BURST": "10000",
	}
}

// fullHistory reads a conversation's whole history, walking back from the
// latest page with before= (after=0 means "the latest page" to the history
// API, not "from seq 1"), and returns it in seq order.
func fullHistory(t testing.TB, n *Node, token, conv string) []Message {
	t.Helper()
	p := history(t, n, token, conv, "limit=100")
	all := p.Messages
	for p.More && len(all) > 0 {
		p = history(t, n, token, conv, fmt.Sprintf("before=%d&limit=100", all[0].Seq))
		if len(p.Messages) == 0 {
			t.Fatalf("history of %s before %d: an empty page that says more", conv, all[0].Seq)
		}
		all = append(slices.Clone(p.Messages), all...)
	}
	return all
}

// checkSeqs fails unless the messages' seqs are exactly 1..len: the
// protocol's "no gaps, no duplicates".
func checkSeqs(t testing.TB, what string, ms []Message) {
	t.Helper()
	for i, m := range ms {
		if m.Seq != uint64(i+1) {
			t.Errorf("%s: seqs %v, want 1..%d with no gap and no duplicate", what, seqs(ms), len(ms))
			return
		}
	}
}

// sameAck fails unless a resend's ack is the original one: same message,
// same seq, same time.
func sameAck(t testing.TB, what string, got, want Frame) {
	t.Helper()
	if got.ID != want.ID || got.MessageID != want.MessageID || got.Conversation != want.Conversation ||
		got.Seq != want.Seq || got.SentAt != want.SentAt {
		t.Errorf("%s: ack %s, want the original ack %s", what, got, want)
	}
}

// stopCleanly stops the node with SIGTERM and fails the test unless it
// drained and exited 0.
func stopCleanly(t testing.TB, n *Node) {
	t.Helper()
	if code := n.Stop(); code != 0 {
		t.Fatalf("chatd %s exited %d after SIGTERM, want 0\noutput:\n%s", n.Name, code, n.Logs())
	}
}

// TestMongoRestart: after a graceful restart on the same database, the
// history, the conversation lists (read model, markers and unread counts
// included) and the idempotency keys are what they were, and the next send
// takes the next seq.
func TestMongoRestart(t *testing.T) {
	t.Parallel()
	n := StartNode(t, mongoEnv(t, SharedMongo(t).URI()))
	alice, bob := n.Dial(t, "alice"), n.Dial(t, "bob")
	// The tokens are HS256 with the fixed test secret, so they stay valid
	// across the restart.
	aliceTok, bobTok, carolTok := n.Token(t, "alice"), n.Token(t, "bob"), n.Token(t, "carol")

	var ab []Frame
	for i := 1; i <= 5; i++ {
		ab = append(ab, alice.SendMessage(fmt.Sprintf("r-a%d", i), "bob", fmt.Sprintf("a to b %d", i)))
	}
	ab = append(ab, bob.SendMessage("r-b1", "alice", "b to a 1"))
	ac := alice.SendMessage("r-c1", "carol", "a to c 1") // carol never connects: unread for her
	conv := ab[0].Conversation
	// bob has read up to 3 of the conversation with alice.
	bob.Send(map[string]any{"type": "read", "conversation": conv, "upTo": 3})
	alice.Next("receipt", func(f Frame) bool { return f.User == "bob" && f.ReadUpTo == 3 })

	// The markers are projected after the acks: wait for the lists to show
	// all of them, so that the comparison after the restart is exact.
	settled := map[string]func([]ConversationSummary) bool{
		// alice was online for bob's seq 6: delivered to her, unread.
		"alice": func(cs []ConversationSummary) bool {
			return len(cs) == 2 && cs[1].LastSeq == 6 && cs[1].DeliveredUpTo == 6 && cs[0].LastSeq == 1
		},
		// bob was online for 1..5 and read up to 3.
		"bob": func(cs []ConversationSummary) bool {
			return len(cs) == 1 && cs[0].LastSeq == 6 && cs[0].DeliveredUpTo == 5 && cs[0].ReadUpTo == 3
		},
		"carol": func(cs []ConversationSummary) bool { return len(cs) == 1 && cs[0].LastSeq == 1 },
	}
	lists := map[string][]ConversationSummary{}
	toks := map[string]string{"alice": aliceTok, "bob": bobTok, "carol": carolTok}
	for user, tok := range toks {
		lists[user] = conversationsUntil(t, n, tok, settled[user])
		if !settled[user](lists[user]) {
			t.Fatalf("%s's conversations before the restart: %+v", user, lists[user])
		}
	}
	if c := lists["carol"][0]; c.Unread != 1 || c.LastSeq != ac.Seq {
		t.Errorf("carol's list before the restart: %+v, want one unread", c)
	}
	before := fullHistory(t, n, bobTok, conv)
	checkSeqs(t, "history before the restart", before)
	if len(before) != 6 {
		t.Fatalf("history before the restart: %d messages, want 6", len(before))
	}

	stopCleanly(t, n)
	n.Restart()

	after := fullHistory(t, n, bobTok, conv)
	if !slices.Equal(after, before) {
		t.Errorf("history after the restart:\n%+v\nwant\n%+v", after, before)
	}
	for i, m := range after {
		if i < len(ab) {
			want := ab[i]
			if m.MessageID != want.MessageID || m.Seq != want.Seq || m.SentAt != want.SentAt {
				t.Errorf("message %d after the restart: %+v, want the acked %s", i, m, want)
			}
		}
	}
	for user, tok := range toks {
		if got := conversations(t, n, tok); !slices.EqualFunc(got, lists[user], equalSummary) {
			t.Errorf("%s's conversations after the restart:\n%+v\nwant\n%+v", user, got, lists[user])
		}
	}

	alice = n.Dial(t, "alice")
	// The idempotency key outlives the process: a resend is the old ack.
	sameAck(t, "resend of r-a2 after the restart", alice.SendMessage("r-a2", "bob", "a to b 2"), ab[1])
	if next := alice.SendMessage("r-a6", "bob", "a to b 6"); next.Seq != 7 || next.Conversation != conv {
		t.Errorf("first new send after the restart: %s, want seq 7 in %s", next, conv)
	}
	if next := alice.SendMessage("r-c2", "carol", "a to c 2"); next.Seq != 2 || next.Conversation != ac.Conversation {
		t.Errorf("first new send to carol after the restart: %s, want seq 2 in %s", next, ac.Conversation)
	}
	checkSeqs(t, "history after the restart and a send", fullHistory(t, n, aliceTok, conv))
}

// equalSummary compares two list entries, the last message by value.
func equalSummary(a, b ConversationSummary) bool {
	if (a.LastMessage == nil) != (b.LastMessage == nil) {
		return false
	}
	if a.LastMessage != nil && *a.LastMessage != *b.LastMessage {
		return false
	}
	a.LastMessage, b.LastMessage = nil, nil
	return reflect.DeepEqual(a, b)
}

// sender is one session that sends continuously in TestMongoKillDuringSends.
type sender struct {
	c     *Client
	to    string
	acked []Frame // in the order of sending
	// inFlight is the id sent last and not acked when the connection
	// ended, "" when there was none.
	inFlight string
	err      error
	count    atomic.Int64 // len(acked), for the test to watch while it runs
}

// run sends ids <prefix>-0, -1, … one at a time, each body equal to its id,
// until the connection ends; stop asks it to end early without a kill.
func (s *sender) run(prefix string, stop <-chan struct{}) {
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		default:
		}
		id := fmt.Sprintf("%s-%d", prefix, k)
		frame, _ := json.Marshal(map[string]string{"type": "send", "id": id, "to": s.to, "body": id})
		s.inFlight = id
		if err := s.c.write(websocket.TextMessage, frame); err != nil {
			return // the node is gone; the frame may or may not have left
		}
		// Wait for the ack or for the end of the connection; a long wait
		// covers a slow store, and a kill ends the connection at once.
		ack, err := s.c.Await(2*frameTimeout, "ack", byID(id))
		if err != nil {
			s.c.mu.Lock()
			closed := s.c.closed
			s.c.mu.Unlock()
			if !closed {
				s.err = err
			}
			return
		}
		s.inFlight = ""
		s.acked = append(s.acked, ack)
		s.count.Add(1)
	}
}

// TestMongoKillDuringSends: four sessions send continuously into three
// conversations (alice and bob share one) when the node is killed with
// SIGKILL. After a restart on the same database, every acked message is in
// the history with its seq and messageId, each conversation's seqs are
// 1..N, a message that was in flight is there at most once, and every
// acked id, resent, returns its original ack.
func TestMongoKillDuringSends(t *testing.T) {
	t.Parallel()
	n := StartNode(t, mongoEnv(t, SharedMongo(t).URI()))
	plan := []struct{ from, to string }{
		{"alice", "bob"}, {"bob", "alice"}, // the shared conversation
		{"carol", "dave"}, {"erin", "alice"},
	}
	senders := make([]*sender, len(plan))
	for i, p := range plan {
		senders[i] = &sender{c: n.Dial(t, p.from), to: p.to}
	}
	// dave, the one recipient who does not send, is connected too, so that
	// delivery to an online recipient runs while the node dies.
	n.Dial(t, "dave")

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, s := range senders {
		wg.Go(func() { s.run(fmt.Sprintf("k%d", i), stop) })
	}
	// Kill once every sender has had a few acks and traffic has flowed for
	// a while, so that the kill lands in the middle of the stream of commits.
	start := time.Now()
	if err := eventually.Poll(20*time.Second, func() (bool, error) {
		ready := time.Since(start) > 1500*time.Millisecond
		for _, s := range senders {
			ready = ready && s.count.Load() >= 5
		}
		return ready, nil
	}); err != nil {
		close(stop)
		wg.Wait()
		for i, s := range senders {
			t.Errorf("sender %d (%s): %d acks in 20 s; error %v", i, s.c.Name, s.count.Load(), s.err)
		}
		t.FailNow()
	}
	n.Kill()
	wg.Wait()

	total := 0
	for i, s := range senders {
		if s.err != nil {
			t.Errorf("sender %d: %v", i, s.err)
		}
		if len(s.acked) < 3 {
			t.Errorf("sender %d (%s): only %d acks before the kill", i, s.c.Name, len(s.acked))
		}
		total += len(s.acked)
	}
	t.Logf("%d sends acked before the kill", total)
	if t.Failed() {
		return
	}

	n.Restart()
	tok := map[string]string{}
	for _, p := range plan {
		tok[p.from] = n.Token(t, p.from)
	}

	// What each conversation should hold: every acked message by seq, and
	// which in-flight bodies may be there.
	type conversationCheck struct {
		reader string
		acked  map[uint64]Frame
		bodies map[string]string // acked id (= body) -> sender
		maybe  map[string]bool   // in-flight bodies
	}
	convs := map[string]*conversationCheck{}
	for i, s := range senders {
		conv := s.acked[0].Conversation
		cc := convs[conv]
		if cc == nil {
			cc = &conversationCheck{reader: plan[i].from, acked: map[uint64]Frame{}, bodies: map[string]string{}, maybe: map[string]bool{}}
			convs[conv] = cc
		}
		for _, a := range s.acked {
			if a.Conversation != conv {
				t.Fatalf("sender %d: ack %s outside its conversation %s", i, a, conv)
			}
			if prev, dup := cc.acked[a.Seq]; dup {
				t.Errorf("seq %d of %s acked twice: %s and %s", a.Seq, conv, prev, a)
			}
			cc.acked[a.Seq] = a
			cc.bodies[a.ID] = plan[i].from
		}
		if s.inFlight != "" {
			cc.maybe[s.inFlight] = true
		}
	}
	if len(convs) != 3 {
		t.Fatalf("%d conversations, want 3", len(convs))
	}

	lastSeq := map[string]uint64{}
	for conv, cc := range convs {
		hist := fullHistory(t, n, tok[cc.reader], conv)
		lastSeq[conv] = uint64(len(hist))
		checkAfterKill(t, conv, hist, cc.acked, cc.maybe)
	}
	if t.Failed() {
		return
	}

	// Resending is how a client recovers from a lost ack: every acked id
	// must give its original ack (a sample, to keep the test short: the
	// first and the last five of each sender), and an in-flight id either
	// its stored message or a new one at the end.
	for i, s := range senders {
		c := n.Dial(t, plan[i].from)
		sample := s.acked[:1]
		sample = append(sample, s.acked[max(1, len(s.acked)-5):]...)
		for _, a := range sample {
			sameAck(t, "resend of "+a.ID+" after the kill", c.SendMessage(a.ID, s.to, a.ID), a)
		}
		if s.inFlight == "" {
			continue
		}
		conv := s.acked[0].Conversation
		ack := c.SendMessage(s.inFlight, s.to, s.inFlight)
		hist := fullHistory(t, n, tok[plan[i].from], conv)
		stored := slices.IndexFunc(hist, func(m Message) bool { return m.Body == s.inFlight })
		switch {
		case stored < 0:
			t.Errorf("in-flight %s resent: ack %s but the message is not in the history", s.inFlight, ack)
		case ack.Seq <= lastSeq[conv]:
			// It was stored before the kill: the resend is its ack.
			t.Logf("in-flight %s had been stored at seq %d", s.inFlight, ack.Seq)
			if m := hist[stored]; m.Seq != ack.Seq || m.MessageID != ack.MessageID {
				t.Errorf("in-flight %s resent: ack %s, but it is stored as %+v", s.inFlight, ack, m)
			}
		default:
			// It was lost with the kill: it is a new message, the next seq.
			t.Logf("in-flight %s had not been stored; resent as seq %d", s.inFlight, ack.Seq)
			if ack.Seq != lastSeq[conv]+1 {
				t.Errorf("in-flight %s resent: new seq %d, want %d", s.inFlight, ack.Seq, lastSeq[conv]+1)
			}
			lastSeq[conv] = ack.Seq
		}
		checkSeqs(t, "history after resending "+s.inFlight, hist)
	}
	// And a brand-new send continues each conversation without a gap.
	for i, s := range senders {
		conv := s.acked[0].Conversation
		c := n.Dial(t, plan[i].from)
		ack := c.SendMessage(fmt.Sprintf("k%d-after", i), s.to, "after the kill")
		if ack.Seq != lastSeq[conv]+1 {
			t.Errorf("new send of sender %d after the kill: seq %d, want %d", i, ack.Seq, lastSeq[conv]+1)
		}
		lastSeq[conv] = ack.Seq
	}
}

// readyz polls /readyz until it answers want or timeout passes, and
// returns how long that took.
func readyz(t testing.TB, n *Node, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var status int
	var body []byte
	if err := eventually.Poll(timeout, func() (bool, error) {
		status, body = n.Do(t, http.MethodGet, "/readyz", "", nil)
		return status == want, nil
	}); err == nil {
		return time.Since(start)
	}
	t.Fatalf("/readyz: %d %s for %v, want %d", status, body, timeout, want)
	return 0
}

// TestMongoDown: with the database stopped, a send is answered with
// `unavailable` (never an ack) within a bounded time, /readyz is 503 and
// /healthz 200; when the database returns, the same node and the same
// session recover by themselves, and the refused send left no seq behind.
func TestMongoDown(t *testing.T) {
	t.Parallel()
	// A server of its own: stopping the shared one would fail the others.
	m := infra.StartMongoServer(t)
	n := StartNode(t, mongoEnv(t, m.URI()))
	alice, bob := n.Dial(t, "alice"), n.Dial(t, "bob")
	aliceTok := n.Token(t, "alice")
	alice.SendMessage("d-1", "bob", "before 1")
	last := alice.SendMessage("d-2", "bob", "before 2")
	conv := last.Conversation
	readyz(t, n, http.StatusOK, 5*time.Second)

	start := time.Now()
	if err := m.Stop(); err != nil {
		t.Fatalf("stopping mongo: %v", err)
	}
	t.Logf("mongo stopped in %v", time.Since(start).Round(time.Millisecond))

	// The adapter gives up on a dead server after ~3 s and the WebSocket
	// request timeout is 10 s; 15 s leaves room for a loaded machine
	// without letting a send hang for ever.
	const downReply = 15 * time.Second
	start = time.Now()
	alice.Send(map[string]string{"type": "send", "id": "d-down", "to": "bob", "body": "while down"})
	e, err := alice.Await(downReply, "error", byID("d-down"))
	if err != nil {
		t.Fatalf("send while the database is down: %v", err)
	}
	t.Logf("send while down answered in %v: %s", time.Since(start).Round(time.Millisecond), e)
	if e.Code != "unavailable" {
		t.Errorf("send while the database is down: %s, want code unavailable", e)
	}
	alice.None("ack", byID("d-down"))
	bob.None("message", msgWithBody("while down"))

	// REST is the same send, and says so with a 503.
	status, body := n.Do(t, http.MethodPost, "/api/messages", aliceTok,
		map[string]string{"id": "d-down-rest", "to": "bob", "body": "while down, REST"})
	expectError(t, "POST /api/messages while the database is down", status, body, http.StatusServiceUnavailable, "unavailable")

	t.Logf("/readyz went 503 after %v", readyz(t, n, http.StatusServiceUnavailable, 10*time.Second).Round(time.Millisecond))
	if status, body := n.Do(t, http.MethodGet, "/healthz", "", nil); status != http.StatusOK {
		t.Errorf("/healthz while the database is down: %d %s, want 200", status, body)
	}
	// The session itself lives on: nothing of it needs the store.
	alice.Ping()

	start = time.Now()
	if err := m.Start(); err != nil {
		t.Fatalf("starting mongo again: %v", err)
	}
	t.Logf("mongo back in %v; /readyz 200 after %v more", time.Since(start).Round(time.Millisecond),
		readyz(t, n, http.StatusOK, 20*time.Second).Round(time.Millisecond))

	// Same node, same session: the next send must succeed at once.
	next := alice.SendMessage("d-3", "bob", "after")
	switch next.Seq {
	case last.Seq + 1:
		// The refused send was not stored: resending it now makes a new
		// message, the one after.
		if again := alice.SendMessage("d-down", "bob", "while down"); again.Seq != next.Seq+1 {
			t.Errorf("resend of the refused d-down: %s, want seq %d", again, next.Seq+1)
		}
	case last.Seq + 2:
		// The store kept it though the send was refused: then it must be
		// whole, and a resend must return its ack.
		again := alice.SendMessage("d-down", "bob", "while down")
		if again.Seq != last.Seq+1 {
			t.Errorf("d-down was stored while refused; its resend: %s, want seq %d", again, last.Seq+1)
		}
	default:
		t.Errorf("first send after the database returned: %s, want seq %d (or %d if the refused send was kept)",
			next, last.Seq+1, last.Seq+2)
	}
	bob.Next("message", msgWithBody("after"))
	hist := fullHistory(t, n, aliceTok, conv)
	checkSeqs(t, "history after the outage", hist)
	if len(hist) != 4 {
		t.Errorf("history after the outage: %+v, want 4 messages", hist)
	}
	// The REST send refused while down must not be there either, unless a
	// resend says it is.
	for _, m := range hist {
		if m.Body == "while down, REST" {
			t.Errorf("a REST send refused with 503 was stored: %+v", m)
		}
	}
}

// runChatd runs a one-shot chatd command (migrate, replay) with env on top
// of the base environment, and returns its exit code and output.
func runChatd(t testing.TB, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chatdBinary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHAT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range baseEnv("e2e-cmd") {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	default:
		t.Fatalf("chatd %v: %v\n%s", args, err, out)
		return -1, ""
	}
}

// TestMongoMigrateAndReplay: `chatd migrate` applies the schema to a fresh
// database and a second run changes nothing; `chatd replay` rebuilds the
// conversation lists from the event store alone, to what the live
// projection had made.
func TestMongoMigrateAndReplay(t *testing.T) {
	t.Parallel()
	uri := SharedMongo(t).URI()

	t.Run("migrate twice", func(t *testing.T) {
		env := mongoEnv(t, uri)
		for run := 1; run <= 2; run++ {
			if code, out := runChatd(t, env, "migrate"); code != 0 {
				t.Fatalf("chatd migrate, run %d, on a fresh database: exit %d\n%s", run, code, out)
			}
		}
		db := mongoDB(t, uri, env["CHAT_MONGO_DB"])
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		names, err := db.ListCollectionNames(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"schema_migrations", "commits", "conversations"} {
			if !slices.Contains(names, want) {
				t.Errorf("after chatd migrate: collections %v, want %s among them", names, want)
			}
		}
		// Recorded once each, however often it ran.
		var recs []bson.M
		cur, err := db.Collection("schema_migrations").Find(ctx, bson.D{})
		if err == nil {
			err = cur.All(ctx, &recs)
		}
		if err != nil {
			t.Fatal(err)
		}
		ids := map[any]int{}
		for _, r := range recs {
			ids[fmt.Sprint(r["_id"])]++
		}
		for id, k := range ids {
			if k != 1 {
				t.Errorf("migration %v recorded %d times", id, k)
			}
		}
		if len(recs) == 0 {
			t.Errorf("after chatd migrate: no migration recorded")
		}
	})

	t.Run("replay", func(t *testing.T) {
		env := mongoEnv(t, uri)
		n := StartNode(t, env)
		alice, bob := n.Dial(t, "alice"), n.Dial(t, "bob")
		toks := map[string]string{"alice": n.Token(t, "alice"), "bob": n.Token(t, "bob"), "carol": n.Token(t, "carol")}
		var conv string
		for i := 1; i <= 4; i++ {
			conv = alice.SendMessage(fmt.Sprintf("p-%d", i), "bob", fmt.Sprintf("to bob %d", i)).Conversation
			bob.Next("message", msgWithBody(fmt.Sprintf("to bob %d", i)))
		}
		bob.SendMessage("p-b", "alice", "to alice")
		alice.SendMessage("p-c1", "carol", "to carol 1")
		carolConv := alice.SendMessage("p-c2", "carol", "to carol 2, secret").Conversation
		bob.Send(map[string]any{"type": "read", "conversation": conv, "upTo": 2})
		alice.Next("receipt", func(f Frame) bool { return f.User == "bob" && f.ReadUpTo == 2 })
		// An edit, and the recall of a conversation's last message: the list
		// shows it bodiless, and so must the replay after its erasure.
		change(t, alice, map[string]any{"type": "edit", "id": "p-e1", "conversation": conv, "seq": 1, "body": "to bob 1, edited"})
		change(t, alice, map[string]any{"type": "edit", "id": "p-e2", "conversation": carolConv, "seq": 2, "body": "to carol 2, edited secret"})
		change(t, alice, map[string]any{"type": "recall", "id": "p-r2", "conversation": carolConv, "seq": 2})

		// The live lists, once the projection has caught up, the delivered
		// marks included: bob was written 1-4 and alice 5, and those marks
		// are gathered for a moment before they are stored.
		live := map[string][]ConversationSummary{}
		for user, tok := range toks {
			live[user] = conversationsUntil(t, n, tok, func(cs []ConversationSummary) bool {
				switch user {
				case "alice":
					return len(cs) == 2 && cs[0].LastSeq == 2 && cs[1].LastSeq == 5 && cs[1].ReadUpTo == 2 && cs[1].DeliveredUpTo == 5 &&
						cs[0].LastMessage.Recalled
				case "bob":
					return len(cs) == 1 && cs[0].LastSeq == 5 && cs[0].ReadUpTo == 2 && cs[0].DeliveredUpTo == 4
				}
				return len(cs) == 1 && cs[0].LastSeq == 2 && cs[0].LastMessage.Recalled
			})
		}
		liveHist := fullHistory(t, n, toks["bob"], conv)
		stopCleanly(t, n)

		// Empty the read model, so the lists after the replay can only
		// come from the replay.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db := mongoDB(t, uri, env["CHAT_MONGO_DB"])
		if _, err := db.Collection("conversations").DeleteMany(ctx, bson.D{}); err != nil {
			t.Fatalf("emptying the read model: %v", err)
		}
		// `chatd erase-recalled` takes the recalled body, and its edit's,
		// out of the store; a second run finds nothing left.
		for run, want := range []string{"commits_rewritten=2", "commits_rewritten=0"} {
			if code, out := runChatd(t, env, "erase-recalled"); code != 0 || !strings.Contains(out, want) {
				t.Fatalf("chatd erase-recalled, run %d: exit %d, want 0 and %s\n%s", run+1, code, want, out)
			}
		}
		cur, err := db.Collection("commits").Find(ctx, bson.D{})
		var commits []bson.M
		if err == nil {
			err = cur.All(ctx, &commits)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range commits {
			if text := fmt.Sprint(c["events"]); strings.Contains(text, "secret") {
				t.Errorf("commit %v still holds a recalled body: %s", c["_id"], text)
			}
		}
		if code, out := runChatd(t, env, "replay"); code != 0 {
			t.Fatalf("chatd replay: exit %d\n%s", code, out)
		}
		// The views are back before any node runs: the replay made them,
		// not a node's start-up.
		if k, err := db.Collection("conversations").CountDocuments(ctx, bson.D{}); err != nil || k != 2 {
			t.Errorf("after chatd replay: %d conversation views (%v), want 2", k, err)
		}

		n.Restart()
		for user, tok := range toks {
			if got := conversations(t, n, tok); !slices.EqualFunc(got, live[user], equalSummary) {
				t.Errorf("%s's conversations after replay:\n%+v\nwant the live ones\n%+v", user, got, live[user])
			}
		}
		if got := fullHistory(t, n, toks["bob"], conv); !slices.Equal(got, liveHist) {
			t.Errorf("history after replay:\n%+v\nwant\n%+v", got, liveHist)
		}
	})
}

// mongoDB opens a database of uri for the test's own checks and edits.
func mongoDB(t testing.TB, uri, name string) *mongo.Database {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatalf("connecting to %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(name)
}

// checkAfterKill checks a conversation's history after a node was killed
// mid-sends: every acked message is there as acked, every other one was in
// flight at the kill, and no body is stored twice.
func checkAfterKill(t *testing.T, conv string, hist []Message, acked map[uint64]Frame, maybe map[string]bool) {
	t.Helper()
	checkSeqs(t, "history of "+conv+" after the kill", hist)
	seen := map[string]int{}
	for _, m := range hist {
		seen[m.Body]++
		if a, ok := acked[m.Seq]; ok {
			if m.MessageID != a.MessageID || m.Body != a.ID || m.SentAt != a.SentAt {
				t.Errorf("%s seq %d after the kill: %+v, want the acked %s", conv, m.Seq, m, a)
			}
		} else if maybe[m.Body] {
			t.Logf("%s: %s, in flight when the node died, was stored at seq %d", conv, m.Body, m.Seq)
		} else {
			t.Errorf("%s seq %d after the kill: %+v was neither acked nor in flight", conv, m.Seq, m)
		}
	}
	for seq, a := range acked {
		if seq > uint64(len(hist)) {
			t.Errorf("%s: acked %s is missing after the kill (history ends at %d)", conv, a, len(hist))
		}
	}
	for body, k := range seen {
		if k > 1 {
			t.Errorf("%s: body %q stored %d times", conv, body, k)
		}
	}
}
