# Two commands set up everything on a fresh machine: `make run` and `make test`.
GO       ?= go
BIN      := bin
CHATD    := $(BIN)/chatd
FERRETDB := $(BIN)/ferretdb
# Broadcast consumers keep their offsets in files; the client reads where
# from this variable once, at start, so tests keep theirs out of $HOME.
RMQ_OFFSETS := $(CURDIR)/bin/rocketmq-offsets
# golangci-lint is pinned: a newer release adds checks, and a build must not
# turn red because a linter moved. The Makefile installs it into bin/.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
GOTEST   := env 'rocketmq.client.localOffsetStoreDir=$(RMQ_OFFSETS)' $(GO) test -count=1

.PHONY: build run run-cluster run-cluster-ha test test-failover infra-deps browser-deps image image-deps asyncapi-deps schemathesis-deps prometheus-deps fuzz bench bench-load bench-scale bench-group vet clean

## build: bin/chatd, static (no cgo): it runs on any Linux and is the binary
## the image ships; tests/infra builds it the same way, so one build serves all.
build:
	CGO_ENABLED=0 $(GO) build -o $(CHATD) ./bootstrap/chatd

## run: one node on 127.0.0.1:8080 with the embedded default (in-memory store, in-process bus).
run: build
	./$(CHATD)

## run-cluster: MongoDB-wire store, RocketMQ and two nodes on :8081 and :8082, until Ctrl-C.
run-cluster: build infra-deps
	$(GO) build -o $(BIN)/stack ./tests/infra/cmd/stack
	./$(BIN)/stack -nodes 127.0.0.1:8081,127.0.0.1:8082

## run-cluster-ha: as run-cluster, on RocketMQ as bootstrap/deploy lays it out (two
## name servers, broker-a and broker-b each a master and a slave, from the shipped
## .conf files). bin/run-cluster-ha/pids has one "ROLE PID" line per process, to
## rehearse failures with kill -9; `kill -HUP` the stack to restart the RocketMQ
## processes killed, on their stores.
run-cluster-ha: build infra-deps
	$(GO) build -o $(BIN)/stack ./tests/infra/cmd/stack
	./$(BIN)/stack -ha -nodes 127.0.0.1:8081,127.0.0.1:8082 -pids $(BIN)/run-cluster-ha/pids

## infra-deps: the RocketMQ jars (Maven Central) and the FerretDB test server.
infra-deps: $(FERRETDB)
	./tests/infra/rocketmq/install.sh

