// Command crashproducer is a transactional producer that dies mid-way, for
// the contract cases "a producer killed during its transaction": it
// publishes commits as one batch (one half message) through
// adapters/rocketmq and, inside the local transaction, prints how far it got
// and blocks until the test kills it with SIGKILL, so the broker never hears
// how the transaction ended and must ask checkback.
//
// Usage: crashproducer -namesrv ADDR -topic T -group G -commits JSON -stage before|after
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/evchat/chatd/adapters/rocketmq"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// stalling never ends the transaction: "after" stands for a producer that
// stored its commit and died before telling the broker, "before" for one
// that died before storing anything.
// The local transactions of a batch run side by side; the line is
// printed once.
type stalling struct {
	stage string
	once  *sync.Once
}

func (s stalling) ExecuteLocal(context.Context, ports.Commit) (ports.TxState, error) {
	s.once.Do(func() { fmt.Println("local transaction " + s.stage) })
	select {}
}

func (stalling) Check(context.Context, ports.Commit) ports.TxState { return ports.TxUnknown }

func main() {
	namesrv := flag.String("namesrv", "", "name server address")
	topic := flag.String("topic", "", "topic")
	group := flag.String("group", "", "producer group")
	commitsJSON := flag.String("commits", "", "the batch's commits: [{id, stream, version}]")
	stage := flag.String("stage", "after", "where the producer dies: before or after its local commit")
	flag.Parse()

	var specs []struct {
		ID      string `json:"id"`
		Stream  string `json:"stream"`
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal([]byte(*commitsJSON), &specs); err != nil {
		fail(err)
	}
	cfg := rocketmq.DefaultConfig()
	cfg.NameServers, cfg.Topic, cfg.ProducerGroup = []string{*namesrv}, *topic, *group
	cfg.NodeID = fmt.Sprintf("crashproducer-%d", os.Getpid())
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	rocketmq.RouteLogs(logger, slog.LevelWarn)
	p, err := rocketmq.NewPublisher(cfg, stalling{stage: *stage, once: &sync.Once{}}, logger)
	if err != nil {
		fail(err)
	}
	if err := p.Start(context.Background()); err != nil {
		fail(err)
	}
	commits := make([]ports.Commit, len(specs))
	for i, spec := range specs {
		commits[i] = ports.Commit{ID: spec.ID, Stream: spec.Stream, Version: spec.Version, CommittedAt: time.Now(),
			Events: []conversation.Event{conversation.MessagePosted{Conversation: "c_crash", Seq: spec.Version,
				MessageID: "m_crash", From: "alice", To: "bob", Body: "crash", SentAt: time.Now().UTC()}}}
	}
	for _, out := range p.PublishBatch(context.Background(), commits) {
		if out.Err != nil {
			fail(out.Err)
		}
	}
	fail(fmt.Errorf("the transaction ended, but it was meant to stall"))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "crashproducer:", err)
	os.Exit(1)
}
