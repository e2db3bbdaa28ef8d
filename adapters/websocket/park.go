package websocket

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// Parking: a session with nothing to read gives up its reader goroutine,
// whose stack was half of what an idle session cost, and the server's
// poller starts a new one when the socket becomes readable. A parked
// session is, to the rest of the transport, a reader blocked in a read:
// whatever would end that read (its deadline, a close, Stop cutting the
// deadline short) wakes it (wakeReader), and the woken reader first does the
// read it stood for, under the deadline it had.

// errParked ends a reader that parked its session.
var errParked = errors.New("session parked")

// socketOf is c's socket, for the poller, or nil and -1 when c has none
// that it can watch (a pipe).
func socketOf(c any) (syscall.RawConn, int) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, -1
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, -1
	}
	fd := -1
	if err := raw.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return nil, -1
	}
	return raw, fd
}

// parkAfter is how long a session's socket must stay quiet before the
// session parks: ParkAfter, or half the ping interval if shorter. Parking
// and waking cost a session a system call each and a fresh goroutine whose
// stack grows again through the use case: done per frame, they cost the
// embedded node 50% more CPU per message at 200 msg/s, while a client that
// sent nothing for a second is, for a chat, idle.
func (c Config) parkAfter() time.Duration { return min(c.ParkAfter, c.PingInterval/2) }

// parkable tells whether the reader may park: the poller can watch the
// socket, and gorilla holds no byte of the client's.
func (s *session) parkable() bool {
	return s.fd >= 0 && s.in.idle() && s.srv.sessionPoller() != nil
}

// linger waits up to parkAfter for the client's next bytes, within the
// session's read deadline, and reads them if they come; the reader parks
// if none came.
func (s *session) linger() error {
	until := time.Now().Add(s.srv.cfg.parkAfter())
	if s.readBy.Before(until) {
		until = s.readBy
	}
	if err := s.extendDeadline(until); err != nil {
		return err
	}
	err := waitReadable(s.raw)
	if err == nil {
		// The linger's deadline may pass between the socket's readiness
		// and the read, which would then fail with the bytes waiting: on
		// a loaded node it did, dropping active sessions.
		if err := s.extendDeadline(s.readBy); err != nil {
			return err
		}
		return s.in.fill()
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() && time.Now().Before(s.readBy) {
		return nil
	}
	return err
}

// park gives up the reader, whose read deadline is deadline; true when the
// reader must return errParked, because the poller or a wake now owns the
// session's reading.
func (s *session) park(deadline time.Time) bool {
	p := s.srv.sessionPoller()
	s.mu.Lock()
	if s.state != open || s.wakePending || s.srv.draining.Load() {
		s.wakePending = false
		s.mu.Unlock()
		return false
	}
	s.parked, s.poller = true, p
	s.mu.Unlock()
	s.srv.idleExpiries.schedule(s, deadline)
	if err := p.arm(s, s.fd); err != nil {
		s.mu.Lock()
		mine := s.parked
		s.parked = false
		s.mu.Unlock()
		// If a wake came meanwhile, it started the next reader.
		return !mine
	}
	return true
}

// readable is the poller's wake: the socket has bytes, or hung up.
func (s *session) readable() { s.resume(false) }

// idleTimeout wakes a session parked for as long as its read deadline
// allows, so that its reader finds the deadline passed and ends it. A
// session that resumed since is left alone: its deadline is rescheduled
// when it parks again, not taken out when it resumes.
func (s *session) idleTimeout() { s.resume(false) }

// wakeReader makes the reader look at the session again: at once if it is
// parked, or before it would park otherwise. Whatever cuts a read short
// (a deadline moved, the connection closed) calls it after doing so.
func (s *session) wakeReader() { s.resume(true) }

func (s *session) resume(always bool) {
	s.mu.Lock()
	if !s.parked {
		if always {
			s.wakePending = true
		}
		s.mu.Unlock()
		return
	}
	s.parked = false
	s.mu.Unlock()
	go s.serve(true)
}

// cut closes the connection, which ends the session's reader, parked or
// not.
func (s *session) cut() {
	s.conn.Close()
	s.wakeReader()
}
