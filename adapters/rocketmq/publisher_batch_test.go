package rocketmq

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/evchat/chatd/adapters/txbatch"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// TestBatchMessage: a batch's message carries every commit with its own
// route, keys them all, is a message when any commit is one, reaches the
// union of its commits' routes, and goes to the first commit's queue.
func TestBatchMessage(t *testing.T) {
	member := func(stream string, route ports.Route) *txbatch.Member {
		c := ports.Commit{ID: stream + "-1", Stream: stream, Version: 1, Route: route}
		body, err := encodeCommit(c, nodesProperty(route, "pub"))
		if err != nil {
			t.Fatal(err)
		}
		return &txbatch.Member{Commit: c, Body: body}
	}
	receipts := conversation.ReceiptsStream("c1")
	tests := []struct {
		name      string
		members   []*txbatch.Member
		wantTag   string
		wantNodes string
	}{
		{"a lone receipt", []*txbatch.Member{member(receipts, ports.RouteTo("n1"))}, tagReceipt, ",n1,pub,"},
		{"a receipt and a message", []*txbatch.Member{member(receipts, ports.RouteTo("n1")), member("c1", ports.RouteTo("n2", "n1"))},
			tagMessage, ",n1,n2,pub,"},
		{"one commit for every node", []*txbatch.Member{member("c1", ports.RouteTo("n1")), member("c2", ports.RouteToAll())},
			tagMessage, "all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := batchMessage("topic", "pub", tt.members)
			if msg.GetTags() != tt.wantTag || msg.GetProperty(propNodes) != tt.wantNodes {
				t.Errorf("tag %q nodes %q, want %q %q", msg.GetTags(), msg.GetProperty(propNodes), tt.wantTag, tt.wantNodes)
			}
			if msg.GetShardingKey() != shardingKeyOf(tt.members[0].Commit) {
				t.Errorf("sharding key %q, want the first commit's", msg.GetShardingKey())
			}
			ws, err := decodeWire(msg.Body)
			if err != nil {
				t.Fatal(err)
			}
			var ids, keys []string
			for i, w := range ws {
				ids = append(ids, w.ID)
				keys = append(keys, tt.members[i].Commit.ID)
				if want := nodesProperty(tt.members[i].Commit.Route, "pub"); w.Nodes != want {
					t.Errorf("commit %s carries nodes %q, want %q", w.ID, w.Nodes, want)
				}
			}
			if !slices.Equal(ids, keys) || !slices.Equal(strings.Fields(msg.GetKeys()), keys) {
				t.Errorf("body holds %v and keys %v, want %v", ids, msg.GetKeys(), keys)
			}
		})
	}
}

func TestNodesReach(t *testing.T) {
	tests := []struct {
		name, nodes, node string
		want              bool
	}{
		{"no value, as before batches", "", "n1", true},
		{"every node", "all", "n1", true},
		{"listed", ",n2,n1,", "n1", true},
		{"not listed", ",n2,", "n1", false},
		{"a longer id that contains it", ",n10,", "n1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodesReach(tt.nodes, tt.node); got != tt.want {
				t.Errorf("nodesReach(%q, %q) = %v", tt.nodes, tt.node, got)
			}
		})
	}
}

// losingHandler stores every commit but one, whose version race it loses,
// and counts the checks of stored commits.
type losingHandler struct {
	loser  string
	checks atomic.Int32
}

func (h *losingHandler) ExecuteLocal(_ context.Context, c ports.Commit) (ports.TxState, error) {
	if c.ID == h.loser {
		return ports.TxRollback, ports.ErrVersionConflict
	}
	return ports.TxCommit, nil
}

func (h *losingHandler) Check(context.Context, ports.Commit) ports.TxState {
	h.checks.Add(1)
	return ports.TxCommit
}

// TestACheckbackOfABatchThisProducerRolledBackPublishesNothing: the
// producer publishes a rolled-back batch's stored commits again itself; a
// checkback of that batch (its end lost, or late) must not publish them
// once more.
func TestACheckbackOfABatchThisProducerRolledBackPublishesNothing(t *testing.T) {
	h := &losingHandler{loser: "m2"}
	p := &Publisher{cfg: DefaultConfig(), handler: h, log: slog.New(slog.DiscardHandler), tokens: "test."}
	p.selector = newBrokerFailover(time.Minute, time.Now)
	tx := &scriptedProducer{p: p, outcomes: []sendOutcome{{status: primitive.SendOK}}}
	p.tx = tx
	var commits []ports.Commit
	for v := uint64(1); v <= 3; v++ {
		commits = append(commits, ports.Commit{ID: "m" + strconv.FormatUint(v, 10), Stream: "conv", Version: v, CommittedAt: time.Now()})
	}
	out := p.PublishBatch(context.Background(), commits)
	if out[0].State != ports.TxCommit || out[1].State != ports.TxRollback || out[2].State != ports.TxCommit || len(tx.halves) != 2 {
		t.Fatalf("outcomes %+v in %d half messages, want the survivors committed by a second one", out, len(tx.halves))
	}
	checked := h.checks.Load()
	// The broker checks back with the half message as it stored it.
	first := &primitive.MessageExt{}
	first.Topic, first.Body = tx.halves[0].Topic, tx.halves[0].Body
	first.WithTag(tx.halves[0].GetTags())
	first.WithProperty(propFlight, tx.halves[0].GetProperty(propFlight))
	if state := (listener{p}).CheckLocalTransaction(first); state != primitive.RollbackMessageState {
		t.Errorf("checkback of the rolled-back batch: %v, want rollback", state)
	}
	if more := h.checks.Load() - checked; more != 0 {
		t.Errorf("checkback of the rolled-back batch checked %d commits, to publish the stored ones again", more)
	}
}
