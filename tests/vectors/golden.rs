//! Golden vector files (`tests/vectors/*.json`, SPEC.md §5): the module
//! that owns a format writes its file from its own code; every other
//! encoder or decoder, in every language, reads it. Included by path (one
//! copy) into the owners' tests.
//!
//! `check(name, value)` compares `value` with the checked-in file and fails
//! on any difference; with `UPDATE_VECTORS=1` it writes the file instead
//! (then review the diff: a changed vector is a changed format). `read`
//! gives a reader the file's contents.

// Each includer uses the part it needs.
#![allow(dead_code)]

use std::path::PathBuf;

/// The checked-in vector file `name` (e.g. `ops.json`).
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("tests/vectors").is_dir() && dir.join("Cargo.lock").is_file())
        .expect("the workspace root holds tests/vectors")
        .join("tests/vectors")
        .join(name)
}

/// Fails unless the file `name` holds exactly `value`; writes it instead
/// when `UPDATE_VECTORS=1`.
pub fn check(name: &str, value: &serde_json::Value) {
    let path = path(name);
    let text = serde_json::to_string_pretty(value).expect("vectors serialise") + "\n";
    if std::env::var_os("UPDATE_VECTORS").is_some_and(|v| v == "1") {
        std::fs::write(&path, text).expect("write the vector file");
        return;
    }
    let stored = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_VECTORS=1 writes it)", path.display()));
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("the vector file is JSON");
    assert!(
        stored == *value,
        "{} differs from what its owner's code writes now: a format changed. \
         If that is intended, change SPEC.md with it and rerun with UPDATE_VECTORS=1.",
        path.display()
    );
}

/// The vector file `name`, parsed.
pub fn read(name: &str) -> serde_json::Value {
    let path = path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lowercase or uppercase hex `text`.
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}
