package application

import (
	"context"
	"fmt"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/ports"
)

// replayBatch bounds the views a replay holds before saving them, so that
// memory stays flat however large the store is.
const replayBatch = 1024

// Replay rebuilds the read model from the event store: it empties rm, then
// folds every commit the scanner yields into its conversation's view with
// Apply, the projector's own fold, so the result equals what the live
// projection built. It scans the store three times. First the changes
// streams alone, so that a group's members are in its view before its
// messages, as the live projector folds them (foldOrder); then the other
// streams; last the changes again, for their edits and recalls alone
// (refoldMessageChanges), since an edit folded before its message could not
// show in the view's last message. Streams may otherwise come in any order
// relative to each other; a view saved in an earlier batch is read back
// when more of its commits arrive.
// Run it while no projector writes to rm (`chatd replay` is an offline
// command): a concurrent save shows up as ports.ErrRevisionConflict.
func Replay(ctx context.Context, scanner ports.StreamScanner, rm ports.ReadModel) error {
	if scanner == nil || rm == nil {
		return fmt.Errorf("replay: a scanner and a read model are required")
	}
	if err := rm.Reset(ctx); err != nil {
		return fmt.Errorf("replay: reset the read model: %w", err)
	}
	r := &replayer{rm: rm, pending: map[conversation.ID]*ports.ConversationView{}, saved: map[conversation.ID]uint64{}}
	isChanges := func(c ports.Commit) bool {
		_, kind := conversation.StreamOf(c.Stream)
		return kind == conversation.StreamChanges
	}
	for _, pass := range []struct {
		takes func(ports.Commit) bool
		fold  func(*ports.ConversationView, ports.Commit)
	}{
		{isChanges, Apply},
		{func(c ports.Commit) bool { return !isChanges(c) }, Apply},
		{func(c ports.Commit) bool { return isChanges(c) && lastChangedSeq(c) > 0 }, refoldMessageChanges},
	} {
		err := scanner.Scan(ctx, func(c ports.Commit) error {
			if !pass.takes(c) {
				return nil
			}
			return r.apply(ctx, c, pass.fold)
		})
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	return r.flush(ctx)
}

// refoldMessageChanges applies the edits and recalls of c, a changes commit
// the view has folded already, to its last message again.
func refoldMessageChanges(view *ports.ConversationView, c ports.Commit) {
	if c.Version > view.ChangesVersion {
		return
	}
	for _, ev := range c.Events {
		switch ev.(type) {
		case conversation.MessageEdited, conversation.MessageRecalled:
			applyEvent(view, ev)
		}
	}
}

type replayer struct {
	rm      ports.ReadModel
	pending map[conversation.ID]*ports.ConversationView
	// saved holds the revision each stored view was saved at.
	saved map[conversation.ID]uint64
}

// apply folds c into its conversation's view with fold.
func (r *replayer) apply(ctx context.Context, c ports.Commit, fold func(*ports.ConversationView, ports.Commit)) error {
	id, _ := conversation.StreamOf(c.Stream)
	view, ok := r.pending[id]
	if !ok {
		view = &ports.ConversationView{Conversation: string(id)}
		if _, stored := r.saved[id]; stored {
			stored, err := r.rm.GetMany(ctx, []string{string(id)})
			if err != nil {
				return err
			}
			v, found := stored[string(id)]
			if !found {
				return fmt.Errorf("view of %s vanished during replay", id)
			}
			view = &v
		}
		r.pending[id] = view
	}
	fold(view, c)
	if len(r.pending) >= replayBatch {
		return r.flush(ctx)
	}
	return nil
}

func (r *replayer) flush(ctx context.Context) error {
	saves := make([]ports.ViewSave, 0, len(r.pending))
	for id, view := range r.pending {
		saves = append(saves, ports.ViewSave{View: *view, Expected: r.saved[id]})
	}
	errs, err := r.rm.SaveMany(ctx, saves)
	if err != nil {
		return fmt.Errorf("save views: %w", err)
	}
	for i, s := range saves {
		if errs[i] != nil {
			return fmt.Errorf("save view of %s: %w", s.View.Conversation, errs[i])
		}
		r.saved[conversation.ID(s.View.Conversation)] = s.View.Revision()
	}
	clear(r.pending)
	return nil
}
