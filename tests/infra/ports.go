package infra

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ports are drawn below the kernel's ephemeral range rather than from a
// listen on port 0: a server that is stopped and started again on its port
// ("down, then back") would otherwise race every outgoing connection on the
// machine for it, since those take their source ports from that range.
const portFloor = 15000

var (
	portMu    sync.Mutex
	handedOut = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on and that
// this process has not handed out before. Another process can still take it
// before the caller binds it; the window is short and the range is wide.
func FreePort() int {
	p, err := freePortRange(1)
	if err != nil {
		panic(err)
	}
	return p
}

// freePortRange returns the first of n consecutive free ports: the broker
// listens on listenPort-2 (fast remoting), listenPort and listenPort+1 (HA).
func freePortRange(n int) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	hi := ephemeralLow()
	for range 1000 {
		base := portFloor + rand.IntN(hi-portFloor-n)
		if rangeFree(base, n) {
			for p := base; p < base+n; p++ {
				handedOut[p] = true
			}
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports in [%d, %d)", n, portFloor, hi)
}

func rangeFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		if handedOut[p] {
			return false
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > portFloor+1000 {
				return lo
			}
		}
	}
	return 32768
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// portOpen reports whether something accepts connections on addr.
func portOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
