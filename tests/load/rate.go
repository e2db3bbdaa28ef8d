package load

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Step is one offered rate, held for a duration.
type Step struct {
	Rate     float64 // messages per second across all pairs
	Duration time.Duration
}

// RateConfig describes a RunRate.
type RateConfig struct {
	// SendURL and RecvURL are the base URLs (http://127.0.0.1:PORT) of the
	// nodes the senders and the recipients connect to; they may be the same.
	SendURL, RecvURL string
	// NodeURLs, when set, replaces SendURL and RecvURL: the users are spread
	// evenly over these nodes, pair i's sender on node i mod n and its
	// recipient on the next one, so that every message crosses nodes and
	// every node holds as many senders as recipients (the scale benchmark).
	NodeURLs []string
	// Pairs is the number of sender/recipient pairs. chatd handles a
	// session's frames one after the other, so one sender sends at most one
	// message per ack latency: Pairs must exceed the rate times that latency.
	Pairs int
	Steps []Step
	// Drain is how long after a step's last send its messages may still
	// arrive; what has not arrived by then is lost.
	Drain time.Duration
	// P99Limit is the end-to-end p99 a step must stay under to hold.
	P99Limit time.Duration
	// StopAtFailure ends the run at the first step that does not hold: the
	// stepped search for the highest rate held.
	StopAtFailure bool
	// Prelude, when its rate is set, is offered before the steps and left
	// out of the report: a fixed-rate figure is meant to be the steady
	// state, not a freshly started JVM's or Go heap's first seconds.
	Prelude Step
	// MeasureStart, when set, is called as the first measured step starts,
	// after the set-up, the warm-up and the prelude: a caller sampling the
	// servers while they are loaded aligns its window on it.
	MeasureStart func()
	// BodySize pads message bodies to this many characters.
	BodySize int
	// Log receives a line per phase and per step; nil discards them.
	Log io.Writer
}

// StepResult is what one step measured.
type StepResult struct {
	Step
	Sent     int     // send frames written
	Achieved float64 // Sent over the time from the first to the last write
	// MaxLag is the longest a send was written after its scheduled time: a
	// large one means the client (or a server not reading) fell behind.
	MaxLag   time.Duration
	Acked    int
	Received int // distinct messages received by the recipients
	Lost     int // sent, not received within Drain
	// LostAcked counts messages acked to the sender and yet not delivered:
	// the protocol forbids it whatever the load.
	LostAcked  int
	Duplicates int // message frames received more than once
	Reordered  int // received after a later message of the same pair
	// SeqViolations counts message frames whose conversation seq was not
	// the previous one plus 1 (gap, repeat or disorder on the server's side).
	SeqViolations int
	// Errors counts error frames by code and ended sessions by close code.
	Errors       map[string]int
	ErrorDetails map[string]string
	E2E, Ack     Percentiles
	Held         bool
}

// RateReport is the result of RunRate.
type RateReport struct {
	Pairs  int
	Steps  []StepResult
	Setup  time.Duration // tokens and sessions
	WarmUp time.Duration // until every pair had one message delivered
	// Late counts messages that arrived after their step's drain (they
	// count as lost in the step).
	Late int
	// AckedUndelivered counts acked messages that had still not arrived a
	// further Drain after the last step; AckedMissing those of them that
	// a sync of their conversation did not return either (a durable
	// message may miss its live delivery, an acked one may not be missing),
	// and AckedUnverified those whose sync got no complete answer.
	AckedUndelivered, AckedMissing, AckedUnverified int
}

// MaxHeld returns the highest rate whose step held, and false when none did.
func (r *RateReport) MaxHeld() (StepResult, bool) {
	var best StepResult
	found := false
	for _, s := range r.Steps {
		if s.Held && (!found || s.Rate > best.Rate) {
			best, found = s, true
		}
	}
	return best, found
}

// FirstFailure returns the first step that did not hold.
func (r *RateReport) FirstFailure() (StepResult, bool) {
	for _, s := range r.Steps {
		if !s.Held {
			return s, true
		}
	}
	return StepResult{}, false
}

