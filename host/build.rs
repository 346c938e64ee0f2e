//! Builds the `approval-guest` crate for `wasm32-unknown-unknown` in both
//! worlds, componentizes each with `wit-component`, and writes `gen.rs`,
//! which embeds each component as a `pub static NAME: &[u8]`, so `cargo
//! build` alone yields a working host (the pattern of wasmtime's
//! `crates/test-programs/artifacts/build.rs`).
//!
//! The nested cargo runs with its own target dir under `OUT_DIR` (the outer
//! build holds the lock on `target/`) and without the outer `RUSTFLAGS` or
//! rustc wrappers, so host-side flags never leak into the guest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// One component built from the guest crate.
struct Artifact {
    /// File name, and the WIT world it implements.
    world: &'static str,
    /// Cargo features of `approval-guest` that select the world.
    features: &'static [&'static str],
    /// Name of the generated `static` holding the component's bytes.
    constant: &'static str,
    /// What the component is for (the static's doc comment).
    doc: &'static str,
}

const ARTIFACTS: &[Artifact] = &[
    Artifact {
        world: "approval-registry",
        features: &[],
        constant: "REGISTRY_COMPONENT",
        doc: "The `approval-registry` component (sync world) that the adapter embeds.",
    },
    Artifact {
        world: "approval-plugin",
        features: &["plugin"],
        constant: "PLUGIN_COMPONENT",
        doc: "The `approval-plugin` component (async face), for other hosts \
              (`approval-sink export --world plugin`).",
    },
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("guest/Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    ensure_wasm_target();
    let target_dir = out_dir.join("guest-target");
    let mut generated = String::new();
    for artifact in ARTIFACTS {
        let module = build_guest(&workspace, &target_dir, artifact.features);
        let component = componentize(&module, artifact.world);
        let path = out_dir.join(format!("{}.wasm", artifact.world));
        fs::write(&path, component).expect("write component");
        generated.push_str(&format!(
            "/// {}\npub static {}: &[u8] = include_bytes!({:?});\n",
            artifact.doc,
            artifact.constant,
            path.display().to_string()
        ));
    }
    fs::write(out_dir.join("gen.rs"), generated).expect("write gen.rs");
}

/// The wasm target must be installed: rust-toolchain.toml lists it, but
/// rustup does not install listed targets here (`RUSTUP_AUTO_INSTALL=0`).
fn ensure_wasm_target() {
    if wasm_target_installed() {
        return;
    }
    println!(
        "cargo:warning=installing the {WASM_TARGET} target with rustup (needed to build the guest)"
    );
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", WASM_TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    let ok = cmd.status().map(|s| s.success()).unwrap_or(false);
    if !ok || !wasm_target_installed() {
        panic!(
            "the {WASM_TARGET} Rust target is missing and could not be installed; run \
             `rustup target add {WASM_TARGET}` and build again"
        );
    }
}

fn wasm_target_installed() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Some(libdir) = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
    else {
        return false;
    };
    // rustc prints the path whether or not the target is installed; its
    // standard library being there is what counts.
    fs::read_dir(libdir.trim()).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    })
}

/// Runs the nested `cargo build` and returns the core wasm module's bytes.
fn build_guest(workspace: &Path, target_dir: &Path, features: &[&str]) -> Vec<u8> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "approval-guest",
            "--target",
            WASM_TARGET,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR");
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    let status = cmd.status().expect("run cargo for the guest");
    assert!(
        status.success(),
        "building approval-guest for {WASM_TARGET} failed"
    );

    let release = target_dir.join(WASM_TARGET).join("release");
    rerun_on_guest_sources(&release.join("approval_guest.d"));
    fs::read(release.join("approval_guest.wasm")).expect("read the guest's wasm module")
}

/// Emits `rerun-if-changed` for every source the guest build read.
fn rerun_on_guest_sources(dep_info: &Path) {
    let Ok(text) = fs::read_to_string(dep_info) else {
        return;
    };
    for line in text.lines() {
        let Some((_, deps)) = line.split_once(':') else {
            continue;
        };
        for dep in deps.split_whitespace() {
            // Only our own sources; registry crates never change in place.
            if !dep.contains("/.cargo/registry/") {
                println!("cargo:rerun-if-changed={dep}");
            }
        }
    }
}

/// Wraps the core module (which carries wit-bindgen's component-type section)
/// into a component and validates it.
fn componentize(module: &[u8], world: &str) -> Vec<u8> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .unwrap_or_else(|e| panic!("{world}: not a componentizable module: {e:?}"))
        .validate(true)
        .encode()
        .unwrap_or_else(|e| panic!("{world}: componentizing failed: {e:?}"))
}
