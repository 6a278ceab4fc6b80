//! Starts the real `relay` binary on port 0 and talks to it over TCP: route
//! definitions, the start-up log line and signal handling only show up here.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shoal_proto::info::RelayInfo;

mod common;

/// Kills the relay if the test fails before it is stopped on purpose.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(e) => panic!(
                "no line with {needle:?} ({e}); output so far:\n{}",
                seen.join("\n")
            ),
        }
    }
}

fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("header end");
    (head.to_string(), body.to_string())
}

#[test]
fn serves_http_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("pkg")).expect("www");
    std::fs::write(www.join("index.html"), "<!doctype html>shoal").expect("index");
    let key = dir.path().join("relay.key");

    let child = common::process::command(&key, &www)
        .env_remove("RUST_LOG")
        // Flags also come from the environment.
        .env("SHOAL_MAX_CONNECTIONS_PER_IP", "7")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn relay");
    let mut relay = Relay(child);
    let lines = common::process::stdout_lines(&mut relay.0);

    let mut seen = Vec::new();
    let peer_line = wait_for_line(&lines, "peer id ", &mut seen);
    let peer_id = peer_line.rsplit(' ').next().expect("peer id").to_string();
    // Every limit is in the start-up log, the environment's included.
    let limits = wait_for_line(&lines, "limits: ", &mut seen);
    assert!(limits.contains("max-connections-per-ip=7 "), "{limits}");
    assert!(limits.contains("max-relay-bytes-per-sec="), "{limits}");
    let fixed = wait_for_line(&lines, "fixed limits: ", &mut seen);
    assert!(fixed.contains("ws-message=262144B"), "{fixed}");
    let listening = wait_for_line(&lines, "listening on http://", &mut seen);
    let addr: SocketAddr = listening
        .rsplit("http://")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {listening:?}"));
    assert_ne!(addr.port(), 0);
    assert!(
        seen.iter()
            .any(|l| l.contains("p2p listening on /ip4/127.0.0.1/tcp/")),
        "{seen:#?}"
    );

    let (head, body) = http_get(addr, "/healthz");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "ok");

    let (head, body) = http_get(addr, "/api/info");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
    let info: RelayInfo = serde_json::from_str(&body).expect("RelayInfo JSON");
    assert_eq!(info.peer_id, peer_id);
    assert_eq!(info.p2p_path, "/p2p");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    // One port: the libp2p WebSocket is on the HTTP listener.
    let expected = format!("/ip4/127.0.0.1/tcp/{}/ws/p2p/{peer_id}", addr.port());
    assert_eq!(info.listen_addrs, vec![expected]);

    let (head, body) = http_get(addr, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "<!doctype html>shoal");
    let (head, _) = http_get(addr, "/pkg/missing.wasm");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    let pid = relay.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    wait_for_line(&lines, "relay stopped", &mut seen);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = relay.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "relay did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");

    // The key was written where --identity said.
    assert!(key.is_file());
}

#[test]
fn help_names_every_flag_with_its_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("--help")
        .output()
        .expect("run relay --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("utf-8");
    let mut flags = 0;
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(flag) = line.trim_start().strip_prefix("--") else {
            continue;
        };
        let flag = flag.split([' ', '<']).next().unwrap_or_default();
        if flag == "help" || flag == "version" {
            continue;
        }
        flags += 1;
        let env = format!("SHOAL_{}", flag.to_uppercase().replace('-', "_"));
        let block: Vec<&str> = lines[i..].iter().take(12).copied().collect();
        assert!(
            block.iter().any(|l| l.contains(&format!("[env: {env}"))),
            "--{flag} has no [env: {env}] in\n{}",
            block.join("\n")
        );
    }
    assert!(flags >= 25, "{flags} flags in\n{help}");
    // The credential's value is never printed.
    assert!(help.contains("[env: SHOAL_ICE_CREDENTIAL]"), "{help}");
}

#[test]
fn config_file_sits_between_command_line_and_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    let conf = dir.path().join("relay.conf");
    std::fs::write(
        &conf,
        "# test\nmax-circuits = 9\nmax-reservations = 99\nlisten = 127.0.0.1:0\nstun-listen = 127.0.0.1:0\n",
    )
    .expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("--identity")
        .arg(dir.path().join("relay.key"))
        .arg("--www")
        .arg(&www)
        .args(["--max-reservations", "7"])
        .env("SHOAL_CONFIG", &conf)
        .env("SHOAL_MAX_CIRCUITS", "5")
        .env("SHOAL_MAX_CIRCUITS_PER_PEER", "3")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn relay");
    let mut relay = Relay(child);
    let lines = common::process::stdout_lines(&mut relay.0);
    let mut seen = Vec::new();
    let limits = wait_for_line(&lines, "limits: ", &mut seen);
    // Command line over file, file over environment, environment over default.
    assert!(limits.contains("max-reservations=7 "), "{limits}");
    assert!(limits.contains("max-circuits=9 "), "{limits}");
    assert!(limits.contains("max-circuits-per-peer=3 "), "{limits}");
}
