// Command benchload is `make bench-load`: the load benchmark of issues 7
// and 16 in one run, on loopback. It first measures the embedded node's
// floor, a bare gorilla/websocket relay (tests/load/relay, run as
// bin/wsrelay) at issue 16's tail load (200 msg/s over 50 pairs, 100-byte
// messages); then it starts bin/chatd on the embedded default and runs the
// load client against it (the same tail load, a fixed 1,000 msg/s, then
// rising steps to find the highest rate held), then a fresh embedded node
// for the idle sessions' memory; then the real stack (PostgreSQL with
// FerretDB, a RocketMQ name server and broker, two chatd nodes on them),
// where it measures the raw RocketMQ floor (transactional send to a
// BROADCASTING consumer, through adapters/rocketmq) and runs senders on
// node 1 and recipients on node 2 (a fixed 500 msg/s, then steps). Fixed
// rates run before the steps because a step that does not hold can leave a
// backlog behind it. Over every fixed-rate run and the raw floor, each
// process's CPU time is read from /proc, for issue 16's CPU per message.
//
// Progress, per-step figures and the nodes' warnings go to stderr; the
// machine and one markdown table, a row per target of the issue, go to
// stdout, then the CPU per message of each fixed-rate run and of the
// floors, followed by where the real stack's CPU went during its fixed-rate
// run (profile.go), whose raw profiles stay in the log directory. Every
// server it starts is stopped by pid when its phase ends, on failure too,
// and killed by the kernel if benchload itself dies. A target that is not
// met is a finding, not a failure: the exit status is non-zero only when a
// phase could not run.
//
// With -scale it is `make bench-scale` instead, issue 15's measurement of
// what delivery costs a node as nodes are added (scale.go); with -group,
// `make bench-group`, issue 18's delivery to a group's members (group.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/evchat/chatd/tests/infra"
	"github.com/evchat/chatd/tests/load"
)

// authSecret is shared by every node of a run, so that a token from one
// node works on the other.
const authSecret = "bench-load-dev-secret-0123456789abcdef"

// sendLimits lifts the per-user send limit far above a sender's share of
// any step: the benchmark measures the pipeline, not the limiter.
var sendLimits = []string{"CHAT_SEND_RATE=1000000", "CHAT_SEND_BURST=1000000"}

type options struct {
	logDir        string
	pairs         int
	stepDuration  time.Duration
	fixedDuration time.Duration
	stackPrelude  time.Duration
	drain         time.Duration
	p99Limit      time.Duration
	embeddedSteps []float64
	stackSteps    []float64
	embeddedFixed float64
	// tail is the embedded node's tail run and its relay floor's load.
	tail         tailLoad
	stackFixed   float64
	floorRate    float64
	idleSessions int
	idleHold     time.Duration
	skip         map[string]bool
	// scale, when set, runs the scale benchmark instead of the phases above.
	scale *scaleOptions
	// group, when set, runs the group benchmark instead (group.go).
	group *groupOptions
	// brokerSettings override the test broker's (infra.LaunchRocketMQ) in
	// every benchmark, for an A/B of a broker setting.
	brokerSettings []string
}

