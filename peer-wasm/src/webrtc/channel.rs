//! One `RTCDataChannel` as a libp2p substream (`AsyncRead + AsyncWrite`).
//!
//! The framing and close handshake live in [`shoal_proto::frame::StreamState`];
//! this file only moves bytes between it and the browser: `onmessage` feeds
//! it, writes are sent while the channel's `bufferedAmount` is low, and wakers
//! are woken from the channel's events.

use std::{
    cell::RefCell,
    io,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures::{AsyncRead, AsyncWrite, FutureExt as _};
use futures_timer::Delay;
use js_sys::{ArrayBuffer, Uint8Array};
use send_wrapper::SendWrapper;
use shoal_proto::frame::{ReadOutcome, StreamState, MAX_FRAME_LEN};
use wasm_bindgen::{prelude::Closure, JsCast as _};
use web_sys::{Event, MessageEvent, RtcDataChannel, RtcDataChannelState, RtcDataChannelType};

/// Inbound bytes a stream may hold unread before it is reset. Generous,
/// because js-libp2p applies no read backpressure at all.
const MAX_READ_BUFFER: usize = 4 * 1024 * 1024;
/// Writes wait while more than this is queued in the channel; Chromium kills a
/// channel queued past 16 MiB.
const MAX_BUFFERED: u32 = 1024 * 1024;
/// `bufferedamountlow` fires when the queue drains below this.
const LOW_WATER: u32 = 256 * 1024;
/// Largest data-channel message we send (Chromium's SCTP limit is 256 KiB).
const MAX_MESSAGE: usize = 64 * 1024;
/// Whole frames that fit in one message. A write takes at most this many, so
/// that it leaves as one full message: a 65th KiB would go as a message of
/// its own, and every `send()` is a hop to the browser's WebRTC thread
/// (measured: a 256 KiB chunk went out as 9 sends, 4 of them 35 bytes).
const FRAMES_PER_MESSAGE: usize = MAX_MESSAGE / MAX_FRAME_LEN;
/// How long `close` waits for the remote FIN_ACK (js waits 10 s too).
const FIN_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a channel the driver closes may take to send what is queued
/// (its last frames) before it is closed anyway (a remote that stopped
/// reading would keep it open for good).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Shared {
    state: Option<StreamState>,
    open: bool,
    closed: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    /// A [`CloseHandle`] exists: the peer connection watches this channel.
    watched: bool,
    /// The `Channel` was dropped; the browser may still be closing it.
    dropped: bool,
    /// The browser closed it because the remote opened a new channel on its
    /// stream id before our close had finished (see [`CloseHandle`]).
    reused: bool,
    /// The callbacks of a dropped channel that the browser has not closed
    /// yet, of which only `close`/`error` are still registered (to see
    /// [`Shared::reused`]). Dropped with the [`CloseHandle`], never from
    /// inside a callback.
    lingering: Option<Callbacks>,
}

impl Shared {
    fn stream(&mut self) -> &mut StreamState {
        self.state
            .get_or_insert_with(|| StreamState::new(MAX_READ_BUFFER))
    }

    fn wake_all(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }
}

/// The JS callbacks of one channel. Kept with the channel and unregistered
/// before they are dropped, so the browser never calls a freed closure.
struct Callbacks {
    _open: Closure<dyn FnMut(Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(Event)>,
    _low: Closure<dyn FnMut(Event)>,
}

/// The peer connection's view of one of its channels.
///
/// It marks a channel closed from outside: when we close an
/// `RTCPeerConnection`, the browser fires no `close` event on its channels
/// (they just turn `closed`), so a stream waiting to read would wait forever;
/// the peer connection closes them through these handles instead.
///
/// It also keeps watching a dropped channel until the browser has closed it,
/// for one race in Chromium (156): when the remote opens a channel on a
/// stream id whose close we started but whose outgoing stream reset is not
/// yet acknowledged (a reset answered "in progress" waits for a retry,
/// hundreds of ms under load), Chromium closes the old channel ("Closed due
/// to stream reuse"), opens the new one, and then applies the late
/// acknowledgement to the new one: its first send fails, Chromium closes it
/// without a stream reset, and the remote's end stays open for good (seen in
/// the session flood test). [`is_reused`](Self::is_reused) says when that
/// happened, so that the new channel is refused at once, while a close of
/// it still reaches the remote.
pub struct CloseHandle {
    shared: Rc<RefCell<Shared>>,
    dc: RtcDataChannel,
}

impl CloseHandle {
    pub fn close(&self) {
        let mut s = self.shared.borrow_mut();
        if !s.dropped {
            s.closed = true;
            s.wake_all();
        }
    }

    /// The channel was dropped and the browser has closed it: nothing left
    /// to close or watch.
    pub fn is_gone(&self) -> bool {
        self.shared.borrow().dropped && self.dc.ready_state() == RtcDataChannelState::Closed
    }

