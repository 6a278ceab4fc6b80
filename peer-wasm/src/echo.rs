//! Test-only (cargo feature `test-hooks`; never in `make build`/`make run`):
//! an echo protocol for the js-libp2p interop tests, so that they can move
//! arbitrary streams over a `/webrtc` connection between the two stacks.
//!
//! - Serving: every inbound stream of [`PROTOCOL`] gets back what it sends;
//!   when the remote half-closes, this side finishes writing and closes too.
//!   How each stream ended (FIN, RESET, other error) is counted in [`Stats`].
//! - Dialing: [`Echo::run`] opens streams to a peer at once, writes a known
//!   pattern on each while reading the echo back (at most [`WINDOW`] in
//!   flight), half-closes, and checks every byte; [`Echo::reset`] opens a stream and drops it mid-write (a
//!   RESET on the wire).
//!
//! Streams come from `libp2p_stream`, on whichever connection it picks: the
//! interop tests hold one connection per peer, the `/webrtc` one.

use std::{cell::RefCell, io, rc::Rc};

use futures::{future, AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};
use libp2p::{PeerId, Stream, StreamProtocol};

pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/shoal/test/echo/1.0.0");

/// Bytes per read and write.
const BUF: usize = 64 * 1024;

/// The most bytes a round trip has sent and not yet read back. `/webrtc`
/// streams have no flow control of their own (a reader cannot slow the
/// remote down: the data channel delivers what SCTP receives), so each end
/// caps what it holds unread and resets the stream past it (ours: 4 MiB in
/// `webrtc::channel`; js-libp2p: `maxReadBufferLength`). An echo that falls
/// behind holds what is in flight: any protocol over `/webrtc` must bound it,
/// as shoal's blocks protocol does with its requests.
const WINDOW: usize = 1024 * 1024;

/// How the streams this node served ended.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Stats {
    /// Inbound streams accepted.
    pub served: u32,
    /// Ended by the remote's FIN (then echoed to the end and closed).
    pub fin: u32,
    /// Ended by the remote's RESET.
    pub reset: u32,
    /// Ended by another error.
    pub other: u32,
    /// Bytes echoed back.
    pub bytes: f64,
}

/// The outcome of [`Echo::run`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub streams: u32,
    /// Bytes written, and read back, per stream.
    pub bytes_each: f64,
    /// Streams whose echo matched byte for byte and then ended with FIN.
    pub intact: u32,
    /// The first failure, if any.
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct Echo {
    control: libp2p_stream::Control,
    stats: Rc<RefCell<Stats>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    #[error("the echo protocol is already registered")]
    Registered(#[from] libp2p_stream::AlreadyRegistered),
    #[error("opening an echo stream: {0}")]
    Open(#[from] libp2p_stream::OpenStreamError),
    #[error("echo stream: {0}")]
    Io(#[from] io::Error),
}

impl Echo {
    /// Start serving [`PROTOCOL`] on `control`'s behaviour.
    pub fn start(mut control: libp2p_stream::Control) -> Result<Self, EchoError> {
        let mut incoming = control.accept(PROTOCOL)?;
        let echo = Self {
            control,
            stats: Rc::default(),
        };
        let stats = echo.stats.clone();
        wasm_bindgen_futures::spawn_local(async move {
            while let Some((_, stream)) = incoming.next().await {
                stats.borrow_mut().served += 1;
                wasm_bindgen_futures::spawn_local(serve(stream, stats.clone()));
            }
        });
        Ok(echo)
    }

    pub fn stats(&self) -> Stats {
        self.stats.borrow().clone()
    }

    /// `streams` streams to `peer` at once, `bytes_each` bytes each way.
    pub async fn run(&self, peer: PeerId, streams: u32, bytes_each: usize) -> RunReport {
        let runs = (0..streams).map(|i| {
            let mut control = self.control.clone();
            async move {
                let stream = control.open_stream(peer, PROTOCOL).await?;
                round_trip(stream, i, bytes_each).await
            }
        });
        let results = future::join_all(runs).await;
        RunReport {
            streams,
            bytes_each: bytes_each as f64,
            intact: results.iter().filter(|r| r.is_ok()).count() as u32,
            error: results
                .into_iter()
                .find_map(|r| r.err())
                .map(|e| e.to_string()),
        }
    }

    /// Open a stream to `peer`, write `bytes` bytes, and drop it unclosed.
    pub async fn reset(&self, peer: PeerId, bytes: usize) -> Result<(), EchoError> {
        let mut stream = self.control.clone().open_stream(peer, PROTOCOL).await?;
        stream.write_all(&pattern(0, 0, bytes)).await?;
        stream.flush().await?;
        drop(stream);
        Ok(())
    }
}

/// The byte at `offset` of stream `stream`'s pattern.
fn byte(stream: u32, offset: usize) -> u8 {
    (offset as u32)
        .wrapping_mul(31)
        .wrapping_add(stream.wrapping_mul(7)) as u8
}

fn pattern(stream: u32, from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|o| byte(stream, o)).collect()
}

/// Write the pattern, reading the echo whenever more than [`WINDOW`] is in
/// flight; half-close; check every byte and that the echo then ends (FIN).
async fn round_trip(mut stream: Stream, id: u32, len: usize) -> Result<(), EchoError> {
    let mut buf = vec![0; BUF];
    let (mut sent, mut got) = (0, 0);
    while sent < len {
        let n = BUF.min(len - sent);
        stream.write_all(&pattern(id, sent, n)).await?;
        sent += n;
        while sent - got > WINDOW {
            got += read_checked(&mut stream, &mut buf, id, got).await?;
        }
    }
    stream.close().await?;
    loop {
        match read_checked(&mut stream, &mut buf, id, got).await? {
            0 => break,
            n => got += n,
        }
    }
    if got == len {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("stream {id}: {got} of {len} bytes came back"),
        )
        .into())
    }
}

/// One read of the echo, checked against the pattern at `offset`; 0 at EOF.
async fn read_checked(
    stream: &mut Stream,
    buf: &mut [u8],
    id: u32,
    offset: usize,
) -> io::Result<usize> {
    let n = stream.read(buf).await?;
    match (0..n).find(|&i| buf[i] != byte(id, offset + i)) {
        Some(i) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("stream {id}: byte {} differs", offset + i),
        )),
        None => Ok(n),
    }
}

async fn serve(stream: Stream, stats: Rc<RefCell<Stats>>) {
    let (mut rx, mut tx) = stream.split();
    let mut buf = vec![0; BUF];
    let ended = loop {
        match rx.read(&mut buf).await {
            Ok(0) => break tx.close().await.map(|()| true),
            Ok(n) => {
                if let Err(e) = tx.write_all(&buf[..n]).await {
                    break Err(e);
                }
                stats.borrow_mut().bytes += n as f64;
            }
            Err(e) => break Err(e),
        }
    };
    let mut s = stats.borrow_mut();
    match ended {
        Ok(_) => s.fin += 1,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => s.reset += 1,
        Err(e) => {
            tracing::info!("echo stream ended: {e}");
            s.other += 1;
        }
    }
}
