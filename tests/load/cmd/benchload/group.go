package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/evchat/chatd/tests/infra"
	"github.com/evchat/chatd/tests/load"
)

// The group mode of issue 18 (`make bench-group`, benchload -group): one
// sender posts to a group whose members are spread over two nodes of the
// real stack, and each message's latency is the time until its last
// member has it. A group message is one commit, one half message and one
// store append whatever the group's size; what grows with the members is
// the frames the nodes write, so the CPU is given per message and per
// frame delivered.

type groupOptions struct {
	members  []int
	rate     float64
	window   time.Duration
	prelude  time.Duration
	bodySize int
}

// groupRow is one group size's run; err is what kept it from being measured.
type groupRow struct {
	members int
	res     *load.GroupResult
	cpu     []componentCPU
	err     error
}

// runGroups measures each group size on one real stack and prints the table.
func (b *bench) runGroups(ctx context.Context) int {
	rows, err := b.groups(ctx, *b.o.group)
	if err != nil {
		logf("%v", err)
		return 1
	}
	printGroupTable(os.Stdout, *b.o.group, b.r.machine, loadAverage(), rows)
	for _, r := range rows {
		if r.err != nil {
			return 1
		}
	}
	return 0
}

func (b *bench) groups(ctx context.Context, g groupOptions) ([]groupRow, error) {
	mongo, err := infra.LaunchMongo()
	if err != nil {
		return nil, fmt.Errorf("MongoDB-wire server: %w", err)
	}
	defer mongo.Close()
	rmq, err := infra.LaunchRocketMQ(b.o.brokerSettings...)
	if err != nil {
		return nil, fmt.Errorf("RocketMQ: %w", err)
	}
	defer rmq.Close()
	var urls []string
	components := []component{
		{name: "PostgreSQL", pid: mongo.Postgres().Pid(), withChildren: true},
		{name: "FerretDB", pid: mongo.Pid()},
		{name: "RocketMQ broker", pid: rmq.BrokerPid()},
	}
	for i := range 2 {
		name := fmt.Sprintf("group-node%d", i+1)
		env := []string{"CHAT_MONGO_URI=" + mongo.URI(), "CHAT_MONGO_DB=groups", "CHAT_ROCKETMQ_NAMESRV=" + rmq.NamesrvAddr(),
			"CHAT_MAX_GROUP_MEMBERS=" + fmt.Sprint(max(256, slices.Max(g.members))),
			"rocketmq.client.localOffsetStoreDir=" + filepath.Join(b.o.logDir, "offsets-"+name)}
		n, err := b.launch(name, env)
		if err != nil {
			return nil, err
		}
		defer b.stop(n, name) //nolint:gocritic // deferInLoop: both nodes serve every group size
		urls = append(urls, "http://"+n.Addr())
		components = append(components, component{name: fmt.Sprintf("chatd node %d", i+1), pid: n.Pid()})
	}
	components = append(components, loadClient())
	var rows []groupRow
	for _, members := range g.members {
		logf("== group of %d members over 2 nodes, %.0f msg/s for %v after %v unmeasured", members, g.rate, g.window, g.prelude)
		cpu := newCPUSampler(g.window, components...)
		res, err := load.RunGroup(ctx, load.GroupConfig{NodeURLs: urls, Members: members, Rate: g.rate, Duration: g.window,
			Prelude: g.prelude, MeasureStart: func() { cpu.start(ctx) }, Drain: b.o.drain, BodySize: g.bodySize})
		row := groupRow{members: members, res: res, cpu: cpu.wait(), err: err}
		logIf(err)
		if res != nil {
			logf("to the last member: %s; incomplete %d", res.ToLast, res.Incomplete)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func printGroupTable(w io.Writer, g groupOptions, machine, loadAfter string, rows []groupRow) {
	fmt.Fprintf(w, "\nGroup delivery (issue 18): one sender, members spread over 2 nodes of the real stack, %.0f msg/s for %v, %d-byte bodies\n", g.rate, g.window, g.bodySize)
	fmt.Fprintf(w, "machine: %s; load average after: %s\n\n", machine, loadAfter)
	fmt.Fprintln(w, "| members | messages | frames delivered | incomplete | to first member p50 | to last member p50 | p99 | max | all CPU per message | per frame |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		if r.err != nil || r.res == nil {
			fmt.Fprintf(w, "| %d | not measured: %v |||||||||\n", r.members, r.err)
			continue
		}
		res := r.res
		perMsg, perFrame := "n/a", "n/a"
		if ms, ok := (cpuCapture{cpu: r.cpu, delivered: res.Sent, over: g.window}).total(); ok {
			perMsg = fmt.Sprintf("%.2f ms", ms)
		}
		if ms, ok := (cpuCapture{cpu: r.cpu, delivered: res.Frames, over: g.window}).total(); ok {
			perFrame = fmt.Sprintf("%.3f ms", ms)
		}
		fmt.Fprintf(w, "| %d | %d | %d | %d | %s | %s | %s | %s | %s | %s |\n", r.members, res.Sent, res.Frames, res.Incomplete,
			load.Ms(res.ToFirst.P50), load.Ms(res.ToLast.P50), load.Ms(res.ToLast.P99), load.Ms(res.ToLast.Max), perMsg, perFrame)
	}
	for _, r := range rows {
		if len(r.cpu) == 0 {
			continue
		}
		var parts []string
		for _, c := range r.cpu {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", c.label(), c.cores*100))
		}
		fmt.Fprintf(w, "\n%d members, CPU: %s\n", r.members, strings.Join(parts, ", "))
	}
}
