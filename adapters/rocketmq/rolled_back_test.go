package rocketmq

import (
	"testing"
	"time"
)

func TestRolledBackFlightsAreRememberedForAWhile(t *testing.T) {
	start := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		token string
		after time.Duration
		want  bool
	}{
		{"just rolled back", "a.1", 0, true},
		{"within the memory", "a.1", rolledBackMemory, true},
		{"past the memory", "a.1", rolledBackMemory + time.Second, false},
		{"another flight", "a.2", 0, false},
		{"another process's flight of the same number", "b.1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r rolledBackFlights
			r.remember("a.1", start)
			if got := r.holds(tt.token, start.Add(tt.after)); got != tt.want {
				t.Errorf("holds(%q) %v after = %v, want %v", tt.token, tt.after, got, tt.want)
			}
		})
	}
}
