package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"

	"github.com/evchat/chatd/tests/infra"
)

// The real stack does not meet every target on two cores; the issue asks,
// for a target not met, for the profile that shows where the time goes.
// So while the measured part of the stack's fixed-rate run goes on, each
// server's CPU time is read from /proc and FerretDB and both nodes are
// profiled over HTTP (net/http/pprof).

// stackProfile is what was captured; a part that could not be keeps its
// error, printed in its place.
type stackProfile struct {
	// started is false when the run ended before its measured part.
	started  bool
	window   time.Duration
	cpu      []componentCPU
	profiles []profileSummary
}

type profileSummary struct {
	name string
	// file is the raw profile's name in the log directory, once written.
	file  string
	lines []string
	err   error
}

// profileSource is a Go server serving net/http/pprof under pprofURL.
type profileSource struct {
	name, pprofURL, file string
	summarize            func(p *profile.Profile, cpu int) []string
}

// stackSampler captures a stackProfile over window, from start on.
type stackSampler struct {
	components []component
	sources    []profileSource
	window     time.Duration
	logDir     string

	started bool
	done    chan struct{}
	result  stackProfile
}

// newStackSampler samples the servers of the real stack and the load
// client. window is the length of the measured part, truncated to whole
// seconds, the unit of a profile's duration.
func newStackSampler(mongo *infra.Mongo, rmq *infra.RocketMQ, nodes [2]*infra.Chatd, nodePprof [2]string, window time.Duration, logDir string) *stackSampler {
	nodeNames := [2]string{"chatd node 1 (senders)", "chatd node 2 (recipients)"}
	return &stackSampler{
		components: []component{
			{name: "PostgreSQL", pid: mongo.Postgres().Pid(), withChildren: true},
			{name: "FerretDB", pid: mongo.Pid()},
			{name: "RocketMQ name server", pid: rmq.NamesrvPid()},
			{name: "RocketMQ broker", pid: rmq.BrokerPid()},
			{name: nodeNames[0], pid: nodes[0].Pid()},
			{name: nodeNames[1], pid: nodes[1].Pid()},
			{name: "load client (benchload)", pid: os.Getpid()},
		},
		sources: []profileSource{
			{name: "FerretDB", pprofURL: mongo.PprofURL(), file: "ferretdb.cpu.pprof", summarize: summarizeFerretDB},
			{name: nodeNames[0], pprofURL: nodePprof[0], file: "stack-node1.cpu.pprof", summarize: summarizeNode},
			{name: nodeNames[1], pprofURL: nodePprof[1], file: "stack-node2.cpu.pprof", summarize: summarizeNode},
		},
		window: max(window.Truncate(time.Second), time.Second),
		logDir: logDir,
		done:   make(chan struct{}),
	}
}

// start begins the capture and returns at once: it is load.RateConfig's
// MeasureStart, called as the measured step starts sending.
func (s *stackSampler) start(ctx context.Context) {
	s.started = true
	logf("sampling the stack's CPU and profiling FerretDB and the nodes for %v", s.window)
	go func() {
		defer close(s.done)
		s.result.profiles = make([]profileSummary, len(s.sources))
		var wg sync.WaitGroup
		for i, src := range s.sources {
			wg.Go(func() { s.result.profiles[i] = s.takeProfile(ctx, src) })
		}
		s.result.cpu, s.result.window = sampleCPU(ctx, s.components, s.window)
		wg.Wait()
	}()
}

// wait returns what was captured, once the capture is over.
func (s *stackSampler) wait() *stackProfile {
	if !s.started {
		return &stackProfile{}
	}
	<-s.done
	s.result.started = true
	return &s.result
}