func main() {
	var o options
	var embSteps, stackSteps, skip string
	flag.StringVar(&o.logDir, "log-dir", "bin/bench-load", "directory for the nodes' logs and the broadcast offsets")
	flag.IntVar(&o.pairs, "pairs", 200, "sender/recipient pairs of the rate runs")
	flag.DurationVar(&o.stepDuration, "step-duration", 5*time.Second, "length of each step")
	flag.DurationVar(&o.fixedDuration, "fixed-duration", 20*time.Second, "length of the fixed-rate runs")
	flag.DurationVar(&o.stackPrelude, "stack-prelude", 20*time.Second, "unmeasured load before the floor and the real stack's fixed-rate run, while the broker's JVM compiles")
	flag.DurationVar(&o.drain, "drain", 5*time.Second, "how long after a step's last send its messages may arrive")
	flag.DurationVar(&o.p99Limit, "p99", 100*time.Millisecond, "end-to-end p99 a step must stay under to hold")
	flag.StringVar(&embSteps, "embedded-steps", "1000,2000,5000,10000,16000,20000,25000,30000", "rates of the embedded node's steps")
	flag.StringVar(&stackSteps, "stack-steps", "100,250,500,1000,1500,2000", "rates of the real stack's steps")
	flag.Float64Var(&o.embeddedFixed, "embedded-fixed", 1000, "fixed rate on the embedded node")
	flag.Float64Var(&o.tail.rate, "tail-rate", 200, "rate of the embedded node's tail run and of its relay floor")
	flag.IntVar(&o.tail.pairs, "tail-pairs", 50, "pairs of the embedded node's tail run and of its relay floor")
	flag.IntVar(&o.tail.body, "tail-body", 100, "message body size of the embedded node's tail run and of its relay floor")
	flag.Float64Var(&o.stackFixed, "stack-fixed", 500, "fixed rate on the real stack")
	flag.Float64Var(&o.floorRate, "floor-rate", 450, "rate of the raw RocketMQ floor")
	flag.IntVar(&o.idleSessions, "idle-sessions", 15000, "idle sessions")
	flag.DurationVar(&o.idleHold, "idle-hold", 10*time.Second, "how long the idle sessions stay open before the RSS reading")
	flag.StringVar(&skip, "skip", "", "comma-separated phases to skip: embedded, idle, stack, stack-chat (the stack's chat runs, leaving the floor), for working on one")
	scale := flag.Bool("scale", false, "run the scale benchmark of issue 15 (make bench-scale) instead: N nodes on one broker and store, in each delivery mode")
	var so scaleOptions
	scaleModes := flag.String("scale-modes", "routed,broadcast", "delivery modes of the scale benchmark")
	scaleNodes := flag.String("scale-nodes", "2,4,8", "node counts of the scale benchmark")
	flag.Float64Var(&so.rate, "scale-rate", 200, "total rate of the scale benchmark, whatever N")
	flag.DurationVar(&so.window, "scale-window", 15*time.Second, "measured window of each scale run")
	// Routed senders address every node until the registry has settled: a
	// heartbeat and the propagation window after start and after the
	// users connected (5 s + 7.5 s by default).
	flag.DurationVar(&so.prelude, "scale-prelude", 15*time.Second, "unmeasured load before each scale run's window, while routing settles")
	flag.DurationVar(&so.warmUp, "scale-warm-up", 30*time.Second, "unmeasured load added to the first scale run's prelude, while the broker's JVM compiles")
	flag.IntVar(&so.body, "scale-body", 100, "message body size of the scale benchmark")
	group := flag.Bool("group", false, "run the group benchmark of issue 18 (make bench-group) instead: one sender to a group whose members are spread over two nodes of the real stack")
	var gro groupOptions
	groupMembers := flag.String("group-members", "50,256", "group sizes of the group benchmark, the sender among the members")
	flag.Float64Var(&gro.rate, "group-rate", 20, "messages per second of the group benchmark's sender")
	flag.DurationVar(&gro.window, "group-window", 20*time.Second, "measured window of each group size")
	flag.DurationVar(&gro.prelude, "group-prelude", 20*time.Second, "unmeasured load before each group size's window, while the broker's JVM compiles")
	flag.IntVar(&gro.bodySize, "group-body", 100, "message body size of the group benchmark")
	broker := flag.String("broker", "", "comma-separated key=value settings of the broker, over the test broker's, for an A/B of a broker setting")
	timeout := flag.Duration("timeout", 20*time.Minute, "bound of the whole run")
	flag.Parse()

	o.brokerSettings = splitList(*broker)
	var err error
	if o.embeddedSteps, err = parseRates(embSteps); err == nil {
		o.stackSteps, err = parseRates(stackSteps)
	}
	if *scale && err == nil {
		so.modes = splitList(*scaleModes)
		so.nodes, err = parseCounts(*scaleNodes)
		o.scale = &so
	}
	if *group && err == nil {
		gro.members, err = parseCounts(*groupMembers)
		o.group = &gro
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchload:", err)
		os.Exit(2)
	}
	o.skip = map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.skip[s] = true
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	ctx, cancelTimeout := context.WithTimeout(ctx, *timeout)
	code := run(ctx, o)
	cancelTimeout()
	cancel()
	os.Exit(code)
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("rate %q is not positive", f)
		}
		out = append(out, r)
	}
	return out, nil
}

