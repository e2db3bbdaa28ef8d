// Package metrics holds the Prometheus instruments of the inbound adapters:
// open sessions, frames in and out by type, sends by outcome and how long a
// send takes to be acked; the application's observers: presence changes,
// typing signals, and the commits a node's delivery receives; decorators of
// the event store and the transactional publisher that time their calls by
// op and outcome, so that a send's latency splits into the store's and the
// bus's shares; the bus consumers' lag, redeliveries and dead letters; and
// readiness, pinged at each scrape. Sends are measured by MeasureSends, a
// decorator of the send use case that each transport wraps it in once, so
// that the measuring is written once and a send's latency is still what the
// client waits for. Series with a fixed set of labels are created up front,
// so a rate exists before the first event and an observation costs no label
// lookup. Instruments are registered on the registry passed in, so tests
// and several servers in one process never collide on the default one; a nil
// *Metrics is valid and records nothing, for callers that do not measure.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Transports label where a send came from.
const (
	TransportWebSocket = "websocket"
	TransportHTTP      = "http"
)

// OutcomeOK labels a send that was acked; a failed one is labelled with its
// protocol error code.
const OutcomeOK = "ok"

// Metrics are the instruments; build them with New.
type Metrics struct {
	sessions      prometheus.Gauge
	framesIn      *prometheus.CounterVec
	framesOut     *prometheus.CounterVec
	sends         *prometheus.CounterVec
	sendLatency   *prometheus.HistogramVec
	slowConsumers prometheus.Counter
}

// New creates the instruments and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chat_websocket_sessions", Help: "WebSocket sessions open on this node.",
		}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_websocket_frames_in_total", Help: "Frames received, by type (invalid for frames that could not be decoded).",
		}, []string{"type"}),
		framesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_websocket_frames_out_total", Help: "Frames queued to clients, by type.",
		}, []string{"type"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_sends_total", Help: "Sends handled, by transport and outcome (ok or the error code).",
		}, []string{"transport", "outcome"}),
		sendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chat_send_ack_seconds", Help: "Time from receiving a send to having its ack, for acked sends.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"transport"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chat_websocket_slow_disconnects_total", Help: "Sessions disconnected because their send queue was full.",
		}),
	}
	if err := registerAll(reg, m.sessions, m.framesIn, m.framesOut, m.sends, m.sendLatency, m.slowConsumers); err != nil {
		return nil, err
	}
	return m, nil
}

// SessionOpened counts a new session.
func (m *Metrics) SessionOpened() {
	if m != nil {
		m.sessions.Inc()
	}
}

// SessionClosed counts a session gone.
func (m *Metrics) SessionClosed() {
	if m != nil {
		m.sessions.Dec()
	}
}

// FrameIn counts a received frame of the given type.
func (m *Metrics) FrameIn(frameType string) {
	if m != nil {
		m.framesIn.WithLabelValues(frameType).Inc()
	}
}

// FrameOut counts a frame queued to a client.
func (m *Metrics) FrameOut(frameType string) {
	if m != nil {
		m.framesOut.WithLabelValues(frameType).Inc()
	}
}

// Send records a send's outcome and, when acked, how long it took since start.
func (m *Metrics) Send(transport, outcome string, start time.Time) {
	if m == nil {
		return
	}
	m.sends.WithLabelValues(transport, outcome).Inc()
	if outcome == OutcomeOK {
		m.sendLatency.WithLabelValues(transport).Observe(time.Since(start).Seconds())
	}
}

// SlowConsumer counts a session dropped for not reading fast enough.
func (m *Metrics) SlowConsumer() {
	if m != nil {
		m.slowConsumers.Inc()
	}
}
