package contract_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/rocketmq"
	"github.com/evchat/chatd/ports"
	"github.com/evchat/chatd/tests/contract"
	"github.com/evchat/chatd/tests/infra"
)

// The broker starts once per test binary, on the first case that needs it;
// every case gets a topic and groups of its own.
var rocketServer struct {
	once sync.Once
	mq   *infra.RocketMQ
	err  error
}

func broker(t testing.TB) *infra.RocketMQ {
	t.Helper()
	rocketServer.once.Do(func() {
		rocketServer.mq, rocketServer.err = infra.LaunchRocketMQ()
		if rocketServer.err == nil {
			onExit(rocketServer.mq.Close)
		}
	})
	if rocketServer.err != nil {
		t.Fatalf("RocketMQ: %v", rocketServer.err)
	}
	return rocketServer.mq
}

// caseConfig is one case's adapter configuration, kept so that the crash
// case's producer joins the same producer group as the case's bus.
var caseConfigs sync.Map // *testing.T -> rocketmq.Config

func caseConfig(t *testing.T) rocketmq.Config {
	t.Helper()
	mq := broker(t)
	suffix := strings.ToLower(rand.Text()[:10])
	cfg := rocketmq.DefaultConfig()
	cfg.NameServers = []string{mq.NamesrvAddr()}
	cfg.Topic = "contract_" + suffix
	cfg.ProducerGroup = "contract_tx_" + suffix
	cfg.Retries, cfg.SendTimeout = 2, 3*time.Second
	if err := mq.CreateTopic(cfg.Topic); err != nil {
		t.Fatal(err)
	}
	caseConfigs.Store(t, cfg)
	return cfg
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRocketMQTransactionalPublisher(t *testing.T) {
	rocketmq.RouteLogs(slog.New(slog.NewTextHandler(os.Stderr, nil)), slog.LevelError)
	features := contract.TxBusFeatures{
		// The broker checks back only producers that have sent it a
		// heartbeat, and the client sends one every 30 s.
		Settle:        75 * time.Second,
		Quiet:         3 * time.Second,
		CrashProducer: crashProducer,
		Routes:        true,
	}
	contract.TestTransactionalPublisher(t, features, func(t *testing.T, h ports.TransactionHandler, nodes int) contract.TxBus {
		cfg := caseConfig(t)
		cfg.NodeID = "publisher_" + strings.ToLower(rand.Text()[:8])
		pub, err := rocketmq.NewPublisher(cfg, h, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		subs := make([]*warmedSubscriber, nodes)
		bus := contract.TxBus{Publisher: pub}
		for i := range subs {
			node := cfg
			node.NodeID = "node_" + strings.ToLower(rand.Text()[:8])
			s, err := rocketmq.NewSubscriber(node, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			subs[i] = &warmedSubscriber{Subscriber: s}
			bus.Nodes = append(bus.Nodes, subs[i])
			bus.NodeIDs = append(bus.NodeIDs, node.NodeID)
		}
		bus.Start = func(t *testing.T) {
			// As a node starts: the first send makes the producer known to
			// the broker, which only then can ask it for checkback.
			started(t, pub.Start, pub.Stop, pub.EnsureTopic)
			for _, s := range subs {
				if err := s.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Stop(context.Background()) })
			}
			warmUp(t, cfg, subs)
		}
		return bus
	})
}

// started starts a client, stops it when the case ends, and gives ready
// 60 s to succeed: the client's warm-up, or its topic's route.
func started(t *testing.T, start, stop, ready func(context.Context) error) {
	t.Helper()
	if err := start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ready(ctx); err != nil {
		t.Fatal(err)
	}
}

// warmedSubscriber hides the warm-up commits from the case's handlers. A
// consumer that has not finished its first rebalance starts at the end of
// the topic and would miss a case's message sent meanwhile, so a case
// starts only once every subscription has seen a warm-up commit.
type warmedSubscriber struct {
	*rocketmq.Subscriber
	mu      sync.Mutex
	ready   []bool
	cluster []bool
}

const warmUpPrefix = "warmup-"

func (w *warmedSubscriber) wrap(h ports.CommitHandler, cluster bool) ports.CommitHandler {
	w.mu.Lock()
	slot := len(w.ready)
	w.ready = append(w.ready, false)
	w.cluster = append(w.cluster, cluster)
	w.mu.Unlock()
	return func(ctx context.Context, commits []ports.Commit) error {
		var rest []ports.Commit
		for _, c := range commits {
			if strings.HasPrefix(c.ID, warmUpPrefix) {
				w.mu.Lock()
				w.ready[slot] = true
				w.mu.Unlock()
				continue
			}
			rest = append(rest, c)
		}
		if len(rest) == 0 {
			return nil
		}
		return h(ctx, rest)
	}
}

func (w *warmedSubscriber) Deliver(name string, h ports.CommitHandler) {
	w.Subscriber.Deliver(name, w.wrap(h, false))
}

func (w *warmedSubscriber) Cluster(group string, h ports.CommitHandler) {
	w.Subscriber.Cluster(group, w.wrap(h, true))
}

// warmUp publishes committed warm-up commits until every delivery
// subscription, and for each cluster group one of its members, saw one.
func warmUp(t *testing.T, cfg rocketmq.Config, subs []*warmedSubscriber) {
	t.Helper()
	cfg.NodeID = "warmup_" + strings.ToLower(rand.Text()[:8])
	cfg.ProducerGroup += "_warmup"
	pub, err := rocketmq.NewPublisher(cfg, alwaysCommit{}, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pub.Stop(context.Background()) }()
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; !allWarm(subs); i++ {
		if time.Now().After(deadline) {
			t.Fatal("subscribers did not receive a warm-up commit within 60 s")
		}
		// Several streams spread the warm-ups over the topic's queues.
		c := ports.Commit{ID: warmUpPrefix + rand.Text(), Stream: "c_warmup" + rand.Text()[:6], Version: 1, CommittedAt: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = pub.Publish(ctx, c)
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
}

// allWarm: every broadcast slot, and cluster slots of one group across the
// nodes together (a group's commit lands on one member only).
func allWarm(subs []*warmedSubscriber) bool {
	if len(subs) == 0 {
		return true
	}
	slots := len(subs[0].ready)
	for slot := 0; slot < slots; slot++ {
		anyWarm, allWarm := false, true
		for _, s := range subs {
			s.mu.Lock()
			r := s.ready[slot]
			s.mu.Unlock()
			anyWarm = anyWarm || r
			allWarm = allWarm && r
		}
		if !allWarm && !(anyWarm && subs[0].cluster[slot]) {
			return false
		}
	}
	return true
}

type alwaysCommit struct{}

func (alwaysCommit) ExecuteLocal(context.Context, ports.Commit) (ports.TxState, error) {
	return ports.TxCommit, nil
}
func (alwaysCommit) Check(context.Context, ports.Commit) ports.TxState { return ports.TxCommit }

// crashProducer runs cmd/crashproducer in the case's producer group and
// kills it with SIGKILL once its local transaction has (or has not yet)
// stored the batch's commits.
func crashProducer(t *testing.T, commits []ports.Commit, afterLocalCommit bool) {
	t.Helper()
	v, ok := caseConfigs.Load(t)
	if !ok {
		t.Fatal("crash case without a bus")
	}
	cfg := v.(rocketmq.Config)
	stage := "before"
	if afterLocalCommit {
		stage = "after"
	}
	specs := make([]map[string]any, len(commits))
	for i, c := range commits {
		specs[i] = map[string]any{"id": c.ID, "stream": c.Stream, "version": c.Version}
	}
	spec, _ := json.Marshal(specs)
	cmd := exec.Command(crashProducerBinary(t), "-namesrv", cfg.NameServers[0], "-topic", cfg.Topic,
		"-group", cfg.ProducerGroup, "-commits", string(spec), "-stage", stage)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	select {
	case got := <-line:
		if got != "local transaction "+stage {
			t.Fatalf("crash producer said %q", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("crash producer did not reach its local transaction within 60 s")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

var crashBinary struct {
	once sync.Once
	path string
	err  error
}

func crashProducerBinary(t *testing.T) string {
	t.Helper()
	crashBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "crashproducer")
		if err != nil {
			crashBinary.err = err
			return
		}
		onExit(func() { _ = os.RemoveAll(dir) })
		crashBinary.path = filepath.Join(dir, "crashproducer")
		out, err := exec.Command("go", "build", "-o", crashBinary.path, "./crashproducer").CombinedOutput()
		if err != nil {
			crashBinary.err = err
			t.Logf("go build ./crashproducer: %s", out)
		}
	})
	if crashBinary.err != nil {
		t.Fatalf("crash producer build: %v", crashBinary.err)
	}
	return crashBinary.path
}
