// Package user holds the user id value object: the one rule of who may be
// addressed, shared by messages, conversations and authentication.
package user

import "github.com/evchat/chatd/domain"

// MaxIDLength bounds a user id so that ids stay cheap to index and to log.
const MaxIDLength = 64

// ID names a user: 1-64 characters of [A-Za-z0-9_.-], so numeric ids such as
// 1001 from the seed tutorial stay valid.
type ID string

// ErrInvalidID is returned for any id outside the allowed alphabet or length.
var ErrInvalidID = domain.Errorf(domain.Invalid, "user id must be 1-64 characters of [A-Za-z0-9_.-]")

// ParseID validates s as a user id.
func ParseID(s string) (ID, error) {
	if len(s) == 0 || len(s) > MaxIDLength {
		return "", ErrInvalidID
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return "", ErrInvalidID
		}
	}
	return ID(s), nil
}

func (id ID) String() string { return string(id) }
