# camhub's everyday commands. Each target is a thin wrapper over a script, so
# the scripts stay usable without make.
.PHONY: all build test demo bench bench-quick release images clean

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

# Container images, one per program, amd64 and arm64, into the local Docker
# engine (no registry, no buildx): camhub-{hub,agent,viewer,detector}:latest
# and :latest-arm64, camhub-admin:latest. scripts/images.sh --help.
images:
	./scripts/images.sh

clean:
	rm -rf bin dist bench/out
