package application

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestLoggedTracesEveryCommandAtDebugOnly(t *testing.T) {
	failed := errors.New("store down")
	tests := []struct {
		name  string
		level slog.Level
		err   error
		want  []string // empty: nothing logged
	}{
		{"acked at debug", slog.LevelDebug, nil, []string{"command handled", "use_case=send"}},
		{"failed at debug", slog.LevelDebug, failed, []string{"use_case=send", "store down"}},
		{"failed at info", slog.LevelInfo, failed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tt.level}))
			send := HandlerFunc[SendMessageCommand, Ack](func(context.Context, SendMessageCommand) (Ack, error) {
				return Ack{Seq: 7}, tt.err
			})
			ack, err := logged[SendMessageCommand, Ack](log, "send", send).Handle(context.Background(), SendMessageCommand{})
			if ack.Seq != 7 || !errors.Is(err, tt.err) {
				t.Fatalf("logged answered %+v, %v; want the use case's answer", ack, err)
			}
			if len(tt.want) == 0 && out.Len() != 0 {
				t.Fatalf("logged %q above debug", out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("log %q lacks %q", out.String(), w)
				}
			}
		})
	}
}
