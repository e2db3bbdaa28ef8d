package main

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestMsPerMessage(t *testing.T) {
	tests := []struct {
		name      string
		cores     float64
		delivered int
		over      time.Duration
		want      float64
		wantOK    bool
	}{
		{name: "issue 16's start: 189% busy at 500 msg/s", cores: 1.89, delivered: 10000, over: 20 * time.Second, want: 3.78, wantOK: true},
		{name: "one core busy for 1,000 messages a second", cores: 1, delivered: 5000, over: 5 * time.Second, want: 1, wantOK: true},
		{name: "a run that lost half its messages costs twice as much per delivered one", cores: 1, delivered: 2500, over: 5 * time.Second, want: 2, wantOK: true},
		{name: "an idle process costs nothing", cores: 0, delivered: 4000, over: 20 * time.Second, want: 0, wantOK: true},
		{name: "nothing delivered has no per-message figure", cores: 0.5, delivered: 0, over: 20 * time.Second, wantOK: false},
		{name: "no window has no per-message figure", cores: 0.5, delivered: 100, over: 0, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := msPerMessage(tt.cores, tt.delivered, tt.over)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("msPerMessage(%v, %d, %v) = %v, %v; want %v, %v", tt.cores, tt.delivered, tt.over, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestCaptureTotal(t *testing.T) {
	stack := []componentCPU{{name: "PostgreSQL", processes: 12, cores: 0.36}, {name: "FerretDB", cores: 0.38},
		{name: "RocketMQ broker", cores: 0.53}, {name: "chatd node 1 (senders)", cores: 0.31}, {name: "chatd node 2 (recipients)", cores: 0.22}}
	tests := []struct {
		name    string
		capture cpuCapture
		want    float64
		wantOK  bool
	}{
		{name: "the sum of every process", capture: cpuCapture{cpu: stack, delivered: 10000, over: 20 * time.Second}, want: 3.6, wantOK: true},
		{name: "a process not read leaves no total",
			capture: cpuCapture{cpu: append([]componentCPU{{name: "FerretDB", err: errors.New("gone")}}, stack[1:]...), delivered: 10000, over: 20 * time.Second}},
		{name: "no process read leaves no total", capture: cpuCapture{delivered: 10000, over: 20 * time.Second}},
		{name: "nothing delivered leaves no total", capture: cpuCapture{cpu: stack, over: 20 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.capture.total()
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("total() = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestPrintCPUPerMessage(t *testing.T) {
	client := componentCPU{name: "load client (benchload)", cores: 0.1}
	captures := []cpuCapture{
		{run: "bare relay", cpu: []componentCPU{{name: "relay", cores: 0.05}, client}, delivered: 4000, over: 20 * time.Second},
		{run: "real stack", cpu: []componentCPU{{name: "PostgreSQL", processes: 9, cores: 0.4}, client}, delivered: 10000, over: 20 * time.Second},
	}
	var out strings.Builder
	printCPUPerMessage(&out, captures)
	tests := []struct {
		name, row string
	}{
		{name: "a process of one run only has a dash in the other", row: "| relay | 0.250 ms (5%) | — |"},
		{name: "a process of both runs has a cell in each", row: "| load client (benchload) | 0.500 ms (10%) | 0.200 ms (10%) |"},
		{name: "children are counted", row: "| PostgreSQL | — | 0.800 ms (40%, 9 processes) |"},
		{name: "the total sums each column", row: "| **total** | **0.750 ms** (15%; 4,000 delivered in 20s) | **1.000 ms** (50%; 10,000 delivered in 20s) |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(out.String(), tt.row+"\n") {
				t.Fatalf("no row %q in:\n%s", tt.row, out.String())
			}
		})
	}
}
