package conversation

import (
	"slices"
	"time"
	"unicode/utf8"

	"github.com/evchat/chatd/domain"
	"github.com/evchat/chatd/domain/user"
)

// MaxTitleChars bounds a group's title in characters, as PROTOCOL counts them.
const MaxTitleChars = 100

// Title is a group's name.
type Title string

var (
	// ErrInvalidTitle rejects a title that is empty, too long or not UTF-8.
	ErrInvalidTitle = domain.Errorf(domain.Invalid, "title must be 1-100 characters of valid UTF-8")
	// ErrNotGroupID rejects creating a group under a direct conversation's id.
	ErrNotGroupID = domain.Errorf(domain.Invalid, "not a group's id")
	// ErrGroupExists rejects creating a group twice under one id.
	ErrGroupExists = domain.Errorf(domain.Invalid, "the group already exists")
	// ErrTooFewMembers rejects a group without a member besides its owner.
	ErrTooFewMembers = domain.Errorf(domain.Invalid, "a group needs at least one member besides its owner")
	// ErrTooManyMembers rejects a group, or an addition, over the member cap.
	ErrTooManyMembers = domain.Errorf(domain.Invalid, "too many members for a group")
	// ErrAddAndRemove rejects one change that both adds and removes a user.
	ErrAddAndRemove = domain.Errorf(domain.Invalid, "a user cannot be added and removed at once")
	// ErrNotOwner rejects a member other than the owner adding or removing
	// anyone but themself.
	ErrNotOwner = domain.Errorf(domain.Forbidden, "only the group's owner adds and removes others")
)

// ParseTitle validates s as a group title. Like a body, it is kept as
// given, never trimmed or rewritten.
func ParseTitle(s string) (Title, error) {
	if !utf8.ValidString(s) {
		return "", ErrInvalidTitle
	}
	if n := utf8.RuneCountInString(s); n == 0 || n > MaxTitleChars {
		return "", ErrInvalidTitle
	}
	return Title(s), nil
}

// Title is a group's current title, empty for a direct conversation.
func (c *Conversation) Title() Title { return c.group.title }

// Owner is a group's current owner, empty for a direct conversation and
// for a group that has ended.
func (c *Conversation) Owner() user.ID { return c.group.owner }

// CreatedAt is when a group was created, zero for a direct conversation.
func (c *Conversation) CreatedAt() time.Time { return c.group.createdAt }

// CreateGroup records the group's creation by owner, who becomes its owner
// and first member, with members besides (duplicates and the owner
// ignored): at least one, and at most maxMembers in all.
func (c *Conversation) CreateGroup(owner user.ID, title Title, members []user.ID, at time.Time, maxMembers int) error {
	if c.Kind() != Group {
		return ErrNotGroupID
	}
	if c.group.created {
		return ErrGroupExists
	}
	all := []user.ID{owner}
	for _, m := range members {
		if !slices.Contains(all, m) {
			all = append(all, m)
		}
	}
	if len(all) < 2 {
		return ErrTooFewMembers
	}
	if len(all) > maxMembers {
		return ErrTooManyMembers
	}
	c.recordChange(GroupCreated{Conversation: c.id, Title: title, Owner: owner, Members: all, At: stamp(at)})
	return nil
}

// Rename records a new title by any member. The same title again records
// nothing, so a repeated request changes nothing.
func (c *Conversation) Rename(by user.ID, title Title, at time.Time) error {
	if err := c.checkMember(by); err != nil {
		return err
	}
	if title != c.group.title {
		c.recordChange(GroupRenamed{Conversation: c.id, Title: title, By: by, At: stamp(at)})
	}
	return nil
}

// ChangeMembers records one membership change by a member: the owner adds
// and removes anyone, any other member may only remove themself (leave).
// Adding a member or removing a non-member records nothing. The group may
// not grow beyond maxMembers; removals are never refused for the cap, so a
// group over a lowered cap can still shrink. When the owner goes, the
// member who joined earliest becomes the owner, in the same commit; when
// the last member goes, the group ends and exists for no one.
func (c *Conversation) ChangeMembers(by user.ID, add, remove []user.ID, at time.Time, maxMembers int) error {
	if err := c.checkMember(by); err != nil {
		return err
	}
	isOther := func(u user.ID) bool { return u != by }
	if by != c.group.owner && (slices.ContainsFunc(add, isOther) || slices.ContainsFunc(remove, isOther)) {
		return ErrNotOwner
	}
	if slices.ContainsFunc(add, func(u user.ID) bool { return slices.Contains(remove, u) }) {
		return ErrAddAndRemove
	}
	var joining, leaving []user.ID
	for _, u := range add {
		if !c.IsParticipant(u) && !slices.Contains(joining, u) {
			joining = append(joining, u)
		}
	}
	for _, u := range remove {
		if c.IsParticipant(u) && !slices.Contains(leaving, u) {
			leaving = append(leaving, u)
		}
	}
	if len(joining) > 0 && len(c.group.members)+len(joining)-len(leaving) > maxMembers {
		return ErrTooManyMembers
	}
	at = stamp(at)
	// Additions first: the earliest remaining member is then well defined
	// when the owner leaves, and a group that gains members in the same
	// change never passes through empty.
	for _, u := range joining {
		c.recordChange(MemberAdded{Conversation: c.id, User: u, By: by, At: at})
	}
	ownerLeft := false
	for _, u := range leaving {
		ownerLeft = ownerLeft || u == c.group.owner
		c.recordChange(MemberRemoved{Conversation: c.id, User: u, By: by, At: at})
	}
	if ownerLeft && len(c.group.members) > 0 {
		c.recordChange(OwnerChanged{Conversation: c.id, Owner: c.group.members[0], At: at})
	}
	return nil
}

// checkMember checks that u may change the group: to anyone else, and for
// a direct conversation, there is no such group.
func (c *Conversation) checkMember(u user.ID) error {
	if c.Kind() != Group || !c.IsParticipant(u) {
		return ErrNotFound
	}
	return nil
}

// stamp is the time an event keeps: UTC, to the millisecond the stores keep.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
