# rsgo build, test and local run. Every target works from a fresh clone.
MODULES  := shared controller agent deploy/demo
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
GO       ?= go
RUN_DIR  ?= $(CURDIR)/.run

.PHONY: all build test lint certs run demo-images clean bench

all: build

build:
	@mkdir -p bin
	cd controller && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o ../bin/rsgo-controller ./cmd/rsgo-controller
	cd agent && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o ../bin/rsgo-agent ./cmd/rsgo-agent
	cd controller && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o ../bin/rsgoctl ./cmd/rsgoctl

# Every module's tests with the race detector. Docker tests skip without an
# engine unless RSGO_REQUIRE_DOCKER=1.
test:
	@set -e; for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && $(GO) test -race -count=1 -timeout 12m ./...); \
	done

lint:
	@set -e; out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && $(GO) vet ./... && GOWORK=off $(GO) mod tidy -diff && GOWORK=off $(GO) build ./...); \
	done

# Create the controller's CA and server certificate ahead of the first start.
certs: build
	./bin/rsgo-controller certs init --data-dir $(RUN_DIR)/controller

# Controller plus one enrolled local agent and the demo catalog, data under
# .run/. The demo images are built here and loaded into the local engine.
run: build demo-images
	RUN_DIR=$(RUN_DIR) ./deploy/run-local.sh

demo-images:
	cd deploy/demo && $(GO) run ./cmd/rsgo-demo-images

bench: build
	cd controller && $(GO) run ./cmd/rsgo-bench link && $(GO) run ./cmd/rsgo-bench deploy && $(GO) run ./cmd/rsgo-bench upgrade && $(GO) run ./cmd/rsgo-bench progress

clean:
	rm -rf bin $(RUN_DIR)
