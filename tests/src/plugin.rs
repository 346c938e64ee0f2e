//! Loads the `approval-plugin` component straight into wasmtime, with the
//! component-model async ABI: `run_concurrent` + `call_concurrent`, and a
//! `timer.sleep-until` backed by a [`ManualClock`], so async waits time out
//! exactly when a test advances the clock.

use approval_host::{Clock, ManualClock};
use wasmtime::component::{Accessor, Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "approval-plugin",
    additional_derives: [PartialEq],
});

pub use assembly::approval::types::{Batch, Decision, IngestReport, Outcome, SinkError, SinkStats};
use wasmtime::component::TypedFunc;

/// Store data of a plugin instance.
pub struct PluginState {
    /// The time `clock.now` reads and `timer.sleep-until` waits on.
    pub clock: ManualClock,
    /// Agent ids the guest reported through `host-events`.
    pub invalidations: Vec<String>,
}

impl assembly::approval::clock::Host for PluginState {
    fn now(&mut self) -> u64 {
        self.clock.now_ns()
    }
}

impl assembly::approval::host_events::Host for PluginState {
    fn policy_invalidated(&mut self, agent_id: String) {
        self.invalidations.push(agent_id);
    }
}

impl assembly::approval::types::Host for PluginState {}
impl assembly::approval::timer::Host for PluginState {}

impl<T> assembly::approval::timer::HostWithStore<T> for HasSelf<PluginState> {
    async fn sleep_until(accessor: &Accessor<T, Self>, deadline: u64) {
        let clock = accessor.with(|mut access| access.get().clock.clone());
        clock.sleep_until(deadline).await;
    }
}

/// One instance of the plugin component in its own store.
pub struct Plugin {
    /// The store; drive calls with `store.run_concurrent`.
    pub store: Store<PluginState>,
    /// Typed exports.
    pub api: ApprovalPlugin,
}

/// An engine with the component-model async ABI on.
pub fn async_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model_async(true);
    Engine::new(&config)
}

impl Plugin {
    /// Instantiates component bytes of the `approval-plugin` world.
    pub async fn new(bytes: &[u8], clock: ManualClock) -> wasmtime::Result<Plugin> {
        let engine = async_engine()?;
        let component = Component::new(&engine, bytes)?;
        let mut linker = Linker::new(&engine);
        ApprovalPlugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
        let mut store = Store::new(
            &engine,
            PluginState {
                clock,
                invalidations: Vec::new(),
            },
        );
        let api = ApprovalPlugin::instantiate_async(&mut store, &component, &linker).await?;
        Ok(Plugin { store, api })
    }

    /// Typed handles on the exports whose bindgen signatures borrow their
    /// arguments; `call_concurrent` needs owned (`'static`) parameters.
    pub fn calls(&self) -> wasmtime::Result<Calls> {
        let r = self.api.assembly_approval_registry();
        Ok(Calls {
            resolve: r.func_resolve().func().typed(&self.store)?,
            ingest_frames: r.func_ingest_frames().func().typed(&self.store)?,
            register: r.func_register().func().typed(&self.store)?,
            cancel: r.func_cancel(),
            expire: r.func_expire(),
            stats: r.func_stats(),
            wait: self.api.assembly_approval_sink().func_wait_for_approval(),
        })
    }

    /// The embedded `approval-plugin` component, compiled once per process.
    pub async fn embedded(clock: ManualClock) -> wasmtime::Result<Plugin> {
        static COMPILED: std::sync::OnceLock<(Engine, Component)> = std::sync::OnceLock::new();
        let (engine, component) = match COMPILED.get() {
            Some(compiled) => compiled,
            None => {
                let engine = async_engine()?;
                let component =
                    Component::new(&engine, approval_host::component::PLUGIN_COMPONENT)?;
                COMPILED.get_or_init(|| (engine, component))
            }
        };
        Self::instantiate(engine, component, clock).await
    }

    async fn instantiate(
        engine: &Engine,
        component: &Component,
        clock: ManualClock,
    ) -> wasmtime::Result<Plugin> {
        let mut linker = Linker::new(engine);
        ApprovalPlugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
        let mut store = Store::new(
            engine,
            PluginState {
                clock,
                invalidations: Vec::new(),
            },
        );
        let api = ApprovalPlugin::instantiate_async(&mut store, component, &linker).await?;
        Ok(Plugin { store, api })
    }
}

