package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evchat/chatd/application"
	"github.com/evchat/chatd/ports"
)

// sendAnswering is a send use case that answers every command with err.
func sendAnswering(err error) application.SendHandler {
	return application.HandlerFunc[application.SendMessageCommand, application.Ack](
		func(context.Context, application.SendMessageCommand) (application.Ack, error) {
			return application.Ack{MessageID: "m"}, err
		})
}

func TestMeasuredSendsAreCountedByTransportAndOutcome(t *testing.T) {
	tests := []struct {
		name, transport string
		err             error
		wantCount       string
		wantTimed       int
	}{
		{"acked", TransportWebSocket, nil, `chat_sends_total{outcome="ok",transport="websocket"} 1`, 1},
		{"rate limited", TransportHTTP, application.ErrRateLimited, `chat_sends_total{outcome="rate_limited",transport="http"} 1`, 0},
		{"unavailable", TransportWebSocket, ports.ErrUnavailable, `chat_sends_total{outcome="unavailable",transport="websocket"} 1`, 0},
		{"internal", TransportHTTP, errors.New("boom"), `chat_sends_total{outcome="internal",transport="http"} 1`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := New(reg)
			if err != nil {
				t.Fatal(err)
			}
			ack, err := m.MeasureSends(tt.transport, sendAnswering(tt.err)).Handle(context.Background(), application.SendMessageCommand{})
			if !errors.Is(err, tt.err) || ack.MessageID != "m" {
				t.Fatalf("the decorator answered %+v, %v; want the use case's answer", ack, err)
			}
			want := "# HELP chat_sends_total Sends handled, by transport and outcome (ok or the error code).\n# TYPE chat_sends_total counter\n" + tt.wantCount + "\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "chat_sends_total"); err != nil {
				t.Fatal(err)
			}
			if n := testutil.CollectAndCount(m.sendLatency); n != tt.wantTimed {
				t.Fatalf("latency series = %d, want %d (only acked sends are timed)", n, tt.wantTimed)
			}
		})
	}
}

func TestNilMetricsLeaveTheSendUndecorated(t *testing.T) {
	var m *Metrics
	send := sendAnswering(nil)
	if _, err := m.MeasureSends(TransportHTTP, send).Handle(context.Background(), application.SendMessageCommand{}); err != nil {
		t.Fatal(err)
	}
}
