# camhub's everyday commands. Each target is a thin wrapper over a script, so
# the scripts stay usable without make.
.PHONY: all build test demo bench bench-quick release clean

all: build

build:
	go build -o bin/ ./cmd/hub ./cmd/agent ./cmd/viewer ./cmd/detector

test:
	./scripts/test.sh

demo:
	./scripts/demo.sh

# The full benchmark run; writes docs/BENCHMARKS.md and its chart.
bench:
	./bench/run.sh

# The same run, shorter (under two minutes); writes to bench/out/ only.
bench-quick:
	./bench/run.sh --quick

# Agent, hub and viewer for Raspberry Pi OS bookworm, 64- and 32-bit, in dist/.
release:
	./scripts/release.sh

clean:
	rm -rf bin dist bench/out
