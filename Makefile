# The project's commands. `make run` starts everything in one process on the
# embedded defaults; `make test` runs every test of every module.

export GOPROXY ?= https://proxy.golang.org
export GOFLAGS ?= -buildvcs=false

BUF_VERSION := v1.75.0
BUF         := go run github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
MODULES     := ./contracts/... ./gen/... ./services/... ./test/...
UNIT_MODULES := ./contracts/... ./gen/... ./services/...

.PHONY: run test test-unit test-e2e generate checkgenerate lint breaking bench ci

## run: the consumer with embedded NATS and the chat service on SQLite
run:
	go run ./services/chatconsumer -f services/chatconsumer/etc/consumer.yaml

## test: every test of every module, the unit tests with -race; PostgreSQL
## is installed and started from Debian's packages when it is missing (needs
## root), Docker must run.
test:
	bash .ci/postgres
	CHAT_TEST_POSTGRES_DSN=$${CHAT_TEST_POSTGRES_DSN:-postgres://chat:chat@127.0.0.1:5432/chat_test?sslmode=disable} \
		go test -race -count=1 -timeout 25m $(UNIT_MODULES)
	CHAT_TEST_POSTGRES_DSN=$${CHAT_TEST_POSTGRES_DSN:-postgres://chat:chat@127.0.0.1:5432/chat_test?sslmode=disable} \
		go test -count=1 -timeout 25m ./test/...

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
	@git add -N gen contracts/eventoptions && \
	git diff --exit-code -- gen contracts/eventoptions || \
	{ echo "generated code is stale: run make generate and commit"; exit 1; }

## lint: buf lint
lint:
	$(BUF) lint

## breaking: buf breaking against the previous commit
breaking:
	@if git rev-parse -q --verify HEAD~1 >/dev/null; then \
		$(BUF) breaking --against '.git#ref=HEAD~1'; \
	else echo "buf breaking: no previous commit to compare with"; fi

## bench: the benchmarks behind the README's figures
bench:
	go test -run '^$$' -bench . -benchtime 3s ./contracts/eventbus/ ./services/chat/... ./services/chatconsumer/...

## ci: what .ci/run runs
ci: lint breaking checkgenerate test
