package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evchat/chatd/tests/infra"
	"github.com/evchat/chatd/tests/load"
)

// chatBody is the message body size of the runs of issue 7's figures.
const chatBody = 64

// tailLoad is issue 16's load for the embedded node's tail: few pairs,
// a low open-loop rate and 100-byte messages, where the latency is what a
// node adds to a bare relay rather than a queue for a busy core.
type tailLoad struct {
	rate  float64
	pairs int
	body  int
}

// relayBinary is bin/wsrelay, built next to bin/chatd by `make bench-load`.
func relayBinary(chatdBin string) (string, error) {
	bin := filepath.Join(filepath.Dir(chatdBin), "wsrelay")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s missing (%v): run `go build -o %s ./tests/load/cmd/wsrelay` or `make bench-load`", bin, err, bin)
	}
	return bin, nil
}

// embedded measures the embedded node's floor, the bare relay, then one
// node on the in-memory store and in-process bus: its tail at the relay's
// load, a fixed rate and the steps.
func (b *bench) embedded(ctx context.Context) {
	logf("== embedded node's floor: bare gorilla/websocket relay")
	b.r.relayTail, b.r.relayCPU, b.r.relayTailErr = b.relayTail(ctx)
	logIf(b.r.relayTailErr)

	logf("== embedded default, one node")
	n, err := b.launch("embedded", nil)
	if err != nil {
		b.r.embFixedErr, b.r.embStErr, b.r.embTailErr = err, err, err
		return
	}
	defer b.stop(n, "embedded")
	url := "http://" + n.Addr()
	node := component{name: "chatd embedded node", pid: n.Pid()}

	t := b.o.tail
	logf("tail: %.0f msg/s over %d pairs, %d-byte bodies, for %v after %v unmeasured", t.rate, t.pairs, t.body, b.o.fixedDuration, embeddedPrelude)
	cpu, startCPU := b.measuredCPU(ctx, node, loadClient())
	b.r.embTail, b.r.embTailErr = b.fixed(ctx, fixedRun{send: url, recv: url, rate: t.rate, pairs: t.pairs, body: t.body,
		prelude: embeddedPrelude, measureStart: startCPU})
	b.r.embTailCPU = cpu.wait()
	logIf(b.r.embTailErr)

	logf("fixed %.0f msg/s for %v after %v unmeasured", b.o.embeddedFixed, b.o.fixedDuration, embeddedPrelude)
	cpu, startCPU = b.measuredCPU(ctx, node, loadClient())
	b.r.embFixed, b.r.embFixedErr = b.fixed(ctx, fixedRun{send: url, recv: url, rate: b.o.embeddedFixed, pairs: b.o.pairs, body: chatBody,
		prelude: embeddedPrelude, measureStart: startCPU})
	b.r.embFixedCPU = cpu.wait()
	logIf(b.r.embFixedErr)

	logf("steps %v msg/s, %v each, until one does not hold", b.o.embeddedSteps, b.o.stepDuration)
	b.r.embStep, b.r.embStErr = b.stepped(ctx, url, url, b.o.embeddedSteps)
	logIf(b.r.embStErr)
}

// relayTail runs the tail load on the relay, in a process of its own
// started the way a node is (it reads CHAT_HTTP_ADDR and serves /healthz).
func (b *bench) relayTail(ctx context.Context) (*load.RateReport, []componentCPU, error) {
	bin, err := relayBinary(b.bin)
	if err != nil {
		return nil, nil, err
	}
	relay, err := infra.LaunchChatd(bin, "relay", loopbackAddr(), b.o.logDir, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: %w", err)
	}
	defer b.stop(relay, "relay")
	logf("relay (pid %d) serving http://%s", relay.Pid(), relay.Addr())
	url := "http://" + relay.Addr()
	t := b.o.tail
	logf("tail: %.0f msg/s over %d pairs, %d-byte bodies, for %v after %v unmeasured", t.rate, t.pairs, t.body, b.o.fixedDuration, embeddedPrelude)
	cpu, startCPU := b.measuredCPU(ctx, component{name: "relay (gorilla/websocket)", pid: relay.Pid()}, loadClient())
	rep, err := b.fixed(ctx, fixedRun{send: url, recv: url, rate: t.rate, pairs: t.pairs, body: t.body,
		prelude: embeddedPrelude, measureStart: startCPU})
	return rep, cpu.wait(), err
}
