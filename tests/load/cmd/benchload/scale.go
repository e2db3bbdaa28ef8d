package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evchat/chatd/tests/infra"
	"github.com/evchat/chatd/tests/load"
)

// The scale benchmark of issue 15 (`make bench-scale`, benchload -scale):
// N chatd nodes on one broker and one store, one fixed total rate, the
// users spread evenly over the nodes and every message crossing nodes, in
// each delivery mode. What a node pays for delivery is read from its
// chat_delivery_commits_received_total and its CPU time in /proc over the
// same window: routed, it should fall as 1/N; broadcast, stay flat.

// commitsReceivedMetric counts the commits a node's delivery consumer took
// off the bus, whatever the mode.
const commitsReceivedMetric = "chat_delivery_commits_received_total"

type scaleOptions struct {
	modes   []string
	nodes   []int
	rate    float64
	window  time.Duration
	prelude time.Duration
	// warmUp lengthens the first run's prelude: the broker's JVM compiles
	// its hot paths then, and a first row measured without it showed the
	// broker 20-40% busier than the same row measured later.
	warmUp time.Duration
	body   int
}

// scaleResult is one mode at one N; err is what kept it from being
// measured, and the figures stay zero then.
type scaleResult struct {
	mode  string
	nodes int
	// window is how long the counters and CPU times were sampled over.
	window time.Duration
	// received holds each node's commits over the window; hasReceived is
	// false when a node does not expose the metric.
	received    []float64
	hasReceived bool
	// nodeCPU and brokerCPU are in cores (1 is one core busy all along).
	nodeCPU   []float64
	brokerCPU float64
	step      load.StepResult
	// loadAverage is the machine's, as the window ended: the machine is
	// shared, and a busy one explains a row.
	loadAverage string
	err         error
}

// scale runs every mode at every N on one store and broker, started once.
func (b *bench) scale(ctx context.Context, so scaleOptions) []scaleResult {
	var results []scaleResult
	failAll := func(err error) []scaleResult {
		logf("%v", err)
		for _, mode := range so.modes {
			for _, n := range so.nodes {
				results = append(results, scaleResult{mode: mode, nodes: n, err: err})
			}
		}
		return results
	}
	mongo, err := infra.LaunchMongo()
	if err != nil {
		return failAll(fmt.Errorf("MongoDB-wire server: %w", err))
	}
	defer mongo.Close()
	rmq, err := infra.LaunchRocketMQ(b.o.brokerSettings...)
	if err != nil {
		return failAll(fmt.Errorf("RocketMQ: %w", err))
	}
	defer rmq.Close()
	logf("store %s, RocketMQ name server %s, broker %s %v", mongo.URI(), rmq.NamesrvAddr(), rmq.BrokerAddr(), b.o.brokerSettings)
	prelude := so.prelude + so.warmUp
	for _, mode := range so.modes {
		for _, n := range so.nodes {
			if ctx.Err() != nil {
				results = append(results, scaleResult{mode: mode, nodes: n, err: ctx.Err()})
				continue
			}
			res := b.scaleOnce(ctx, so, prelude, mongo, rmq, mode, n)
			prelude = so.prelude
			logf("%s, %d nodes: %s", mode, n, strings.Join(scaleCells(res), " | "))
			results = append(results, res)
		}
	}
	return results
}

// scaleOnce starts n nodes in mode, offers the rate over them and stops
// them: each N starts fresh, so no idle node of a larger run consumes.
func (b *bench) scaleOnce(ctx context.Context, so scaleOptions, prelude time.Duration, mongo *infra.Mongo, rmq *infra.RocketMQ, mode string, n int) scaleResult {
	res := scaleResult{mode: mode, nodes: n}
	logf("== %s delivery, %d nodes, %.0f msg/s", mode, n, so.rate)
	nodes := make([]*infra.Chatd, 0, n)
	names := make([]string, 0, n)
	defer func() {
		var wg sync.WaitGroup
		for i, node := range nodes {
			wg.Go(func() { b.stop(node, names[i]) })
		}
		wg.Wait()
	}()
	urls := make([]string, 0, n)
	for i := range n {
		// A node name of its own per run gives a routed node a consumer
		// group of its own, which starts at the topic's end.
		name := fmt.Sprintf("scale-%s-n%d-node%d", mode, n, i+1)
		env := []string{"CHAT_MONGO_URI=" + mongo.URI(), "CHAT_MONGO_DB=scale", "CHAT_ROCKETMQ_NAMESRV=" + rmq.NamesrvAddr(),
			"CHAT_DELIVERY_MODE=" + mode, "rocketmq.client.localOffsetStoreDir=" + filepath.Join(b.o.logDir, "offsets-"+name)}
		node, err := b.launch(name, env)
		if err != nil {
			res.err = err
			return res
		}
		nodes, names, urls = append(nodes, node), append(names, name), append(urls, "http://"+node.Addr())
	}
	s := &scaleSampler{nodes: nodes, urls: urls, brokerPid: rmq.BrokerPid(), window: so.window, done: make(chan struct{})}
	rep, err := load.RunRate(ctx, load.RateConfig{NodeURLs: urls, Pairs: b.o.pairs,
		Steps: []load.Step{{Rate: so.rate, Duration: so.window}}, Prelude: load.Step{Rate: so.rate, Duration: prelude},
		MeasureStart: func() { s.start(ctx) }, Drain: b.o.drain, P99Limit: b.o.p99Limit, BodySize: so.body, Log: os.Stderr})
	s.wait(&res)
	if res.err == nil {
		res.err = err
	}
	if rep != nil && len(rep.Steps) > 0 {
		res.step = rep.Steps[0]
	} else if res.err == nil {
		res.err = fmt.Errorf("no measured step")
	}
	return res
}

