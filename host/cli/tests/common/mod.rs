//! Helpers of the CLI suites: the binary, free ports, a gateway child
//! process, and lines of a child's output read with a guard.

#![allow(dead_code)] // each suite uses its own subset

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A guard against hangs, not a speed assertion.
pub const GUARD: Duration = Duration::from_secs(60);

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_approval-sink"))
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Lines of a child's pipe, read on a thread of their own.
pub fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing all of `needles`; returns it.
pub fn expect_line(rx: &mpsc::Receiver<String>, needles: &[&str]) -> String {
    let deadline = std::time::Instant::now() + GUARD;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line with {needles:?} within {GUARD:?}"));
        if needles.iter().all(|n| line.contains(n)) {
            return line;
        }
    }
}

/// A gateway child process, killed when dropped.
pub struct Gateway(Child);

impl Gateway {
    /// An in-memory gateway on `127.0.0.1:port`, without tokens
    /// (`--insecure-dev`: for suites that are not about auth).
    pub fn start(port: u16) -> Gateway {
        Self::start_with(port, &[])
    }

    /// A gateway on `127.0.0.1:port` with these extra flags; in memory
    /// unless they name a `--data-dir` or `--nats`, and `--insecure-dev`
    /// unless they give the token files.
    pub fn start_with(port: u16, flags: &[&str]) -> Gateway {
        let mut all: Vec<&str> = flags.to_vec();
        if !flags.iter().any(|f| *f == "--data-dir" || *f == "--nats") {
            all.push("--in-memory");
        }
        if !flags.contains(&"--review-token-file") {
            all.push("--insecure-dev");
        }
        Self::start_exactly(port, &all)
    }

    /// A gateway on `127.0.0.1:port` with exactly these flags.
    pub fn start_exactly(port: u16, flags: &[&str]) -> Gateway {
        // The port was ours a moment ago; retry while the OS releases it.
        for _ in 0..100 {
            let mut child = bin()
                .args(["gateway", "--listen", &format!("127.0.0.1:{port}")])
                .args(flags)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the gateway");
            let out = lines(child.stdout.take().unwrap());
            match out.recv_timeout(GUARD) {
                Ok(line) if line.contains("gateway listening") => return Gateway(child),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        panic!("the gateway never listened on port {port}");
    }
}

impl Gateway {
    /// Kills the gateway with SIGKILL (no chance to flush anything) and
    /// waits for it to be gone.
    pub fn kill_9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