// takeProfile fetches a CPU profile over the window, writes it to the log
// directory and summarises it.
func (s *stackSampler) takeProfile(ctx context.Context, src profileSource) profileSummary {
	sum := profileSummary{name: src.name}
	seconds := int(s.window / time.Second)
	// The server answers only once the profile is over.
	ctx, cancel := context.WithTimeout(ctx, s.window+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/profile?seconds=%d", src.pprofURL, seconds), nil)
	if err != nil {
		sum.err = err
		return sum
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		sum.err = err
		return sum
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", resp.Status, firstLine(string(raw)))
	}
	if err != nil {
		sum.err = err
		return sum
	}
	if err := os.WriteFile(filepath.Join(s.logDir, src.file), raw, 0o644); err != nil {
		sum.err = err
		return sum
	}
	sum.file = src.file
	p, err := profile.ParseData(raw)
	if err != nil {
		sum.err = err
		return sum
	}
	cpu := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		sum.err = fmt.Errorf("no cpu sample type in the profile")
		return sum
	}
	sum.lines = src.summarize(p, cpu)
	return sum
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// ferretHandlerPrefix marks the FerretDB function that runs one wire
// command, e.g. ...internal/handler.(*Handler).MsgUpdate.
const ferretHandlerPrefix = "internal/handler.(*Handler).Msg"

// summarizeFerretDB splits FerretDB's time by wire command.
func summarizeFerretDB(p *profile.Profile, cpu int) []string {
	total := totalCPU(p, cpu)
	commands := cumulative(p, cpu, func(fn string) string {
		_, after, ok := strings.Cut(fn, ferretHandlerPrefix)
		if !ok {
			return ""
		}
		// Closures (MsgUpdate.func1) belong to their command.
		name, _, _ := strings.Cut(after, ".")
		return "Msg" + name
	})
	anyCommand := cumulative(p, cpu, func(fn string) string {
		if strings.Contains(fn, ferretHandlerPrefix) {
			return "any"
		}
		return ""
	})["any"]
	var parts []string
	for _, name := range ranked(commands, 0, total/100) {
		parts = append(parts, fmt.Sprintf("%s %s", name, share(commands[name], total)))
	}
	if len(parts) == 0 {
		parts = append(parts, "none")
	}
	return []string{
		profileHeader(p, total),
		fmt.Sprintf("wire commands (cumulative): %s; outside any command (wire I/O, connections, runtime): %s", strings.Join(parts, ", "), share(total-anyCommand, total)),
		gcLine(p, cpu, total),
		hottestLine(p, cpu, total),
	}
}

// chatdPrefix marks the node's own functions, trimmed when printed.
const chatdPrefix = "github.com/evchat/chatd/"

// nodeEntryPoints is how many of a node's own functions are listed.
const nodeEntryPoints = 8

// summarizeNode lists the node's own functions that take the most time,
// leaving out the wrappers: a function whose time is nearly all under one
// other chatd function is shown through that one, so that a chain of
// middleware does not fill the list with one figure repeated.
func summarizeNode(p *profile.Profile, cpu int) []string {
	total := totalCPU(p, cpu)
	cum := map[string]int64{}
	// under[f][g] is the time of f's samples in which g runs deeper than f.
	under := map[string]map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[cpu]
		fns := frames(s)
		seen := map[string]bool{}
		for i := len(fns) - 1; i >= 0; i-- {
			f := fns[i]
			if !strings.HasPrefix(f, chatdPrefix) || seen[f] {
				continue
			}
			seen[f] = true
			cum[f] += v
			deeper := map[string]bool{f: true}
			for _, g := range fns[:i] {
				if strings.HasPrefix(g, chatdPrefix) && !deeper[g] {
					deeper[g] = true
					if under[f] == nil {
						under[f] = map[string]int64{}
					}
					under[f][g] += v
				}
			}
		}
	}
	for f, gs := range under {
		for _, t := range gs {
			if t*100 >= cum[f]*99 {
				delete(cum, f)
				break
			}
		}
	}
	var parts []string
	for _, f := range ranked(cum, nodeEntryPoints, total/100) {
		parts = append(parts, fmt.Sprintf("%s %s", strings.TrimPrefix(f, chatdPrefix), share(cum[f], total)))
	}
	if len(parts) == 0 {
		parts = append(parts, "none")
	}
	return []string{
		profileHeader(p, total),
		"chatd functions (cumulative, wrappers left out): " + strings.Join(parts, ", "),
		gcLine(p, cpu, total),
		hottestLine(p, cpu, total),
	}
}

func profileHeader(p *profile.Profile, total int64) string {
	if p.DurationNanos <= 0 {
		return fmt.Sprintf("%v of CPU in the profile", time.Duration(total).Round(time.Millisecond))
	}
	return fmt.Sprintf("%.2f cores over the profile's %v", float64(total)/float64(p.DurationNanos), time.Duration(p.DurationNanos).Round(100*time.Millisecond))
}

// gcLine is the garbage collector's share: its background mark workers,
// and the marking that allocating goroutines are made to do themselves.
func gcLine(p *profile.Profile, cpu int, total int64) string {
	gc := cumulative(p, cpu, func(fn string) string {
		switch fn {
		case "runtime.gcBgMarkWorker":
			return "mark"
		case "runtime.gcAssistAlloc":
			return "assist"
		}
		return ""
	})
	return fmt.Sprintf("GC: %s in background mark workers, %s in mark assists", share(gc["mark"], total), share(gc["assist"], total))
}

// hottestLine lists the functions with the most time of their own.
func hottestLine(p *profile.Profile, cpu int, total int64) string {
	flat := map[string]int64{}
	for _, s := range p.Sample {
		if fns := frames(s); len(fns) > 0 {
			flat[fns[0]] += s.Value[cpu]
		}
	}
	var parts []string
	for _, f := range ranked(flat, 5, 0) {
		parts = append(parts, fmt.Sprintf("%s %s", strings.TrimPrefix(f, chatdPrefix), share(flat[f], total)))
	}
	return "hottest (own time): " + strings.Join(parts, ", ")
}