// Text renders a step as one line for the progress log.
func (s StepResult) Text() string {
	verdict := "HELD"
	if !s.Held {
		verdict = "NOT HELD"
	}
	return fmt.Sprintf("%6.0f msg/s x %v: sent %d (%.0f/s, max lag %s), acked %d, received %d, lost %d (acked %d), dup %d, reordered %d, seq violations %d, errors %s\n"+
		"        e2e %s\n        ack %s\n        %s",
		s.Rate, s.Duration, s.Sent, s.Achieved, Ms(s.MaxLag), s.Acked, s.Received, s.Lost, s.LostAcked,
		s.Duplicates, s.Reordered, s.SeqViolations, FormatCounts(s.Errors), s.E2E, s.Ack, verdict)
}

// Limits of the set-up phases, so that a node that does not deliver ends
// the run with an error rather than a hang.
const (
	setupTimeout   = 2 * time.Minute
	warmUpTimeout  = 30 * time.Second
	warmUpInterval = time.Second
	setupWorkers   = 16
	sessionBuffer  = 4096
)

// RunRate runs the steps of cfg on fresh users and sessions, and closes them
// at the end. It returns the steps measured so far with ctx's error when ctx
// ends first.
func RunRate(ctx context.Context, cfg RateConfig) (*RateReport, error) {
	if cfg.Pairs <= 0 || len(cfg.Steps) == 0 || cfg.Drain <= 0 || cfg.P99Limit <= 0 {
		return nil, errors.New("load: pairs, steps, drain and p99 limit are required")
	}
	for _, s := range cfg.Steps {
		if s.Rate <= 0 || s.Duration <= 0 {
			return nil, fmt.Errorf("load: step %v has no rate or duration", s)
		}
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	urls := cfg.NodeURLs
	if len(urls) == 0 {
		urls = []string{cfg.SendURL, cfg.RecvURL}
	}
	nodes := make([]*node, 0, len(urls))
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	for _, u := range urls {
		n, err := newNode(u, setupWorkers)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}

	all := cfg.Steps
	if cfg.Prelude.Rate > 0 && cfg.Prelude.Duration > 0 {
		all = append([]Step{cfg.Prelude}, cfg.Steps...)
	}
	r := &rateRun{cfg: cfg, nodes: nodes, steps: make([]*stepState, len(all))}
	for i := range r.steps {
		r.steps[i] = &stepState{errors: newTally()}
	}
	report := &RateReport{Pairs: cfg.Pairs}
	start := time.Now()
	defer r.closeAll()
	if err := r.setUp(ctx); err != nil {
		return report, err
	}
	report.Setup = time.Since(start)
	where := fmt.Sprintf("senders on %s, recipients on %s", cfg.SendURL, cfg.RecvURL)
	if len(cfg.NodeURLs) > 0 {
		where = fmt.Sprintf("spread over %d nodes, each recipient on the node after its sender's", len(cfg.NodeURLs))
	}
	fmt.Fprintf(cfg.Log, "  %d pairs connected in %v (%s)\n", cfg.Pairs, report.Setup.Round(time.Millisecond), where)

	start = time.Now()
	if err := r.warmUp(ctx); err != nil {
		return report, err
	}
	report.WarmUp = time.Since(start)
	fmt.Fprintf(cfg.Log, "  warm-up: every pair delivered a first message within %v\n", report.WarmUp.Round(time.Millisecond))

	for i, st := range all {
		if i == len(all)-len(cfg.Steps) && cfg.MeasureStart != nil {
			cfg.MeasureStart()
		}
		res := r.runStep(ctx, i, st)
		if ctx.Err() != nil {
			return report, ctx.Err()
		}
		if len(all) > len(cfg.Steps) && i == 0 {
			fmt.Fprintf(cfg.Log, "  prelude, not counted: %s\n", res.Text())
			continue
		}
		report.Steps = append(report.Steps, res)
		fmt.Fprintf(cfg.Log, "  %s\n", res.Text())
		if cfg.StopAtFailure && !res.Held {
			break
		}
	}
	report.AckedUndelivered, report.AckedMissing, report.AckedUnverified = r.verifyAcked(ctx)
	report.Late = int(r.late.Load())
	if report.AckedUndelivered > 0 {
		fmt.Fprintf(cfg.Log, "  %d acked messages never arrived live; of them %d are missing from their conversation's sync, %d unverified (sync unanswered)\n",
			report.AckedUndelivered, report.AckedMissing, report.AckedUnverified)
	}
	return report, ctx.Err()
}

// placement returns the indexes, in the run's nodes, of the nodes pair i's
// sender and recipient connect to: SendURL's and RecvURL's, or with
// NodeURLs consecutive nodes in a ring.
func (c RateConfig) placement(i int) (sender, recipient int) {
	if n := len(c.NodeURLs); n > 0 {
		return i % n, (i + 1) % n
	}
	return 0, 1
}

type rateRun struct {
	cfg   RateConfig
	pairs []*pair
	// nodes are the nodes the pairs' sessions are placed on (placement).
	nodes []*node
	steps []*stepState
	// cur is the step that frames not tied to a message are counted in.
	cur  atomic.Int32
	late atomic.Int64
}

// stepState gathers a step's figures while it runs.
type stepState struct {
	sent      atomic.Int64
	received  atomic.Int64
	dups      atomic.Int64
	reordered atomic.Int64
	seqViol   atomic.Int64
	maxLag    atomic.Int64
	lastWrite atomic.Int64 // unix nanos
	// closed is set once the step's drain is over: arrivals after it are late.
	closed atomic.Bool
	errors *tally

	mu  sync.Mutex
	e2e []time.Duration
	ack []time.Duration
}

// pair is one sender and one recipient, each a user with one session.
// Messages are numbered per pair from 1; index 0 of the slices is unused.
type pair struct {
	idx       int
	sender    string
	recipient string
	snd, rcv  *session
	// senderGone stops the pair's sends once the sender's session ended.
	senderGone atomic.Bool

	mu     sync.Mutex
	sentAt []int64 // scheduled send time (unix nanos); 0: not written
	stepOf []int
	recv   []uint8 // times received
	acked  []bool
	// lastRecv is the highest message number received, for reordering;
	// lastConvSeq the highest conversation seq, for the gapless check.
	lastRecv    uint64
	lastConvSeq uint64
	warm        bool
	// conv is the pair's conversation, from the first ack; synced marks
	// the message numbers a final sync returned, and syncDone its end.
	conv     string
	synced   map[uint64]bool
	syncDone bool
	// rcvGone: the server closed the recipient's session (a slow client
	// is disconnected), so the final sync needs a new one.
	rcvGone bool
}

func runID() string { return strings.ToLower(rand.Text()[:6]) }

// setUp gets tokens for every user and opens their sessions on the nodes
// placement picks.
func (r *rateRun) setUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	id := runID()
	r.pairs = make([]*pair, r.cfg.Pairs)
	for i := range r.pairs {
		r.pairs[i] = &pair{idx: i, sender: fmt.Sprintf("ld%ss%d", id, i), recipient: fmt.Sprintf("ld%sr%d", id, i),
			sentAt: []int64{0}, stepOf: []int{-1}, recv: []uint8{0}, acked: []bool{false}}
	}
	var mu sync.Mutex
	_, err := forEach(ctx, 2*len(r.pairs), setupWorkers, func(ctx context.Context, i int) error {
		p := r.pairs[i/2]
		snd, rcv := r.cfg.placement(p.idx)
		n, user := r.nodes[snd], p.sender
		if i%2 == 1 {
			n, user = r.nodes[rcv], p.recipient
		}
		tok, err := n.token(ctx, user)
		if err != nil {
			return err
		}
		conn, err := n.dial(ctx, tok, sessionBuffer)
		if err != nil {
			return err
		}
		s := &session{conn: conn}
		mu.Lock()
		if i%2 == 0 {
			p.snd = s
		} else {
			p.rcv = s
		}
		mu.Unlock()
		return nil
	})
	// Sessions opened before a failure are closed by closeAll, so their
	// read loops must run either way.
	for _, p := range r.pairs {
		if p.snd != nil {
			go r.readSender(p)
		}
		if p.rcv != nil {
			go r.readRecipient(p, p.rcv)
		}
	}
	if err != nil {
		return fmt.Errorf("setting up %d pairs: %w", len(r.pairs), err)
	}
	return nil
}

