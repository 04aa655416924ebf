# The component is built for wasm32-wasip2 in release (size-tuned profile);
# the host, its tests and clippy's checks all use release too, so wasmtime
# is compiled once per profile and never twice.

CARGO  ?= cargo
TARGET := wasm32-wasip2
WASM   := target/$(TARGET)/release/allow_policies_batch.wasm
HOST   := target/release/task-host

.PHONY: all build wasm-target component host run test test-native test-host lint clean

all: build

build: component host

# A fresh machine lacks the wasm target; install it once, quietly.
wasm-target:
	@rustup target list --installed | grep -qx '$(TARGET)' || rustup target add $(TARGET)

component: wasm-target
	$(CARGO) build --release --target $(TARGET) -p allow-policies-batch
	@ls -l $(WASM) | awk '{ print "component: " $$5 " bytes  $(WASM)" }'

host:
	$(CARGO) build --release -p host-test

# Until the embedded fake API exists, the main job is the dry run: it shows
# the exact request (credentials redacted) without sending anything.
run: build
	CLOUDFLARE_API_TOKEN="$${CLOUDFLARE_API_TOKEN:-example-token}" \
	  $(HOST) run --config examples/config.json --input examples/batch.json --dry-run

test: test-native test-host

test-native:
	$(CARGO) test -p allow-policies-batch

# Integration tests load the component that `component` just built.
test-host: component
	$(CARGO) test --release -p host-test

lint: wasm-target
	$(CARGO) fmt --all --check
	$(CARGO) clippy -p allow-policies-batch --all-targets -- -D warnings
	$(CARGO) clippy -p allow-policies-batch --target $(TARGET) -- -D warnings
	$(CARGO) clippy --release -p host-test --all-targets -- -D warnings

clean:
	$(CARGO) clean
