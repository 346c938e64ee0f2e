# approval-sink tasks. Each recipe is one cargo command you can also run directly.

# Run the demo on the embedded component.
demo:
    cargo run --release --bin approval-sink -- demo

# Run every test (guest core natively, component through wasmtime, seed compat).
test:
    cargo test --workspace

# Benchmarks (see BENCHMARKS.md).
bench:
    cargo bench -p approval-tests --bench sink

# What CI runs after the tests.
lint:
    cargo clippy --workspace --all-targets -- -D warnings
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
