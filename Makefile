# pqlab build targets. `make run` runs the default experiment, `make test` the
# whole test suite (what CI runs), `make bench` and `make fuzz` the long jobs.
GO       ?= go
PKGS     := ./...
FUZZTIME ?= 20s
OUT      ?= results/default

.PHONY: all build run test bench fuzz lint clean

all: build

build:
	$(GO) build -o bin/pqlab ./cmd/pqlab

run: build
	./bin/pqlab run --out $(OUT)

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(PKGS)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for fz in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$fz"; \
	    $(GO) test -run '^$$' -fuzz "^$$fz$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)

clean:
	rm -rf bin results/default