func (r *rateRun) closeAll() {
	var wg sync.WaitGroup
	for _, p := range r.pairs {
		p.mu.Lock()
		rcv := p.rcv
		p.mu.Unlock()
		for _, s := range []*session{p.snd, rcv} {
			if s != nil {
				wg.Add(1)
				go func() { defer wg.Done(); s.close() }()
			}
		}
	}
	wg.Wait()
}

// warmUp has every pair deliver one message before any step: the first
// message of a conversation starts it (a different path from the steady
// state), and a node whose consumers are not yet consuming shows up here
// rather than as loss in the first step. A pair whose warm-up has not
// arrived after warmUpInterval sends another; it costs a conversation seq,
// which the gapless check accounts for by starting from the last warm-up.
func (r *rateRun) warmUp(ctx context.Context) error {
	deadline := time.Now().Add(warmUpTimeout)
	for attempt := 0; ; attempt++ {
		pending := 0
		for _, p := range r.pairs {
			p.mu.Lock()
			warm := p.warm
			p.mu.Unlock()
			if warm {
				continue
			}
			pending++
			frame := sendFrame(fmt.Sprintf("w%d", attempt), p.recipient, "warmup")
			if err := p.snd.write(frame); err != nil {
				return fmt.Errorf("warm-up: pair %d: %w", p.idx, err)
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: %d of %d pairs got no message within %v; errors %s",
				pending, len(r.pairs), warmUpTimeout, FormatCounts(r.steps[0].errors.snapshot()))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(warmUpInterval):
		}
	}
}

