package ports

import "time"

// Clock tells the time, so tests can fix it.
type Clock interface {
	Now() time.Time
}

// IDs makes unique random ids for commits, sessions and server-made keys.
type IDs interface {
	NewID() string
}
