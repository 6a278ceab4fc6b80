//! The relay under test as a child process: started from its binary on a
//! free loopback port with a fresh identity, stopped when dropped, and read
//! from /proc (resident memory, CPU time).

use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context as _};
use shoal_proto::info::RelayInfo;

pub struct RelayProcess {
    child: Child,
    pub http: String,
    pub info: RelayInfo,
    _dir: tempfile::TempDir,
}

/// Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

impl RelayProcess {
    pub async fn start(bin: &Path, port: u16, extra: &[String]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let www = dir.path().join("www");
        fs::create_dir(&www)?;
        let log = fs::File::create(dir.path().join("relay.log"))?;
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(bin)
            .args(["--listen", &listen, "--no-stun", "--www"])
            .arg(&www)
            .arg("--identity")
            .arg(dir.path().join("relay.key"))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let http = format!("http://{listen}");
        let mut child = child;
        for _ in 0..100 {
            if let Ok(info) = get_info(&http).await {
                return Ok(Self {
                    child,
                    http,
                    info,
                    _dir: dir,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        bail!("the relay did not answer {http}/api/info within 10 s")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .context("no VmRSS")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib * 1024)
    }

    /// User plus system CPU time so far, in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')').context("bad stat")? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11).context("no utime")?.parse()?;
        let stime: f64 = fields.get(12).context("no stime")?.parse()?;
        Ok((utime + stime) / TICKS_PER_SEC)
    }

    /// Open file descriptors of the relay (sockets included).
    pub fn fds(&self) -> anyhow::Result<usize> {
        Ok(fs::read_dir(format!("/proc/{}/fd", self.pid()))?.count())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_info(http: &str) -> anyhow::Result<RelayInfo> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = http.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET /api/info HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    s.read_to_string(&mut body).await?;
    let json = body.split("\r\n\r\n").nth(1).context("no body")?;
    Ok(serde_json::from_str(json)?)
}
