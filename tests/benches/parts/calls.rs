//! Where a round trip goes, layer by layer: raw export calls on a bare
//! wasmtime instance of the registry component (no adapter, no mutex, no
//! slots), with and without epoch interruption, so the adapter's figure can
//! be split into wasmtime call machinery, guest work and host bookkeeping.

use approval_guest::ops::OpWriter;
use approval_guest::verdict::Verdict;
use approval_tests::plugin::assembly::approval::types::{Applied, Registered};
use approval_tests::plugin::{Batch, Decision, SinkError};
use std::time::Instant;
use wasmtime::component::{Component, Instance, Linker, TypedFunc};
use wasmtime::{Config, Engine, Store};

/// `registry.register` with a borrowed id.
type Register = TypedFunc<(u64, &'static str, u64), (Result<Registered, SinkError>,)>;
/// `registry.resolve` with a borrowed id.
type Resolve = TypedFunc<(&'static str, Decision), (Result<Batch, SinkError>,)>;

/// `registry.apply` with a borrowed buffer.
type Apply = TypedFunc<(u64, &'static [u8]), (Applied,)>;

/// A bare instance of `approval-registry` with typed handles on four exports.
pub struct Bare {
    store: Store<()>,
    register: Register,
    resolve: Resolve,
    cancel: TypedFunc<(u64,), (bool,)>,
    apply: Apply,
    /// The next request id and ticket: every round trip is a new approval
    /// request (a verdict is final, S15, so a reused id settles at once).
    next: u64,
}

/// The adapter's engine settings, with epoch interruption on or off.
pub fn config(epochs: bool) -> Config {
    let mut config = Config::new();
    config.concurrency_support(false);
    config.epoch_interruption(epochs);
    config
}

/// An engine with [`config`].
pub fn engine(epochs: bool) -> Engine {
    Engine::new(&config(epochs)).expect("engine")
}

/// A linker with no-op `clock` and `host-events` imports.
pub fn linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .instance("assembly:approval/clock@0.1.0")
        .and_then(|mut i| i.func_wrap("now", |_, (): ()| Ok((0u64,))))
        .expect("clock");
    linker
        .instance("assembly:approval/host-events@0.1.0")
        .and_then(|mut i| i.func_wrap("policy-invalidated", |_, (_,): (String,)| Ok(())))
        .expect("host-events");
    linker
        .instance("assembly:approval/types@0.1.0")
        .expect("types");
    linker
}

impl Bare {
    pub fn new(engine: &Engine, component: &Component) -> Bare {
        let mut store = Store::new(engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance: Instance = linker(engine)
            .instantiate(&mut store, component)
            .expect("instantiate");
        let export = |store: &mut Store<()>, name: &str| {
            let iface = instance
                .get_export_index(&mut *store, None, "assembly:approval/registry@0.1.0")
                .expect("registry export");
            let f = instance
                .get_export_index(&mut *store, Some(&iface), name)
                .expect("function export");
            instance.get_func(&mut *store, f).expect("func")
        };
        let register = export(&mut store, "register")
            .typed(&store)
            .expect("register");
        let resolve = export(&mut store, "resolve")
            .typed(&store)
            .expect("resolve");
        let cancel = export(&mut store, "cancel").typed(&store).expect("cancel");
        let apply = export(&mut store, "apply").typed(&store).expect("apply");
        Bare {
            store,
            register,
            resolve,
            cancel,
            apply,
            next: 0,
        }
    }

    /// ns per `cancel(u64) -> bool` of an unknown ticket: the cheapest export,
    /// close to pure call machinery (the guest does one map lookup).
    pub fn empty_call(&mut self, n: u64) -> f64 {
        let t = Instant::now();
        for w in 0..n {
            let (hit,) = self.cancel.call(&mut self.store, (w,)).expect("cancel");
            assert!(!hit);
        }
        t.elapsed().as_nanos() as f64 / n as f64
    }

    /// ns per `register` + `resolve` pair on a new request id each: the
    /// guest side of one round trip.
    pub fn register_resolve(&mut self, n: u64) -> f64 {
        let ids: Vec<(u64, String)> = (self.next..self.next + n)
            .map(|w| (w, format!("req-{w}")))
            .collect();
        self.next += n;
        let t = Instant::now();
        for (w, id) in &ids {
            let (r,) = self
                .register
                .call(&mut self.store, (*w, id, 30_000_000_000))
                .expect("register");
            assert!(matches!(r, Ok(Registered::Pending(_))));
            let (b,) = self
                .resolve
                .call(&mut self.store, (id, Decision::Approved))
                .expect("resolve");
            assert_eq!(b.map(|b| b.done.len()), Ok(1));
        }
        t.elapsed().as_nanos() as f64 / n as f64
    }

    /// ns per `apply` of an empty buffer: the call floor of the export a
    /// round trip uses (a list in, a record of lists out).
    pub fn apply_empty(&mut self, n: u64) -> f64 {
        let t = Instant::now();
        for _ in 0..n {
            let (a,) = self.apply.call(&mut self.store, (0, &[])).expect("apply");
            assert!(a.errors.is_empty());
        }
        t.elapsed().as_nanos() as f64 / n as f64
    }

    /// ns per `apply([register, resolve])` on a new request id each: one
    /// round trip as the adapter sends it, without the adapter.
    pub fn apply_round_trip(&mut self, n: u64) -> f64 {
        let bufs: Vec<Vec<u8>> = (self.next..self.next + n)
            .map(|w| {
                let id = format!("req-{w}");
                let mut ops = OpWriter::new();
                ops.register(w, 0, 30_000_000_000, &id);
                ops.resolve(&id, Verdict::Approved);
                ops.bytes().to_vec()
            })
            .collect();
        self.next += n;
        let t = Instant::now();
        for buf in &bufs {
            let (a,) = self.apply.call(&mut self.store, (0, buf)).expect("apply");
            assert_eq!((a.woken, a.batch.done.len()), (1, 1));
        }
        t.elapsed().as_nanos() as f64 / n as f64
    }
}
