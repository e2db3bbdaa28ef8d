package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/evchat/chatd/tests/load"
)

// rateCapture pairs a fixed-rate run's CPU readings with its measured step;
// ok is false when either is missing.
func rateCapture(run string, cpu []componentCPU, rep *load.RateReport, err error) (cpuCapture, bool) {
	s, err := single(rep, err)
	if err != nil || len(cpu) == 0 {
		return cpuCapture{}, false
	}
	return cpuCapture{run: run, cpu: cpu, delivered: s.Received, over: s.Duration}, true
}

// stackCapture is the real stack's fixed-rate run, whose readings are
// those of the "where the time goes" table.
func (r *results) stackCapture(o options) (cpuCapture, bool) {
	if r.stProfile == nil || !r.stProfile.started {
		return cpuCapture{}, false
	}
	return rateCapture(fmt.Sprintf("real stack, %s msg/s", commas(o.stackFixed)), r.stProfile.cpu, r.stFixed, r.stFixedErr)
}

// cpuCaptures lists the fixed-rate runs measured, each next to its floor.
func (r *results) cpuCaptures(o options) []cpuCapture {
	var out []cpuCapture
	add := func(c cpuCapture, ok bool) {
		if ok {
			out = append(out, c)
		}
	}
	t := o.tail
	add(rateCapture(fmt.Sprintf("bare relay, %s msg/s, %d pairs", commas(t.rate), t.pairs), r.relayCPU, r.relayTail, r.relayTailErr))
	add(rateCapture(fmt.Sprintf("embedded node, %s msg/s, %d pairs", commas(t.rate), t.pairs), r.embTailCPU, r.embTail, r.embTailErr))
	add(rateCapture(fmt.Sprintf("embedded node, %s msg/s", commas(o.embeddedFixed)), r.embFixedCPU, r.embFixed, r.embFixedErr))
	if f := r.floor; f != nil && r.floorErr == nil && len(r.floorCPU) > 0 {
		add(cpuCapture{run: fmt.Sprintf("raw RocketMQ floor, %s msg/s", commas(f.Rate)), cpu: r.floorCPU, delivered: f.Received, over: f.Duration}, true)
	}
	add(r.stackCapture(o))
	return out
}

// printCPUPerMessage writes a row per process and a column per run: ms of
// CPU per delivered message, and the process's share of a core. A process
// that a run does not involve has a dash.
func printCPUPerMessage(w io.Writer, captures []cpuCapture) {
	fmt.Fprintln(w, "\n## CPU per message")
	fmt.Fprintln(w)
	if len(captures) == 0 {
		fmt.Fprintln(w, "Not measured: no fixed-rate run reached its measured part.")
		return
	}
	fmt.Fprintf(w, "Milliseconds of CPU per delivered message over each fixed-rate run's measured part, from /proc/<pid>/stat, and (in brackets) the process's CPU in %% of one core; the machine has %d cores (%d%%). "+
		"The relay and the raw floor run in the same `make bench-load` as the runs they are the floor of; the floor's publisher and consumer run in the load client's process.\n\n",
		runtime.NumCPU(), 100*runtime.NumCPU())
	header := []string{"process"}
	for _, c := range captures {
		header = append(header, c.run)
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, name := range processNames(captures) {
		cells := []string{name}
		for _, c := range captures {
			cells = append(cells, c.cell(name))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	cells := []string{"**total**"}
	for _, c := range captures {
		cells = append(cells, c.totalCell())
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

// processNames lists every process of the captures once, in the order
// they first appear.
func processNames(captures []cpuCapture) []string {
	var names []string
	seen := map[string]bool{}
	for _, c := range captures {
		for _, p := range c.cpu {
			if !seen[p.name] {
				seen[p.name] = true
				names = append(names, p.name)
			}
		}
	}
	return names
}

func (c cpuCapture) cell(process string) string {
	for _, p := range c.cpu {
		if p.name != process {
			continue
		}
		if p.err != nil {
			return notMeasured(p.err)
		}
		ms, ok := msPerMessage(p.cores, c.delivered, c.over)
		if !ok {
			return fmt.Sprintf("nothing delivered (%.0f%%)", 100*p.cores)
		}
		if p.processes > 0 {
			return fmt.Sprintf("%.3f ms (%.0f%%, %d processes)", ms, 100*p.cores, p.processes)
		}
		return fmt.Sprintf("%.3f ms (%.0f%%)", ms, 100*p.cores)
	}
	return "—"
}

func (c cpuCapture) totalCell() string {
	ms, ok := c.total()
	if !ok {
		return "not measured"
	}
	var cores float64
	for _, p := range c.cpu {
		cores += p.cores
	}
	return fmt.Sprintf("**%.3f ms** (%.0f%%; %s delivered in %v)", ms, 100*cores, commas(float64(c.delivered)), c.over)
}
