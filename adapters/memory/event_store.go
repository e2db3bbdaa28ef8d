package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// EventStore keeps every stream in memory, guarded by one lock: appends are
// a map lookup and a slice append, far below any other cost on the path.
type EventStore struct {
	mu      sync.RWMutex
	streams map[string][]ports.Commit
	byID    map[string]ports.Commit
}

var (
	_ ports.EventStore    = (*EventStore)(nil)
	_ ports.StreamScanner = (*EventStore)(nil)
)

// NewEventStore returns an empty store.
func NewEventStore() *EventStore {
	return &EventStore{streams: map[string][]ports.Commit{}, byID: map[string]ports.Commit{}}
}

// Append implements ports.EventStore. The context is checked once the lock
// is held, so an append never lands after its deadline, however long it
// waited for the lock.
func (s *EventStore) Append(ctx context.Context, c ports.Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := gaveUp(ctx, c); err != nil {
		return err
	}
	if _, dup := s.byID[c.ID]; dup {
		return &ports.StoreError{Op: "append", Stream: c.Stream, Version: c.Version, Err: ports.ErrDuplicateCommit}
	}
	stream := s.streams[c.Stream]
	if c.Version != uint64(len(stream))+1 {
		return &ports.StoreError{Op: "append", Stream: c.Stream, Version: c.Version, Err: ports.ErrVersionConflict}
	}
	s.streams[c.Stream] = append(stream, c)
	s.byID[c.ID] = c
	return nil
}

// gaveUp reports the end of the appending caller's context as unavailable;
// the deadline is compared too, since the context's timer may fire a moment
// after it.
func gaveUp(ctx context.Context, c ports.Commit) error {
	err := ctx.Err()
	if deadline, ok := ctx.Deadline(); ok && err == nil && !time.Now().Before(deadline) {
		err = context.DeadlineExceeded
	}
	if err != nil {
		return &ports.StoreError{Op: "append", Stream: c.Stream, Version: c.Version, Err: fmt.Errorf("%w: %w", ports.ErrUnavailable, err)}
	}
	return nil
}

// Load implements ports.EventStore.
func (s *EventStore) Load(_ context.Context, stream string, from, to uint64) ([]ports.Commit, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	commits := s.streams[stream]
	last := uint64(len(commits))
	if to == 0 || to > last {
		to = last
	}
	if from == 0 {
		from = 1
	}
	if from > to {
		return nil, nil
	}
	return append([]ports.Commit(nil), commits[from-1:to]...), nil
}

// FindCommit implements ports.EventStore.
func (s *EventStore) FindCommit(_ context.Context, id string) (ports.Commit, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.byID[id]
	if !ok {
		return ports.Commit{}, &ports.StoreError{Op: "find", Stream: id, Err: ports.ErrCommitNotFound}
	}
	return c, nil
}

// Ping implements ports.EventStore; memory always answers.
func (s *EventStore) Ping(context.Context) error { return nil }

// Scan implements ports.StreamScanner.
func (s *EventStore) Scan(ctx context.Context, fn func(ports.Commit) error) error {
	s.mu.RLock()
	// In name order, which puts a conversation's messages stream, its id,
	// before its changes stream, the id with a suffix.
	names := slices.Sorted(maps.Keys(s.streams))
	streams := make([][]ports.Commit, 0, len(names))
	for _, name := range names {
		streams = append(streams, s.streams[name])
	}
	s.mu.RUnlock()
	for _, commits := range streams {
		for _, c := range commits {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ ports.RecalledEraser = (*EventStore)(nil)

// EraseRecalled implements ports.RecalledEraser.
func (s *EventStore) EraseRecalled(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rewritten := 0
	for stream, changes := range s.streams {
		if err := ctx.Err(); err != nil {
			return rewritten, err
		}
		id, kind := conversation.StreamOf(stream)
		if kind != conversation.StreamChanges {
			continue
		}
		recalled := ports.RecalledSeqs(changes)
		if len(recalled) == 0 {
			continue
		}
		for _, name := range []string{conversation.MessagesStream(id), stream} {
			rewritten += s.eraseIn(name, recalled)
		}
	}
	return rewritten, nil
}

// eraseIn rewrites the commits of stream that hold recalled bodies and
// returns how many; s.mu is held. The stream gets a new slice, since Scan
// reads the old one after the lock is released.
func (s *EventStore) eraseIn(stream string, recalled map[uint64]bool) int {
	commits := slices.Clone(s.streams[stream])
	rewritten := 0
	for i, c := range commits {
		if events, erased := ports.WithoutRecalledBodies(c, recalled); erased {
			c.Events = events
			commits[i], s.byID[c.ID] = c, c
			rewritten++
		}
	}
	if rewritten > 0 {
		s.streams[stream] = commits
	}
	return rewritten
}
