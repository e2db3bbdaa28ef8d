package failover

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/infra"
)

// The load: senders on node 1, each to its own recipient on node 2.
const (
	senderCount  = 20
	sendInterval = 200 * time.Millisecond // 100 messages a second in all
)

// The rules, as bounds.
const (
	// Sends succeed again, and live delivery resumes for every
	// conversation, within this of a fault and of the failed part's return;
	// a message acked before a fault reaches its connected recipient live
	// within this of the fault.
	recoveryBound = 10 * time.Second
	// A name server's death pauses delivery by no more than this.
	namesrvPauseBound = 2 * time.Second
	// No single send waits longer than CHAT_ROCKETMQ_SEND_TIMEOUT ×
	// (CHAT_ROCKETMQ_RETRIES + 1), the nodes' settings below.
	sendTimeout = 3 * time.Second
	sendRetries = 3
	maxSendWait = sendTimeout * (sendRetries + 1)
)

// rocketmq-client-go refreshes its routes every 30 s from each client's
// start (its _PullNameServerInterval, not configurable). A fault costs the
// most just after a refresh, so each kill is placed afterRefresh past one,
// counted from the nodes' start.
const (
	routeRefresh = 30 * time.Second
	afterRefresh = time.Second
)

type attempt struct {
	sender     int
	id         string
	start, end time.Time
	acked      bool
	code       string // the error frame's code, or why there was no answer
	ack        frame
}

type traffic struct {
	mu       sync.Mutex
	attempts []attempt
}

func (tr *traffic) add(a attempt) {
	tr.mu.Lock()
	tr.attempts = append(tr.attempts, a)
	tr.mu.Unlock()
}

func (tr *traffic) snapshot() []attempt {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.attempts)
}

// fault is one failure the cluster goes through while the senders send.
// With downFor, the failed part returns that long after the kill and the
// row measures its return too; without, it returns once the row has been
// measured, so that the next fault finds the whole cluster.
type fault struct {
	name    string
	kill    func() error
	restore func() error
	downFor time.Duration
	after   time.Duration
	namesrv bool
	// onRefresh places the kill just after the clients' route refresh,
	// where a RocketMQ process's death costs the most.
	onRefresh bool
	// recipientsMove: the recipients' node dies, and they reconnect to the
	// other and sync; what was acked before the fault may come by sync.
	recipientsMove bool
	// stopsSends: while the part is down no send can be acked (the store),
	// so delivery can resume only after its return, and its pauses are
	// measured from then.
	stopsSends bool
}

// row is what a fault did, for the table the test logs.
type row struct {
	name                      string
	faultAt, returnAt, end    time.Time
	attempts, failed          int
	firstFailure, lastFailure time.Duration // from the fault
	lastFailureAfterReturn    time.Duration
	slowestSend               time.Duration
	longestPause              time.Duration
	pausesOverBound           int
	ackedBeforeLatest         time.Duration // live delivery of what was acked just before the fault, from the fault
	ackedBeforeMissing        int
	live, bySync              int
	// details name the conversations and messages behind the figures
	// over recoveryBound, for the log.
	details []string
}

