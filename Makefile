# Two commands set up everything on a fresh machine: `make run` and `make test`.
GO       ?= go
BIN      := bin
CHATD    := $(BIN)/chatd
FERRETDB := $(BIN)/ferretdb
# Broadcast consumers keep their offsets in files; the client reads where
# from this variable once, at start, so tests keep theirs out of $HOME.
RMQ_OFFSETS := $(CURDIR)/bin/rocketmq-offsets
GOTEST   := env 'rocketmq.client.localOffsetStoreDir=$(RMQ_OFFSETS)' $(GO) test -count=1

.PHONY: build run run-cluster test infra-deps fuzz bench vet clean

build:
	$(GO) build -o $(CHATD) ./bootstrap/chatd

## run: one node on :8080 with the embedded default (in-memory store, in-process bus).
run: build
	./$(CHATD)

## infra-deps: the RocketMQ jars (Maven Central) and the FerretDB test server.
infra-deps: $(FERRETDB)
	./tests/infra/rocketmq/install.sh

$(FERRETDB): $(wildcard tests/infra/ferretdb/*.go tests/infra/ferretdb/go.mod)
	cd tests/infra/ferretdb && $(GO) build -o $(CURDIR)/$(FERRETDB) .

## test: every suite, infrastructure included; nothing skips.
test: vet infra-deps build
	$(GOTEST) -race -timeout 5m ./domain/... ./application/... ./ports/... ./adapters/... ./bootstrap/...
	$(GOTEST) -timeout 10m ./tests/...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above are not formatted"; exit 1; }
	$(GO) vet ./...

## fuzz: a short run of the frame decoder's fuzz test.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeFrame -fuzztime 20s ./adapters/websocket

## bench: the store's append path and a history page against the MongoDB-wire server.
bench: infra-deps
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./tests/contract/

clean:
	rm -rf $(BIN)
