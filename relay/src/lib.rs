//! The shoal relay: one process that serves the page over HTTP and runs the
//! libp2p node browsers meet through.
//!
//! # Layout
//! - [`config`]: the command line (clap) and the defaults derived from it.
//! - [`identity`]: the ed25519 key on disk that keeps the PeerId stable.
//! - [`p2p`]: the swarm — WebSocket transport, circuit relay v2 server,
//!   identify, ping, rendezvous server — and its event loop.
//! - [`http`]: `router()` — `/healthz`, `/api/info`, the static page.
//! - [`state`]: [`AppState`], what `/api/info` reports, shared by both sides.
//! - [`stun`]: a STUN Binding server on UDP, so browsers learn their NAT address.
//!
//! # Data flow
//! [`Relay::bind`] loads the key, builds the swarm, starts the WebSocket
//! listener and waits for its real port, then binds the HTTP listener.
//! [`Relay::serve`] runs two tasks until shutdown: axum answers HTTP from
//! [`AppState`], and the swarm task drives libp2p and keeps [`AppState`]'s
//! addresses current. A page loads from HTTP, reads `/api/info` (PeerId,
//! ws port), dials the relay over `/ws`, reserves a relayed address and
//! registers it at the rendezvous server; other pages discover it there.
//! Browsers then signal WebRTC over a relayed connection and talk directly;
//! only when that fails does their data flow through the relay.

pub mod config;
pub mod http;
pub mod identity;
pub mod p2p;
pub mod state;
pub mod stun;

use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libp2p::Swarm;
use shoal_proto::info::RelayInfo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

pub use config::Config;
pub use state::AppState;

/// How long start-up waits for the libp2p listener to report its address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open HTTP requests and the swarm get to finish after a signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    P2p(#[from] p2p::P2pError),
    #[error("cannot listen for HTTP on {addr}: {reason}")]
    HttpBind { addr: SocketAddr, reason: io::Error },
    #[error("HTTP server failed: {0}")]
    Http(io::Error),
    #[error("a server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A relay with both listeners bound, not yet serving.
pub struct Relay {
    state: Arc<AppState>,
    swarm: Swarm<p2p::Behaviour>,
    http: TcpListener,
    http_addr: SocketAddr,
}

impl Relay {
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        let (keypair, origin) = identity::load_or_create(&config.identity)?;
        identity::warn_if_exposed(&config.identity);
        let peer_id = keypair.public().to_peer_id();
        let verb = match origin {
            identity::Origin::Loaded => "loaded",
            identity::Origin::Created => "created",
        };
        info!("{verb} identity key {}", config.identity.display());
        info!("peer id {peer_id}");

        let www = config.www_dir();
        if !www.join("index.html").is_file() {
            warn!("no index.html in {}; only the API will work", www.display());
        }
        let state = Arc::new(AppState::new(
            RelayInfo {
                peer_id: peer_id.to_string(),
                ws_port: 0,
                listen_addrs: Vec::new(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            www,
        ));

        let mut swarm = p2p::build_swarm(keypair, &config.limits)?;
        p2p::listen(&mut swarm, &state, config.p2p_listen_addr(), LISTEN_TIMEOUT).await?;
        for addr in &config.external_addrs {
            info!("announcing external address {addr}");
            swarm.add_external_address(addr.clone());
        }

        let http = TcpListener::bind(config.listen)
            .await
            .map_err(|reason| Error::HttpBind {
                addr: config.listen,
                reason,
            })?;
        let http_addr = http.local_addr().map_err(|reason| Error::HttpBind {
            addr: config.listen,
            reason,
        })?;
        Ok(Self {
            state,
            swarm,
            http,
            http_addr,
        })
    }

    /// The bound HTTP address (the real port when `--listen` used port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn info(&self) -> RelayInfo {
        self.state.info()
    }

    /// Serves HTTP and drives the swarm until `shutdown` completes, then
    /// gives both [`SHUTDOWN_GRACE`] to finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let Self {
            state,
            swarm,
            http,
            http_addr,
        } = self;
        info!("serving page from {}", state.www().display());
        // Printed last so that tests can wait for it: everything is up now.
        info!("listening on http://{http_addr}");

        let (stop_tx, stop_rx) = watch::channel(false);
        let mut swarm_task = tokio::spawn(p2p::drive(swarm, state.clone(), stop_rx.clone()));
        let mut http_stop = stop_rx;
        let server = axum::serve(http, http::router(state))
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .into_future();
        let mut http_task = tokio::spawn(server);

        let early = tokio::select! {
            () = shutdown => None,
            res = &mut http_task => Some(res),
            res = &mut swarm_task => {
                warn!("p2p task ended unexpectedly");
                res?;
                None
            }
        };
        if let Some(res) = early {
            let _ = stop_tx.send(true);
            return res?.map_err(Error::Http);
        }

        info!("shutting down");
        let _ = stop_tx.send(true);
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut http_task).await {
            Ok(res) => res?.map_err(Error::Http)?,
            Err(_) => {
                warn!("HTTP requests still open after {SHUTDOWN_GRACE:?}; dropping them");
                http_task.abort();
            }
        }
        if !swarm_task.is_finished()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut swarm_task)
                .await
                .is_err()
        {
            warn!("p2p task did not stop within {SHUTDOWN_GRACE:?}");
            swarm_task.abort();
        }
        info!("relay stopped");
        Ok(())
    }
}

/// Binds, then serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), Error> {
    Relay::bind(&config).await?.serve(shutdown_signal()).await
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => info!("received Ctrl-C"),
        () = terminate => info!("received SIGTERM"),
    }
}
