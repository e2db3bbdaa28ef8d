//go:build linux

package websocket

import (
	"errors"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller waits, on one goroutine for the whole server, for the sockets of
// parked sessions to become readable (epoll), and wakes each session whose
// socket is. A socket is armed once per park (EPOLLONESHOT), so an event
// wakes its session once, and level-triggered, so that bytes that came
// before the arming wake it at once.
type poller struct {
	epfd int
	// stop is an eventfd in the epoll set, written to end run.
	stop int

	mu sync.Mutex
	// parked maps an armed socket to its session. A closed socket leaves
	// the epoll set by itself and its number may come back for a new
	// connection: the entry is the session that armed it last.
	parked map[int32]*session
	closed bool
	done   chan struct{}
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stop, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(stop)}); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(stop)
		return nil, err
	}
	p := &poller{epfd: epfd, stop: stop, parked: map[int32]*session{}, done: make(chan struct{})}
	go p.run()
	return p, nil
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	var ready []*session
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd == int32(p.stop) {
				p.mu.Unlock()
				return
			}
			if s := p.parked[ev.Fd]; s != nil {
				ready = append(ready, s)
			}
		}
		p.mu.Unlock()
		for _, s := range ready {
			s.readable()
		}
	}
}

// arm has the poller wake s when fd, its socket, becomes readable or
// hangs up.
func (p *poller) arm(s *session, fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errPollerClosed
	}
	if p.parked[int32(fd)] == s {
		return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return err
	}
	p.parked[int32(fd)] = s
	return nil
}

// forget takes s's socket out of the set before the socket closes.
func (p *poller) forget(s *session, fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.parked[int32(fd)] != s {
		return
	}
	delete(p.parked, int32(fd))
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

var errPollerClosed = errors.New("websocket: poller closed")

// close ends run and frees the epoll set; the sessions still parked then
// are woken by their idle timers or by Stop.
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	if _, err := unix.Write(p.stop, one); err == nil {
		<-p.done
	}
	_ = unix.Close(p.epfd)
	_ = unix.Close(p.stop)
}

// waitReadable waits, under the connection's read deadline, until the
// socket has bytes or hung up, without a buffer to read them into: a
// session lingering before it parks holds no read buffer.
func waitReadable(raw syscall.RawConn) error {
	var b [1]byte
	return raw.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return !errors.Is(err, unix.EAGAIN)
	})
}
