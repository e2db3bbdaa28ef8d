package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// GroupConfig is the group mode of the load benchmark (issue 18): one
// sender posts to a group whose members are spread over the nodes, and
// each message's latency is the time until its last member has it.
type GroupConfig struct {
	// NodeURLs are the nodes' base URLs; member i connects to node i mod N,
	// the sender to the first.
	NodeURLs []string
	// Members counts the group's members, the sender among them.
	Members  int
	Rate     float64
	Duration time.Duration
	// Prelude is unmeasured load at the same rate before Duration.
	Prelude time.Duration
	// MeasureStart, when set, is called as the measured part starts.
	MeasureStart func()
	Drain        time.Duration
	BodySize     int
}

// GroupResult is a group run's measured part.
type GroupResult struct {
	Members int
	Sent    int
	// ToLast is each measured message's latency to its last member; ToFirst
	// to its first.
	ToLast, ToFirst Percentiles
	// Frames counts the message frames the other members received for the
	// measured messages; Incomplete the measured messages some member never
	// received by the end of the drain.
	Frames     int
	Incomplete int
}

// groupRun tracks when each message was sent and reached each member.
type groupRun struct {
	cfg GroupConfig

	mu      sync.Mutex
	sentAt  map[uint64]time.Time // seq -> when its send frame was written
	firstAt map[uint64]time.Time
	lastAt  map[uint64]time.Time
	got     map[uint64]int // seq -> members that received it
}

// RunGroup creates a group of cfg.Members users, opens one session per
// member and sends from its owner at cfg.Rate.
func RunGroup(ctx context.Context, cfg GroupConfig) (*GroupResult, error) {
	if cfg.Members < 2 || len(cfg.NodeURLs) == 0 || cfg.Rate <= 0 {
		return nil, errors.New("a group run needs 2 or more members, a node and a rate")
	}
	nodes := make([]*node, 0, len(cfg.NodeURLs))
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	for _, raw := range cfg.NodeURLs {
		n, err := newNode(raw, 32)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	id := runID()
	users := make([]string, cfg.Members)
	tokens := make([]string, cfg.Members)
	for i := range users {
		users[i] = fmt.Sprintf("grp%s-%d", id, i)
	}
	if _, err := forEach(ctx, len(users), 16, func(ctx context.Context, i int) error {
		var err error
		tokens[i], err = nodes[i%len(nodes)].token(ctx, users[i])
		return err
	}); err != nil {
		return nil, err
	}
	conv, err := createGroup(ctx, nodes[0], tokens[0], users)
	if err != nil {
		return nil, err
	}
	r := &groupRun{cfg: cfg, sentAt: map[uint64]time.Time{}, firstAt: map[uint64]time.Time{},
		lastAt: map[uint64]time.Time{}, got: map[uint64]int{}}
	sessions := make([]*session, len(users))
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.close()
			}
		}
	}()
	if _, err := forEach(ctx, len(users), 16, func(ctx context.Context, i int) error {
		conn, err := nodes[i%len(nodes)].dial(ctx, tokens[i], 4096)
		if err != nil {
			return err
		}
		sessions[i] = &session{conn: conn}
		return nil
	}); err != nil {
		return nil, err
	}
	acks := make(chan uint64, 1024)
	for i, s := range sessions {
		go r.read(s, i == 0, acks)
	}
	return r.send(ctx, sessions[0], conv, acks)
}

// createGroup makes the group over REST, as its owner, users[0].
func createGroup(ctx context.Context, n *node, token string, users []string) (string, error) {
	var g struct {
		Conversation string `json:"conversation"`
	}
	if err := n.post(ctx, "/api/groups", token, map[string]any{"title": "load", "members": users[1:]}, &g); err != nil {
		return "", err
	}
	if g.Conversation == "" {
		return "", errors.New("POST /api/groups: no conversation in the answer")
	}
	return g.Conversation, nil
}

// send offers the rate over the prelude and the measured window, one send
// at a time in the owner's session, then waits out the drain.
func (r *groupRun) send(ctx context.Context, owner *session, conv string, acks <-chan uint64) (*GroupResult, error) {
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	body := string(bytes.Repeat([]byte("x"), max(r.cfg.BodySize, 1)))
	start := time.Now()
	measureFrom, measureTo := start.Add(r.cfg.Prelude), start.Add(r.cfg.Prelude+r.cfg.Duration)
	var measuredSeqs []uint64
	started := false
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(measureTo) {
			break
		}
		if !started && !due.Before(measureFrom) {
			started = true
			if r.cfg.MeasureStart != nil {
				r.cfg.MeasureStart()
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Until(due)):
		}
		frame, _ := json.Marshal(map[string]string{"type": "send", "id": "g" + strconv.Itoa(i), "conversation": conv, "body": body})
		sentAt := time.Now()
		if err := owner.write(frame); err != nil {
			return nil, fmt.Errorf("send %d: %w", i, err)
		}
		// One send in flight: the ack names the seq this send took.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case seq := <-acks:
			r.mu.Lock()
			r.sentAt[seq] = sentAt
			r.mu.Unlock()
			if !sentAt.Before(measureFrom) {
				measuredSeqs = append(measuredSeqs, seq)
			}
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("send %d: no ack in 10 s", i)
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(r.cfg.Drain):
	}
	return r.result(measuredSeqs), nil
}

// read records the message frames a member receives; the owner's session
// passes its acks to the sender instead.
func (r *groupRun) read(s *session, owner bool, acks chan<- uint64) {
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		switch frameType(data) {
		case "ack":
			if owner {
				var a struct {
					Seq uint64 `json:"seq"`
				}
				if json.Unmarshal(data, &a) == nil {
					acks <- a.Seq
				}
			}
		case "message":
			var m struct {
				Message struct {
					Seq uint64 `json:"seq"`
				} `json:"message"`
			}
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			r.received(m.Message.Seq, now)
		}
	}
}

// received notes that one more member has seq. The frame may overtake the
// ack that tells its send time, so times are kept and judged at the end.
func (r *groupRun) received(seq uint64, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[seq]++
	if f, ok := r.firstAt[seq]; !ok || at.Before(f) {
		r.firstAt[seq] = at
	}
	if at.After(r.lastAt[seq]) {
		r.lastAt[seq] = at
	}
}

func (r *groupRun) result(seqs []uint64) *GroupResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &GroupResult{Members: r.cfg.Members, Sent: len(seqs)}
	var toLast, toFirst []time.Duration
	for _, seq := range seqs {
		res.Frames += r.got[seq]
		if r.got[seq] < r.cfg.Members-1 {
			res.Incomplete++
			continue
		}
		sent := r.sentAt[seq]
		toLast = append(toLast, r.lastAt[seq].Sub(sent))
		toFirst = append(toFirst, r.firstAt[seq].Sub(sent))
	}
	res.ToLast, res.ToFirst = Summarize(toLast), Summarize(toFirst)
	return res
}
