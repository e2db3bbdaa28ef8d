package contract_test

import (
	"os"
	"sync"
	"testing"
)

// atExit collects the stops of servers that cases start on demand, once per
// test binary, so that TestMain stops them after the last case, and a run
// of the in-memory cases alone starts nothing.
var atExit struct {
	mu    sync.Mutex
	stops []func()
}

// onExit registers stop to run after every test of the binary finished.
func onExit(stop func()) {
	atExit.mu.Lock()
	defer atExit.mu.Unlock()
	atExit.stops = append(atExit.stops, stop)
}

func TestMain(m *testing.M) {
	code := m.Run()
	atExit.mu.Lock()
	for i := len(atExit.stops) - 1; i >= 0; i-- {
		atExit.stops[i]()
	}
	atExit.mu.Unlock()
	os.Exit(code)
}
