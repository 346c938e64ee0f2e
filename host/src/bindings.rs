//! wasmtime bindings of the `approval-registry` world (`wit/approval.wit`).
//!
//! Sync only: the adapter drives the component with plain `TypedFunc::call`s.
//! Nothing here is public: the adapter converts every type to a host type.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "approval-registry",
});

pub use assembly::approval::types::{
    Applied as WitApplied, AuthFailure as WitAuthFailure, Batch, Config as WitConfig,
    Decision as WitDecision, IngestReport, Outcome as WitOutcome, SinkError as WitSinkError,
    TrustedKey as WitTrustedKey,
};
