//! The CLI's subcommands, one file each. None touches wasmtime types: they
//! use the `approval_host` API only.

pub mod demo;
pub mod export;
pub mod gateway;
pub mod inspect;
pub mod keygen;
pub mod nats;
