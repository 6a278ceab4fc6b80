//! The real `relay` binary in a child process, on a free port, with its
//! address, info and memory use readable by tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_proto::info::RelayInfo;

pub struct RelayProcess {
    child: Child,
    pub addr: SocketAddr,
    pub info: RelayInfo,
    _dir: tempfile::TempDir,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `relay` binary on free loopback ports (HTTP and STUN) with this
/// identity file and page folder; tests add their own flags.
pub fn command(identity: &Path, www: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relay"));
    cmd.args(["--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0"])
        .arg("--identity")
        .arg(identity)
        .arg("--www")
        .arg(www);
    cmd
}

/// Every line `child` prints on stdout, read on a thread of its own (a full
/// pipe would stall the relay).
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, lines) = mpsc::sync_channel(1024);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Starts `relay` with `extra` flags; returns once it serves `/api/info`.
pub fn start(extra: &[&str]) -> RelayProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    let mut child = command(&dir.path().join("relay.key"), &www)
        .args(extra)
        .env("RUST_LOG", "shoal_relay=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn relay");
    // Drain stdout for good (a full pipe would stall the relay); keep only
    // the line the address is read from.
    let stdout = child.stdout.take().expect("stdout");
    let listening: Arc<Mutex<Option<String>>> = Arc::default();
    let found = listening.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("listening on http://") {
                *found.lock().expect("lock") = Some(line);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        if let Some(line) = listening.lock().expect("lock").clone() {
            break line;
        }
        assert!(Instant::now() < deadline, "the relay did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let addr: SocketAddr = line
        .rsplit("http://")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let info: RelayInfo = serde_json::from_str(&http_get(addr, "/api/info")).expect("info");
    RelayProcess {
        child,
        addr,
        info,
        _dir: dir,
    }
}

impl RelayProcess {
    /// Resident memory now, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    pub fn metrics(&self) -> String {
        http_get(self.addr, "/metrics")
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// A metric's value in the OpenMetrics text, by its full series name.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// `GET path` over a plain socket; the body.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}
