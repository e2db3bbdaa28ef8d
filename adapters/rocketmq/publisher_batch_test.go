package rocketmq

import (
	"slices"
	"strings"
	"testing"

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
