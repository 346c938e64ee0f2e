//! Compiled components: one `Engine` per process, and per component a
//! `Linker` + `InstancePre`, so a new instance (a new sink, or a reset) costs
//! an instantiation and nothing more.
//!
//! The engine runs with `concurrency_support(false)`: the embedded
//! `approval-registry` world has no async import or export, and without
//! concurrency support every plain `TypedFunc::call` is cheaper (SPEC.md §4).

use crate::bindings::ApprovalRegistryPre;
use crate::error::{Cause, HostError, cause};
use crate::imports::StoreState;
use std::sync::{Arc, OnceLock};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

// `REGISTRY_COMPONENT` and `PLUGIN_COMPONENT`: the components `build.rs`
// built from `approval-guest`, embedded.
include!(concat!(env!("OUT_DIR"), "/gen.rs"));

/// A component compiled and linked, ready to instantiate.
pub struct Loaded {
    pub(crate) engine: Engine,
    pub(crate) pre: ApprovalRegistryPre<StoreState>,
    /// Size of the component's bytes.
    pub size: usize,
}

/// How often the engine's epoch advances: the granularity of the per-call
/// time budget (`SinkConfig::call_budget`).
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// The process-wide engine for sync-only components.
///
/// Guest calls are bounded by epoch interruption rather than fuel: fuel is
/// checked on every basic block, epochs only at function entries and loop
/// headers, and a wall-clock budget is what a host needs (a stuck guest must
/// not stall the sink's mutex). One ticker thread per process advances the
/// epoch every [`EPOCH_TICK`].
pub(crate) fn engine() -> Result<&'static Engine, HostError> {
    static ENGINE: OnceLock<Result<Engine, Cause>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.concurrency_support(false);
            config.epoch_interruption(true);
            // `perf` can name the guest's compiled functions only through a
            // perf map (/tmp/perf-PID.map); opt-in, for profiling sessions.
            if std::env::var_os("APPROVAL_SINK_PERFMAP").is_some() {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            let engine = Engine::new(&config).map_err(cause)?;
            let ticker = engine.weak();
            std::thread::Builder::new()
                .name("approval-sink-epoch".into())
                .spawn(move || {
                    while let Some(engine) = ticker.upgrade() {
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(EPOCH_TICK);
                    }
                })
                .map_err(|e| Arc::new(e) as Cause)?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| HostError::Engine(Arc::clone(e)))
}

/// Compiles and links component bytes of the `approval-registry` world.
pub fn load(bytes: &[u8]) -> Result<Arc<Loaded>, HostError> {
    let engine = engine()?.clone();
    let component = Component::new(&engine, bytes).map_err(|e| HostError::Compile(cause(e)))?;
    link(engine, &component, bytes.len())
}

/// Links a compiled component against the host's imports.
fn link(engine: Engine, component: &Component, size: usize) -> Result<Arc<Loaded>, HostError> {
    let mut linker = Linker::new(&engine);
    crate::bindings::ApprovalRegistry::add_to_linker::<StoreState, HasSelf<StoreState>>(
        &mut linker,
        |state| state,
    )
    .map_err(|e| HostError::Compile(cause(e)))?;
    let pre = linker
        .instantiate_pre(component)
        .and_then(ApprovalRegistryPre::new)
        .map_err(|e| HostError::Compile(cause(e)))?;
    Ok(Arc::new(Loaded { engine, pre, size }))
}

/// The embedded component, compiled once per process.
pub fn embedded() -> Result<Arc<Loaded>, HostError> {
    static EMBEDDED: OnceLock<Result<Arc<Loaded>, Cause>> = OnceLock::new();
    EMBEDDED
        .get_or_init(|| load(REGISTRY_COMPONENT).map_err(|e| Arc::new(e) as Cause))
        .clone()
        .map_err(HostError::Embedded)
}

/// Compiles component bytes into a wasmtime artifact (`.cwasm`) for
/// [`load_precompiled`]: loading it skips Cranelift entirely. The artifact
/// is only valid for this engine's configuration and wasmtime version
/// ([`artifact_key`] names both).
pub fn precompile(bytes: &[u8]) -> Result<Vec<u8>, HostError> {
    engine()?
        .precompile_component(bytes)
        .map_err(|e| HostError::Compile(cause(e)))
}

/// The name an artifact of `bytes` is cached under: a hash of the engine's
/// `precompile_compatibility_hash` (wasmtime version and every codegen
/// setting) and of the component bytes, so a new build or another engine
/// configuration never picks up a stale artifact. (std's `DefaultHasher`
/// may change between Rust releases; that only costs one recompile.)
pub fn artifact_key(bytes: &[u8]) -> Result<String, HostError> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine()?.precompile_compatibility_hash().hash(&mut hasher);
    bytes.hash(&mut hasher);
    Ok(format!("approval-{:016x}.cwasm", hasher.finish()))
}

/// Links a precompiled artifact from [`precompile`].
///
/// # Safety
///
/// wasmtime maps the artifact as executable code without validating it: the
/// bytes must come from [`precompile`] of this build (or an identical one),
/// and nobody untrusted may have been able to modify them
/// (`wasmtime::component::Component::deserialize`).
pub unsafe fn load_precompiled(artifact: &[u8], size: usize) -> Result<Arc<Loaded>, HostError> {
    let engine = engine()?.clone();
    // SAFETY: the caller vouches for the artifact (see above).
    let component = unsafe { Component::deserialize(&engine, artifact) }
        .map_err(|e| HostError::Compile(cause(e)))?;
    link(engine, &component, size)
}

/// Loads `bytes` through an artifact cache in `dir`: the first call compiles
/// and writes `dir/<artifact_key>`, later calls (in any process) deserialize
/// it, which costs milliseconds instead of a Cranelift compile. An artifact
/// that fails to load is recompiled and rewritten. Returns whether the cache
/// was hit.
///
/// # Safety
///
/// As for [`load_precompiled`]: `dir` must be writable only by parties
/// trusted to run native code in this process.
pub unsafe fn load_cached(
    bytes: &[u8],
    dir: &std::path::Path,
) -> Result<(Arc<Loaded>, bool), HostError> {
    let path = dir.join(artifact_key(bytes)?);
    if let Ok(artifact) = std::fs::read(&path) {
        // SAFETY: forwarded to the caller.
        match unsafe { load_precompiled(&artifact, bytes.len()) } {
            Ok(loaded) => return Ok((loaded, true)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "stale artifact; recompiling")
            }
        }
    }
    let artifact = precompile(bytes)?;
    let file_error = |source| HostError::ComponentFile {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(file_error)?;
    // Write then rename, so a concurrent reader never maps half a file.
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, &artifact).map_err(file_error)?;
    std::fs::rename(&partial, &path).map_err(file_error)?;
    // SAFETY: the artifact was produced just now by this engine.
    let loaded = unsafe { load_precompiled(&artifact, bytes.len()) }?;
    Ok((loaded, false))
}
