// Package websocket is the chat's WebSocket transport: it authenticates the
// upgrade with a JWT, holds one session per connection as a ports.Session
// registered with the application, decodes client frames (`send` and the
// seed's `{toId, msg}` form, `read`, `sync`, `ping`, `auth`) into use case
// calls and writes acks, pushed messages, receipts, pages and errors back as
// the protocol spells them. Each session has at most one reader goroutine at a
// time, which handles frames in order so a client's acks come in the order of
// its sends, and one writer goroutine fed by a bounded queue: pushes never block, and a client
// that falls a queue behind is disconnected rather than allowed to hold up
// delivery to the others, while the answers to a client's own frames hold
// up only its reader. A message counts as delivered once the writer has
// written it. A session's life from registration to teardown is one
// explicit state (lifecycle.go), each move of it made by one owner. A
// session lives no longer than its token, unless an `auth` frame hands it
// a fresh one. Frames are parsed into the domain's types before any use
// case sees them. Idle sessions are kept cheap: no goroutine at all, their
// reader parked until the socket is readable (park.go, epoll on Linux), one
// timer for the node's pings, one for its expired tokens and one for its
// parked sessions' read deadlines (deadlines.go), a queue that holds no memory while empty, and read and write
// buffers borrowed from pools only while a frame is read or written. The
// writer writes everything queued with one write (outframes.go).
package websocket

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/evchat/chatd/adapters/auth"
	"github.com/evchat/chatd/adapters/metrics"
	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
)

// Server upgrades `GET /ws` requests and runs their sessions.
type Server struct {
	cfg      Config
	app      *application.Application
	send     application.SendHandler // app.Send, measured
	verifier *auth.Verifier
	metrics  *metrics.Metrics
	log      *slog.Logger
	upgrader websocket.Upgrader

	// draining is read without the lock on every frame; it only goes true.
	draining atomic.Bool
	mu       sync.Mutex
	sessions map[*session]struct{}
	running  sync.WaitGroup

	tokenExpiries, idleExpiries, pings *deadlines

	// poller watches the sockets of parked sessions; started by the first
	// park, nil when the system has none (park.go).
	pollerOnce sync.Once
	poller     *poller
}

// New builds the transport. m may be nil (nothing is measured); log nil is slog.Default().
func New(cfg Config, app *application.Application, verifier *auth.Verifier, m *metrics.Metrics, log *slog.Logger) (*Server, error) {
	if app == nil || verifier == nil {
		return nil, errors.New("websocket: the application and a token verifier are required")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, app: app, send: m.MeasureSends(metrics.TransportWebSocket, app.Send), verifier: verifier, metrics: m, log: log, sessions: map[*session]struct{}{}}
	s.tokenExpiries = newDeadlines(func(s *session) *deadline { return &s.tokenExpiry },
		func(s *session) { s.closeWith(closeTokenExpired, "token expired") })
	s.idleExpiries = newDeadlines(func(s *session) *deadline { return &s.idleExpiry }, (*session).idleTimeout)
	s.pings = newDeadlines(func(s *session) *deadline { return &s.pingAt }, s.ping)
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadBufferSize:   cfg.ReadBufferSize,
		// gorilla writes only control frames, which need no write buffer;
		// a pool, even unused, keeps it from keeping the hijacked HTTP
		// write buffer for the session's whole life.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     originChecker(cfg.AllowedOrigins),
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeHTTPError(w, status, codeOfRefusal(status), reason.Error())
		},
	}
	return s, nil
}

