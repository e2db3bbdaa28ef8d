package rocketmq

import (
	"context"
	"log/slog"
	"sort"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// RouteLogs sends the RocketMQ client's logs to logger, dropping those below
// min: the client is chatty at info, and warn is what an operator needs.
func RouteLogs(logger *slog.Logger, min slog.Level) {
	rlog.SetLogger(&slogAdapter{logger: logger.With("component", "rocketmq-client"), min: min})
}

type slogAdapter struct {
	logger *slog.Logger
	min    slog.Level
}

func (a *slogAdapter) log(level slog.Level, msg string, fields map[string]interface{}) {
	if level < a.min {
		return
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, fields[k])
	}
	a.logger.Log(context.Background(), level, msg, args...)
}

func (a *slogAdapter) Debug(msg string, fields map[string]interface{}) {
	a.log(slog.LevelDebug, msg, fields)
}

func (a *slogAdapter) Info(msg string, fields map[string]interface{}) {
	a.log(slog.LevelInfo, msg, fields)
}

func (a *slogAdapter) Warning(msg string, fields map[string]interface{}) {
	a.log(slog.LevelWarn, msg, fields)
}

// Error logs at error, but for the client's complaint about every local
// transaction that does not commit: a rollback after a version conflict and
// an unknown outcome left to checkback are how the protocol works here.
func (a *slogAdapter) Error(msg string, fields map[string]interface{}) {
	if msg == "executeLocalTransaction but state unexpected" {
		a.log(slog.LevelDebug, msg, fields)
		return
	}
	a.log(slog.LevelError, msg, fields)
}

// Fatal is logged as an error: a library must not end the process.
func (a *slogAdapter) Fatal(msg string, fields map[string]interface{}) {
	a.log(slog.LevelError, msg, fields)
}

// Level is ignored: the level is chosen by RouteLogs.
func (a *slogAdapter) Level(string) {}

// OutputPath is ignored: slog decides where logs go.
func (a *slogAdapter) OutputPath(string) error { return nil }
