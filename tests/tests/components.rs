//! The built components themselves: they validate, their imports are exactly
//! those of their WIT world (no WASI at all), and their exports match.

use approval_host::component::{PLUGIN_COMPONENT, REGISTRY_COMPONENT};
use approval_host::inspect::inspect;

const VERSION: &str = "@0.1.0";

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list
        .iter()
        .map(|n| format!("assembly:approval/{n}{VERSION}"))
        .collect();
    v.sort();
    v
}

#[test]
fn registry_component_imports_only_clock_and_host_events() {
    let info = inspect(REGISTRY_COMPONENT).unwrap();
    // `types` holds only type definitions (no functions); WIT's `use` makes
    // it an import of every world whose interfaces use its types.
    assert_eq!(info.imports, names(&["clock", "host-events", "types"]));
    assert!(
        info.imports.iter().all(|i| !i.starts_with("wasi:")),
        "no WASI: {:?}",
        info.imports
    );
    assert_eq!(info.exports, names(&["registry"]));
}

#[test]
fn plugin_component_adds_only_timer_import_and_sink_export() {
    let info = inspect(PLUGIN_COMPONENT).unwrap();
    assert_eq!(
        info.imports,
        names(&["clock", "host-events", "timer", "types"])
    );
    assert!(
        info.imports.iter().all(|i| !i.starts_with("wasi:")),
        "no WASI: {:?}",
        info.imports
    );
    assert_eq!(info.exports, names(&["registry", "sink"]));
}

#[test]
fn component_worlds_print_as_the_wit_package() {
    for bytes in [REGISTRY_COMPONENT, PLUGIN_COMPONENT] {
        let info = inspect(bytes).unwrap();
        assert!(
            info.wit.contains("export assembly:approval/registry@0.1.0"),
            "{}",
            info.wit
        );
        assert!(
            info.wit.contains("import assembly:approval/clock@0.1.0"),
            "{}",
            info.wit
        );
    }
}

#[test]
fn registry_component_validates_in_a_sync_only_engine() {
    // The adapter's engine has concurrency support off; the registry world
    // must load there (the plugin world, with async exports, must not).
    approval_host::component::load(REGISTRY_COMPONENT).expect("loads without concurrency support");
    assert!(approval_host::component::load(PLUGIN_COMPONENT).is_err());
}

/// A precompiled artifact round trip: the first load compiles and writes the
/// cache, the second maps it, a corrupt artifact is recompiled, and a sink
/// built from the cached component serves a wait.
#[tokio::test]
async fn artifact_cache_compiles_once_then_loads_and_survives_corruption() {
    use approval_host::component::{artifact_key, load_cached};
    use approval_host::{ApprovalSink, Decision};
    use std::time::Duration;

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("artifacts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // SAFETY: the directory is this test's own, under target/.
    let (_, hit) = unsafe { load_cached(REGISTRY_COMPONENT, &dir) }.unwrap();
    assert!(!hit, "empty cache: compiled");
    let (loaded, hit) = unsafe { load_cached(REGISTRY_COMPONENT, &dir) }.unwrap();
    assert!(hit, "second load maps the artifact");
    assert_eq!(loaded.size, REGISTRY_COMPONENT.len());

    let sink = ApprovalSink::builder().loaded(loaded).build().unwrap();
    let wait = sink.wait_for_approval("req-1", Duration::from_secs(30));
    sink.deliver("req-1", Decision::Denied).unwrap();
    assert_eq!(wait.await, Decision::Denied);

    let path = dir.join(artifact_key(REGISTRY_COMPONENT).unwrap());
    std::fs::write(&path, b"not an artifact").unwrap();
    let (_, hit) = unsafe { load_cached(REGISTRY_COMPONENT, &dir) }.unwrap();
    assert!(!hit, "a corrupt artifact is recompiled");
    let (_, hit) = unsafe { load_cached(REGISTRY_COMPONENT, &dir) }.unwrap();
    assert!(hit, "and rewritten");
    std::fs::remove_dir_all(&dir).unwrap();
}
