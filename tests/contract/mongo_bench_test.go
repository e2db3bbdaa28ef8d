package contract_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evchat/chatd/adapters/mongo"
	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// benchCommit is a commit as SendMessage builds it: one MessagePosted.
func benchCommit(stream string, version uint64) ports.Commit {
	now := time.Now()
	return ports.Commit{
		ID: fmt.Sprintf("%s-%d", stream, version), Stream: stream, Version: version,
		Events: []conversation.Event{conversation.MessagePosted{
			Conversation: conversation.ID(stream), Seq: version, MessageID: "m_bench", From: "1001", To: "1002",
			Body: "a message of a typical length, some forty characters", SentAt: now,
		}},
		CommittedAt: now, Origin: "node-1/session-1",
	}
}

// BenchmarkAppend measures one commit appended to the MongoDB-wire server:
// sequential appends to one stream, then parallel appends, one stream per
// goroutine, as concurrent conversations do.
func BenchmarkAppend(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		store, ctx := mongo.NewEventStore(freshDatabase(b)), context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := store.Append(ctx, benchCommit("c_seq", uint64(i+1))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) { benchParallelAppend(b, 1) })
	// 64 conversations at once, as a loaded node has them.
	b.Run("parallel64", func(b *testing.B) { benchParallelAppend(b, 32) })
}

func benchParallelAppend(b *testing.B, perCPU int) {
	store, ctx := mongo.NewEventStore(freshDatabase(b)), context.Background()
	var streams atomic.Int64
	b.SetParallelism(perCPU)
	b.ReportAllocs()
	cpu := newServerCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprintf("c_par%d", streams.Add(1))
		for v := uint64(1); pb.Next(); v++ {
			if err := store.Append(ctx, benchCommit(stream, v)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cpu.report(b)
}

// BenchmarkHistoryPage measures loading a page of 50 commits from a stream
// of 500, among other streams, as History does.
func BenchmarkHistoryPage(b *testing.B) {
	const streams, commits, page = 4, 500, 50
	store, ctx := mongo.NewEventStore(freshDatabase(b)), context.Background()
	for s := range streams {
		for v := uint64(1); v <= commits; v++ {
			if err := store.Append(ctx, benchCommit(fmt.Sprintf("c_hist%d", s), v)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		from := uint64(i%(commits/page))*page + 1
		got, err := store.Load(ctx, "c_hist0", from, from+page-1)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != page {
			b.Fatalf("page from %d holds %d commits, want %d", from, len(got), page)
		}
	}
}
