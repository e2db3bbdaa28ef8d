package rocketmq

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// scriptedRoutes answers the watch's queries from a script, one answer per
// query, repeating the last; drained closes two queries after the script's
// end, when every answer has been acted on.
type scriptedRoutes struct {
	mu      sync.Mutex
	answers []routeAnswer
	asked   int
	drained chan struct{}
}

type routeAnswer struct {
	brokers []string
	err     error
}

func (s *scriptedRoutes) query(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.answers[min(s.asked, len(s.answers)-1)]
	s.asked++
	if s.asked == len(s.answers)+2 {
		close(s.drained)
	}
	return a.brokers, a.err
}

func TestMasterWatchReportsChanges(t *testing.T) {
	ab, b := []string{"broker-a", "broker-b"}, []string{"broker-b"}
	nameServersDown := errors.New("connection refused")
	tests := []struct {
		name    string
		answers []routeAnswer
		// failing makes the listener fail the change it is told at these
		// calls (counted from 0).
		failing []int
		want    []MasterChange
	}{
		{"steady: the first report only",
			[]routeAnswer{{brokers: ab}, {brokers: ab}},
			nil,
			[]MasterChange{{Brokers: ab}}},
		{"a master lost, then regained",
			[]routeAnswer{{brokers: ab}, {brokers: b}, {brokers: b}, {brokers: ab}},
			nil,
			[]MasterChange{{Brokers: ab}, {Brokers: b, Lost: []string{"broker-a"}}, {Brokers: ab, Regained: []string{"broker-a"}}}},
		{"a failed query is no change",
			[]routeAnswer{{brokers: ab}, {err: nameServersDown}, {brokers: ab}},
			nil,
			[]MasterChange{{Brokers: ab}}},
		{"a change the listener failed is told again",
			[]routeAnswer{{brokers: ab}, {brokers: b}, {brokers: b}},
			[]int{1},
			[]MasterChange{{Brokers: ab}, {Brokers: b, Lost: []string{"broker-a"}}, {Brokers: b, Lost: []string{"broker-a"}}}},
		{"a listener that failed is told again when the brokers are back as they were",
			[]routeAnswer{{brokers: ab}, {brokers: b}, {brokers: ab}, {brokers: ab}},
			[]int{1},
			[]MasterChange{{Brokers: ab}, {Brokers: b, Lost: []string{"broker-a"}}, {Brokers: ab}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes := &scriptedRoutes{answers: tt.answers, drained: make(chan struct{})}
			w := newMasterWatch(time.Millisecond, routes.query, slog.New(slog.NewTextHandler(io.Discard, nil)))
			var got []MasterChange
			w.Notify(func(c MasterChange) error {
				calls := len(got)
				got = append(got, c)
				if slices.Contains(tt.failing, calls) {
					return errors.New("rebuild failed")
				}
				return nil
			})
			_ = w.Start(context.Background())
			<-routes.drained
			_ = w.Stop(context.Background())
			if len(got) != len(tt.want) {
				t.Fatalf("told %d changes %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if !slices.Equal(got[i].Brokers, tt.want[i].Brokers) || !slices.Equal(got[i].Lost, tt.want[i].Lost) || !slices.Equal(got[i].Regained, tt.want[i].Regained) {
					t.Fatalf("change %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestMasterWatchOffWithZeroInterval(t *testing.T) {
	w := newMasterWatch(0, func(context.Context) ([]string, error) {
		t.Error("queried with the watch off")
		return nil, nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_ = w.Start(context.Background())
	_ = w.Stop(context.Background())
}

func TestMasterChangeMovesReads(t *testing.T) {
	tests := []struct {
		name   string
		change MasterChange
		want   bool
	}{
		{"first report", MasterChange{Brokers: []string{"broker-a", "broker-b"}}, false},
		{"a master died, another serves", MasterChange{Brokers: []string{"broker-b"}, Lost: []string{"broker-a"}}, true},
		{"a master came back", MasterChange{Brokers: []string{"broker-a", "broker-b"}, Regained: []string{"broker-a"}}, true},
		{"no master left, or a name server that knows none yet", MasterChange{Lost: []string{"broker-a"}}, false},
		{"the only master back", MasterChange{Brokers: []string{"broker-a"}, Regained: []string{"broker-a"}}, true},
		{"told again, nothing changed", MasterChange{Brokers: []string{"broker-a"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.change.movesReads(); got != tt.want {
				t.Fatalf("movesReads = %v, want %v", got, tt.want)
			}
		})
	}
}
