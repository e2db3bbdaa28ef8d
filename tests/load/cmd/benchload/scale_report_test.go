package main

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/evchat/chatd/tests/load"
)

func TestScaleCells(t *testing.T) {
	step := load.StepResult{Step: load.Step{Rate: 200, Duration: 10 * time.Second}, Sent: 2000, Lost: 1,
		E2E: load.Percentiles{P50: 5 * time.Millisecond, P99: 25 * time.Millisecond}}
	tests := []struct {
		name   string
		result scaleResult
		want   []string
	}{
		{name: "routed over four nodes: each receives its users' commits",
			result: scaleResult{mode: "routed", nodes: 4, window: 10 * time.Second, hasReceived: true,
				received: []float64{1000, 1000, 1000, 1000}, nodeCPU: []float64{0.05, 0.05, 0.06, 0.04}, brokerCPU: 0.3, step: step, loadAverage: "1.50 1.20 1.00"},
			want: []string{"routed", "4", "200", "100 (100, 100, 100, 100)", "400", "0.50", "5.0 (5.0, 5.0, 6.0, 4.0)", "250 µs", "30", "5.00 ms", "25.0 ms", "1 of 2000", "1.50 1.20 1.00"}},
		{name: "a node built before the metric: n/a, CPU still shown",
			result: scaleResult{mode: "broadcast", nodes: 2, window: 10 * time.Second, hasReceived: false,
				received: []float64{0, 0}, nodeCPU: []float64{0.1, 0.1}, brokerCPU: 0.2, step: step, loadAverage: "9.00 8.00 7.00"},
			want: []string{"broadcast", "2", "200", "n/a", "n/a", "n/a", "10.0 (10.0, 10.0)", "500 µs", "20", "5.00 ms", "25.0 ms", "1 of 2000", "9.00 8.00 7.00"}},
		{name: "a run that failed names why and keeps the columns",
			result: scaleResult{mode: "routed", nodes: 8, err: errors.New("chatd scale-routed-n8-node3: exited")},
			want:   []string{"routed", "8", "not measured: chatd scale-routed-n8-node3: exited", "", "", "", "", "", "", "", "", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scaleCells(tt.result)
			if len(got) != len(scaleHeader) {
				t.Fatalf("%d cells for %d columns: %q", len(got), len(scaleHeader), got)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("cells\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseCounts(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "2,4,8", want: []int{2, 4, 8}},
		{in: " 2, 3 ,", want: []int{2, 3}},
		{in: "1", wantErr: true},
		{in: "2,x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseCounts(tt.in)
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("parseCounts(%q) = %v, %v; want %v (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
