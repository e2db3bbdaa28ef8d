package relay_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/load"
	"github.com/evchat/chatd/tests/load/relay"
)

// TestRelayCarriesTheLoadClientsRun drives the relay with the load client
// for a second, as `make bench-load` does for longer: every message must
// arrive once, in order, with a gapless seq, and be acked.
func TestRelayCarriesTheLoadClientsRun(t *testing.T) {
	srv := httptest.NewServer(relay.New(slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := load.RunRate(ctx, load.RateConfig{SendURL: srv.URL, RecvURL: srv.URL, Pairs: 10,
		Steps: []load.Step{{Rate: 200, Duration: time.Second}}, Drain: 5 * time.Second, P99Limit: time.Second, BodySize: 100})
	if err != nil {
		t.Fatalf("RunRate: %v", err)
	}
	if len(rep.Steps) != 1 {
		t.Fatalf("got %d steps, want 1", len(rep.Steps))
	}
	s := rep.Steps[0]
	if s.Sent < 150 || !s.Held || s.Received != s.Sent || s.Acked != s.Sent {
		t.Fatalf("relay did not carry the run: %s", s.Text())
	}
	if rep.AckedUndelivered != 0 {
		t.Fatalf("%d acked messages never delivered", rep.AckedUndelivered)
	}
}