/// The plugin's exports as `call_concurrent`-able typed functions.
#[derive(Clone, Copy)]
pub struct Calls {
    /// `registry.resolve`.
    pub resolve: TypedFunc<(String, Decision), (Result<Batch, SinkError>,)>,
    /// `registry.ingest-frames`.
    pub ingest_frames: TypedFunc<(Vec<u8>,), (IngestReport,)>,
    /// `registry.register`.
    pub register:
        TypedFunc<(u64, String, u64), (Result<assembly::approval::types::Registered, SinkError>,)>,
    /// `registry.cancel`.
    pub cancel: TypedFunc<(u64,), (bool,)>,
    /// `registry.expire`.
    pub expire: TypedFunc<(), (Batch,)>,
    /// `registry.stats`.
    pub stats: TypedFunc<(), (SinkStats,)>,
    /// `sink.wait-for-approval`.
    pub wait: TypedFunc<(u64, String, u64), (Result<Outcome, SinkError>,)>,
}

type Acc = Accessor<PluginState>;

impl Calls {
    /// `sink.wait-for-approval`, as a concurrent call.
    pub async fn wait(
        &self,
        acc: &Acc,
        waiter: u64,
        id: &str,
        timeout_ns: u64,
    ) -> Result<Outcome, SinkError> {
        self.wait
            .call_concurrent(acc, (waiter, id.to_string(), timeout_ns))
            .await
            .expect("guest must not trap")
            .0
    }

    /// `registry.resolve`.
    pub async fn resolve(&self, acc: &Acc, id: &str, d: Decision) -> Result<Batch, SinkError> {
        self.resolve
            .call_concurrent(acc, (id.to_string(), d))
            .await
            .expect("guest must not trap")
            .0
    }

    /// `registry.cancel`.
    pub async fn cancel(&self, acc: &Acc, waiter: u64) -> bool {
        self.cancel
            .call_concurrent(acc, (waiter,))
            .await
            .expect("guest must not trap")
            .0
    }

    /// `registry.ingest-frames`.
    pub async fn ingest(&self, acc: &Acc, bytes: Vec<u8>) -> IngestReport {
        self.ingest_frames
            .call_concurrent(acc, (bytes,))
            .await
            .expect("guest must not trap")
            .0
    }

    /// `registry.stats`.
    pub async fn stats(&self, acc: &Acc) -> SinkStats {
        self.stats
            .call_concurrent(acc, ())
            .await
            .expect("guest must not trap")
            .0
    }

    /// Lets the store's event loop run until `n` waiters are registered:
    /// concurrent calls start in an order the test does not control.
    pub async fn until_waiters(&self, acc: &Acc, n: u32) {
        for _ in 0..100_000 {
            if self.stats(acc).await.waiters == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the guest never reached {n} waiters");
    }
}

/// A host-side byte stream that hands the guest one chunk per read, so a
/// test controls exactly where frames are split across stream writes.
pub struct ChunkedBytes {
    chunks: std::collections::VecDeque<Vec<u8>>,
}

impl ChunkedBytes {
    /// Splits `bytes` into chunks of `size` (at least 1) bytes.
    pub fn new(bytes: &[u8], size: usize) -> Self {
        ChunkedBytes {
            chunks: bytes.chunks(size.max(1)).map(<[u8]>::to_vec).collect(),
        }
    }
}

impl<D> wasmtime::component::StreamProducer<D> for ChunkedBytes {
    type Item = u8;
    type Buffer = wasmtime::component::VecBuffer<u8>;

    fn poll_produce<'a>(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: wasmtime::StoreContextMut<'a, D>,
        mut dst: wasmtime::component::Destination<'a, u8, Self::Buffer>,
        _finish: bool,
    ) -> std::task::Poll<wasmtime::Result<wasmtime::component::StreamResult>> {
        use wasmtime::component::StreamResult;
        std::task::Poll::Ready(Ok(match self.get_mut().chunks.pop_front() {
            Some(chunk) => {
                dst.set_buffer(chunk.into());
                StreamResult::Completed
            }
            None => StreamResult::Dropped,
        }))
    }
}

impl Calls {
    /// `sink.ingest` over a stream that delivers `bytes` in `chunk`-byte writes.
    pub async fn ingest_stream(
        &self,
        api: &ApprovalPlugin,
        acc: &Acc,
        bytes: &[u8],
        chunk: usize,
    ) -> Result<u64, SinkError> {
        let producer = ChunkedBytes::new(bytes, chunk);
        let reader = acc
            .with(|mut access| wasmtime::component::StreamReader::new(&mut access, producer))
            .expect("stream created");
        api.assembly_approval_sink()
            .call_ingest(acc, reader)
            .await
            .expect("guest must not trap")
    }
}
