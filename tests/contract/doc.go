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
)

// uniqueName makes a stream or group name no other case uses.
func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	return prefix + "-" + rand.Text()[:12]
}
