# Sésame. `make run` starts the dev stack; `make test` runs every test.
GO ?= go
BIN := bin/sesame
CONFIG ?= config/dev.yaml
DSFR_VERSION ?= $(shell cat internal/web/static/dsfr/VERSION 2>/dev/null)

.PHONY: run build build-hsm test test-deploy deps lint bench bench-load interop dsfr clean image compose cog

## run: the whole demo (broker, mock IdPs, demo SP) on localhost, in-memory store
run: build
	@echo "Sésame dev stack: demo SP http://localhost:8200  broker http://localhost:8000  mock IdPs http://localhost:8100  citizen space http://localhost:8400  mail outbox http://localhost:8025"
	$(BIN) dev -config $(CONFIG)

build:
	$(GO) build -o $(BIN) ./cmd/sesame

## build-hsm: the binary with the PKCS#11 signer (cgo; the sesame-hsm image, deploy/Dockerfile.hsm)
build-hsm:
	CGO_ENABLED=1 $(GO) build -tags pkcs11 -o bin/sesame-hsm ./cmd/sesame

## deps: find or install redis-server, postgresql, chromium, softhsm2 and gcc (the tests use real ones)
deps:
	@scripts/deps.sh

## test: vet, then every test (unit, store suite on memory and Redis, history suite on SQLite and PostgreSQL, e2e, browser, fuzz seeds, PKCS#11 signer on SoftHSM2)
test: deps
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) vet -tags pkcs11 ./...
	@scripts/test.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) vet -tags pkcs11 ./...
	cd deploy && $(GO) vet ./...

## test-deploy: only the tests of deploy/ (Dockerfile, compose file, Helm chart, production example); make test runs them too
test-deploy: deps
	cd deploy && $(GO) test -count=1 -v ./...

## image: the container image (needs docker or podman with BuildKit)
image:
	docker build -f deploy/Dockerfile -t sesame:local .

## compose: the whole stack in containers (two brokers, Redis Sentinel, PostgreSQL, Mailpit); see README
compose:
	docker compose -f deploy/compose.yaml up --build

## bench: Go benchmarks of the hot paths, then bench-load
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(MAKE) bench-load

## bench-load: the load generator (complete logins against the stack as separate processes) on the memory store,
## then on Redis; BENCH_USERS, BENCH_DURATION and BENCH_FLAGS (e.g. -platform plus) tune it; docs/performance.md
BENCH_USERS ?= 8
BENCH_DURATION ?= 20s
BENCH_FLAGS ?=
bench-load: build
	$(BIN) bench -store memory -users $(BENCH_USERS) -duration $(BENCH_DURATION) $(BENCH_FLAGS)
	$(BIN) bench -store redis -users $(BENCH_USERS) -duration $(BENCH_DURATION) $(BENCH_FLAGS)

## interop: log in with openid-client as SP and through oidc-provider as IdP (needs node, npm)
interop:
	interop/run.sh

## dsfr: refresh the committed DSFR assets from npm at the pinned version
dsfr:
	scripts/refresh-dsfr.sh $(DSFR_VERSION)

## axe: refresh the vendored axe-core (e2e/testdata/axe.min.js) from npm at the pinned version (e2e/testdata/axe.VERSION)
.PHONY: axe
axe:
	scripts/refresh-axe.sh $(AXE_VERSION)

## cog: rebuild the embedded COG tables (communes since 1943, countries) from npm and PyPI at the pinned versions
cog:
	scripts/cog-refresh.sh

clean:
	rm -rf bin
