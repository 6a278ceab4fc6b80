//! State shared by the HTTP side and the swarm task.

use std::path::PathBuf;

use shoal_proto::info::RelayInfo;
use tokio::sync::watch;

use std::sync::Arc;

use crate::admission::Admission;
use crate::bridge::Bridge;
use crate::metrics::Metrics;
use crate::proxy::TrustedProxies;

/// What `/api/info` reports and where the page lives. The swarm task keeps the
/// listen addresses current; handlers read a snapshot.
#[derive(Debug)]
pub struct AppState {
    // A watch sender is a lock that never poisons; nobody needs to subscribe.
    info: watch::Sender<RelayInfo>,
    www: PathBuf,
    /// Where accepted libp2p WebSockets go.
    bridge: Bridge,
    proxies: TrustedProxies,
    /// The listener speaks TLS (the stock address is `/tls/ws`).
    tls: bool,
    metrics: Arc<Metrics>,
    admission: Admission,
}

impl AppState {
    pub fn new(
        info: RelayInfo,
        www: PathBuf,
        bridge: Bridge,
        proxies: TrustedProxies,
        tls: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            info: watch::Sender::new(info),
            www,
            bridge,
            proxies,
            tls,
            metrics,
            admission: Admission::new(
                crate::limits::MAX_CONNECTIONS_PER_IP,
                crate::limits::MAX_CONNECTIONS as usize,
            ),
        }
    }

    /// Replaces the default admission limits (the CLI's).
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    pub fn proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    pub fn tls(&self) -> bool {
        self.tls
    }

    pub fn info(&self) -> RelayInfo {
        self.info.borrow().clone()
    }

    pub fn update_info(&self, f: impl FnOnce(&mut RelayInfo)) {
        self.info.send_modify(f);
    }

    pub fn www(&self) -> &PathBuf {
        &self.www
    }
}
