package application

import "sync"

// settledCommits remembers where recent commits are stored, so that
// checkback answers for them without reading the store.
//
// A broker checks back every half message it has not seen ended within its
// transaction timeout, and asks again every check interval until it gets an
// answer; rocketmq-client-go answers one check at a time. In the failover
// suite, after a master's restart and a node's death, 2,200 checks queued on
// one node within two minutes, most of them for commits that node had
// itself stored, each a store read on a store already slowed by the fault:
// a sync on that node then took 45 s. Where a commit is stored never
// changes once it is, so the answer can be kept; only "stored" is kept,
// never "absent", which a later attempt of the same command may change.
type settledCommits struct {
	mu    sync.Mutex
	where map[string]commitPlace
	// order is a ring of the ids in where, oldest at next, for eviction.
	order []string
	next  int
}

// commitPlace is where a commit id is stored.
type commitPlace struct {
	stream  string
	version uint64
}

// maxSettledCommits bounds the memory to about 10 MB: well over a
// transaction timeout of commits at thousands a second.
const maxSettledCommits = 1 << 16

func newSettledCommits(capacity int) *settledCommits {
	return &settledCommits{where: make(map[string]commitPlace, capacity), order: make([]string, capacity)}
}

// stored remembers that id is stored at place.
func (s *settledCommits) stored(id string, place commitPlace) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.where[id]; known {
		return
	}
	if old := s.order[s.next]; old != "" {
		delete(s.where, old)
	}
	s.order[s.next] = id
	s.next = (s.next + 1) % len(s.order)
	s.where[id] = place
}

// find returns where id is stored, if remembered.
func (s *settledCommits) find(id string) (commitPlace, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	place, ok := s.where[id]
	return place, ok
}