$(FERRETDB): $(wildcard tests/infra/ferretdb/*.go tests/infra/ferretdb/go.mod)
	cd tests/infra/ferretdb && $(GO) build -o $(CURDIR)/$(FERRETDB) .

## browser-deps: Debian's Chromium and fonts for the browser test.
browser-deps:
	./tests/e2e/browser/install.sh

## image: the container image $(IMAGE) (bootstrap/deploy/Dockerfile): the static
## binary on an empty base, built with Debian's podman; no registry is needed.
IMAGE ?= localhost/chatd:latest
IMAGE_CONTEXT := $(BIN)/image
image: image-deps build
	rm -rf $(IMAGE_CONTEXT) && mkdir -p $(IMAGE_CONTEXT)/home
	cp $(CHATD) /etc/ssl/certs/ca-certificates.crt $(IMAGE_CONTEXT)/
	podman build --quiet --format docker -f bootstrap/deploy/Dockerfile -t $(IMAGE) $(IMAGE_CONTEXT)

## image-deps: Debian's podman, and runc, which runs containers where crun
## refuses the host's cgroups (tests/image says when).
image-deps:
	@command -v podman >/dev/null && command -v runc >/dev/null && test -e /etc/ssl/certs/ca-certificates.crt || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc ca-certificates >/dev/null; }

## asyncapi-deps: the AsyncAPI parser (npm, pinned by its lock file) that
## checks adapters/websocket/asyncapi.yaml; reinstalled only when the lock
## file changes. Its packages need no install scripts, so none run.
ASYNCAPI_CHECK := adapters/websocket/asyncapi_check
asyncapi-deps: $(ASYNCAPI_CHECK)/node_modules/.package-lock.json

$(ASYNCAPI_CHECK)/node_modules/.package-lock.json: $(ASYNCAPI_CHECK)/package.json $(ASYNCAPI_CHECK)/package-lock.json
	cd $(ASYNCAPI_CHECK) && npm ci --ignore-scripts --no-audit --no-fund

## schemathesis-deps: schemathesis (PyPI) in a virtual environment under bin/,
## for the e2e's TestSchemathesis; the stamp file makes it a no-op once installed.
SCHEMATHESIS_VERSION := 4.32.5
SCHEMATHESIS := $(BIN)/schemathesis/installed-$(SCHEMATHESIS_VERSION)
schemathesis-deps: $(SCHEMATHESIS)

$(SCHEMATHESIS):
	rm -rf $(BIN)/schemathesis
	python3 -m venv $(BIN)/schemathesis
	$(BIN)/schemathesis/bin/pip install -q schemathesis==$(SCHEMATHESIS_VERSION)
	touch $@

## prometheus-deps: Debian's prometheus and promtool, unpacked into bin/prometheus
## (downloaded, not installed, so that no service starts) for the rules' tests.
PROMTOOL := $(BIN)/prometheus/usr/bin/promtool
prometheus-deps: $(PROMTOOL)

$(PROMTOOL):
	./tests/infra/prometheus/install.sh $(CURDIR)/$(BIN)/prometheus

## test: every suite, infrastructure included; nothing skips. The suites under
## tests/ run one package at a time: each starts its own broker and store
## (tests/failover the deployed layout's six JVMs, once for its tests).
test: vet infra-deps browser-deps image-deps asyncapi-deps schemathesis-deps prometheus-deps build
	$(GOTEST) -race -timeout 5m ./domain/... ./application/... ./ports/... ./adapters/... ./bootstrap/...
	$(GOTEST) -p 1 -timeout 15m ./tests/...

## test-failover: the failover suite alone, on the deployed RocketMQ layout (six JVMs).
test-failover: infra-deps
	$(GOTEST) -v -timeout 15m ./tests/failover/

## vet: gofmt, go vet and golangci-lint (.golangci.yml says which linters and why).
vet: $(GOLANGCI_LINT)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above are not formatted"; exit 1; }
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(CURDIR)/$(dir $(GOLANGCI_LINT)) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

## fuzz: a short run of the frame decoder's fuzz test.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeFrame -fuzztime 20s ./adapters/websocket

## bench: the store's append path and a history page against the MongoDB-wire server.
bench: infra-deps
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./tests/contract/

## bench-load: the load benchmark of the embedded node, of its floor (a bare
## gorilla/websocket relay, bin/wsrelay) and of the real stack (two nodes on
## FerretDB and RocketMQ, and the raw RocketMQ floor); prints the table of
## issue 16's targets and the CPU per message of each fixed-rate run.
## About 7 minutes on 2 cores; node logs and CPU profiles stay in bin/bench-load.
bench-load: build infra-deps
	$(GO) build -o $(BIN)/benchload ./tests/load/cmd/benchload
	$(GO) build -o $(BIN)/wsrelay ./tests/load/cmd/wsrelay
	env 'rocketmq.client.localOffsetStoreDir=$(RMQ_OFFSETS)' ./$(BIN)/benchload -log-dir $(BIN)/bench-load

## bench-scale: issue 15's scale measurement: 2, 4 and 8 nodes on one broker and
## store at 200 msg/s, in routed and in broadcast delivery; prints a table of each
## node's received commits and CPU, the broker's CPU and the e2e latency. About
## 6 minutes on 2 cores; node logs stay in bin/bench-scale.
bench-scale: build infra-deps
	$(GO) build -o $(BIN)/benchload ./tests/load/cmd/benchload
	env 'rocketmq.client.localOffsetStoreDir=$(RMQ_OFFSETS)' ./$(BIN)/benchload -scale -log-dir $(BIN)/bench-scale

## bench-group: issue 18's group delivery: one sender to groups of 50 and 256
## members spread over two nodes of the real stack; prints the latency to a
## message's last member and the CPU per message and per frame delivered.
## About 2 minutes; node logs stay in bin/bench-group.
bench-group: build infra-deps
	$(GO) build -o $(BIN)/benchload ./tests/load/cmd/benchload
	env 'rocketmq.client.localOffsetStoreDir=$(RMQ_OFFSETS)' ./$(BIN)/benchload -group -log-dir $(BIN)/bench-group

clean:
	rm -rf $(BIN)
