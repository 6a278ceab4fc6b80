//! The `/webrtc` libp2p `Transport`: dials and listens through signaling
//! streams on relayed connections.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures::{future::BoxFuture, FutureExt as _, StreamExt as _};
use futures_timer::Delay;
use libp2p::{
    core::{
        multiaddr::Protocol,
        muxing::StreamMuxerBox,
        transport::{DialOpts, ListenerId, TransportError, TransportEvent},
        Endpoint,
    },
    Multiaddr, PeerId, Stream, StreamProtocol,
};
use send_wrapper::SendWrapper;
use shoal_proto::signaling::{Role, PROTOCOL};

use super::{
    channel::Channel,
    connection::Connection,
    pc::{PeerConnection, INIT_LABEL},
    signal, Config, Error,
};

type Output = (PeerId, StreamMuxerBox);
type Upgrade = BoxFuture<'static, Result<Output, Error>>;

/// How long the dialer gives the `init` channel to open, then to close.
const INIT_CHANNEL_WAIT: Duration = Duration::from_secs(2);

pub struct Transport {
    config: Config,
    control: libp2p_stream::Control,
    incoming: libp2p_stream::IncomingStreams,
    listeners: Vec<(ListenerId, Multiaddr)>,
    events: VecDeque<TransportEvent<Upgrade, Error>>,
}

impl Transport {
    /// `control` comes from the `libp2p_stream::Behaviour` in the same Swarm.
    /// Fails if another transport already accepts signaling on `control`.
    pub fn new(
        config: Config,
        mut control: libp2p_stream::Control,
    ) -> Result<Self, libp2p_stream::AlreadyRegistered> {
        let incoming = control.accept(StreamProtocol::new(PROTOCOL))?;
        Ok(Self {
            config,
            control,
            incoming,
            listeners: Vec::new(),
            events: VecDeque::new(),
        })
    }
}

/// `…/p2p-circuit/webrtc`: where a peer listens.
fn is_listen_addr(addr: &Multiaddr) -> bool {
    let protos: Vec<_> = addr.iter().collect();
    matches!(
        protos.as_slice(),
        [.., Protocol::P2pCircuit, Protocol::WebRTC]
    )
}

/// `…/p2p-circuit/webrtc/p2p/<peer>`: what a peer dials.
fn dial_target(addr: &Multiaddr) -> Option<PeerId> {
    let protos: Vec<_> = addr.iter().collect();
    match protos.as_slice() {
        [.., Protocol::P2pCircuit, Protocol::WebRTC, Protocol::P2p(peer)] => Some(*peer),
        _ => None,
    }
}

/// Bounds a connection attempt: Chromium's ICE can stay `new` forever.
fn bounded(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<Output, Error>> + 'static,
) -> Upgrade {
    let fut = async move {
        futures::select! {
            r = fut.fuse() => r,
            _ = Delay::new(timeout).fuse() => Err(Error::Timeout(timeout)),
        }
    };
    // Single-threaded wasm: the JS objects inside never leave this thread.
    SendWrapper::new(fut.boxed_local()).boxed()
}

async fn dial(
    config: Config,
    mut control: libp2p_stream::Control,
    peer: PeerId,
) -> Result<Output, Error> {
    let stream = control
        .open_stream(peer, StreamProtocol::new(PROTOCOL))
        .await
        .map_err(|e| Error::OpenStream(e.to_string()))?;
    let pc = PeerConnection::new(&config.ice_servers)?;
    // Created before the offer so that the SDP has a data m-line.
    let init = pc.open_channel(INIT_LABEL)?;
    signal::run(Role::Dialer, stream, &pc, config.timeout).await?;
    retire_init(init).await;
    tracing::info!(%peer, "direct WebRTC connection established (dialer)");
    Ok((peer, StreamMuxerBox::new(Connection::new(pc))))
}

/// The dialer closes `init` and waits until it is closed, so that its channel
/// id is not reused too early. The answerer may close it first (js does), so
/// `closed` counts as well as `open`.
async fn retire_init(mut init: Channel) {
    let opened = futures::select! {
        o = std::future::poll_fn(|cx| init.poll_open_or_closed(cx)).fuse() => o,
        _ = Delay::new(INIT_CHANNEL_WAIT).fuse() => false,
    };
    if opened {
        init.close_channel();
    }
    futures::select! {
        _ = std::future::poll_fn(|cx| init.poll_closed(cx)).fuse() => {},
        _ = Delay::new(INIT_CHANNEL_WAIT).fuse() => tracing::debug!("init channel did not close in time"),
    }
}

async fn answer(config: Config, peer: PeerId, stream: Stream) -> Result<Output, Error> {
    let pc = PeerConnection::new(&config.ice_servers)?;
    signal::run(Role::Answerer, stream, &pc, config.timeout).await?;
    tracing::info!(%peer, "direct WebRTC connection established (answerer)");
    Ok((peer, StreamMuxerBox::new(Connection::new(pc))))
}

impl libp2p::core::Transport for Transport {
    type Output = Output;
    type Error = Error;
    type ListenerUpgrade = Upgrade;
    type Dial = Upgrade;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Error>> {
        if !is_listen_addr(&addr) {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.listeners.push((id, addr.clone()));
        self.events.push_back(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr: addr,
        });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let before = self.listeners.len();
        self.listeners.retain(|(l, _)| *l != id);
        if self.listeners.len() == before {
            return false;
        }
        self.events.push_back(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        true
    }

    fn dial(&mut self, addr: Multiaddr, opts: DialOpts) -> Result<Upgrade, TransportError<Error>> {
        let Some(peer) = dial_target(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        if opts.role == Endpoint::Listener {
            // Hole punching's "dial as listener" has no meaning here.
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        let config = self.config.clone();
        let timeout = config.timeout;
        Ok(bounded(timeout, dial(config, self.control.clone(), peer)))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Upgrade, Error>> {
        if let Some(ev) = self.events.pop_front() {
            return Poll::Ready(ev);
        }
        while let Poll::Ready(Some((peer, stream))) = self.incoming.poll_next_unpin(cx) {
            let Some((listener_id, local_addr)) = self.listeners.first().cloned() else {
                tracing::debug!(%peer, "signaling stream while not listening; dropped");
                continue;
            };
            tracing::debug!(%peer, "inbound /webrtc signaling");
            let send_back_addr = Multiaddr::empty()
                .with(Protocol::P2pCircuit)
                .with(Protocol::WebRTC)
                .with(Protocol::P2p(peer));
            let config = self.config.clone();
            let timeout = config.timeout;
            return Poll::Ready(TransportEvent::Incoming {
                listener_id,
                upgrade: bounded(timeout, answer(config, peer, stream)),
                local_addr,
                send_back_addr,
            });
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Plain #[test]s never run on wasm32: only wasm-bindgen-test ones do.
    #[wasm_bindgen_test::wasm_bindgen_test]
    fn address_shapes() {
        let peer = PeerId::random();
        let relay = PeerId::random();
        let base: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{relay}/p2p-circuit/webrtc")
            .parse()
            .unwrap();
        assert!(is_listen_addr(&base));
        assert_eq!(
            dial_target(&base.clone().with(Protocol::P2p(peer))),
            Some(peer)
        );
        let circuit: Multiaddr =
            format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{relay}/p2p-circuit/p2p/{peer}")
                .parse()
                .unwrap();
        assert_eq!(dial_target(&circuit), None);
        assert!(!is_listen_addr(&circuit));
    }
}