// runStep offers st's rate for its duration, waits for the step's messages
// for at most Drain, and evaluates it.
func (r *rateRun) runStep(ctx context.Context, si int, st Step) StepResult {
	r.cur.Store(int32(si))
	state := r.steps[si]
	// Every pair starts a little after the others, so that the sends of a
	// step are spread over time rather than coming in bursts of Pairs.
	t0 := time.Now().Add(10 * time.Millisecond)
	interval := time.Duration(float64(time.Second) * float64(len(r.pairs)) / st.Rate)
	var wg sync.WaitGroup
	for _, p := range r.pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset := interval * time.Duration(p.idx) / time.Duration(len(r.pairs))
			r.sendLoop(ctx, p, si, t0.Add(offset), t0.Add(st.Duration), interval)
		}()
	}
	wg.Wait()

	drainEnd := time.Now().Add(r.cfg.Drain)
	for state.received.Load() < state.sent.Load() && time.Now().Before(drainEnd) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	state.closed.Store(true)
	return r.evaluate(si, st, t0)
}

// sendLoop writes the pair's sends scheduled from first, every interval,
// until end. A send written late keeps its scheduled time: it is the one in
// the body, so the lag counts in the latency.
func (r *rateRun) sendLoop(ctx context.Context, p *pair, si int, first, end time.Time, interval time.Duration) {
	state := r.steps[si]
	pad := r.cfg.BodySize
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for due := first; due.Before(end); due = due.Add(interval) {
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if p.senderGone.Load() {
			return
		}
		p.mu.Lock()
		seq := uint64(len(p.sentAt))
		p.sentAt = append(p.sentAt, due.UnixNano())
		p.stepOf = append(p.stepOf, si)
		p.recv = append(p.recv, 0)
		p.acked = append(p.acked, false)
		p.mu.Unlock()

		body := messageBody(si, seq, due.UnixNano(), pad)
		now := time.Now()
		if err := p.snd.write(sendFrame("m"+strconv.FormatUint(seq, 10), p.recipient, body)); err != nil {
			p.mu.Lock()
			p.sentAt[seq] = 0
			p.mu.Unlock()
			state.errors.add("write failed", err.Error())
			p.senderGone.Store(true)
			return
		}
		state.sent.Add(1)
		storeMax(&state.maxLag, int64(now.Sub(due)))
		storeMax(&state.lastWrite, time.Now().UnixNano())
	}
}

