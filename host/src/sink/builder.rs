//! [`ApprovalSinkBuilder`]: every option of a sink, each with a default
//! (Extism's `PluginBuilder` shape: one documented method per option,
//! `build()` compiles once and returns a typed error).

use super::ApprovalSink;
use super::core::{Core, store_state};
use crate::adapter::Adapter;
use crate::clock::{Clock, SystemClock};
use crate::component::{self, Loaded};
use crate::config::SinkConfig;
use crate::error::HostError;
use crate::trust::TrustedKey;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many policy invalidations a slow listener may lag behind.
pub(crate) const INVALIDATION_BUFFER: usize = 1024;

/// Builds an [`ApprovalSink`]; every option has a default.
#[derive(Default)]
pub struct ApprovalSinkBuilder {
    clock: Option<Arc<dyn Clock>>,
    component_file: Option<PathBuf>,
    component_bytes: Option<Vec<u8>>,
    loaded: Option<Arc<Loaded>>,
    config: SinkConfig,
    trusted_keys: Vec<TrustedKey>,
}

impl ApprovalSinkBuilder {
    /// The clock the guest reads and the timer sleeps on. Default
    /// [`SystemClock`] created at `build()`.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Loads this component file (an `approval-registry` build) instead of
    /// the embedded one.
    pub fn component_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.component_file = Some(path.into());
        self
    }

    /// Loads these component bytes instead of the embedded component.
    pub fn component_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.component_bytes = Some(bytes.into());
        self
    }

    /// Uses an already compiled and linked component, e.g. one from
    /// [`component::load_cached`](crate::component::load_cached) (a
    /// precompiled artifact) or shared by many sinks.
    pub fn loaded(mut self, loaded: Arc<Loaded>) -> Self {
        self.loaded = Some(loaded);
        self
    }

    /// Limits and cache settings. Default [`SinkConfig::default`].
    pub fn config(mut self, config: SinkConfig) -> Self {
        self.config = config;
        self
    }

    /// Trusts this reviewer key (S17; repeatable): with any key trusted, a
    /// verdict is applied only if it is signed by one of them, and
    /// [`ApprovalSink::deliver`] is refused (it cannot carry a signature).
    /// A bad key makes `build()` fail with [`HostError::Config`].
    pub fn trusted_key(mut self, key: TrustedKey) -> Self {
        self.trusted_keys.push(key);
        self
    }

    /// Trusts each of these reviewer keys (see
    /// [`trusted_key`](Self::trusted_key)).
    pub fn trusted_keys(mut self, keys: impl IntoIterator<Item = TrustedKey>) -> Self {
        self.trusted_keys.extend(keys);
        self
    }

    /// Compiles (once per process for the embedded component), instantiates
    /// and configures the sink, and starts its timer task on the current
    /// tokio runtime, or on a small thread of its own outside one.
    pub fn build(self) -> Result<ApprovalSink, HostError> {
        self.config.validate()?;
        let loaded = match (self.loaded, self.component_bytes, self.component_file) {
            (Some(loaded), _, _) => loaded,
            (None, Some(bytes), _) => component::load(&bytes)?,
            (None, None, Some(path)) => {
                let bytes = std::fs::read(&path)
                    .map_err(|source| HostError::ComponentFile { path, source })?;
                component::load(&bytes)?
            }
            (None, None, None) => component::embedded()?,
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let (invalidations, _) = broadcast::channel(INVALIDATION_BUFFER);
        let state = store_state(&clock, &invalidations, &self.config);
        let adapter = Adapter::new(&loaded, state, &self.config, &self.trusted_keys)?;
        let core = Core::start(
            adapter,
            clock,
            invalidations,
            loaded,
            self.config,
            self.trusted_keys.into(),
        );
        Ok(ApprovalSink { core })
    }
}
