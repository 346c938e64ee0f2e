//! The CLI's subcommands, one file each. None touches wasmtime types: they
//! use the library crates' APIs only (`approval_host`, `approval_grpc`,
//! `approval_nats`, `approval_gateway`).

pub mod client;
pub mod demo;
pub mod exit;
pub mod export;
pub mod gateway;
pub mod inspect;
pub mod invalidate;
pub mod keygen;
pub mod nats;
pub mod output;
pub mod resolve;
pub mod secrets;
pub mod tokens;
pub mod wait;
