package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ClientInstance gives every RocketMQ client of a test its own instance
// name: clients that share one share a connection, and shutting one down
// breaks the others.
func ClientInstance(t testing.TB, role string) string {
	name := fmt.Sprintf("infra-%s-%s-%d", t.Name(), role, time.Now().UnixNano())
	// Broadcast consumers keep offsets under $HOME unless the environment
	// said otherwise before the client package initialised; do not leave
	// them behind. This cleanup is registered before the client's Shutdown,
	// which writes the file, so it runs after it.
	t.Cleanup(func() {
		base := os.Getenv("rocketmq.client.localOffsetStoreDir")
		if base == "" {
			base = filepath.Join(os.Getenv("HOME"), ".rocketmq_client_go")
		}
		// The client writes <base>/<group>/<ip>@<instance>/offset.json.
		dirs, _ := filepath.Glob(filepath.Join(base, "*", "*@"+name))
		for _, d := range dirs {
			os.RemoveAll(d)
			os.Remove(filepath.Dir(d)) // the group's, if now empty
		}
	})
	return name
}
