# The project's commands. `make run` starts everything in one process on the
# embedded defaults; `make test` runs every test of every module.

export GOPROXY ?= https://proxy.golang.org
export GOFLAGS ?= -buildvcs=false

BUF_VERSION := v1.75.0
BUF         := go run github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
MODULES     := ./contracts/... ./gen/... ./services/... ./test/...
UNIT_MODULES := ./contracts/... ./gen/... ./services/...
GO_MODULES  := contracts gen services test
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: run test test-unit test-e2e generate checkgenerate lint buflint vet golangci tidy breaking bench fuzz ci

## run: the consumer with embedded NATS and the chat service on SQLite.
## The built binary runs in the foreground (not `go run`, which reports an
## interrupt as a failure), so Ctrl-C drains, exits 0 and make prints no error.
run:
	@go build -o bin/chatconsumer ./services/chatconsumer
	CHATCONSUMER_TAKE_TERMINAL=1 ./bin/chatconsumer -f services/chatconsumer/etc/consumer.yaml

## test: every test of every module (.ci/test). PostgreSQL tests use
## CHAT_TEST_POSTGRES_DSN when set; as root with apt-get, PostgreSQL is set up
## from Debian's packages; elsewhere they are listed as not run, with how to
## run them (under CI=true that is a failure).
test:
	@bash .ci/test

## test-unit: every module but the container tests in test/, with -race
test-unit:
	go test -race -count=1 $(UNIT_MODULES)

## test-e2e: the container tests only
test-e2e:
	go test -count=1 -timeout 20m -v ./test/...

## generate: regenerate gen/ and contracts/eventoptions from proto/.
## buf's clean removes gen/, so its go.mod and go.sum are kept aside.
generate:
	@tmp=$$(mktemp -d) && cp gen/go.mod gen/go.sum $$tmp/ && \
	$(BUF) generate && $(BUF) generate --template contracts/buf.gen.yaml && \
	cp $$tmp/go.mod $$tmp/go.sum gen/ && rm -rf $$tmp

## checkgenerate: fail when generated code differs from a fresh generate
checkgenerate: generate
	@git add -N gen contracts/eventoptions contracts/internal/testpb && \
	git diff --exit-code -- gen contracts/eventoptions contracts/internal/testpb || \
	{ echo "generated code is stale: run make generate and commit"; exit 1; }

## lint: every linter: buf lint, go vet, golangci-lint and go mod tidy -diff
lint: buflint vet golangci tidy

## buflint: buf lint of proto/
buflint:
	$(BUF) lint

## vet: go vet of every module (go vet ./... does not span go.work)
vet:
	@set -e; for m in $(GO_MODULES); do echo "go vet ($$m)"; (cd $$m && go vet ./...); done

## golangci: golangci-lint (pinned, run with go run) of every module, with
## the root .golangci.yml. GOLANGCI_LINT=/path/to/golangci-lint uses a
## binary of the same version instead.
golangci:
	@set -e; for m in $(GO_MODULES); do echo "golangci-lint ($$m)"; (cd $$m && $(GOLANGCI_LINT) run --config ../.golangci.yml ./...); done

## tidy: fail when a module's go.mod or go.sum is not what go mod tidy writes
tidy:
	@set -e; for m in $(GO_MODULES); do (cd $$m && go mod tidy -diff) || \
		{ echo "$$m/go.mod is not tidy: run go mod tidy in $$m and commit"; exit 1; }; done

## breaking: buf breaking against the previous commit
breaking:
	@if git rev-parse -q --verify HEAD~1 >/dev/null; then \
		$(BUF) breaking --against '.git#ref=HEAD~1'; \
	else echo "buf breaking: no previous commit to compare with"; fi

## bench: the quick benchmarks behind the README's figures, a few minutes
## in all: eventbus consume vs raw nats.go, the codecs, building a
## published message, the consumer's handlers against the chat service, the
## whole pipeline on SQLite (one consumer, and 1, 2 and 4 replicas on the
## mix), the chat store at 10k memberships and a backlog of 20,000 events
## drained by the real programs. The README's table gives each larger run's
## command.
BENCH := go test -run '^$$' -bench
bench:
	cd contracts && $(BENCH) Consume -benchtime 20000x ./eventbus/
	cd contracts && $(BENCH) 'Decode|JSONCodec' -benchtime 20000x ./eventbus/
	cd contracts && $(BENCH) NewMsg -benchmem ./eventbus/
	cd test && $(BENCH) JSONCodecEvents -benchtime 20000x ./contract/
	cd services && $(BENCH) Handlers -benchmem -benchtime 2000x ./chatconsumer/internal/handlers/
	cd services && $(BENCH) 'Pipeline/sqlite(_half_rate)?$$' -benchtime 20000x ./chatconsumer/internal/app/
	cd services && $(BENCH) 'Replicas/sqlite/mix/' -benchtime 5000x ./chatconsumer/internal/app/
	cd services && $(BENCH) Scale -benchtime 5000x ./chat/store/
	cd test && $(BENCH) Backlog -benchtime 1x ./backlog/

## fuzz: every fuzz target for FUZZTIME executions each (CI: the default);
## longer runs with e.g. `make fuzz FUZZTIME=2000000x`. A count, not a
## duration: go1.26's fuzz coordinator can fail a duration run with a bare
## "context deadline exceeded" when the time is up (golang/go#75804, fixed in
## go1.27); a count never takes that path. A crasher is saved under the
## package's testdata/fuzz and from then on runs with go test as a regression
## test.
FUZZTIME     ?= 10000x
FUZZ_TARGETS := \
	./contracts/eventbus:FuzzDecodeJSON \
	./contracts/eventbus:FuzzDecodeBinary \
	./contracts/eventbus:FuzzJSONCodec \
	./contracts/eventbus:FuzzDeadLetterHeaders \
	./test/contract:FuzzJSONCodecEvents \
	./test/contract:FuzzActivityEvents \
	./services/chat/chatserver:FuzzServiceJSON \
	./services/chat/chatserver:FuzzServiceBinary \
	./services/chat/chatserver:FuzzParse \
	./services/chat/store:FuzzMemberToken \
	./services/chat/store:FuzzMessageToken \
	./services/chatconsumer/internal/config:FuzzExpand \
	./services/chatconsumer/internal/config:FuzzParse
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t##*:} ($${t%%:*}) for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$${t##*:}\$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

## ci: what .ci/run runs
ci: lint breaking checkgenerate test fuzz
