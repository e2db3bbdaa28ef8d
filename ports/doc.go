// Package ports names the interfaces between the chat hexagon and the world:
// the event store, the transactional publisher and the subscriptions that
// carry commits between nodes, the read model of conversation lists, the
// sessions a node pushes frames to, the eraser of recalled bodies, and the
// clock and id sources. The
// application depends on these and every adapter implements one of them, so
// the embedded default and the real MongoDB and RocketMQ adapters are
// interchangeable and pass the same contract suites in tests/contract.
package ports
