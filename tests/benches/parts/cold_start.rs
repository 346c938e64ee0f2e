//! Getting a sink's instance: compile from bytes, load a precompiled
//! artifact, instantiate from `InstancePre` (default and pooling allocator),
//! and a whole new `ApprovalSink`.

use approval_host::ApprovalSink;
use approval_host::component::{self, REGISTRY_COMPONENT};
use std::time::Instant;
use wasmtime::component::Component;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
    f(); // warm
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// µs to compile the component from its bytes with Cranelift and link it.
pub fn compile(n: u32) -> f64 {
    per_op(n, || {
        drop(component::load(REGISTRY_COMPONENT).expect("load"))
    })
}

/// µs to load a precompiled artifact (`Component::deserialize`) and link it.
pub fn from_artifact(n: u32) -> f64 {
    let artifact = component::precompile(REGISTRY_COMPONENT).expect("precompile");
    per_op(n, || {
        // SAFETY: produced just above by this engine.
        let loaded = unsafe { component::load_precompiled(&artifact, REGISTRY_COMPONENT.len()) };
        drop(loaded.expect("artifact"));
    })
}

/// µs per instantiation from `InstancePre` on a bare store (no configure, no
/// timer), with the default on-demand allocator or the pooling allocator.
pub fn instantiate_pre(n: u32, pooling: bool) -> f64 {
    let mut config = super::calls::config(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(64)
            .total_core_instances(256)
            .total_memories(64)
            .total_tables(64)
            .max_memory_size(64 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    let engine = Engine::new(&config).expect("engine");
    let component = Component::new(&engine, REGISTRY_COMPONENT).expect("compile");
    let pre = super::calls::linker(&engine)
        .instantiate_pre(&component)
        .expect("instantiate_pre");
    per_op(n, || {
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(1 << 40);
        pre.instantiate(&mut store).expect("instantiate");
    })
}

/// µs per whole new sink: instantiate + `configure` + timer task.
pub fn new_sink(n: u32) -> f64 {
    per_op(n, || drop(ApprovalSink::builder().build().expect("sink")))
}
