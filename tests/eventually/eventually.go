// Package eventually is the one way the tests wait for something that runs
// concurrently with them: a goroutine of the code under test, a server, a
// broker or a store in another process. It polls a condition until it holds
// or a timeout passes, starting at a millisecond, so that in-process work is
// seen at once, and backing off to maxInterval, so that a poll of a real
// process (an HTTP probe, a broker's admin call) does not load the two cores
// it shares with that process. It is not for time itself: a test whose
// subject is a timeout, a grace or an interval runs on an injected clock or
// in a testing/synctest bubble, where this helper's sleeps pass on the
// bubble's clock too. It imports nothing of the project, so that the tests
// of every layer, application and adapters included, may use it without a
// dependency pointing outward.
package eventually

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// Timeout is how long True waits: ample for in-process work on a loaded
// machine, short enough that a test that will never pass says so soon.
const Timeout = 5 * time.Second

// maxInterval bounds the back-off between polls.
const maxInterval = 50 * time.Millisecond

// ErrTimeout is what Poll returns when the condition did not hold in time.
var ErrTimeout = errors.New("timed out")

// Poll calls check until it reports done or fails, or timeout passes. An
// error from check ends the wait at once: a process that died while the
// test waited for it says so now rather than as a time-out.
func Poll(timeout time.Duration, check func() (done bool, err error)) error {
	deadline := time.Now().Add(timeout)
	interval := time.Millisecond
	for {
		done, err := check()
		if done || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %v", ErrTimeout, timeout)
		}
		time.Sleep(interval)
		interval = min(2*interval, maxInterval)
	}
}

// True fails t unless cond holds within Timeout; what names the awaited
// state in the failure.
func True(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Timeout, what, cond)
}

// Within fails t unless cond holds within timeout.
func Within(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Poll(timeout, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
