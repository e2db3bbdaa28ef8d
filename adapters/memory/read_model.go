package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// ReadModel keeps conversation views in memory, indexed by the users whose
// lists they belong in (ports.ConversationView.Users).
type ReadModel struct {
	mu     sync.RWMutex
	views  map[string]ports.ConversationView
	byUser map[user.ID][]string
}

var _ ports.ReadModel = (*ReadModel)(nil)

// NewReadModel returns an empty read model.
func NewReadModel() *ReadModel {
	return &ReadModel{views: map[string]ports.ConversationView{}, byUser: map[user.ID][]string{}}
}

// GetMany implements ports.ReadModel.
func (r *ReadModel) GetMany(_ context.Context, conversations []string) (map[string]ports.ConversationView, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]ports.ConversationView, len(conversations))
	for _, id := range conversations {
		if v, ok := r.views[id]; ok {
			out[id] = v.Clone()
		}
	}
	return out, nil
}

// SaveMany implements ports.ReadModel.
func (r *ReadModel) SaveMany(_ context.Context, saves []ports.ViewSave) ([]error, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	errs := make([]error, len(saves))
	for i, s := range saves {
		errs[i] = r.save(s.View, s.Expected)
	}
	return errs, nil
}

func (r *ReadModel) save(v ports.ConversationView, expected uint64) error {
	old, ok := r.views[v.Conversation]
	if (ok && old.Revision() != expected) || (!ok && expected != 0) {
		return ports.ErrRevisionConflict
	}
	was, is := old.Users(), v.Users()
	for _, u := range was {
		if !slices.Contains(is, u) {
			r.byUser[u] = slices.DeleteFunc(r.byUser[u], func(id string) bool { return id == v.Conversation })
		}
	}
	for _, u := range is {
		if !slices.Contains(was, u) {
			r.byUser[u] = append(r.byUser[u], v.Conversation)
		}
	}
	r.views[v.Conversation] = v.Clone()
	return nil
}

// ListFor implements ports.ReadModel.
func (r *ReadModel) ListFor(_ context.Context, u user.ID, limit int) ([]ports.ConversationView, error) {
	r.mu.RLock()
	out := make([]ports.ConversationView, 0, len(r.byUser[u]))
	for _, id := range r.byUser[u] {
		out = append(out, r.views[id].Clone())
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b ports.ConversationView) int { return b.LastActivity.Compare(a.LastActivity) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Reset implements ports.ReadModel.
func (r *ReadModel) Reset(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.views = map[string]ports.ConversationView{}
	r.byUser = map[user.ID][]string{}
	return nil
}