// results gathers every phase's figures for the table; a phase that could
// not run leaves its error instead.
type results struct {
	machine, loadBefore, loadAfter string

	embFixed, embStep     *load.RateReport
	embFixedErr, embStErr error
	// relayTail and embTail are the embedded node's tail run and its
	// floor's, the bare relay at the same load.
	relayTail, embTail       *load.RateReport
	relayTailErr, embTailErr error
	embFixedCPU, relayCPU    []componentCPU
	embTailCPU, floorCPU     []componentCPU
	idle                     *load.IdleResult
	idleErr                  error
	floor                    *floorResult
	floorErr                 error
	stFixed, stStep          *load.RateReport
	stFixedErr, stStErr      error
	stackErr                 error
	stProfile                *stackProfile
}

func run(ctx context.Context, o options) int {
	logf("machine: %s", load.Machine())
	// If make is killed, we are told to stop too, and our deferred stops run.
	if err := infra.StopWithParent(); err != nil {
		logf("cannot follow the parent's death: %v", err)
	}
	limit, err := load.RaiseFileLimit()
	if err != nil {
		logf("raising the file limit: %v", err)
	}
	logf("open files limit %d (inherited by the nodes)", limit)
	if uint64(o.idleSessions)+200 > limit {
		logf("%d idle sessions do not fit in %d files; lowering to %d", o.idleSessions, limit, limit-200)
		o.idleSessions = int(limit) - 200
	}
	bin, err := infra.ChatdBinary()
	if err != nil {
		logf("%v", err)
		return 1
	}
	if o.logDir, err = filepath.Abs(o.logDir); err != nil {
		logf("%v", err)
		return 1
	}
	if err := os.RemoveAll(o.logDir); err != nil {
		logf("%v", err)
		return 1
	}
	if err := os.MkdirAll(o.logDir, 0o755); err != nil {
		logf("%v", err)
		return 1
	}
	logf("node logs in %s", o.logDir)

	r := &results{machine: load.Machine(), loadBefore: loadAverage()}
	b := &bench{o: o, bin: bin, r: r}
	if o.scale != nil {
		return b.runScale(ctx)
	}
	if o.group != nil {
		return b.runGroups(ctx)
	}
	if !o.skip["embedded"] {
		b.embedded(ctx)
	}
	if !o.skip["idle"] && ctx.Err() == nil {
		b.idle(ctx)
	}
	if !o.skip["stack"] && ctx.Err() == nil {
		b.stack(ctx)
	}
	r.loadAfter = loadAverage()
	printTable(os.Stdout, o, r)
	if r.stProfile != nil {
		printStackProfile(os.Stdout, o, r.stProfile)
	}
	for _, err := range []error{r.embFixedErr, r.embStErr, r.relayTailErr, r.embTailErr, r.idleErr, r.floorErr, r.stFixedErr, r.stStErr, r.stackErr} {
		if err != nil {
			return 1
		}
	}
	if ctx.Err() != nil {
		logf("stopped early: %v", ctx.Err())
		return 1
	}
	return 0
}

type bench struct {
	o   options
	bin string
	r   *results
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-load: "+format+"\n", args...)
}

// loopbackAddr picks a free 127.0.0.1 port for a node.
func loopbackAddr() string { return "127.0.0.1:" + strconv.Itoa(infra.FreePort()) }

// launch starts a node and logs where; the caller stops it.
func (b *bench) launch(name string, env []string) (*infra.Chatd, error) {
	env = append(append([]string{"CHAT_AUTH_SECRET=" + authSecret}, sendLimits...), env...)
	start := time.Now()
	n, err := infra.LaunchChatd(b.bin, name, loopbackAddr(), b.o.logDir, env)
	if err != nil {
		return nil, fmt.Errorf("chatd %s: %w", name, err)
	}
	logf("chatd %s (pid %d) serving http://%s in %v", name, n.Pid(), n.Addr(), time.Since(start).Round(time.Millisecond))
	return n, nil
}

