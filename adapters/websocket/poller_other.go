//go:build !linux

package websocket

import (
	"errors"
	"syscall"
)

// poller is epoll's (poller_linux.go); elsewhere sessions never park, and
// each keeps its reader goroutine.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("websocket: no poller on this system") }

func (*poller) arm(*session, int) error { return errors.New("websocket: no poller") }
func (*poller) forget(*session, int)    {}
func (*poller) close()                  {}

// waitReadable is never called where sessions never park.
func waitReadable(syscall.RawConn) error { return errors.New("websocket: no poller") }