func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// sendFrame builds a send frame by hand: ids, users and bodies are made of
// characters JSON needs no escape for, and the encoder's reflection would
// cost the server CPU on a two-core machine.
func sendFrame(id, to, body string) []byte {
	b := make([]byte, 0, 48+len(id)+len(to)+len(body))
	b = append(b, `{"type":"send","id":"`...)
	b = append(b, id...)
	b = append(b, `","to":"`...)
	b = append(b, to...)
	b = append(b, `","body":"`...)
	b = append(b, body...)
	return append(b, `"}`...)
}

// messageBody is "ld STEP SEQ SENTNANOS" padded with dots to size.
func messageBody(step int, seq uint64, sentAt int64, size int) string {
	b := make([]byte, 0, max(size, 48))
	b = append(b, "ld "...)
	b = strconv.AppendInt(b, int64(step), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sentAt, 10)
	b = append(b, ' ')
	for len(b) < size {
		b = append(b, '.')
	}
	return string(b)
}

func parseBody(body string) (step int, seq uint64, sentAt int64, ok bool) {
	f := strings.Fields(body)
	if len(f) < 4 || f[0] != "ld" {
		return 0, 0, 0, false
	}
	s, err1 := strconv.Atoi(f[1])
	n, err2 := strconv.ParseUint(f[2], 10, 64)
	t, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return s, n, t, true
}

func (r *rateRun) stepFor(si int) *stepState {
	if si < 0 || si >= len(r.steps) {
		return r.steps[r.cur.Load()]
	}
	return r.steps[si]
}

// readSender takes the sender's acks and errors.
func (r *rateRun) readSender(p *pair) {
	for {
		_, data, err := p.snd.conn.ReadMessage()
		if err != nil {
			p.senderGone.Store(true)
			if !p.snd.closing.Load() {
				key, detail := closeReason(err)
				r.steps[r.cur.Load()].errors.add("sender "+key, fmt.Sprintf("%s: %s", p.sender, detail))
			}
			return
		}
		switch frameType(data) {
		case "ack":
			var f struct {
				ID           string `json:"id"`
				Conversation string `json:"conversation"`
			}
			if json.Unmarshal(data, &f) != nil {
				continue
			}
			p.mu.Lock()
			if p.conv == "" {
				p.conv = f.Conversation
			}
			p.mu.Unlock()
			if !strings.HasPrefix(f.ID, "m") {
				continue // a warm-up's ack
			}
			seq, err := strconv.ParseUint(f.ID[1:], 10, 64)
			if err != nil {
				continue
			}
			now := time.Now().UnixNano()
			p.mu.Lock()
			if seq >= uint64(len(p.sentAt)) || p.sentAt[seq] == 0 || p.acked[seq] {
				p.mu.Unlock()
				continue
			}
			p.acked[seq] = true
			lat, si := time.Duration(now-p.sentAt[seq]), p.stepOf[seq]
			p.mu.Unlock()
			st := r.steps[si]
			st.mu.Lock()
			st.ack = append(st.ack, lat)
			st.mu.Unlock()
		case "error":
			var f struct {
				ID      string `json:"id"`
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal(data, &f)
			si := -1
			if seq, err := strconv.ParseUint(strings.TrimPrefix(f.ID, "m"), 10, 64); err == nil && strings.HasPrefix(f.ID, "m") {
				p.mu.Lock()
				if seq < uint64(len(p.stepOf)) {
					si = p.stepOf[seq]
				}
				p.mu.Unlock()
			}
			r.stepFor(si).errors.add(f.Code, f.Message)
		}
	}
}

// readRecipient takes the recipient's message frames.
func (r *rateRun) readRecipient(p *pair, s *session) {
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			if !s.closing.Load() {
				key, detail := closeReason(err)
				r.steps[r.cur.Load()].errors.add("recipient "+key, fmt.Sprintf("%s: %s", p.recipient, detail))
				p.mu.Lock()
				p.rcvGone = p.rcv == s
				p.mu.Unlock()
			}
			return
		}
		switch frameType(data) {
		case "message":
			r.onMessage(p, data)
		case "messages":
			r.onSyncPage(p, s, data)
		case "error":
			var f struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal(data, &f)
			r.steps[r.cur.Load()].errors.add("recipient "+f.Code, f.Message)
		}
	}
}

