//! A relay served in-process on a free loopback port, for integration tests.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use shoal_proto::info::RelayInfo;
use shoal_relay::{Config, Relay};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod client;
pub mod process;

pub struct Running {
    pub addr: SocketAddr,
    pub info: RelayInfo,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), shoal_relay::Error>>,
    _dir: tempfile::TempDir,
}

/// Binds a relay on 127.0.0.1:0 (fresh identity, empty www, STUN on a free
/// port) with `extra` flags, and serves it until [`Running::stop`].
pub async fn start(extra: &[&str]) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("relay.key");
    let www = dir.path().to_str().expect("utf-8 temp path").to_owned();
    let key = key.to_str().expect("utf-8 temp path").to_owned();
    let mut args = vec![
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--stun-listen",
        "127.0.0.1:0",
        "--identity",
        &key,
        "--www",
        &www,
    ];
    args.extend_from_slice(extra);
    let config = Config::parse_from(args);
    let relay = Relay::bind(&config).await.expect("bind");
    let (addr, info) = (relay.http_addr(), relay.info());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(relay.serve(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        info,
        stop,
        server,
        _dir: dir,
    }
}

impl Running {
    /// Shuts the relay down and checks that it stopped cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(15), self.server)
            .await
            .expect("relay stops")
            .expect("join")
            .expect("relay ok");
    }
}