// stop drains a node and reports the warnings and errors it logged.
func (b *bench) stop(n *infra.Chatd, name string) {
	n.Stop()
	reportLog(n.LogPath(), name)
}

// embeddedPrelude is the unmeasured load before the embedded node's
// fixed-rate run, so that its figures are the steady state's. The real
// stack's (-stack-prelude) is longer: a fresh broker's JVM compiles its hot
// paths for most of its first minute under load (its C2 compiler thread
// took 9 s of CPU in the first 30 s at 500 msg/s, on two cores).
const embeddedPrelude = 3 * time.Second

// fixedRun is one rate offered after a prelude at the same rate.
type fixedRun struct {
	send, recv string
	rate       float64
	pairs      int
	body       int
	prelude    time.Duration
	// measureStart, when set, is called as the measured part starts.
	measureStart func()
}

// fixed offers run's rate for the fixed duration after its prelude.
func (b *bench) fixed(ctx context.Context, run fixedRun) (*load.RateReport, error) {
	return load.RunRate(ctx, load.RateConfig{SendURL: run.send, RecvURL: run.recv, Pairs: run.pairs,
		Steps: []load.Step{{Rate: run.rate, Duration: b.o.fixedDuration}}, Prelude: load.Step{Rate: run.rate, Duration: run.prelude},
		MeasureStart: run.measureStart, Drain: b.o.drain, P99Limit: b.o.p99Limit, BodySize: run.body, Log: os.Stderr})
}

// measuredCPU samples the components over the fixed duration from the
// measured part's start on.
func (b *bench) measuredCPU(ctx context.Context, components ...component) (*cpuSampler, func()) {
	s := newCPUSampler(b.o.fixedDuration, components...)
	return s, func() { s.start(ctx) }
}

// loadClient is this process, which runs the load client and the floor's
// publisher and subscriber.
func loadClient() component { return component{name: "load client (benchload)", pid: os.Getpid()} }

// stepped offers rising rates until one does not hold.
func (b *bench) stepped(ctx context.Context, sendURL, recvURL string, rates []float64) (*load.RateReport, error) {
	st := make([]load.Step, len(rates))
	for i, r := range rates {
		st[i] = load.Step{Rate: r, Duration: b.o.stepDuration}
	}
	return load.RunRate(ctx, load.RateConfig{SendURL: sendURL, RecvURL: recvURL, Pairs: b.o.pairs, Steps: st,
		Drain: b.o.drain, P99Limit: b.o.p99Limit, StopAtFailure: true, BodySize: chatBody, Log: os.Stderr})
}

// idle measures idle sessions on a fresh embedded node, so that the heap of
// the rate runs does not blur the figure.
func (b *bench) idle(ctx context.Context) {
	logf("== idle sessions, fresh embedded node")
	n, err := b.launch("idle", nil)
	if err != nil {
		b.r.idleErr = err
		return
	}
	defer b.stop(n, "idle")
	b.r.idle, b.r.idleErr = load.RunIdle(ctx, load.IdleConfig{URL: "http://" + n.Addr(), Sessions: b.o.idleSessions,
		Workers: 64, Hold: b.o.idleHold, ServerPID: n.Pid(), PingTimeout: 15 * time.Second, Log: os.Stderr})
	logIf(b.r.idleErr)
	if res := b.r.idle; res != nil {
		logf("idle: %d of %d open, VmRSS %d -> %d KiB (%.1f KiB per session), dropped %s, %d answered ping",
			res.Opened, res.Sessions, res.RSSBefore, res.RSSAfter, res.KiBPerSession, load.FormatCounts(res.Dropped), res.Pongs)
	}
}

