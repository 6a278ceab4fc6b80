//! The WebSocket to the relay: a libp2p `Transport` over the browser's
//! `WebSocket`, dial only.
//!
//! Why not `libp2p-websocket-websys` (0.6): its `error` handler sets a flag
//! and its `close` handler wakes only a pending `close()`, so a task waiting
//! for the socket to open, or for data, is never woken when the socket fails.
//! A dial to a relay that is down (connection refused) then stays pending
//! forever; the Swarm counts it as "dialing", refuses every later dial with
//! `DisconnectedAndNotDialing`, and the page never reconnects after a relay
//! restart. Here every socket event wakes both directions, a dial resolves
//! with an error as soon as the socket closes, and opening is bounded.
//!
//! Also: `flush` does not wait. Once `send` has taken the bytes the browser
//! delivers them; the old transport polled `bufferedAmount` every 100 ms on
//! each flush (≈300 ms per handshake, measured). Writes still apply
//! backpressure on `bufferedAmount`.

use std::{
    cell::RefCell,
    collections::VecDeque,
    io,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures::{future::BoxFuture, FutureExt as _};
use futures_timer::Delay;
use libp2p::core::{
    multiaddr::{Multiaddr, Protocol},
    transport::{DialOpts, ListenerId, TransportError, TransportEvent},
};
use libp2p::PeerId;
use send_wrapper::SendWrapper;
use shoal_proto::info::Origin;
use wasm_bindgen::{prelude::Closure, JsCast as _};
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

/// The multiaddr that dials the relay's libp2p WebSocket on `origin` at
/// `path` and expects `relay`: the form [`Origin::relay_multiaddr`] writes
/// as text, built here from its parts. Parsing the text instead would pull
/// `Multiaddr`'s whole string parser into the wasm, with a decoder for
/// every multibase (measured: ~9 KB of the brotli page).
pub fn relay_addr(origin: &Origin, path: &str, relay: PeerId) -> Multiaddr {
    let host = if let Ok(ip) = origin.host.parse::<std::net::Ipv4Addr>() {
        Protocol::Ip4(ip)
    } else if let Ok(ip) = origin.host.parse::<std::net::Ipv6Addr>() {
        Protocol::Ip6(ip)
    } else {
        Protocol::Dns(origin.host.clone().into())
    };
    let ws = if origin.secure {
        Protocol::Wss(path.to_owned().into())
    } else {
        Protocol::Ws(path.to_owned().into())
    };
    Multiaddr::empty()
        .with(host)
        .with(Protocol::Tcp(origin.port))
        .with(ws)
        .with(Protocol::P2p(relay))
}

/// Bound on the WebSocket opening handshake (TCP, TLS, HTTP upgrade).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Received bytes not yet read, at most; past this the connection is failed
/// (yamux's windows keep a well-behaved relay far below it).
const MAX_READ_BUFFER: usize = 8 * 1024 * 1024;
/// Bytes handed to the browser and not yet sent, at most, before a write waits.
const MAX_BUFFERED: u32 = 1024 * 1024;
/// How often a waiting write looks at `bufferedAmount` (there is no event).
const WRITE_POLL: Duration = Duration::from_millis(10);
/// RFC 6455's "Try Again Later": the relay refused this connection for now
/// (too many from this address, or full) and says why in the close reason.
const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot open a WebSocket to {0}")]
    Url(String),
    #[error("the WebSocket to {url} closed before it opened (code {code})")]
    Refused { url: String, code: u16 },
    #[error("the WebSocket to {0} did not open within {OPEN_TIMEOUT:?}")]
    Timeout(String),
    #[error(transparent)]
    Closed(#[from] Closed),
}

/// The socket closed; with code [`CLOSE_TRY_AGAIN_LATER`] the relay refused
/// the connection and `reason` says why (shown to the user as it is).
#[derive(Debug, Clone, thiserror::Error)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.reason.is_empty()) {
            (CLOSE_TRY_AGAIN_LATER, false) => {
                write!(f, "the relay refused this connection: {}", self.reason)
            }
            (code, true) => write!(f, "websocket closed (code {code})"),
            (code, false) => write!(f, "websocket closed (code {code}: {})", self.reason),
        }
    }
}

/// Dials `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>/(ws|tls/ws|wss)[/p2p/…]`.
#[derive(Default)]
pub struct Transport {
    /// A socket the page opened to the relay before the wasm was ready
    /// (`crate::early`): the first dial to its URL takes it over instead of
    /// opening another; any other first dial closes it.
    early: Option<SendWrapper<WebSocket>>,
}

