package metrics

import (
	"context"
	"time"

	"github.com/evchat/chatd/adapters/wire"
	"github.com/evchat/chatd/application"
)

// MeasureSends decorates the send use case: every send through it is
// counted by outcome (ok, or the protocol code its error answers with) and,
// when acked, its latency observed, all labelled with transport. Each
// transport wraps the use case once, so the latency is still what its
// client waits for. A nil *Metrics returns send undecorated.
func (m *Metrics) MeasureSends(transport string, send application.SendHandler) application.SendHandler {
	if m == nil {
		return send
	}
	return application.HandlerFunc[application.SendMessageCommand, application.Ack](
		func(ctx context.Context, cmd application.SendMessageCommand) (application.Ack, error) {
			start := time.Now()
			ack, err := send.Handle(ctx, cmd)
			outcome := OutcomeOK
			if err != nil {
				outcome = wire.CodeOf(err)
			}
			m.Send(transport, outcome, start)
			return ack, err
		})
}
