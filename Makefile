# pqlab build targets. `make run` runs the default experiment, `make test` the
# whole test suite (what CI runs, the wire regression test included),
# `make experiments` the standard experiments, `make baseline` accepts a
# deliberate change of the wire, `make bench` and `make fuzz` the long jobs.
GO       ?= go
PKGS     := ./...
FUZZTIME ?= 20s
OUT      ?= results/default

# The standard experiments of experiments/ (make experiments).
EXPERIMENTS := latency-rtt-loss wire-cost-mtu placement-fragdrop reconnect-storm esp-throughput esp-realtime interop-matrix rekey-storm

.PHONY: all build run test bench fuzz lint clean experiments baseline

all: build

build:
	$(GO) build -o bin/pqlab ./cmd/pqlab

run: build
	./bin/pqlab run --out $(OUT)

# Runs every standard experiment into results/<name>/.
experiments: build
	@for e in $(EXPERIMENTS); do \
	  echo "== pqlab sweep experiments/$$e.toml"; \
	  ./bin/pqlab sweep experiments/$$e.toml || exit 1; \
	done

# Rewrites results/baseline/regression.txt from the regression experiment:
# run it when a change of the wire is intended, and commit the file with it.
baseline: build
	./bin/pqlab sweep experiments/regression.toml --update-baseline --out results/regression

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(PKGS)

# Runs every fuzz target for FUZZTIME each (new inputs are minimised for at
# most 5 s, so that minimising does not eat the fuzzing time).
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for fz in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$fz"; \
	    $(GO) test -run '^$$' -fuzz "^$$fz$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)

clean:
	rm -rf bin results/default results/regression
