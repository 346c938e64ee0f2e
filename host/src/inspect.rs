//! What a component file is: its WIT world, imports and exports, size, and
//! whether it validates and links as an `approval-registry` sink.

use crate::error::{HostError, cause};
use wasmtime::component::Component;

/// A description of one component.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    /// Size in bytes.
    pub size: usize,
    /// The component's world, printed as WIT.
    pub wit: String,
    /// Names of the component's imports (instances), sorted.
    pub imports: Vec<String>,
    /// Names of the component's exports, sorted.
    pub exports: Vec<String>,
}

/// Decodes and validates component bytes (any world).
pub fn inspect(bytes: &[u8]) -> Result<ComponentInfo, HostError> {
    let decoded = wit_component::decode(bytes).map_err(|e| HostError::Compile(cause(e)))?;
    let mut printer = wit_component::WitPrinter::default();
    let resolve = decoded.resolve();
    let package = decoded.package();
    printer
        .print(resolve, package, &[])
        .map_err(|e| HostError::Compile(cause(e)))?;
    let wit = printer.output.to_string();

    let engine = async_engine()?;
    let component = Component::new(&engine, bytes).map_err(|e| HostError::Compile(cause(e)))?;
    let ty = component.component_type();
    let mut imports: Vec<String> = ty
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let mut exports: Vec<String> = ty
        .exports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    imports.sort();
    exports.sort();
    Ok(ComponentInfo {
        size: bytes.len(),
        wit,
        imports,
        exports,
    })
}

/// An engine that accepts async components too (inspection only; sinks use
/// the sync engine of [`crate::component::engine`]).
fn async_engine() -> Result<wasmtime::Engine, HostError> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model_async(true);
    wasmtime::Engine::new(&config).map_err(|e| HostError::Engine(cause(e)))
}
