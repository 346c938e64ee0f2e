# approval-sink tasks. Each recipe is one cargo command you can also run directly.

# Run the demo on the embedded component.
demo:
    cargo run --release --bin approval-sink -- demo

# Run every test (guest core natively, component through wasmtime, seed compat).
test:
    cargo test --workspace

# The plugin component in Node.js via jco (tests/js); `just test` runs it too.
test-js:
    cargo test -p approval-tests --test jco

# Benchmarks (see BENCHMARKS.md).
bench:
    cargo bench -p approval-tests --bench sink
    cargo bench -p approval-tests --bench round_trip

# Round trips of the plugin component under jco (after `just test-js`).
bench-js:
    cd tests/js && APPROVAL_PLUGIN_WASM=../../target/tmp/jco/approval-plugin.wasm npm run --silent bench

# Exactly the lint steps `.ci/run` runs after the tests.
lint:
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy -p approval-guest --target wasm32-unknown-unknown -- -D warnings
    cargo clippy -p approval-guest --target wasm32-unknown-unknown --features plugin -- -D warnings
    cargo fmt --all --check

# Build the components and write them to target/components/.
component:
    mkdir -p target/components
    cargo run --release --bin approval-sink -- export --world registry -o target/components/approval-registry.wasm
    cargo run --release --bin approval-sink -- export --world plugin -o target/components/approval-plugin.wasm

# Print the WIT worlds of the embedded components.
wit:
    cargo run --release --bin approval-sink -- inspect
