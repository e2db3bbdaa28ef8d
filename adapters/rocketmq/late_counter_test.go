package rocketmq

import (
	"testing"
	"time"
)

func TestLateBatchesAreToldAtMostOnceASecondWithTheirCount(t *testing.T) {
	var c lateCounter
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at    time.Duration
		count int
		tell  bool
	}{
		{0, 1, true},
		{100 * time.Millisecond, 0, false},
		{999 * time.Millisecond, 0, false},
		{time.Second, 3, true},
		{1500 * time.Millisecond, 0, false},
		{5 * time.Second, 2, true},
	}
	for _, s := range steps {
		count, tell := c.add(start.Add(s.at))
		if count != s.count || tell != s.tell {
			t.Fatalf("at %v: told %v with %d, want %v with %d", s.at, tell, count, s.tell, s.count)
		}
	}
}
