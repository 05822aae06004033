# The documented workflow. `make demo` and `make test` are the two commands
# a newcomer needs; the rest are for contributors and operators.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GO      ?= go
BIN     := bin/vantage

.PHONY: build test test-short bench lint demo image lab lab-netns soak fuzz clean

build: ## build bin/vantage (static, trimmed)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vantage

test: ## the test suite, as CI runs it
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-short: ## quick run without the race detector
	$(GO) test -count=1 ./...

bench: build ## Go micro-benchmarks and the agent benchmark
	$(GO) test -run '^$$' -bench . -benchmem ./probe/... ./cluster/... ./exporter/...
	$(BIN) bench

lint: ## vet, gofmt and go mod tidy must leave no diff
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) mod tidy -diff

demo: build ## the main job on its embedded default: a 3-region fleet with faults
	$(BIN) demo

image: deploy/ca-certificates.crt ## the container image, FROM scratch with the static binary
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/vantage ./cmd/vantage
	docker build --build-arg VERSION=$(VERSION) -t vantage:$(VERSION) -t vantage:latest -f Dockerfile .

clean:
	rm -rf bin dist

deploy/ca-certificates.crt: # the CA bundle baked into the image, from the build host
	cp /etc/ssl/certs/ca-certificates.crt $@

lab: build ## the fault lab: paging timed to a real Alertmanager (15s interval), then outages, a partition and a crash (30s interval); MTTD/MTTR, false incidents, misses, pages (about ten minutes)
	$(BIN) lab -paging
	$(BIN) lab

lab-netns: build ## the fault lab with real processes (root): six agent processes in per-region network namespaces; veth down, iptables cuts and one-way loss, SIGKILL/SIGSTOP, good and bad configs with SIGHUP, outages; five invariants checked every second (about 15 minutes; no netem here, so no delay injection)
	$(BIN) lab -netns -agent $(BIN)

fuzz: ## every fuzz target for FUZZTIME each (default 10s), one at a time
	FUZZTIME=$(or $(FUZZTIME),10s) .ci/fuzz.sh

soak: build ## 10k targets for 30 minutes with target faults and agent restarts
	$(BIN) soak -targets 10000 -interval 30s -duration 30m
