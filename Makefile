# pacswatch — `make help` lists the targets.
GO        ?= go
FUZZTIME  ?= 5m
BENCHTIME ?= 2s
export CGO_ENABLED ?= 0

.PHONY: help build test test-short check fuzz bench demo man clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build ./bin/pacswatch (static, CGO_ENABLED=0)
	$(GO) build -trimpath -o bin/pacswatch ./cmd/pacswatch

test: ## all tests with the race detector (real peers when installed; CI requires them)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 40m ./...

test-short: ## fast tests only
	$(GO) test -short -count=1 ./...

check: ## gofmt, go vet, staticcheck, then the tests
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(MAKE) test

fuzz: ## run every fuzz target for FUZZTIME (default 5m) on top of its committed corpus
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

bench: ## Go benchmarks, then bench/run.sh: scale and nmap/dcmtk comparison on a sim, into bench/RESULTS.md
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...
	bash bench/run.sh

demo: ## simulate 2019's exposed PACS on loopback, scan twice, write demo-report.html
	$(GO) run ./cmd/pacswatch demo

man: ## man pages and bash/zsh/fish completions from the command definitions, into out/ (nothing installs them)
	$(GO) run ./scripts/gendocs out

clean: ## remove build outputs
	rm -rf bin