// scaleSampler reads the nodes' counters and CPU times and the broker's CPU
// time at both ends of the measured window.
type scaleSampler struct {
	nodes     []*infra.Chatd
	urls      []string
	brokerPid int
	window    time.Duration

	started bool
	done    chan struct{}
	result  scaleResult
}

// reading is one end of the window.
type reading struct {
	at        time.Time
	received  []float64
	found     bool
	nodeTicks []int64
	broker    int64
}

// start is load.RateConfig's MeasureStart: it returns at once and samples
// in the background until the window is over.
func (s *scaleSampler) start(ctx context.Context) {
	s.started = true
	go func() {
		defer close(s.done)
		before, err := s.read(ctx)
		if err != nil {
			s.result.err = err
			return
		}
		select {
		case <-ctx.Done():
			s.result.err = ctx.Err()
			return
		case <-time.After(s.window):
		}
		after, err := s.read(ctx)
		if err != nil {
			s.result.err = err
			return
		}
		s.result.window = after.at.Sub(before.at)
		s.result.hasReceived = before.found && after.found
		secs := s.result.window.Seconds()
		for i := range s.nodes {
			s.result.received = append(s.result.received, after.received[i]-before.received[i])
			s.result.nodeCPU = append(s.result.nodeCPU, float64(after.nodeTicks[i]-before.nodeTicks[i])/userHZ/secs)
		}
		s.result.brokerCPU = float64(after.broker-before.broker) / userHZ / secs
		s.result.loadAverage = loadAverage()
	}()
}

// wait copies what was sampled into res once the window is over.
func (s *scaleSampler) wait(res *scaleResult) {
	if !s.started {
		return
	}
	<-s.done
	res.window, res.received, res.hasReceived = s.result.window, s.result.received, s.result.hasReceived
	res.nodeCPU, res.brokerCPU, res.loadAverage, res.err = s.result.nodeCPU, s.result.brokerCPU, s.result.loadAverage, s.result.err
}

// read takes one reading; a node without the metric makes found false,
// which the table shows as n/a.
func (s *scaleSampler) read(ctx context.Context) (reading, error) {
	r := reading{at: time.Now(), found: true}
	var err error
	if r.broker, _, err = (component{pid: s.brokerPid}).cpuTicks(); err != nil {
		return r, fmt.Errorf("broker CPU: %w", err)
	}
	for i, node := range s.nodes {
		ticks, _, err := component{pid: node.Pid()}.cpuTicks()
		if err != nil {
			return r, fmt.Errorf("node %d CPU: %w", i+1, err)
		}
		v, found, err := load.Counter(ctx, s.urls[i], commitsReceivedMetric)
		if err != nil {
			return r, fmt.Errorf("node %d %s: %w", i+1, commitsReceivedMetric, err)
		}
		r.nodeTicks, r.received = append(r.nodeTicks, ticks), append(r.received, v)
		r.found = r.found && found
	}
	return r, nil
}

// runScale runs the scale benchmark and prints its table; the exit status
// is non-zero when a run could not be measured.
func (b *bench) runScale(ctx context.Context) int {
	results := b.scale(ctx, *b.o.scale)
	printScaleTable(os.Stdout, *b.o.scale, b.r.machine, b.r.loadBefore, loadAverage(), results)
	for _, r := range results {
		if r.err != nil {
			return 1
		}
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 {
			return nil, fmt.Errorf("count %q: want a whole number of at least 2", f)
		}
		out = append(out, n)
	}
	return out, nil
}
