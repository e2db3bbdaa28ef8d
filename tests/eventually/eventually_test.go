package eventually

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestPoll(t *testing.T) {
	died := errors.New("process exited")
	tests := []struct {
		name string
		// results are what successive checks report; the last repeats.
		results  []error
		doneAt   int
		want     error
		maxTaken time.Duration
	}{
		{"holds at once", nil, 0, nil, 0},
		{"holds on the fifth poll", nil, 4, nil, 15 * time.Millisecond},
		{"never holds", nil, -1, ErrTimeout, time.Second + maxInterval},
		{"the check fails", []error{nil, nil, died}, -1, died, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				start := time.Now()
				err := Poll(time.Second, func() (bool, error) {
					i := calls
					calls++
					if len(tt.results) > 0 {
						if err := tt.results[min(i, len(tt.results)-1)]; err != nil {
							return false, err
						}
					}
					return tt.doneAt >= 0 && i >= tt.doneAt, nil
				})
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Fatalf("Poll = %v, want %v", err, tt.want)
				}
				if took := time.Since(start); took > tt.maxTaken {
					t.Fatalf("Poll took %v, want at most %v", took, tt.maxTaken)
				}
			})
		})
	}
}
