package ports

import "fmt"

// StoreError says which operation on which stream of the event store
// failed; test it against the sentinels of event_store.go with errors.Is.
type StoreError struct {
	Op      string
	Stream  string
	Version uint64
	Err     error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("event store %s %s@%d: %v", e.Op, e.Stream, e.Version, e.Err)
}

func (e *StoreError) Unwrap() error { return e.Err }

// ReadSideError says which operation on which read-side store (the read
// model, the last-seen times) failed. It is apart from StoreError because
// an operator reading the log must not go looking at the event store, the
// source of truth, when only a view built from it failed.
type ReadSideError struct {
	// Store names the read-side store: "read model" or "last seen".
	Store string
	Op    string
	// Key is what the operation addressed (a conversation, a user), or empty.
	Key string
	Err error
}

func (e *ReadSideError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s %s: %v", e.Store, e.Op, e.Err)
	}
	return fmt.Sprintf("%s %s %s: %v", e.Store, e.Op, e.Key, e.Err)
}

func (e *ReadSideError) Unwrap() error { return e.Err }
