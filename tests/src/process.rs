//! Child processes of the suites that drive other toolchains (npm, pip,
//! pytest, cargo): one way to run them and fail with their whole output.

use std::process::{Command, Output};

/// Runs `cmd`, failing the test with its whole output if it does not
/// succeed; `needs` says what must be installed when it cannot start.
pub fn run_or_fail(what: &str, needs: &str, cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start ({e}); {needs}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}