// TestFailover runs two chatd nodes on the deployed RocketMQ layout (two name
// servers, two master/slave groups) and puts steady traffic through each
// fault in turn, on one set of JVMs: a name server's death, broker-a's
// master's death and return, broker-a's slave's death, the store stopped and
// started, and node 2's death, after which its recipients reconnect to node 1
// and sync. It logs, for each, the window of failed sends, the longest
// delivery pause and what was caught up by sync, and checks the rules
// against them.
func TestFailover(t *testing.T) {
	r := wholeLayout(t)
	const topic = "chat_failover"
	if err := r.CreateTopic(topic); err != nil {
		t.Fatal(err)
	}
	mongoURI := store.URI()
	logDir := t.TempDir()
	env := []string{
		"CHAT_AUTH_MODE=dev", "CHAT_AUTH_SECRET=" + strings.Repeat("failover-secret-", 3),
		"CHAT_MONGO_URI=" + mongoURI, fmt.Sprintf("CHAT_MONGO_DB=failover_%d", os.Getpid()),
		"CHAT_ROCKETMQ_NAMESRV=" + r.NamesrvAddr(), "CHAT_ROCKETMQ_TOPIC=" + topic,
		"CHAT_ROCKETMQ_SEND_TIMEOUT=" + sendTimeout.String(), fmt.Sprintf("CHAT_ROCKETMQ_RETRIES=%d", sendRetries),
		"CHAT_SEND_RATE=10000", "CHAT_SEND_BURST=10000", "CHAT_SHUTDOWN_TIMEOUT=5s",
	}
	if mode, set := infra.DeliveryMode(); set {
		env = append(env, "CHAT_DELIVERY_MODE="+mode)
	}
	// Both nodes start together, so that their clients' route refreshes
	// fall together too.
	launched := time.Now()
	var nodes [2]*infra.Chatd
	var errs [2]error
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			name := fmt.Sprintf("node%d", i+1)
			nodeEnv := append(slices.Clone(env), "rocketmq.client.localOffsetStoreDir="+filepath.Join(logDir, "offsets-"+name))
			nodes[i], errs[i] = infra.LaunchChatd(chatdBinary, name, fmt.Sprintf("127.0.0.1:%d", infra.FreePort()), logDir, nodeEnv)
		})
	}
	wg.Wait()
	ready := time.Now()
	for i, n := range nodes {
		if n != nil {
			t.Cleanup(func() {
				n.Stop()
				if t.Failed() {
					t.Logf("node%d log: %s", i+1, n.LogPath())
				}
			})
		}
	}
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			// Keep the node logs for a post-mortem: t.TempDir would go.
			keep, _ := os.MkdirTemp("", "chatd-failover-logs-")
			for _, n := range nodes {
				copyFile(n.LogPath(), filepath.Join(keep, filepath.Base(n.LogPath())))
			}
			t.Logf("node logs kept in %s", keep)
		}
	})
	t.Logf("nodes up %v after launch; their clients refresh routes every %v from then", ready.Sub(launched).Round(time.Millisecond), routeRefresh)
	node1, node2 := nodes[0].Addr(), nodes[1].Addr()

	recipients := make([]*recipient, senderCount)
	senders := make([]*session, senderCount)
	var err error
	for i := range senderCount {
		if recipients[i], err = dialRecipient(node2, fmt.Sprintf("fr%d", i)); err != nil {
			t.Fatal(err)
		}
		if senders[i], err = dial(node1, fmt.Sprintf("fs%d", i)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(recipients[i].close)
		t.Cleanup(senders[i].close)
	}
	tr := &traffic{}
	stop := make(chan struct{})
	var sending sync.WaitGroup
	senderErrs := make([]error, senderCount)
	for i := range senderCount {
		sending.Go(func() { senderErrs[i] = runSender(i, senders[i], fmt.Sprintf("fr%d", i), tr, stop) })
	}
	stopSenders := sync.OnceFunc(func() { close(stop); sending.Wait() })
	defer stopSenders()

	// Node 2, the recipients' node, dies last: its recipients move to node
	// 1 for the rest of the run.
	recipientsNode := node2
	killRecipientsNode := func() error {
		nodes[1].Kill()
		recipientsNode = node1
		convs := conversations(tr.snapshot())
		var reconnecting sync.WaitGroup
		errs := make([]error, len(recipients))
		for i, rc := range recipients {
			reconnecting.Go(func() { errs[i] = rc.reconnect(node1, convs[i]) })
		}
		reconnecting.Wait()
		return errors.Join(errs...)
	}
	faults := []fault{
		{name: "kill -9 namesrv1", namesrv: true, onRefresh: true, after: 10 * time.Second,
			kill: func() error { return r.Kill(infra.Namesrv1) }, restore: func() error { return r.Start(infra.Namesrv1) }},
		{name: "kill -9 broker-a master, restart after 15 s", onRefresh: true, downFor: 15 * time.Second, after: 12 * time.Second,
			kill: func() error { return r.Kill(infra.BrokerAMaster) }, restore: func() error { return r.Start(infra.BrokerAMaster) }},
		{name: "kill -9 broker-a slave", onRefresh: true, after: 10 * time.Second,
			kill: func() error { return r.Kill(infra.BrokerASlave) }, restore: func() error { return r.Start(infra.BrokerASlave) }},
		{name: "store stopped, started after 5 s (pauses from its return)", stopsSends: true, downFor: 5 * time.Second, after: 10 * time.Second,
			kill: store.Stop, restore: store.Start},
		{name: "kill -9 node 2; its recipients reconnect to node 1 and sync", recipientsMove: true, after: 10 * time.Second,
			kill: killRecipientsNode},
	}
	var rows []*row
	// A part that returns once its row is measured is brought back while
	// the next row waits for its moment; the next kill waits for it, so
	// that each fault finds the whole cluster.
	restored := make(chan error, 1)
	restored <- nil
	for i, f := range faults {
		// Steady traffic first, then the kill, just after a refresh where
		// that matters.
		if err := waitSteady(tr, time.Minute); err != nil {
			t.Fatalf("before %s: %v", f.name, err)
		}
		at := time.Now().Add(5 * time.Second)
		if f.onRefresh {
			at = nextRefresh(ready, at).Add(afterRefresh)
		}
		time.Sleep(time.Until(at))
		if err := <-restored; err != nil {
			t.Fatal(err)
		}
		if f.onRefresh && time.Since(at) > afterRefresh {
			// The restore outlasted the wait: the next refresh is the moment.
			time.Sleep(time.Until(nextRefresh(ready, time.Now()).Add(afterRefresh)))
		}
		rw := &row{name: f.name, faultAt: time.Now()}
		if err := f.kill(); err != nil {
			t.Errorf("%s: %v", f.name, err)
		}
		sinceStart := rw.faultAt.Sub(ready)
		// The clients started between launch and ready, and refresh every
		// routeRefresh from their start.
		t.Logf("%s: %v after the nodes were up, so %v to %v after their clients' last route refresh",
			f.name, sinceStart.Round(time.Millisecond), (sinceStart % routeRefresh).Round(time.Millisecond),
			(rw.faultAt.Sub(launched) % routeRefresh).Round(time.Millisecond))
		if f.downFor > 0 {
			time.Sleep(time.Until(rw.faultAt.Add(f.downFor)))
			if err := f.restore(); err != nil {
				t.Fatalf("%s: restore: %v", f.name, err)
			}
			rw.returnAt = time.Now()
			t.Logf("%s: back and routed %v after the kill", f.name, rw.returnAt.Sub(rw.faultAt).Round(time.Millisecond))
		}
		from := rw.faultAt
		if !rw.returnAt.IsZero() {
			from = rw.returnAt
		}
		time.Sleep(time.Until(from.Add(f.after)))
		rw.end = time.Now()
		if f.downFor == 0 && i < len(faults)-1 {
			go func() {
				start := time.Now()
				if err := f.restore(); err != nil {
					restored <- fmt.Errorf("%s: restore: %w", f.name, err)
					return
				}
				t.Logf("%s: restored in %v, while the next row waited", f.name, time.Since(start).Round(time.Millisecond))
				restored <- nil
			}()
		} else {
			restored <- nil
		}
		rows = append(rows, rw)
	}
	stopSenders()
	for i, err := range senderErrs {
		if err != nil {
			t.Errorf("sender %d: %v", i, err)
		}
	}
	attempts := tr.snapshot()
	acked := map[int][]attempt{} // by sender, in order
	for _, a := range attempts {
		if a.acked {
			acked[a.sender] = append(acked[a.sender], a)
		}
	}

	// Let live delivery finish, then read what never came live with sync.
	deadline := time.Now().Add(recoveryBound)
	for time.Now().Before(deadline) && !allDelivered(recipients, acked) {
		time.Sleep(200 * time.Millisecond)
	}
	live := map[string]delivery{} // by message id, first live arrival
	bySync := map[string]bool{}
	dumped := false
	for i, rc := range recipients {
		// Each session gets each message once and in order; a session
		// opened on another node may get again what the last one had.
		seen := map[string]bool{}
		for _, got := range rc.perSession() {
			inSession := map[string]bool{}
			last := map[string]uint64{}
			for _, d := range got {
				if inSession[d.MessageID] {
					t.Errorf("%s got %s (seq %d) live twice", rc.user, d.MessageID, d.Seq)
				}
				inSession[d.MessageID], seen[d.MessageID] = true, true
				if d.Seq <= last[d.Conversation] {
					t.Errorf("%s got seq %d of %s live after seq %d", rc.user, d.Seq, d.Conversation, last[d.Conversation])
				}
				last[d.Conversation] = d.Seq
				if _, ok := live[d.MessageID]; !ok {
					live[d.MessageID] = d
				}
			}
		}
		if len(acked[i]) == 0 {
			t.Errorf("sender %d got no ack at all", i)
			continue
		}
		conv := acked[i][0].ack.Conversation
		synced, err := finalSync(rc, recipientsNode, conv)
		if errors.Is(err, errNoAnswer) && !dumped {
			// A node that leaves a sync unanswered is stuck somewhere:
			// its stacks say where.
			dumped = true
			for i, n := range nodes {
				if n.Addr() == recipientsNode {
					n.DumpGoroutines()
					t.Logf("node%d's goroutines are in its log", i+1)
				}
			}
		}
		if err != nil {
			t.Error(err)
		}
		inSync := map[string]bool{}
		for _, m := range synced {
			inSync[m.MessageID] = true
		}
		for _, a := range acked[i] {
			switch {
			case seen[a.ack.MessageID]:
			case inSync[a.ack.MessageID]:
				bySync[a.ack.MessageID] = true
			default:
				t.Errorf("%s: acked %s (seq %d) never reached %s, live or by sync", conv, a.id, a.ack.Seq, rc.user)
			}
		}
		// What sync read from the store holds each acked message once, at
		// its seq: both nodes read the one store.
		checkHistory(t, conv, synced, acked[i])
	}

	for i, rw := range rows {
		measure(rw, faults[i], attempts, recipients, acked, live, bySync)
	}
	logTable(t, rows)
	for i, rw := range rows {
		checkRules(t, rw, faults[i])
	}
}