// stack measures the real stack: store, broker, two nodes.
func (b *bench) stack(ctx context.Context) {
	logf("== real stack: FerretDB on PostgreSQL, RocketMQ, two nodes")
	fail := func(err error) {
		logf("%v", err)
		b.r.stackErr = err
	}
	start := time.Now()
	mongo, err := infra.LaunchMongo()
	if err != nil {
		fail(fmt.Errorf("MongoDB-wire server: %w", err))
		return
	}
	defer mongo.Close()
	logf("FerretDB on PostgreSQL up in %v at %s", time.Since(start).Round(time.Millisecond), mongo.URI())
	start = time.Now()
	rmq, err := infra.LaunchRocketMQ(b.o.brokerSettings...)
	if err != nil {
		fail(fmt.Errorf("RocketMQ: %w", err))
		return
	}
	defer rmq.Close()
	logf("RocketMQ name server %s and broker %s %v up in %v", rmq.NamesrvAddr(), rmq.BrokerAddr(), b.o.brokerSettings, time.Since(start).Round(time.Millisecond))

	var nodes [2]*infra.Chatd
	var nodePprof [2]string
	for i := range nodes {
		name := fmt.Sprintf("stack-node%d", i+1)
		pprofAddr := loopbackAddr()
		nodePprof[i] = "http://" + pprofAddr + "/debug/pprof"
		// Each node keeps its broadcast offsets in a directory of its own:
		// the client reads it from this variable once, at start.
		env := []string{"CHAT_MONGO_URI=" + mongo.URI(), "CHAT_MONGO_DB=bench", "CHAT_ROCKETMQ_NAMESRV=" + rmq.NamesrvAddr(),
			"rocketmq.client.localOffsetStoreDir=" + filepath.Join(b.o.logDir, "offsets-"+name), "CHAT_PPROF_ADDR=" + pprofAddr}
		n, err := b.launch(name, env)
		if err != nil {
			fail(err)
			return
		}
		defer b.stop(n, name) //nolint:gocritic // deferInLoop: both nodes serve until the whole run ends
		nodes[i] = n
	}
	if ctx.Err() != nil {
		return
	}

	logf("raw floor: RocketMQ transactional send to a BROADCASTING consumer at %.0f msg/s for %v after %v unmeasured", b.o.floorRate, b.o.fixedDuration, b.o.stackPrelude)
	floorCPU, startFloorCPU := b.measuredCPU(ctx, component{name: "RocketMQ name server", pid: rmq.NamesrvPid()},
		component{name: "RocketMQ broker", pid: rmq.BrokerPid()}, loadClient())
	b.r.floor, b.r.floorErr = measureFloor(ctx, rmq, floorRun{rate: b.o.floorRate, prelude: b.o.stackPrelude, d: b.o.fixedDuration, drain: b.o.drain,
		measureStart: startFloorCPU})
	b.r.floorCPU = floorCPU.wait()
	logIf(b.r.floorErr)
	if f := b.r.floor; f != nil {
		logf("floor: %s", f.Text())
	}

	if b.o.skip["stack-chat"] {
		return
	}
	send, recv := "http://"+nodes[0].Addr(), "http://"+nodes[1].Addr()
	logf("fixed %.0f msg/s for %v after %v unmeasured, senders on node 1, recipients on node 2", b.o.stackFixed, b.o.fixedDuration, b.o.stackPrelude)
	sampler := newStackSampler(mongo, rmq, nodes, nodePprof, b.o.fixedDuration, b.o.logDir)
	b.r.stFixed, b.r.stFixedErr = b.fixed(ctx, fixedRun{send: send, recv: recv, rate: b.o.stackFixed, pairs: b.o.pairs, body: chatBody,
		prelude: b.o.stackPrelude, measureStart: func() { sampler.start(ctx) }})
	logIf(b.r.stFixedErr)
	b.r.stProfile = sampler.wait()
	logf("steps %v msg/s, %v each, until one does not hold", b.o.stackSteps, b.o.stepDuration)
	b.r.stStep, b.r.stStErr = b.stepped(ctx, send, recv, b.o.stackSteps)
	logIf(b.r.stStErr)
}

func logIf(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		logf("error: %v", err)
	}
}

// loadAverage is /proc/loadavg's first three fields: the machine may be
// shared, and a busy one explains a tail.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
