// Package contract holds one test suite per outbound port. Each suite is an
// ordinary exported function that takes a constructor, so the embedded
// default and every real adapter (MongoDB, RocketMQ) run the very same cases
// and cannot drift apart: contract.TestEventStore(t, newStore) and so on.
// Cases use their own stream and conversation names, so one store may serve
// them all in parallel.
package contract

import (
	"crypto/rand"
	"testing"
	"time"
)

// uniqueName makes a stream or group name no other case uses.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	return prefix + "-" + rand.Text()[:12]
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
