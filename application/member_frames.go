package application

import (
	"context"
	"slices"

	"github.com/evchat/chatd/domain/conversation"
	"github.com/evchat/chatd/domain/user"
	"github.com/evchat/chatd/ports"
)

// pushMembership tells this node's sessions of a group's membership
// change in c: each addition and removal goes to the sessions of every
// member after the change and of the user added or removed, who is no
// longer among them. A group's creation tells each member but the owner,
// who made it, that they were added; it does not tell every member of
// every other one, which for a full group would be 255 frames to each
// session at once, beyond a session's queue. A session is told of each
// commit once: the bus may bring one again (republished, forwarded).
//
// Who the members are after c is read from the store, up to c: the
// delivery consumer must not wait on the conversation's lock, and a
// membership change is rare enough for one read per node. What it reads is
// kept for the group's messages (groupMembers).
func (d *Delivery) pushMembership(ctx context.Context, c ports.Commit) {
	changes := memberChanges(c)
	if len(changes) == 0 {
		return
	}
	id, _ := conversation.StreamOf(c.Stream)
	group, err := loadChangesUpTo(ctx, d.messages, id, c.Version)
	if err != nil {
		d.log.Warn("member frames not pushed", "conversation", id, "err", err)
		return
	}
	d.groups.learn(group)
	_, creation := c.Events[0].(conversation.GroupCreated)
	members := group.Members()
	frames := map[*sessionState][]ports.MemberChange{}
	var order []*sessionState
	for _, m := range changes {
		to := []user.ID{m.User}
		if !creation {
			to = append(to, slices.DeleteFunc(slices.Clone(members), func(u user.ID) bool { return u == m.User })...)
		}
		for _, u := range to {
			for _, st := range d.sessions.of(u) {
				if _, ok := frames[st]; !ok {
					order = append(order, st)
				}
				frames[st] = append(frames[st], m)
			}
		}
	}
	for _, st := range order {
		pushMemberFrames(st, string(id), c.Version, frames[st])
	}
}

// pushMemberFrames tells st of the membership changes of one commit of a
// group's changes stream, at version, unless it was told of that commit
// already. It holds st's lock, so that no message or update of the group
// is pushed to it after its user's removal, however the commits raced
// here.
func pushMemberFrames(st *sessionState, conv string, version uint64, frames []ports.MemberChange) {
	st.mu.Lock()
	defer st.mu.Unlock()
	told := st.memberships[conv]
	if slices.Contains(told, version) {
		return
	}
	if st.memberships == nil {
		st.memberships = make(map[string][]uint64, 1)
	}
	// A copy again comes within moments of the first; the latest few
	// versions are enough to know it.
	st.memberships[conv] = append(told[max(0, len(told)-maxToldMemberships+1):], version)
	for _, m := range frames {
		if m.User == st.session.User() {
			if m.Change == ports.MemberLeft {
				if st.removed == nil {
					st.removed = make(map[string]bool, 1)
				}
				st.removed[conv] = true
			} else {
				delete(st.removed, conv)
			}
		}
		st.session.PushMember(m)
	}
}

// maxToldMemberships is how many of a group's latest changes a session
// remembers being told of.
const maxToldMemberships = 8

// memberChanges are the additions and removals c records.
func memberChanges(c ports.Commit) []ports.MemberChange {
	var out []ports.MemberChange
	for _, ev := range c.Events {
		switch ev := ev.(type) {
		case conversation.GroupCreated:
			for _, u := range ev.Members {
				if u != ev.Owner {
					out = append(out, ports.MemberChange{Conversation: string(ev.Conversation), User: u,
						Change: ports.MemberJoined, By: ev.Owner, At: ev.At})
				}
			}
		case conversation.MemberAdded:
			out = append(out, ports.MemberChange{Conversation: string(ev.Conversation), User: ev.User,
				Change: ports.MemberJoined, By: ev.By, At: ev.At})
		case conversation.MemberRemoved:
			out = append(out, ports.MemberChange{Conversation: string(ev.Conversation), User: ev.User,
				Change: ports.MemberLeft, By: ev.By, At: ev.At})
		}
	}
	return out
}