// runSender sends, every sendInterval, the next message of its conversation;
// a send that fails is sent again with the same id, as a client should,
// until it is acked.
func runSender(i int, s *session, to string, tr *traffic, stop <-chan struct{}) error {
	tick := time.NewTicker(sendInterval)
	defer tick.Stop()
	for k := 0; ; {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		id := fmt.Sprintf("f%d-%d", i, k)
		a := attempt{sender: i, id: id, start: time.Now()}
		f, err := s.send(id, to, id, maxSendWait+5*time.Second)
		a.end = time.Now()
		switch {
		case errors.Is(err, io.ErrClosedPipe):
			return fmt.Errorf("connection to node 1 ended at %s", id)
		case err != nil:
			a.code = err.Error()
		case f.Type == "ack":
			a.acked, a.ack = true, f
			k++
		default:
			a.code = f.Code
		}
		tr.add(a)
	}
}

// waitSteady waits until every send of the last two seconds was acked, so
// that a fault does not start while the last one still costs.
func waitSteady(tr *traffic, within time.Duration) error {
	const window = 2 * time.Second
	giveUp := time.Now().Add(within)
	for {
		since := time.Now().Add(-window)
		failed, sent := 0, 0
		for _, a := range tr.snapshot() {
			if a.start.After(since) {
				sent++
				if !a.acked {
					failed++
				}
			}
		}
		if sent > 0 && failed == 0 {
			return nil
		}
		if time.Now().After(giveUp) {
			return fmt.Errorf("traffic not steady after %v: %d of %d sends of the last %v failed", within, failed, sent, window)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// conversations is each sender's conversation, from its first ack.
func conversations(attempts []attempt) []string {
	convs := make([]string, senderCount)
	for _, a := range attempts {
		if a.acked && convs[a.sender] == "" {
			convs[a.sender] = a.ack.Conversation
		}
	}
	return convs
}

func allDelivered(recipients []*recipient, acked map[int][]attempt) bool {
	for i, rc := range recipients {
		got := map[string]bool{}
		for _, d := range rc.received() {
			got[d.MessageID] = true
		}
		for _, a := range acked[i] {
			if !got[a.ack.MessageID] {
				return false
			}
		}
	}
	return true
}

// checkHistory: seqs 1..n with no gap or duplicate, every acked message at
// its seq, no body twice.
func checkHistory(t *testing.T, conv string, hist []message, acked []attempt) {
	t.Helper()
	bodies := map[string]bool{}
	for i, m := range hist {
		if m.Seq != uint64(i+1) {
			t.Errorf("%s: seq %d at position %d: a gap or a duplicate", conv, m.Seq, i+1)
			return
		}
		if bodies[m.Body] {
			t.Errorf("%s: %s stored twice", conv, m.Body)
		}
		bodies[m.Body] = true
	}
	for _, a := range acked {
		if a.ack.Seq == 0 || a.ack.Seq > uint64(len(hist)) || hist[a.ack.Seq-1].MessageID != a.ack.MessageID {
			t.Errorf("%s: acked %s (seq %d, %s) is not in the history", conv, a.id, a.ack.Seq, a.ack.MessageID)
		}
	}
}

// measure fills in a row from what the senders and recipients saw between
// just before its fault and its end.
func measure(rw *row, f fault, attempts []attempt, recipients []*recipient, acked map[int][]attempt, live map[string]delivery, bySync map[string]bool) {
	rw.firstFailure, rw.lastFailure, rw.lastFailureAfterReturn = -1, -1, -1
	for _, a := range attempts {
		if a.start.Before(rw.faultAt.Add(-time.Second)) || a.start.After(rw.end) {
			continue
		}
		rw.attempts++
		rw.slowestSend = max(rw.slowestSend, a.end.Sub(a.start))
		if a.acked {
			if bySync[a.ack.MessageID] {
				rw.bySync++
			} else if _, ok := live[a.ack.MessageID]; ok {
				rw.live++
			}
			continue
		}
		rw.failed++
		at := a.start.Sub(rw.faultAt)
		if rw.failed <= 3 {
			rw.details = append(rw.details, fmt.Sprintf("%s sent %v after the fault failed after %v: %s",
				a.id, at.Round(10*time.Millisecond), a.end.Sub(a.start).Round(10*time.Millisecond), a.code))
		}
		if rw.firstFailure < 0 {
			rw.firstFailure = at
		}
		rw.lastFailure = max(rw.lastFailure, at)
		if !rw.returnAt.IsZero() && a.start.After(rw.returnAt) {
			rw.lastFailureAfterReturn = max(rw.lastFailureAfterReturn, a.start.Sub(rw.returnAt))
		}
	}
	// The longest a conversation went without a live message, from the
	// fault (or the return of a part without which nothing is sent) to the
	// row's end.
	from := rw.faultAt
	if f.stopsSends {
		from = rw.returnAt
	}
	for _, rc := range recipients {
		var times []time.Time
		for _, d := range rc.received() {
			if !d.at.Before(from) && !d.at.After(rw.end) {
				times = append(times, d.at)
			}
		}
		sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
		prev, pause, pauseFrom := from, time.Duration(0), from
		for _, at := range append(times, rw.end) {
			if at.Sub(prev) > pause {
				pause, pauseFrom = at.Sub(prev), prev
			}
			prev = at
		}
		rw.longestPause = max(rw.longestPause, pause)
		if pause > recoveryBound {
			rw.pausesOverBound++
			rw.details = append(rw.details, fmt.Sprintf("%s: no live message from %v to %v after the fault",
				rc.user, pauseFrom.Sub(rw.faultAt).Round(10*time.Millisecond), (pauseFrom.Add(pause)).Sub(rw.faultAt).Round(10*time.Millisecond)))
		}
	}
	// What was acked in the last interval before the fault: the messages a
	// conversation's next send does not follow at once.
	for _, as := range acked {
		for _, a := range as {
			if a.end.After(rw.faultAt) || a.end.Before(rw.faultAt.Add(-sendInterval)) {
				continue
			}
			d, ok := live[a.ack.MessageID]
			if !ok {
				rw.ackedBeforeMissing++
				rw.details = append(rw.details, fmt.Sprintf("%s (seq %d of %s, acked %v before the fault) never came live",
					a.id, a.ack.Seq, a.ack.Conversation, rw.faultAt.Sub(a.end).Round(time.Millisecond)))
				continue
			}
			if d.at.Sub(rw.faultAt) > recoveryBound {
				rw.details = append(rw.details, fmt.Sprintf("%s (seq %d of %s) came live %v after the fault",
					a.id, a.ack.Seq, a.ack.Conversation, d.at.Sub(rw.faultAt).Round(10*time.Millisecond)))
			}
			rw.ackedBeforeLatest = max(rw.ackedBeforeLatest, d.at.Sub(rw.faultAt))
		}
	}
}

func logTable(t *testing.T, rows []*row) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "\n| fault | sends failed | failed sends from..to (after the fault) | last failure after the return | slowest send | longest delivery pause (conversations over %v) | acked just before, live by (not live) | live / by sync |\n|---|---|---|---|---|---|---|---|\n", recoveryBound)
	for _, rw := range rows {
		window, afterReturn := "none", "-"
		if rw.failed > 0 {
			window = fmt.Sprintf("%v..%v", rw.firstFailure.Round(10*time.Millisecond), rw.lastFailure.Round(10*time.Millisecond))
		}
		if !rw.returnAt.IsZero() {
			afterReturn = "none"
			if rw.lastFailureAfterReturn >= 0 {
				afterReturn = rw.lastFailureAfterReturn.Round(10 * time.Millisecond).String()
			}
		}
		fmt.Fprintf(&b, "| %s | %d of %d | %s | %s | %v | %v (%d) | %v (%d) | %d / %d |\n",
			rw.name, rw.failed, rw.attempts, window, afterReturn, rw.slowestSend.Round(time.Millisecond),
			rw.longestPause.Round(10*time.Millisecond), rw.pausesOverBound,
			rw.ackedBeforeLatest.Round(10*time.Millisecond), rw.ackedBeforeMissing, rw.live, rw.bySync)
	}
	for _, rw := range rows {
		for _, d := range rw.details {
			fmt.Fprintf(&b, "%s (at %s): %s\n", rw.name, rw.faultAt.UTC().Format("15:04:05.000"), d)
		}
	}
	t.Log(b.String())
}

// checkRules asserts the rules on one fault's row.
func checkRules(t *testing.T, rw *row, f fault) {
	t.Helper()
	if f.namesrv {
		if rw.failed > 0 {
			t.Errorf("%s: %d sends failed; a name server's death must fail none", rw.name, rw.failed)
		}
		if rw.longestPause > namesrvPauseBound {
			t.Errorf("%s: delivery paused %v; a name server's death must pause it by at most %v", rw.name, rw.longestPause, namesrvPauseBound)
		}
	}
	if rw.lastFailure > recoveryBound {
		t.Errorf("%s: sends failed until %v after the fault; they must succeed again within %v", rw.name, rw.lastFailure, recoveryBound)
	}
	if rw.lastFailureAfterReturn > recoveryBound {
		t.Errorf("%s: sends failed until %v after the return; they must succeed again within %v", rw.name, rw.lastFailureAfterReturn, recoveryBound)
	}
	if rw.slowestSend > maxSendWait {
		t.Errorf("%s: a send waited %v, over CHAT_ROCKETMQ_SEND_TIMEOUT × (retries + 1) = %v", rw.name, rw.slowestSend, maxSendWait)
	}
	if rw.pausesOverBound > 0 {
		t.Errorf("%s: %d conversations had no live message for over %v (longest %v)", rw.name, rw.pausesOverBound, recoveryBound, rw.longestPause)
	}
	// Recipients whose node died were not connected: what was acked just
	// before may reach them by sync, which the run checks for every message.
	if !f.recipientsMove && (rw.ackedBeforeMissing > 0 || rw.ackedBeforeLatest > recoveryBound) {
		t.Errorf("%s: of the messages acked just before the fault, %d never came live and the last live one came %v after the fault; bound %v",
			rw.name, rw.ackedBeforeMissing, rw.ackedBeforeLatest, recoveryBound)
	}
}

// nextRefresh is the first route refresh of clients started at start that
// comes no earlier than t.
func nextRefresh(start, t time.Time) time.Time {
	n := (t.Sub(start) + routeRefresh - 1) / routeRefresh
	return start.Add(n * routeRefresh)
}

func copyFile(from, to string) {
	b, err := os.ReadFile(from)
	if err == nil {
		_ = os.WriteFile(to, b, 0o644)
	}
}

// finalSync reads all of conv with the recipient's open session, or a new
// one on node if the node closed it; a session the node closes during the
// sync is opened again once, as a client would.
func finalSync(rc *recipient, node, conv string) ([]message, error) {
	for attempt := 1; ; attempt++ {
		s, err := rc.open(node)
		if err != nil {
			return nil, err
		}
		synced, err := s.syncAll(conv, 0)
		if errors.Is(err, errSessionGone) && attempt == 1 {
			continue
		}
		return synced, err
	}
}
