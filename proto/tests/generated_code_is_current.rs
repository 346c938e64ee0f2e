//! The code in `src/generated/` is checked in so that building this crate
//! (and the wasm guest that depends on it) needs neither `protoc` nor a build
//! script. This test regenerates it with `protox` + `prost-build` /
//! `tonic-prost-build` (pure Rust) and fails if the checked-in copy is
//! stale. Set `APPROVAL_PROTO_BLESS=1` to rewrite it.

use std::path::{Path, PathBuf};

const FILES: &[&str] = &[
    "assembly/gateway/v1/invalidation.proto",
    "assembly/gateway/v1/review.proto",
];
const GENERATED: &str = "assembly.gateway.v1.rs";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("approval-proto-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Messages only (prost): what the guest and every host use.
fn messages(out: &Path) {
    let fds = protox::compile(FILES, [root()]).expect("proto files compile with protox");
    prost_build::Config::new()
        .out_dir(out)
        .compile_fds(fds)
        .expect("prost-build generates code");
}

/// gRPC services only (tonic), pointing at the messages above, behind the
/// crate's `grpc` feature.
fn services(out: &Path) {
    let fds = protox::compile(FILES, [root()]).expect("proto files compile with protox");
    tonic_prost_build::configure()
        .out_dir(out)
        .extern_path(".assembly.gateway.v1", "crate::v1")
        .compile_fds(fds)
        .expect("tonic-prost-build generates code");
}

fn check(name: &str, generate: fn(&Path), checked_in: &str) {
    let out = scratch(name);
    generate(&out);
    let fresh = std::fs::read_to_string(out.join(GENERATED)).expect("generated file");
    let _ = std::fs::remove_dir_all(&out);
    let path = root().join(checked_in);
    if std::env::var_os("APPROVAL_PROTO_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&path, &fresh).expect("write generated code");
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "{checked_in} is stale: run `APPROVAL_PROTO_BLESS=1 cargo test -p approval-proto`"
    );
}

#[test]
fn generated_messages_match_proto_files() {
    check("messages", messages, "src/generated/assembly.gateway.v1.rs");
}

#[test]
fn generated_services_match_proto_files() {
    check(
        "services",
        services,
        "src/generated/grpc/assembly.gateway.v1.rs",
    );
}
