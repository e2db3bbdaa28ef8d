package main

import (
	"strings"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/load"
)

func TestEmbeddedTailRow(t *testing.T) {
	step := func(p50, p99 time.Duration, lost int) *load.RateReport {
		return &load.RateReport{Steps: []load.StepResult{{Step: load.Step{Rate: 200, Duration: 20 * time.Second},
			Sent: 4000, Received: 4000 - lost, Lost: lost, E2E: load.Percentiles{N: 4000 - lost, P50: p50, P99: p99}}}}
	}
	relay := step(400*time.Microsecond, 2*time.Millisecond, 0)
	tests := []struct {
		name      string
		relay     *load.RateReport
		chatd     *load.RateReport
		wantMet   string
		wantRatio string
	}{
		{name: "within 1.5 × the relay's p99", relay: relay, chatd: step(time.Millisecond, 3*time.Millisecond, 0), wantMet: "yes", wantRatio: "2.5 × and 1.5 ×"},
		{name: "over 1.5 × the relay's p99", relay: relay, chatd: step(time.Millisecond, 3100*time.Microsecond, 0), wantMet: "**no**", wantRatio: "2.5 × and 1.6 ×"},
		{name: "a lost message fails the target", relay: relay, chatd: step(time.Millisecond, 2*time.Millisecond, 1), wantMet: "**no**", wantRatio: "2.5 × and 1.0 ×"},
		{name: "without the relay there is nothing to compare with", chatd: step(time.Millisecond, 2*time.Millisecond, 0), wantMet: "no relay to compare with"},
	}
	o := options{tail: tailLoad{rate: 200, pairs: 50, body: 100}, embeddedFixed: 1000}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &results{relayTail: tt.relay, embTail: tt.chatd}
			var measured, met string
			embeddedRows(func(target, _, m, v string) {
				if strings.HasPrefix(target, "Embedded node's tail") {
					measured, met = m, v
				}
			}, o, r)
			if met != tt.wantMet || !strings.Contains(measured, tt.wantRatio) {
				t.Fatalf("tail row: measured %q, met %q; want %q in it and met %q", measured, met, tt.wantRatio, tt.wantMet)
			}
		})
	}
}