    /// A dropped channel on stream `id` that the browser closed because the
    /// remote reused `id` (see above).
    pub fn is_reused(&self, id: Option<u16>) -> bool {
        let s = self.shared.borrow();
        s.dropped && s.reused && id.is_some() && self.dc.id() == id
    }
}

impl Drop for CloseHandle {
    fn drop(&mut self) {
        // Breaks the cycle the lingering callbacks make with `Shared`.
        let lingering = self.shared.borrow_mut().lingering.take();
        if lingering.is_some() {
            unregister(&self.dc);
        }
    }
}

/// A data channel carrying one libp2p stream.
pub struct Channel {
    dc: RtcDataChannel,
    shared: Rc<RefCell<Shared>>,
    callbacks: Option<Callbacks>,
    close_timer: Option<Delay>,
}

impl Channel {
    /// Wraps `dc` and installs its handlers at once, so that no message that
    /// arrives before the first read is lost.
    pub fn new(dc: RtcDataChannel) -> Self {
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(LOW_WATER);
        let shared = Rc::new(RefCell::new(Shared {
            open: dc.ready_state() == RtcDataChannelState::Open,
            ..Shared::default()
        }));

        let on_open = {
            let shared = shared.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                let mut s = shared.borrow_mut();
                s.open = true;
                s.wake_all();
            })
        };
        let on_message = {
            let shared = shared.clone();
            let dc = dc.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                let Ok(buf) = ev.data().dyn_into::<ArrayBuffer>() else {
                    tracing::debug!("ignoring a non-binary data-channel message");
                    return;
                };
                let bytes = Uint8Array::new(&buf).to_vec();
                let mut s = shared.borrow_mut();
                s.stream().on_message(&bytes);
                // A FIN_ACK or RESET may be due right away.
                flush(&dc, s.stream());
                if s.stream().can_close_channel() {
                    close_once_sent(&dc);
                }
                s.wake_all();
            })
        };
        let on_close = {
            let shared = shared.clone();
            Closure::<dyn FnMut(Event)>::new(move |ev: Event| {
                let mut s = shared.borrow_mut();
                s.closed = true;
                if s.dropped && ev.type_() == "error" && closed_for_reuse(&ev) {
                    s.reused = true;
                }
                s.wake_all();
            })
        };
        let on_low = {
            let shared = shared.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                if let Some(w) = shared.borrow_mut().write_waker.take() {
                    w.wake();
                }
            })
        };
        dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        dc.set_onerror(Some(on_close.as_ref().unchecked_ref()));
        dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        Self {
            dc,
            shared,
            callbacks: Some(Callbacks {
                _open: on_open,
                _message: on_message,
                _close: on_close,
                _low: on_low,
            }),
            close_timer: None,
        }
    }

    /// Ready once the channel is open or has closed (the `init` channel may
    /// be closed by the remote before we ever see it open).
    pub fn poll_open_or_closed(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut s = self.shared.borrow_mut();
        if s.closed || self.dc.ready_state() == RtcDataChannelState::Closed {
            return Poll::Ready(false);
        }
        if s.open {
            return Poll::Ready(true);
        }
        s.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Ready once the channel has closed.
    pub fn poll_closed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.shared.borrow_mut();
        if s.closed || self.dc.ready_state() == RtcDataChannelState::Closed {
            return Poll::Ready(());
        }
        s.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    pub fn close_handle(&self) -> CloseHandle {
        self.shared.borrow_mut().watched = true;
        CloseHandle {
            shared: self.shared.clone(),
            dc: self.dc.clone(),
        }
    }

    /// Closes the underlying channel without the stream handshake (for `init`).
    pub fn close_channel(&self) {
        self.dc.close();
    }

    fn unregister(&mut self) {
        if self.callbacks.take().is_some() {
            unregister(&self.dc);
        }
    }
}

fn unregister(dc: &RtcDataChannel) {
    unregister_data(dc);
    dc.set_onclose(None);
    dc.set_onerror(None);
}

/// Every handler but `close` and `error`: what a dropped channel no longer needs.
fn unregister_data(dc: &RtcDataChannel) {
    dc.set_onopen(None);
    dc.set_onmessage(None);
    dc.set_onbufferedamountlow(None);
}

/// Closes `dc` once the browser has sent what is queued in it. Chromium
/// (156) drops the messages still queued when `close()` is called, so a
/// stream's last frames (the RESET of a dropped stream, a FIN_ACK) would
/// often not arrive, and the remote would wait out its own timeout. Waits for
/// `bufferedamountlow` at 0, at most [`DRAIN_TIMEOUT`]. The channel is done
/// sending: its own low-water handler has nothing left to wake.
fn close_once_sent(dc: &RtcDataChannel) {
    if dc.buffered_amount() == 0 {
        dc.close();
        return;
    }
    let dc = dc.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let mut tx = Some(tx);
        let on_low = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(());
            }
        });
        dc.set_buffered_amount_low_threshold(0);
        dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        // It may have drained before the handler was there.
        if dc.buffered_amount() > 0 && dc.ready_state() == RtcDataChannelState::Open {
            futures::select! {
                _ = rx.fuse() => {},
                _ = Delay::new(DRAIN_TIMEOUT).fuse() => {
                    tracing::debug!("a closing channel did not drain in {DRAIN_TIMEOUT:?}");
                }
            }
        }
        dc.set_onbufferedamountlow(None);
        dc.close();
    });
}

