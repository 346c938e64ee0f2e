//! The prost code in `src/generated/` is checked in so that building this crate
//! (and the wasm guest that depends on it) needs neither `protoc` nor a build
//! script. This test regenerates it with `protox` + `prost-build` (pure Rust)
//! and fails if the checked-in copy is stale. Set `APPROVAL_PROTO_BLESS=1` to
//! rewrite it.

use std::path::{Path, PathBuf};

const FILES: &[&str] = &["assembly/gateway/v1/invalidation.proto"];

fn generate(out: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::compile(FILES, [root]).expect("proto files compile with protox");
    prost_build::Config::new()
        .out_dir(out)
        .compile_fds(fds)
        .expect("prost-build generates code");
    out.join("assembly.gateway.v1.rs")
}

#[test]
fn generated_code_matches_proto_files() {
    let tmp = std::env::temp_dir().join(format!("approval-proto-gen-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let fresh = std::fs::read_to_string(generate(&tmp)).expect("generated file");
    let checked_in_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated/assembly.gateway.v1.rs");
    if std::env::var_os("APPROVAL_PROTO_BLESS").is_some() {
        std::fs::write(&checked_in_path, &fresh).expect("write generated code");
    }
    let checked_in = std::fs::read_to_string(&checked_in_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        checked_in == fresh,
        "proto/src/generated is stale: run `APPROVAL_PROTO_BLESS=1 cargo test -p approval-proto`"
    );
}
