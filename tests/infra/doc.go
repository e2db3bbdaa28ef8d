// Package infra starts the real servers that contract, end-to-end and load
// tests run against, as child processes on loopback: PostgreSQL 15, FerretDB
// (the MongoDB wire protocol over PostgreSQL, built from ./ferretdb into
// bin/ferretdb) and the RocketMQ 5.3.3 name server and broker (jars installed
// into ./rocketmq/lib by ./rocketmq/install.sh). There is no Docker on the
// machines the suite runs on, so every server is a plain process that this
// package owns: it is put in its own process group, killed when the test
// binary dies (Pdeathsig on Linux) and stopped by pid when the test ends, pass
// or fail.
//
// Each server has a Launch function that needs no *testing.T and returns a
// handle with Stop, Start (same ports, same data: "down, then back") and
// Close, so cmd/stack can run the same stack for `make run-cluster` and load
// benchmarks; the Start* wrappers bind a handle to a test's lifetime and fail
// the test, never skip it, when a piece is not installed, naming the make
// target that installs it.
//
// Start-up times measured on a 2-core runner: PostgreSQL (initdb, start,
// createdb) plus FerretDB answering, 1.2-2.6 s; a Mongo Stop 3 s (FerretDB
// drains client connections) and Start 0.6 s. RocketMQ name server 1.2-3.5 s,
// then the broker 2-4 s to "boot success" but up to 12 s until the name
// server routes it (see StartBroker); restarts likewise. A graceful
// broker shutdown takes about 17 s (its service threads sleep out their
// intervals), so RocketMQ's Stop and Close use SIGKILL and
// StopBrokerGracefully is there for the tests that need the clean path.
//
// RocketMQHA is the layout of bootstrap/deploy/rocketmq (two name servers,
// broker-a and broker-b each a master and a slave), its configuration
// generated from the shipped files; each process is killed and started by
// role. Six JVMs of 256 MiB heap boot together in 45-60 s here, of which
// about 15 s is the slaves' first replication link.
package infra
