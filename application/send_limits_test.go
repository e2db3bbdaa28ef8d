package application

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/evchat/chatd/domain/user"
)

// TestUserLimitsStayBoundedAndDecideAlike runs streams of sends through
// userLimits and through buckets that are never dropped: the decisions must
// be the same, while the map stays bounded however many senders there are.
func TestUserLimitsStayBoundedAndDecideAlike(t *testing.T) {
	type send struct {
		user user.ID
		at   time.Duration
	}
	// crowd is n senders once each, every gap apart from start.
	crowd := func(n int, start, gap time.Duration) []send {
		out := make([]send, n)
		for i := range out {
			out[i] = send{user.ID(fmt.Sprintf("u%d", i)), start + time.Duration(i)*gap}
		}
		return out
	}
	repeat := func(u user.ID, n int, at time.Duration) []send {
		out := make([]send, n)
		for i := range out {
			out[i] = send{u, at}
		}
		return out
	}
	concat := func(parts ...[]send) []send {
		var out []send
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	// throttledAmongMany has a sender hit its limit, then try again after
	// every hundred others.
	throttledAmongMany := func() []send {
		out := repeat("hog", 3, 0)
		for i, s := range crowd(1000, time.Millisecond, time.Millisecond) {
			out = append(out, s)
			if i%100 == 99 {
				out = append(out, send{"hog", s.at})
			}
		}
		return out
	}
	// randomTraffic is 5000 senders sending 50000 times over 10 s, some of
	// them often enough to be throttled.
	randomTraffic := func() []send {
		rnd := rand.New(rand.NewPCG(1, 2))
		out := make([]send, 50_000)
		for i := range out {
			u := rnd.IntN(5000)
			if rnd.IntN(4) == 0 {
				u = rnd.IntN(20)
			}
			out[i] = send{user.ID(fmt.Sprintf("u%d", u)), time.Duration(i) * 200 * time.Microsecond}
		}
		return out
	}
	tests := []struct {
		name       string
		perSecond  float64
		burst      int
		maxSenders int
		sends      []send
		maxLen     int // the most buckets held at once
		minRefused int // so that a scenario tests throttling, not only passing
	}{
		{"ten thousand senders, one send each", 1, 2, maxLimitedSenders,
			crowd(10_000, 0, time.Millisecond), 2 * minSweep, 0},
		{"a throttled sender stays throttled at the cap", 0.001, 2, 100,
			throttledAmongMany(), 100, 11},
		{"a sender back after a full refill starts afresh", 10, 3, maxLimitedSenders,
			concat(repeat("a", 4, 0), crowd(3000, time.Millisecond, time.Millisecond), repeat("a", 4, 4*time.Second)),
			2 * minSweep, 2},
		{"random traffic", 20, 3, maxLimitedSenders, randomTraffic(), 4 * minSweep, 1000},
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limits := newUserLimits(tt.perSecond, tt.burst, tt.maxSenders)
			kept := map[user.ID]*rate.Limiter{}
			maxLen, refused := 0, 0
			for i, s := range tt.sends {
				ref, ok := kept[s.user]
				if !ok {
					ref = rate.NewLimiter(rate.Limit(tt.perSecond), tt.burst)
					kept[s.user] = ref
				}
				now := start.Add(s.at)
				got, want := limits.allow(s.user, now), ref.AllowN(now, 1)
				if got != want {
					t.Fatalf("send %d by %s at %v: allowed %v, a bucket never dropped says %v", i, s.user, s.at, got, want)
				}
				if !got {
					refused++
				}
				maxLen = max(maxLen, len(limits.users))
			}
			if maxLen > tt.maxLen {
				t.Errorf("held up to %d buckets, want at most %d", maxLen, tt.maxLen)
			}
			if refused < tt.minRefused {
				t.Errorf("refused %d sends, want at least %d", refused, tt.minRefused)
			}
		})
	}
}
