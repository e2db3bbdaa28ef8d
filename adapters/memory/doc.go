// Package memory is the embedded default of every outbound port: an event
// store, a read model and an in-process transactional bus that live in the
// process, plus the system clock and random ids. `make run` uses it for a
// first look and unit tests use it for speed; it passes the same contract
// suites as the MongoDB and RocketMQ adapters, so the application cannot
// tell it apart from them.
package memory

import (
	"crypto/rand"
	"time"
)

// Clock is the system clock.
type Clock struct{}

// Now returns the current time.
func (Clock) Now() time.Time { return time.Now() }

// IDs makes random ids of 26 characters from [A-Z2-7], valid as client keys too.
type IDs struct{}

// NewID returns a fresh random id.
func (IDs) NewID() string { return rand.Text() }