// ServeHTTP authenticates and upgrades the request, then runs the session
// until it ends, on a goroutine of its own.
//
// Every check that can refuse the request comes before the session is
// registered, because registering announces the user online to their
// peers: a refused request must leave no trace.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if token == "" {
		token = auth.BearerToken(r)
	}
	identity, err := s.verifier.Verify(token)
	if err != nil {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeHTTPError(w, http.StatusUnauthorized, wire.CodeUnauthorized, err.Error())
		return
	}
	if status, msg := s.refusal(r); status != 0 {
		writeHTTPError(w, status, codeOfRefusal(status), msg)
		return
	}
	// Checked under the lock with running.Add, so Shutdown's Wait never
	// races a session that is about to start.
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		writeHTTPError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "server shutting down")
		return
	}
	s.running.Add(1)
	s.mu.Unlock()

	// Registered before the 101 goes out: a client may be told of a message
	// the moment its upgrade succeeds, and the session must already be there
	// to receive it. What is pushed meanwhile waits in the queue.
	sess := newSession(s, identity)
	unregister, err := s.app.Sessions.RegisterAtMost(sess, s.cfg.MaxSessionsPerUser)
	if err != nil {
		s.running.Done()
		writeHTTPError(w, http.StatusTooManyRequests, wire.CodeTooManySessions,
			"at most "+strconv.Itoa(s.cfg.MaxSessionsPerUser)+" sessions per user on this node")
		return
	}
	// Only a failing connection can make the upgrade fail now: refusal
	// checked everything the upgrader refuses for.
	conn, err := s.upgrader.Upgrade(hijackThrough{w, sess.adopt}, r, nil)
	if err != nil {
		unregister()
		s.running.Done()
		return // the upgrader has answered already
	}
	sess.connect(conn)
	s.add(sess)
	s.metrics.SessionOpened()
	// The session runs on a goroutine of its own and this handler returns:
	// net/http's connection goroutine would otherwise keep the request, its
	// headers and the server's 4 KiB read and write buffers alive for the
	// whole session, more than half of what an idle session costs.
	go sess.run(unregister, func() {
		s.metrics.SessionClosed()
		s.remove(sess)
		s.running.Done()
	})
}

// hijackThrough hands the upgrader the hijacked connection wrapped by
// wrap, the only way to put a reader of ours under gorilla's.
type hijackThrough struct {
	http.ResponseWriter
	wrap func(net.Conn) net.Conn
}

func (h hijackThrough) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return h.wrap(c), brw, nil
}

// sessionPoller is the server's poller, started on first use; nil when the
// system has none, and then sessions never park.
func (s *Server) sessionPoller() *poller {
	s.pollerOnce.Do(func() {
		p, err := newPoller()
		if err != nil {
			s.log.Warn("idle sessions keep a reader goroutine each", "err", err)
			return
		}
		s.poller = p
	})
	return s.poller
}

// closePoller stops the poller once no session will park any more.
func (s *Server) closePoller() {
	s.pollerOnce.Do(func() {})
	if s.poller != nil {
		s.poller.close()
	}
}

// Stop refuses new sessions, lets every session finish the frame it is
// handling (an in-flight send still gets its ack), closes each with 1001,
// and waits for them to end. When ctx ends first, the remaining connections
// are cut and ctx's error returned.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	open := s.snapshot()
	s.mu.Unlock()
	for _, sess := range open {
		sess.interrupt()
	}
	done := make(chan struct{})
	go func() {
		s.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.closePoller()
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		open = s.snapshot()
		s.mu.Unlock()
		for _, sess := range open {
			sess.cut()
		}
		return ctx.Err()
	}
}

// add registers a session and schedules its first ping.
func (s *Server) add(sess *session) {
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	s.pings.schedule(sess, time.Now().Add(s.cfg.PingInterval))
}

func (s *Server) remove(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
}

// snapshot copies the session set; the caller holds mu.
func (s *Server) snapshot() []*session {
	out := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, sess)
	}
	return out
}

// ping queues a ping to sess and schedules its next, an interval on, while
// the session takes frames. Each session is pinged on its own schedule,
// from its opening: pinged all at once, every session of the node woke at
// the same moment to answer, each with a goroutine.
func (s *Server) ping(sess *session) {
	if sess.enqueue(outbound{control: websocket.PingMessage}, false) {
		s.pings.schedule(sess, time.Now().Add(s.cfg.PingInterval))
	}
}

// publicMessage is what a client is told of a failed use case: the rule it
// broke, but never the internals of a failure on the server's side, which
// are logged instead.
func (s *Server) publicMessage(code string, err error, frameType string) string {
	switch code {
	case wire.CodeInternal:
		s.log.Error("websocket frame failed", "type", frameType, "err", err)
		return "internal error"
	case wire.CodeUnavailable:
		s.log.Warn("websocket frame failed", "type", frameType, "err", err)
		return "service unavailable, try again"
	}
	return err.Error()
}
