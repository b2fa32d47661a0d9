GO ?= go
FUZZTIME ?= 60s
FUZZMINTIME ?= 100x

.PHONY: build test bench bench-scale fuzz vet fmt clean

build:
	$(GO) build -o bin/ckpt2core ./cmd/ckpt2core

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi

test: vet
	$(GO) test -count=1 -timeout 15m ./...

# Go benchmarks: the real fixtures (elfcore BenchmarkConvert) and small
# versions of the synthetic shapes (internal/synth).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Synthetic checkpoints at scale (1 and 4 GiB, 60,000 VMAs, 512 threads):
# throughput against cp --sparse=always, peak RSS. Needs about 13 GiB free
# in BENCH_DIR (default /tmp).
bench-scale:
	scripts/bench.sh
	scripts/bench-archive.sh

# Each fuzz target in turn, FUZZTIME each. A package whose tests do not
# build fails the run instead of being skipped. FUZZMINTIME bounds the
# minimizing of each new input: with go test's default (60s) the targets
# with inputs of a few KiB (core, mm, whole conversion) spend their whole
# time minimizing and run a few dozen inputs a minute.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  list=$$($(GO) test -list '^Fuzz' $$pkg 2>&1) || { echo "$$list"; echo "== $$pkg: tests do not build"; exit 1; }; \
	  for t in $$(echo "$$list" | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg || exit 1; \
	  done; \
	done

fmt:
	gofmt -l -w .

clean:
	rm -rf bin out