impl Transport {
    pub fn with_early_socket(socket: Option<WebSocket>) -> Self {
        Self {
            early: socket.map(SendWrapper::new),
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(socket) = self.early.take() {
            let _ = socket.close_with_code_and_reason(1000, "unused");
        }
    }
}

/// Whether two WebSocket URLs name the same resource, as the browser
/// serializes them (`wss://h:443/p` and `wss://h/p` are one).
fn same_url(a: &str, b: &str) -> bool {
    match (web_sys::Url::new(a), web_sys::Url::new(b)) {
        (Ok(a), Ok(b)) => a.href() == b.href(),
        _ => false,
    }
}

/// `ws://` or `wss://` URL of a WebSocket multiaddr (same mapping as
/// libp2p-websocket-websys, path included).
fn websocket_url(addr: &Multiaddr) -> Option<String> {
    let mut protocols = addr.iter();
    let host_port = match (protocols.next()?, protocols.next()?) {
        (Protocol::Ip4(ip), Protocol::Tcp(port)) => format!("{ip}:{port}"),
        (Protocol::Ip6(ip), Protocol::Tcp(port)) => format!("[{ip}]:{port}"),
        (Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h), Protocol::Tcp(port)) => {
            format!("{h}:{port}")
        }
        _ => return None,
    };
    let (scheme, path) = match (protocols.next(), protocols.next()) {
        (Some(Protocol::Tls), Some(Protocol::Ws(path))) => ("wss", path),
        (Some(Protocol::Ws(path)), _) => ("ws", path),
        (Some(Protocol::Wss(path)), _) => ("wss", path),
        _ => return None,
    };
    Some(format!("{scheme}://{host_port}{path}"))
}

impl libp2p::core::Transport for Transport {
    type Output = Connection;
    type Error = Error;
    type ListenerUpgrade = futures::future::Ready<Result<Connection, Error>>;
    type Dial = BoxFuture<'static, Result<Connection, Error>>;

