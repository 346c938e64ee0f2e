//! `approval-sink inspect`: what each component is.

use approval_host::component::{PLUGIN_COMPONENT, REGISTRY_COMPONENT};
use approval_host::inspect::inspect;
use std::path::PathBuf;

/// Prints what each component is: the embedded ones, or `component`.
pub fn run(component: Option<PathBuf>) -> anyhow::Result<()> {
    let targets: Vec<(String, Vec<u8>)> = match component {
        Some(path) => vec![(path.display().to_string(), std::fs::read(&path)?)],
        None => vec![
            (
                "embedded approval-registry (used by the host adapter)".into(),
                REGISTRY_COMPONENT.to_vec(),
            ),
            (
                "embedded approval-plugin (async face, for other hosts)".into(),
                PLUGIN_COMPONENT.to_vec(),
            ),
        ],
    };
    for (name, bytes) in targets {
        println!("== {name}");
        match inspect(&bytes) {
            Ok(info) => {
                println!("size:     {} bytes", info.size);
                println!("valid:    yes (decoded by wit-component, compiled by wasmtime)");
                println!("imports:  {}", info.imports.join(", "));
                println!("exports:  {}", info.exports.join(", "));
                let wasi = info.imports.iter().any(|i| i.starts_with("wasi:"));
                println!("wasi:     {}", if wasi { "imports WASI" } else { "none" });
                let loads = approval_host::component::load(&bytes).is_ok();
                println!(
                    "adapter:  {}",
                    if loads {
                        "loads as a sink"
                    } else {
                        "not loadable by the sync adapter (async world)"
                    }
                );
                println!("--- world (WIT)\n{}", info.wit.trim_end());
            }
            Err(e) => println!("valid:    NO: {e}"),
        }
        println!();
    }
    Ok(())
}
