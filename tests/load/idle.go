package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// IdleConfig describes a RunIdle.
type IdleConfig struct {
	// URL is the node's base URL (http://127.0.0.1:PORT).
	URL string
	// Sessions is how many sessions to open, each of its own user. The
	// client holds one file per session and the server one more; see
	// RaiseFileLimit.
	Sessions int
	// Workers bounds the token requests and dials in flight.
	Workers int
	// Hold is how long the sessions stay idle before the second RSS reading.
	Hold time.Duration
	// ServerPID is the node's process, whose VmRSS is read; 0 skips it.
	ServerPID int
	// PingTimeout bounds the wait for every session's pong.
	PingTimeout time.Duration
	Log         io.Writer
}

// IdleResult is what RunIdle measured.
type IdleResult struct {
	Sessions int
	Opened   int
	// OpenErrors counts the sessions that could not be opened, by error.
	OpenErrors map[string]int
	OpenTime   time.Duration
	// RSSBefore and RSSAfter are the server's VmRSS in KiB before the
	// sessions opened and after the hold.
	RSSBefore, RSSAfter int64
	KiBPerSession       float64
	// Dropped counts sessions that ended during the hold, by reason.
	Dropped map[string]int
	Pongs   int // sessions that answered the ping after the hold
}

// idleBuffer is the client's own buffer size per idle session: the client
// holds as many sessions as the server and needs no more for pongs.
const idleBuffer = 512

// RunIdle opens cfg.Sessions idle sessions, measures the server's memory
// per session, pings every one, and closes them all.
func RunIdle(ctx context.Context, cfg IdleConfig) (*IdleResult, error) {
	if cfg.Sessions <= 0 || cfg.Workers <= 0 || cfg.PingTimeout <= 0 {
		return nil, errors.New("load: sessions, workers and ping timeout are required")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	n, err := newNode(cfg.URL, cfg.Workers)
	if err != nil {
		return nil, err
	}
	res := &IdleResult{Sessions: cfg.Sessions}
	id := runID()

	// Tokens first, so that the memory the token requests cost the server
	// is in the first reading, not in what the sessions are charged.
	tokens := make([]string, cfg.Sessions)
	start := time.Now()
	if _, err := forEach(ctx, cfg.Sessions, cfg.Workers, func(ctx context.Context, i int) error {
		tok, err := n.token(ctx, fmt.Sprintf("idle%s-%d", id, i))
		tokens[i] = tok
		return err
	}); err != nil {
		n.close()
		return res, fmt.Errorf("idle tokens: %w", err)
	}
	n.close()
	fmt.Fprintf(cfg.Log, "  %d tokens in %v\n", cfg.Sessions, time.Since(start).Round(time.Millisecond))
	if err := sleep(ctx, 2*time.Second); err != nil {
		return res, err
	}
	if cfg.ServerPID > 0 {
		if res.RSSBefore, err = RSSKiB(cfg.ServerPID); err != nil {
			return res, err
		}
	}

	sessions := make([]*idleSession, cfg.Sessions)
	openErrors, dropped := newTally(), newTally()
	var pongs atomic.Int64
	defer closeIdle(sessions, cfg.Workers)
	start = time.Now()
	// A session that fails to open is tallied in openErrors, by cause.
	_, _ = forEach(ctx, cfg.Sessions, cfg.Workers, func(ctx context.Context, i int) error {
		conn, err := n.dial(ctx, tokens[i], idleBuffer)
		if err != nil {
			openErrors.add(err.Error(), "")
			return err
		}
		s := &idleSession{session: session{conn: conn}}
		sessions[i] = s
		go s.read(&pongs, dropped)
		return nil
	})
	res.OpenTime = time.Since(start)
	res.OpenErrors = openErrors.snapshot()
	for _, s := range sessions {
		if s != nil {
			res.Opened++
		}
	}
	fmt.Fprintf(cfg.Log, "  %d of %d sessions open in %v (errors: %s); holding them %v\n",
		res.Opened, cfg.Sessions, res.OpenTime.Round(time.Millisecond), FormatCounts(res.OpenErrors), cfg.Hold)

	if err := sleep(ctx, cfg.Hold); err != nil {
		return res, err
	}
	if cfg.ServerPID > 0 {
		if res.RSSAfter, err = RSSKiB(cfg.ServerPID); err != nil {
			return res, err
		}
		if res.Opened > 0 {
			res.KiBPerSession = float64(res.RSSAfter-res.RSSBefore) / float64(res.Opened)
		}
	}
	res.Dropped = dropped.snapshot()
	for cause, detail := range dropped.details() {
		fmt.Fprintf(cfg.Log, "  dropped during the hold (%s), first: %s\n", cause, detail)
	}

	// Every open session pings; each pong is counted once.
	// A ping that cannot be written shows as a missing pong below.
	_, _ = forEach(ctx, len(sessions), cfg.Workers, func(ctx context.Context, i int) error {
		if s := sessions[i]; s != nil {
			return s.write(pingFrame)
		}
		return nil
	})
	deadline := time.Now().Add(cfg.PingTimeout)
	for int(pongs.Load()) < res.Opened && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	res.Pongs = int(pongs.Load())
	return res, ctx.Err()
}

type idleSession struct {
	session
	ponged atomic.Bool
}

// read discards every frame but the first pong, and counts the session as
// dropped when the server ends it.
func (s *idleSession) read(pongs *atomic.Int64, dropped *tally) {
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			if !s.closing.Load() {
				key, detail := closeReason(err)
				dropped.add(key, detail)
			}
			return
		}
		if frameType(data) == "pong" && s.ponged.CompareAndSwap(false, true) {
			pongs.Add(1)
		}
	}
}

func closeIdle(sessions []*idleSession, workers int) {
	var wg sync.WaitGroup
	ch := make(chan *idleSession)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range ch {
				s.close()
			}
		}()
	}
	for _, s := range sessions {
		if s != nil {
			ch <- s
		}
	}
	close(ch)
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