/// Whether an `error` event is Chromium closing the channel because the
/// remote opened another on its stream id. Only its message tells.
fn closed_for_reuse(ev: &Event) -> bool {
    js_sys::Reflect::get(ev, &"error".into())
        .and_then(|e| js_sys::Reflect::get(&e, &"message".into()))
        .ok()
        .and_then(|m| m.as_string())
        .is_some_and(|m| m.contains("stream reuse"))
}

/// Sends every frame the state machine has queued, several frames to a
/// message: peers reassemble a byte stream (js even splits each frame in
/// two), and fewer, larger messages cost Chromium less CPU per byte. A failed
/// send means the channel is gone; the close event will tell the stream.
fn flush(dc: &RtcDataChannel, state: &mut StreamState) {
    let mut batch: Vec<u8> = Vec::new();
    let send = |batch: &mut Vec<u8>| {
        if batch.is_empty() {
            return;
        }
        if dc.ready_state() != RtcDataChannelState::Open {
            // Frames are only produced after `open`; a closing channel
            // cannot take them any more.
            tracing::debug!("dropping frames for a channel that is not open");
        } else if let Err(e) = dc.send_with_u8_array(batch) {
            tracing::debug!("data channel send failed: {e:?}");
        }
        batch.clear();
    };
    while let Some(frame) = state.poll_transmit() {
        if batch.len() + frame.len() > MAX_MESSAGE {
            send(&mut batch);
        }
        batch.extend_from_slice(&frame);
    }
    send(&mut batch);
}

impl AsyncRead for Channel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut s = this.shared.borrow_mut();
        let closed = s.closed;
        match s.stream().read(buf) {
            ReadOutcome::Data(n) => Poll::Ready(Ok(n)),
            ReadOutcome::Eof => Poll::Ready(Ok(0)),
            ReadOutcome::Reset => Poll::Ready(Err(io::ErrorKind::ConnectionReset.into())),
            ReadOutcome::Pending if closed => {
                Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()))
            }
            ReadOutcome::Pending => {
                s.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Channel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut s = this.shared.borrow_mut();
        if s.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if !s.open || this.dc.buffered_amount() > MAX_BUFFERED {
            s.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // Frame up to one message's worth per call, then send it at once.
        let mut written = 0;
        for _ in 0..FRAMES_PER_MESSAGE {
            if written == buf.len() {
                break;
            }
            match s.stream().write(&buf[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if written == 0 => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, e)))
                }
                Err(_) => break,
            }
        }
        flush(&this.dc, s.stream());
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Every write is handed to the channel at once.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        {
            let mut s = this.shared.borrow_mut();
            if s.closed {
                return Poll::Ready(Ok(()));
            }
            if !s.open {
                s.write_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            s.stream().close_write();
            flush(&this.dc, s.stream());
            if s.stream().fin_acked() {
                if s.stream().can_close_channel() {
                    close_once_sent(&this.dc);
                }
                return Poll::Ready(Ok(()));
            }
            s.write_waker = Some(cx.waker().clone());
        }
        let timer = this
            .close_timer
            .get_or_insert_with(|| Delay::new(FIN_ACK_TIMEOUT));
        if timer.poll_unpin(cx).is_ready() {
            tracing::debug!("no FIN_ACK within {FIN_ACK_TIMEOUT:?}; closing anyway");
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let mut s = self.shared.borrow_mut();
        let done = s.closed || s.state.as_ref().is_some_and(|st| st.can_close_channel());
        if !done && s.open {
            // Dropped mid-stream: tell the remote rather than leave it waiting.
            s.stream().reset();
            flush(&self.dc, s.stream());
        }
        s.dropped = true;
        // Nothing is read any more: free what was buffered.
        s.state = None;
        let closed = self.dc.ready_state() == RtcDataChannelState::Closed;
        if !closed {
            close_once_sent(&self.dc);
            if s.watched {
                // Only its end is watched from now on (see `CloseHandle`).
                unregister_data(&self.dc);
                s.lingering = self.callbacks.take();
            }
        }
        drop(s);
        self.unregister();
    }
}

/// A [`Channel`] that the Swarm may hold: JS objects are not `Send`, but the
/// wasm peer has one thread, so `SendWrapper` only states what is true.
pub struct Substream(SendWrapper<Channel>);

impl Substream {
    pub fn new(channel: Channel) -> Self {
        Self(SendWrapper::new(channel))
    }
}

impl AsyncRead for Substream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Substream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_close(cx)
    }
}