func totalCPU(p *profile.Profile, cpu int) int64 {
	var t int64
	for _, s := range p.Sample {
		t += s.Value[cpu]
	}
	return t
}

// frames lists a sample's functions from the leaf to the root, inlined
// ones included.
func frames(s *profile.Sample) []string {
	var fns []string
	for _, loc := range s.Location {
		// A location's lines go from the innermost inlined function out.
		for _, line := range loc.Line {
			if line.Function != nil {
				fns = append(fns, line.Function.Name)
			}
		}
	}
	return fns
}

// cumulative sums, per key, the time of the samples with a function key
// maps to; "" is no key. A sample counts once per key, recursion or not.
func cumulative(p *profile.Profile, cpu int, key func(fn string) string) map[string]int64 {
	out := map[string]int64{}
	for _, s := range p.Sample {
		seen := map[string]bool{}
		for _, fn := range frames(s) {
			if k := key(fn); k != "" && !seen[k] {
				seen[k] = true
				out[k] += s.Value[cpu]
			}
		}
	}
	return out
}

// ranked returns m's keys from the largest value down, at most n of them
// (all when n is 0), leaving out values under least.
func ranked(m map[string]int64, n int, least int64) []string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v > 0 && v >= least {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if n > 0 && len(keys) > n {
		keys = keys[:n]
	}
	return keys
}

func share(part, total int64) string {
	if total <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(total))
}

// printStackProfile writes the capture after the table.
func printStackProfile(w io.Writer, o options, sp *stackProfile) {
	fmt.Fprintln(w, "\n## Where the real stack's time goes (fixed-rate run)")
	fmt.Fprintln(w)
	if !sp.started {
		fmt.Fprintln(w, "Not captured: the fixed-rate run ended before its measured part.")
		return
	}
	fmt.Fprintf(w, "CPU of each process over %v of the measured part of the %s msg/s run, from /proc/<pid>/stat, in %% of one core; the machine has %d cores (%d%%).\n\n",
		sp.window.Round(100*time.Millisecond), commas(o.stackFixed), runtime.NumCPU(), 100*runtime.NumCPU())
	fmt.Fprintln(w, "| process | CPU |")
	fmt.Fprintln(w, "|---|---|")
	var total float64
	missing := 0
	for _, c := range sp.cpu {
		if c.err != nil {
			missing++
			fmt.Fprintf(w, "| %s | %s |\n", c.label(), notMeasured(c.err))
			continue
		}
		total += c.cores
		fmt.Fprintf(w, "| %s | %.0f%% |\n", c.label(), 100*c.cores)
	}
	totalCell := fmt.Sprintf("%.0f%% of %d%%", 100*total, 100*runtime.NumCPU())
	if missing > 0 {
		totalCell += fmt.Sprintf(" (%d processes not measured)", missing)
	}
	fmt.Fprintf(w, "| **total** | %s |\n", totalCell)
	if missing == 0 {
		printWhatIsLeft(w, sp.cpu, total)
	}

	fmt.Fprintf(w, "\nCPU profiles over the same %v, shares of each profile's samples:\n\n", sp.window.Round(time.Second))
	var files []string
	for _, ps := range sp.profiles {
		if ps.file != "" {
			files = append(files, ps.file)
		}
		if ps.err != nil {
			fmt.Fprintf(w, "- **%s**: not captured: %v\n", ps.name, ps.err)
			continue
		}
		fmt.Fprintf(w, "- **%s**: %s\n", ps.name, ps.lines[0])
		for _, line := range ps.lines[1:] {
			fmt.Fprintf(w, "  - %s\n", line)
		}
	}
	if len(files) > 0 {
		fmt.Fprintf(w, "\nRaw profiles in %s: %s (`go tool pprof -top <file>` to look further).\n", o.logDir, strings.Join(files, ", "))
	}
}

// printWhatIsLeft reads the CPU table for the targets the real stack does
// not meet on two cores.
func printWhatIsLeft(w io.Writer, cpu []componentCPU, total float64) {
	share := func(prefix string) float64 {
		var sum float64
		for _, c := range cpu {
			if strings.HasPrefix(c.name, prefix) {
				sum += c.cores
			}
		}
		return 100 * sum
	}
	fmt.Fprintf(w, "\nWhat is left: the cores are %.0f%% of %d%% busy, so a message's latency here is mostly its wait for a core, not one stage's work. "+
		"The store (PostgreSQL and FerretDB) takes %.0f%% of a core, the broker %.0f%%, the two nodes %.0f%%, the load client %.0f%%. "+
		"The floor is the same broker path with the store idle, no projection and no delivered marks; coming within 3 × of it here needs "+
		"less CPU per message (the table above), above all fewer store writes per message.\n",
		100*total, 100*runtime.NumCPU(), share("PostgreSQL")+share("FerretDB"), share("RocketMQ"), share("chatd"), share("load client"))
}
