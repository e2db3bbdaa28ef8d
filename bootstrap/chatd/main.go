// Command chatd runs one node of the chat service (`chatd` or `chatd serve`),
// applies the MongoDB migrations (`chatd migrate`), rebuilds the read models
// from the event store (`chatd replay`), erases the bodies of recalled
// messages from the store (`chatd erase-recalled`), or asks the node running on this
// host whether it is alive (`chatd healthcheck`, exit status 0 or 1, for a
// container's HEALTHCHECK). With no CHAT_MONGO_URI and no
// CHAT_ROCKETMQ_NAMESRV it runs on the embedded default (in-memory store,
// in-process bus); every setting is a CHAT_* environment variable.
package main

import (
	"fmt"
	"os"

	"go.uber.org/fx"

	"github.com/evchat/chatd/bootstrap"
)

func main() {
	cfg, err := bootstrap.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatd:", err)
		os.Exit(2)
	}
	logger := bootstrap.NewLogger(cfg)
	command := "serve"
	if len(os.Args) > 1 {
		command = os.Args[1]
	}
	switch command {
	case "serve":
		// Run starts the node, waits for SIGINT or SIGTERM, drains and stops;
		// it exits non-zero itself when start or stop fails.
		fx.New(bootstrap.Node(cfg, logger)).Run()
	case "migrate":
		exitOn(bootstrap.Migrate(cfg, logger))
	case "replay":
		exitOn(bootstrap.Replay(cfg, logger))
	case "erase-recalled":
		exitOn(bootstrap.EraseRecalled(cfg, logger))
	case "healthcheck":
		exitOn(bootstrap.Healthcheck(cfg))
	default:
		fmt.Fprintf(os.Stderr, "chatd: unknown command %q (commands: serve, migrate, replay, erase-recalled, healthcheck)\n", command)
		os.Exit(2)
	}
}

func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatd:", err)
		os.Exit(1)
	}
}
