// Package e2e is the end-to-end suite of chatd: it builds bin/chatd, starts
// it as a real process on a free port and drives it over HTTP and WebSocket
// (github.com/gorilla/websocket) exactly as a client of PROTOCOL.md
// would, so that what it checks is the contract and not the code behind it.
//
// Run it with `go test ./tests/e2e/ -count=1`. The harness (Node, Client)
// lives in the _test.go files so that later multi-node suites in this
// package can start several nodes with CHAT_MONGO_URI and
// CHAT_ROCKETMQ_NAMESRV added to their environment.
// E2E_DELIVERY_MODE=broadcast runs every node in that delivery mode, to
// show that both modes pass the suite.
package e2e
