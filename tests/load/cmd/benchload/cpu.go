package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Issue 16 moves CPU per message: milliseconds of CPU time, of each process
// and in all, per message delivered during a fixed-rate run. On a shared
// machine it is steadier than latency, which mostly measures the wait for a
// core. Each process's CPU time comes from /proc over the measured window,
// the same readings as the real stack's "where the time goes" table.

// component is a process whose CPU time comes from /proc; withChildren
// adds its children's, PostgreSQL's backends and background workers.
type component struct {
	name         string
	pid          int
	withChildren bool
}

// componentCPU is a component's CPU over a window, in cores (1 is one core
// busy all along); processes counts them when children were added.
type componentCPU struct {
	name      string
	processes int
	cores     float64
	err       error
}

func (c componentCPU) label() string {
	if c.processes > 0 {
		return fmt.Sprintf("%s (%d processes)", c.name, c.processes)
	}
	return c.name
}

// sampleCPU reads every component's CPU time at both ends of the window.
func sampleCPU(ctx context.Context, components []component, window time.Duration) ([]componentCPU, time.Duration) {
	before := make([]int64, len(components))
	out := make([]componentCPU, len(components))
	for i, c := range components {
		before[i], _, out[i].err = c.cpuTicks()
	}
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(window):
	}
	elapsed := time.Since(start)
	for i, c := range components {
		out[i].name = c.name
		after, children, err := c.cpuTicks()
		if out[i].err == nil {
			out[i].err = err
		}
		if c.withChildren {
			out[i].processes = children + 1
		}
		out[i].cores = float64(after-before[i]) / userHZ / elapsed.Seconds()
	}
	return out, elapsed
}

// cpuSampler samples components over a window from start on, in the
// background: start is load.RateConfig's MeasureStart.
type cpuSampler struct {
	components []component
	window     time.Duration

	started bool
	done    chan struct{}
	cpu     []componentCPU
}

func newCPUSampler(window time.Duration, components ...component) *cpuSampler {
	return &cpuSampler{components: components, window: window, done: make(chan struct{})}
}

func (s *cpuSampler) start(ctx context.Context) {
	s.started = true
	go func() {
		defer close(s.done)
		s.cpu, _ = sampleCPU(ctx, s.components, s.window)
	}()
}

// wait returns the readings once the window is over, nil when it never
// started.
func (s *cpuSampler) wait() []componentCPU {
	if !s.started {
		return nil
	}
	<-s.done
	return s.cpu
}

// cpuCapture is one fixed-rate run's CPU readings with the messages it
// delivered: delivered messages were sent during the measured step, which
// lasted over, and the readings span the same step.
type cpuCapture struct {
	run       string
	cpu       []componentCPU
	delivered int
	over      time.Duration
}

// msPerMessage is CPU time, at cores busy on average over a run that
// delivered messages during over, divided among those messages, in ms.
// ok is false when nothing was delivered.
func msPerMessage(cores float64, delivered int, over time.Duration) (ms float64, ok bool) {
	if delivered <= 0 || over <= 0 {
		return 0, false
	}
	return cores * over.Seconds() * 1000 / float64(delivered), true
}

// total is the capture's CPU per message summed over its processes, and
// false when a process could not be read or nothing was delivered.
func (c cpuCapture) total() (ms float64, ok bool) {
	var cores float64
	for _, p := range c.cpu {
		if p.err != nil {
			return 0, false
		}
		cores += p.cores
	}
	if len(c.cpu) == 0 {
		return 0, false
	}
	return msPerMessage(cores, c.delivered, c.over)
}

// userHZ is the unit of the times in /proc/<pid>/stat, USER_HZ: 100 on
// every Linux architecture the benchmark runs on.
const userHZ = 100

// cpuTicks is the component's CPU time so far. With children it counts
// the live children's and, through the parent's cutime and cstime, the
// reaped ones': a backend that exits during the window then counts for the
// part of its time inside it, as the difference of two readings.
func (c component) cpuTicks() (ticks int64, children int, err error) {
	_, own, reaped, err := procStat(c.pid)
	if err != nil || !c.withChildren {
		return own, 0, err
	}
	ticks = own + reaped
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// A process that exited since the listing is not an error.
		if ppid, own, reaped, err := procStat(pid); err == nil && ppid == c.pid {
			ticks += own + reaped
			children++
		}
	}
	return ticks, children, nil
}

// procStat reads a process's parent, its own user and system time, and
// those of its reaped children, in clock ticks.
func procStat(pid int) (ppid int, own, reaped int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces and
	// parentheses itself: the fields are counted from its last ')'.
	i := bytes.LastIndexByte(b, ')')
	var f []string
	if i >= 0 {
		f = strings.Fields(string(b[i+1:]))
	}
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// f[0] is field 3 (state): ppid is field 4, utime, stime, cutime and
	// cstime are fields 14 to 17.
	var n [5]int64
	for k, field := range []string{f[1], f[11], f[12], f[13], f[14]} {
		if n[k], err = strconv.ParseInt(field, 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return int(n[0]), n[1] + n[2], n[3] + n[4], nil
}