func (r *rateRun) onMessage(p *pair, data []byte) {
	now := time.Now().UnixNano()
	var f struct {
		Message struct {
			Seq  uint64 `json:"seq"`
			Body string `json:"body"`
		} `json:"message"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		r.steps[r.cur.Load()].errors.add("undecodable message frame", err.Error())
		return
	}
	convSeq := f.Message.Seq
	if f.Message.Body == "warmup" {
		p.mu.Lock()
		p.warm = true
		p.lastConvSeq = max(p.lastConvSeq, convSeq)
		p.mu.Unlock()
		return
	}
	si, seq, sentAt, ok := parseBody(f.Message.Body)
	if !ok || si < 0 || si >= len(r.steps) {
		r.steps[r.cur.Load()].errors.add("foreign message", f.Message.Body)
		return
	}
	st := r.steps[si]
	p.mu.Lock()
	if convSeq != p.lastConvSeq+1 {
		st.seqViol.Add(1)
	}
	p.lastConvSeq = max(p.lastConvSeq, convSeq)
	if seq >= uint64(len(p.recv)) {
		p.mu.Unlock()
		st.errors.add("message never sent", f.Message.Body)
		return
	}
	p.recv[seq]++
	first := p.recv[seq] == 1
	if seq < p.lastRecv {
		st.reordered.Add(1)
	}
	p.lastRecv = max(p.lastRecv, seq)
	p.mu.Unlock()
	switch {
	case !first:
		st.dups.Add(1)
	case st.closed.Load():
		r.late.Add(1)
	default:
		st.mu.Lock()
		st.e2e = append(st.e2e, time.Duration(now-sentAt))
		st.mu.Unlock()
		st.received.Add(1)
	}
}

// verifyAcked waits up to Drain for the acked messages that have not
// arrived, then asks a sync of each conversation concerned for them:
// broadcast delivery is only a signal, and a message it missed is still
// due in the store. It returns how many acked messages never arrived live
// and how many of those the sync did not return, or could not tell.
func (r *rateRun) verifyAcked(ctx context.Context) (undelivered, missing, unverified int) {
	pending := func() (n int, pairs []*pair) {
		for _, p := range r.pairs {
			p.mu.Lock()
			k := 0
			for seq := range p.sentAt {
				if p.acked[seq] && p.recv[seq] == 0 {
					k++
				}
			}
			p.mu.Unlock()
			if k > 0 {
				n += k
				pairs = append(pairs, p)
			}
		}
		return n, pairs
	}
	deadline := time.Now().Add(r.cfg.Drain)
	n, pairs := pending()
	for n > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		n, pairs = pending()
	}
	if n == 0 {
		return 0, 0, 0
	}
	r.reopenRecipients(ctx, pairs)
	for _, p := range pairs {
		p.mu.Lock()
		p.synced, p.syncDone = map[uint64]bool{}, false
		conv, rcv := p.conv, p.rcv
		p.mu.Unlock()
		if err := rcv.write(syncFrame(conv, 0)); err != nil {
			r.steps[r.cur.Load()].errors.add("sync write failed", err.Error())
		}
	}
	deadline = time.Now().Add(syncTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for _, p := range pairs {
			p.mu.Lock()
			done = done && p.syncDone
			p.mu.Unlock()
		}
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range pairs {
		p.mu.Lock()
		for seq := range p.sentAt {
			if p.acked[seq] && p.recv[seq] == 0 {
				undelivered++
				switch {
				case !p.syncDone:
					unverified++
				case !p.synced[uint64(seq)]:
					missing++
				}
			}
		}
		p.mu.Unlock()
	}
	return undelivered, missing, unverified
}

// reopenRecipients gives a new session to each recipient among pairs whose
// session the server closed: what was acked is still due in the store, and
// a sync on the new session tells. A recipient that cannot reconnect stays
// unverified.
func (r *rateRun) reopenRecipients(ctx context.Context, pairs []*pair) {
	var gone []*pair
	for _, p := range pairs {
		p.mu.Lock()
		if p.rcvGone {
			gone = append(gone, p)
		}
		p.mu.Unlock()
	}
	if len(gone) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	failed, err := forEach(ctx, len(gone), setupWorkers, func(ctx context.Context, i int) error {
		p := gone[i]
		_, rcv := r.cfg.placement(p.idx)
		tok, err := r.nodes[rcv].token(ctx, p.recipient)
		if err != nil {
			return err
		}
		conn, err := r.nodes[rcv].dial(ctx, tok, sessionBuffer)
		if err != nil {
			return err
		}
		s := &session{conn: conn}
		p.mu.Lock()
		p.rcv, p.rcvGone = s, false
		p.mu.Unlock()
		go r.readRecipient(p, s)
		return nil
	})
	fmt.Fprintf(r.cfg.Log, "  reopened %d of %d recipient sessions the server had closed, for the final sync", len(gone)-failed, len(gone))
	if err != nil {
		fmt.Fprintf(r.cfg.Log, " (%v)", err)
	}
	fmt.Fprintln(r.cfg.Log)
}

// syncTimeout bounds the final sync of every conversation with acked
// messages that did not arrive.
const syncTimeout = 20 * time.Second

func syncFrame(conv string, after uint64) []byte {
	return []byte(`{"type":"sync","conversation":"` + conv + `","after":` + strconv.FormatUint(after, 10) + `,"limit":500}`)
}

// onSyncPage records the messages a final sync returned and asks for the
// next page while there is one.
func (r *rateRun) onSyncPage(p *pair, s *session, data []byte) {
	var f struct {
		Messages []struct {
			Seq  uint64 `json:"seq"`
			Body string `json:"body"`
		} `json:"messages"`
		More bool `json:"more"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		r.steps[r.cur.Load()].errors.add("undecodable messages frame", err.Error())
		return
	}
	var last uint64
	p.mu.Lock()
	for _, m := range f.Messages {
		last = max(last, m.Seq)
		if _, seq, _, ok := parseBody(m.Body); ok && p.synced != nil {
			p.synced[seq] = true
		}
	}
	conv := p.conv
	p.syncDone = !f.More || len(f.Messages) == 0
	done := p.syncDone
	p.mu.Unlock()
	if !done {
		if err := s.write(syncFrame(conv, last)); err != nil {
			r.steps[r.cur.Load()].errors.add("sync write failed", err.Error())
		}
	}
}

