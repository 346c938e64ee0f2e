//! Criterion: the sequential round trip (register → verdict → resolved)
//! through each layer, so the adapter's overhead over the native original
//! comes with confidence intervals on a noisy VM. The bench binary
//! `benches/sink.rs` covers what criterion cannot (memory, storms, rates).
//!
//! `cargo bench -p approval-tests --bench round_trip`

#[path = "parts/calls.rs"]
mod calls;
#[path = "native/original.rs"]
mod original;

use approval_host::component::REGISTRY_COMPONENT;
use approval_host::{ApprovalSink, Decision, InvalidationSink};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn round_trips(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = rt.enter();
    let mut g = c.benchmark_group("round_trip");
    let timeout = Duration::from_secs(30);

    // A new request id per round trip on both sides: a verdict is final in
    // the sink (S15), so a reused id would settle without a round trip.
    let mut i = 0u64;
    let native = original::NativeSink::new();
    g.bench_function("native original (tokio + DashMap)", |b| {
        b.iter(|| {
            i += 1;
            let id = format!("req-{i}");
            let f = native.wait_for_approval(black_box(id.as_str()), timeout);
            native.on_approval_resolved(&id, Decision::Approved);
            futures::executor::block_on(f)
        })
    });

    let sink = ApprovalSink::new();
    g.bench_function("component via adapter (wait_for_approval)", |b| {
        b.iter(|| {
            i += 1;
            let id = format!("req-{i}");
            let f = sink.wait_for_approval(black_box(id.as_str()), timeout);
            sink.on_approval_resolved(&id, Decision::Approved);
            futures::executor::block_on(f)
        })
    });

    for epochs in [true, false] {
        let engine = calls::engine(epochs);
        let component =
            wasmtime::component::Component::new(&engine, REGISTRY_COMPONENT).expect("compile");
        let mut bare = calls::Bare::new(&engine, &component);
        let on = if epochs { "on" } else { "off" };
        g.bench_function(format!("bare register + resolve, epochs {on}"), |b| {
            b.iter(|| bare.register_resolve(1))
        });
        g.bench_function(format!("bare cancel(u64), epochs {on}"), |b| {
            b.iter(|| bare.empty_call(1))
        });
        g.bench_function(
            format!("bare apply([register, resolve]), epochs {on}"),
            |b| b.iter(|| bare.apply_round_trip(1)),
        );
        g.bench_function(format!("bare apply(empty), epochs {on}"), |b| {
            b.iter(|| bare.apply_empty(1))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = round_trips
}
criterion_main!(benches);