    fn listen_on(&mut self, _: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Error>> {
        Err(TransportError::MultiaddrNotSupported(addr))
    }

    fn remove_listener(&mut self, _: ListenerId) -> bool {
        false
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Error>> {
        if opts.role.is_listener() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        let Some(url) = websocket_url(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        // Taken over now, not when the dial is first polled: a dial dropped
        // before then closes the socket with its connection.
        let early = self
            .early
            .take()
            .and_then(|socket| Connection::adopt(socket.take(), &url));
        let fut = async move {
            let conn = match early {
                Some(conn) => conn,
                None => Connection::new(&url)?,
            };
            let opened = futures::select! {
                r = std::future::poll_fn(|cx| conn.poll_open(cx)).fuse() => r,
                _ = Delay::new(OPEN_TIMEOUT).fuse() => Err(Error::Timeout(url.clone())),
            };
            opened.map(|()| conn)
        };
        // Single-threaded wasm: the JS objects inside never leave this thread.
        Ok(SendWrapper::new(fut.boxed_local()).boxed())
    }

    fn poll(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Error>> {
        Poll::Pending
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketState {
    Opening,
    Open,
    /// Closed (or errored), with the close code.
    Closed {
        code: u16,
        errored: bool,
    },
}

struct Shared {
    state: SocketState,
    /// The close frame's reason, once closed.
    close_reason: String,
    received: VecDeque<u8>,
    overflowed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl Shared {
    fn wake_all(&mut self) {
        for w in [self.read_waker.take(), self.write_waker.take()]
            .into_iter()
            .flatten()
        {
            w.wake();
        }
    }
}

struct Callbacks {
    _open: Closure<dyn FnMut(Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _error: Closure<dyn FnMut(Event)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

struct Inner {
    url: String,
    socket: WebSocket,
    shared: Rc<RefCell<Shared>>,
    callbacks: Option<Callbacks>,
    /// Armed while a write waits for `bufferedAmount` to drop.
    write_timer: Option<Delay>,
}

/// One WebSocket as a byte stream.
pub struct Connection(SendWrapper<Inner>);

impl Connection {
    fn new(url: &str) -> Result<Self, Error> {
        let socket = WebSocket::new(url).map_err(|_| Error::Url(url.to_owned()))?;
        Ok(Self::wire(socket, url, SocketState::Opening))
    }

    /// Takes over `socket`, opened by the page to `url` before the node
    /// started, if it is still opening or open and its URL is `url`; else
    /// closes it (`None`: dial a new one). Nothing is lost in between: the
    /// relay speaks only after the dialer (multistream-select's dialer
    /// proposes first), and the page closes an early socket that receives.
    fn adopt(socket: WebSocket, url: &str) -> Option<Self> {
        let state = match socket.ready_state() {
            WebSocket::CONNECTING => SocketState::Opening,
            WebSocket::OPEN => SocketState::Open,
            _ => return None,
        };
        if !same_url(&socket.url(), url) {
            tracing::debug!(early = %socket.url(), %url, "early relay socket unused");
            let _ = socket.close_with_code_and_reason(1000, "unused");
            return None;
        }
        tracing::debug!(%url, "relay socket opened early by the page");
        Some(Self::wire(socket, url, state))
    }

    fn wire(socket: WebSocket, url: &str, state: SocketState) -> Self {
        socket.set_binary_type(BinaryType::Arraybuffer);
        let shared = Rc::new(RefCell::new(Shared {
            state,
            close_reason: String::new(),
            received: VecDeque::new(),
            overflowed: false,
            read_waker: None,
            write_waker: None,
        }));
        let on_open = {
            let shared = shared.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                let mut s = shared.borrow_mut();
                if s.state == SocketState::Opening {
                    s.state = SocketState::Open;
                }
                s.wake_all();
            })
        };
        let on_message = {
            let shared = shared.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                let Ok(buf) = ev.data().dyn_into::<js_sys::ArrayBuffer>() else {
                    return; // text frames are not part of libp2p's framing
                };
                let data = js_sys::Uint8Array::new(&buf);
                let mut s = shared.borrow_mut();
                if s.received.len() + data.length() as usize > MAX_READ_BUFFER {
                    s.overflowed = true;
                } else {
                    s.received.extend(data.to_vec());
                }
                s.wake_all();
            })
        };
        let on_error = {
            let shared = shared.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                let mut s = shared.borrow_mut();
                if !matches!(s.state, SocketState::Closed { .. }) {
                    // The close event with its code follows; until then this stands.
                    s.state = SocketState::Closed {
                        code: 1006,
                        errored: true,
                    };
                }
                s.wake_all();
            })
        };
        let on_close = {
            let shared = shared.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
                let mut s = shared.borrow_mut();
                let errored =
                    matches!(s.state, SocketState::Closed { errored: true, .. }) || !ev.was_clean();
                s.state = SocketState::Closed {
                    code: ev.code(),
                    errored,
                };
                s.close_reason = ev.reason();
                s.wake_all();
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Self(SendWrapper::new(Inner {
            url: url.to_owned(),
            socket,
            shared,
            callbacks: Some(Callbacks {
                _open: on_open,
                _message: on_message,
                _error: on_error,
                _close: on_close,
            }),
            write_timer: None,
        }))
    }

    fn poll_open(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut s = self.0.shared.borrow_mut();
        match s.state {
            SocketState::Open => Poll::Ready(Ok(())),
            SocketState::Closed {
                code: CLOSE_TRY_AGAIN_LATER,
                ..
            } => Poll::Ready(Err(Error::Closed(Closed {
                code: CLOSE_TRY_AGAIN_LATER,
                reason: s.close_reason.clone(),
            }))),
            SocketState::Closed { code, .. } => Poll::Ready(Err(Error::Refused {
                url: self.0.url.clone(),
                code,
            })),
            SocketState::Opening => {
                s.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn closed_error(code: u16, errored: bool, reason: &str) -> io::Error {
    let kind = if errored {
        io::ErrorKind::ConnectionReset
    } else {
        io::ErrorKind::BrokenPipe
    };
    let reason = reason.to_owned();
    io::Error::new(kind, Closed { code, reason })
}

impl futures::AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut s = self.0.shared.borrow_mut();
        if s.overflowed {
            return Poll::Ready(Err(io::Error::other("websocket read buffer overflowed")));
        }
        if !s.received.is_empty() {
            let n = buf.len().min(s.received.len());
            for (dst, src) in buf.iter_mut().zip(s.received.drain(..n)) {
                *dst = src;
            }
            return Poll::Ready(Ok(n));
        }
        match s.state {
            // A refusal is an error to read, not an end of stream: the reason must reach the page.
            SocketState::Closed {
                code: CLOSE_TRY_AGAIN_LATER,
                errored,
            } => Poll::Ready(Err(closed_error(
                CLOSE_TRY_AGAIN_LATER,
                errored,
                &s.close_reason,
            ))),
            SocketState::Closed { errored: false, .. } => Poll::Ready(Ok(0)),
            SocketState::Closed {
                code,
                errored: true,
            } => Poll::Ready(Err(closed_error(code, true, &s.close_reason))),
            SocketState::Opening | SocketState::Open => {
                s.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl futures::AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let inner = &mut *self.get_mut().0;
        {
            let mut s = inner.shared.borrow_mut();
            match s.state {
                SocketState::Closed { code, errored } => {
                    return Poll::Ready(Err(closed_error(code, errored, &s.close_reason)))
                }
                SocketState::Opening => {
                    s.write_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                SocketState::Open => {}
            }
        }
        let buffered = inner.socket.buffered_amount();
        if buffered >= MAX_BUFFERED {
            // No event tells when the browser has sent its buffer: look again soon.
            let timer = inner
                .write_timer
                .get_or_insert_with(|| Delay::new(WRITE_POLL));
            if timer.poll_unpin(cx).is_ready() {
                inner.write_timer = None;
                cx.waker().wake_by_ref();
            }
            inner.shared.borrow_mut().write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        inner.write_timer = None;
        let n = buf.len().min((MAX_BUFFERED - buffered) as usize);
        match inner.socket.send_with_u8_array(&buf[..n]) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(_) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // What `send` took is sent before the close frame.
        let _ = self.0.socket.close_with_code_and_reason(1000, "closed");
        Poll::Ready(Ok(()))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.callbacks.take().is_some() {
            self.socket.set_onopen(None);
            self.socket.set_onmessage(None);
            self.socket.set_onerror(None);
            self.socket.set_onclose(None);
        }
        if matches!(
            self.socket.ready_state(),
            WebSocket::CONNECTING | WebSocket::OPEN
        ) {
            let _ = self.socket.close_with_code_and_reason(1000, "dropped");
        }
    }
}

#[cfg(test)]
mod tests;
