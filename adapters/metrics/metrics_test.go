package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsRecord(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.SessionOpened()
	m.SessionOpened()
	m.SessionClosed()
	m.FrameIn("send")
	m.FrameOut("ack")
	m.Send(TransportWebSocket, OutcomeOK, time.Now())
	m.Send(TransportHTTP, "rate_limited", time.Now())
	m.SlowConsumer()

	want := `
# HELP chat_websocket_sessions WebSocket sessions open on this node.
# TYPE chat_websocket_sessions gauge
chat_websocket_sessions 1
# HELP chat_sends_total Sends handled, by transport and outcome (ok or the error code).
# TYPE chat_sends_total counter
chat_sends_total{outcome="ok",transport="websocket"} 1
chat_sends_total{outcome="rate_limited",transport="http"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "chat_websocket_sessions", "chat_sends_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.sendLatency); n != 1 {
		t.Fatalf("latency series = %d, want 1 (failed sends are not timed)", n)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("registering twice on one registry succeeded")
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.SessionOpened()
	m.SessionClosed()
	m.FrameIn("ping")
	m.FrameOut("pong")
	m.Send(TransportHTTP, OutcomeOK, time.Now())
	m.SlowConsumer()
}