// evaluate counts the step's losses from the pairs' records and decides
// whether it held.
func (r *rateRun) evaluate(si int, st Step, t0 time.Time) StepResult {
	state := r.steps[si]
	res := StepResult{Step: st, Sent: int(state.sent.Load()), Received: int(state.received.Load()),
		Duplicates: int(state.dups.Load()), Reordered: int(state.reordered.Load()),
		SeqViolations: int(state.seqViol.Load()),
		MaxLag:        time.Duration(state.maxLag.Load()), Errors: state.errors.snapshot(), ErrorDetails: state.errors.details()}
	for _, p := range r.pairs {
		p.mu.Lock()
		for seq := range p.sentAt {
			if p.stepOf[seq] != si || p.sentAt[seq] == 0 {
				continue
			}
			if p.acked[seq] {
				res.Acked++
			}
			if p.recv[seq] == 0 {
				res.Lost++
				if p.acked[seq] {
					res.LostAcked++
				}
			}
		}
		p.mu.Unlock()
	}
	if last := state.lastWrite.Load(); last > 0 && res.Sent > 0 {
		if span := time.Duration(last - t0.UnixNano()); span > 0 {
			res.Achieved = float64(res.Sent) / span.Seconds()
		}
	}
	state.mu.Lock()
	res.E2E, res.Ack = Summarize(state.e2e), Summarize(state.ack)
	state.mu.Unlock()
	res.Held = res.Sent > 0 && res.Lost == 0 && res.Duplicates == 0 && res.Reordered == 0 &&
		res.SeqViolations == 0 && len(res.Errors) == 0 && res.E2E.P99 < r.cfg.P99Limit
	return res
}
