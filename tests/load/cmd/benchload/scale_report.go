package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/evchat/chatd/tests/load"
)

// scaleHeader names scaleCells' columns.
var scaleHeader = []string{"mode", "N", "sent msg/s", "commits received per node /s (each node)",
	"all nodes' commits /s", "received per node per sent msg", "node CPU, % of a core (each node)",
	"node CPU per sent msg", "broker CPU, % of a core", "e2e p50", "e2e p99", "lost", "load average"}

// printScaleTable writes the machine and one row per mode and N.
func printScaleTable(w io.Writer, so scaleOptions, machine, loadBefore, loadAfter string, results []scaleResult) {
	fmt.Fprintf(w, "\nMachine: %s; load average %s before the run, %s after.\n", machine, loadBefore, loadAfter)
	fmt.Fprintf(w, "One broker, one store (FerretDB on PostgreSQL); %.0f msg/s of %d-character bodies, open loop, each sender and its recipient on different nodes; "+
		"figures over %v after %v of the same load unmeasured.\n\n", so.rate, so.body, so.window, so.prelude)
	fmt.Fprintln(w, "| "+strings.Join(scaleHeader, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(scaleHeader)))
	for _, r := range results {
		fmt.Fprintln(w, "| "+strings.Join(scaleCells(r), " | ")+" |")
	}
	fmt.Fprintf(w, "\nCommits received are each node's %s over the window (a message's commit and the receipts' commits of its delivered and read marks); "+
		"CPU is from /proc/<pid>/stat over the same window; the load average is the machine's, taken as the row's window ends: "+
		"on a shared machine, a high one means the figures are what each process got, not what it needed. "+
		"Goal: routed, a node's commits and CPU per sent message fall as 1/N (a flat total); broadcast, they stay flat per node (a total growing with N).\n", commitsReceivedMetric)
}

// scaleCells renders one result as the cells of scaleHeader.
func scaleCells(r scaleResult) []string {
	head := []string{r.mode, fmt.Sprint(r.nodes)}
	if r.err != nil || len(r.nodeCPU) == 0 || r.window <= 0 {
		cells := make([]string, len(scaleHeader))
		copy(cells, head)
		cells[len(head)] = notMeasured(r.err)
		return cells
	}
	sentRate := float64(r.step.Sent) / r.step.Duration.Seconds()
	secs := r.window.Seconds()
	received, total, perSent := "n/a", "n/a", "n/a"
	if r.hasReceived {
		perSecond := make([]float64, len(r.received))
		for i, v := range r.received {
			perSecond[i] = v / secs
		}
		received = meanAndEach(perSecond, "%.0f")
		total = fmt.Sprintf("%.0f", sum(perSecond))
		perSent = fmt.Sprintf("%.2f", mean(perSecond)/sentRate)
	}
	cpuPercent := make([]float64, len(r.nodeCPU))
	for i, c := range r.nodeCPU {
		cpuPercent[i] = 100 * c
	}
	cpuPerSent := fmt.Sprintf("%.0f µs", mean(r.nodeCPU)*1e6/sentRate)
	return append(head, fmt.Sprintf("%.0f", sentRate), received, total, perSent, meanAndEach(cpuPercent, "%.1f"), cpuPerSent,
		fmt.Sprintf("%.0f", 100*r.brokerCPU), load.Ms(r.step.E2E.P50), load.Ms(r.step.E2E.P99),
		fmt.Sprintf("%d of %d", r.step.Lost, r.step.Sent), r.loadAverage)
}

// meanAndEach is "mean (v1, v2, ...)", each value in format.
func meanAndEach(values []float64, format string) string {
	each := make([]string, len(values))
	for i, v := range values {
		each[i] = fmt.Sprintf(format, v)
	}
	return fmt.Sprintf(format+" (%s)", mean(values), strings.Join(each, ", "))
}

func mean(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	return sum(values) / float64(len(values))
}

func sum(values []float64) float64 {
	var total float64
	for _, v := range values {
		total += v
	}
	return total
}
