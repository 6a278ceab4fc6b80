//! An `RTCPeerConnection` and the events Rust needs from it.
//!
//! The browser reports through callbacks; they push into [`Shared`] (a
//! bounded queue of signaling events, the queue of inbound data channels) and
//! wake whoever waits. The closures live in [`PeerConnection`] and are
//! unregistered before they are dropped.

use std::{
    cell::RefCell,
    collections::VecDeque,
    rc::Rc,
    task::{Context, Poll, Waker},
};

use js_sys::{Reflect, JSON};
use serde::Serialize as _;
use shoal_proto::{info::IceServer, signaling::PcState};
use wasm_bindgen::{prelude::Closure, JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Event, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit,
    RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState,
    RtcSdpType, RtcSessionDescriptionInit,
};

use super::{
    channel::{Channel, CloseHandle},
    Error,
};

/// Label of the channel the dialer opens before its offer so that the SDP has
/// a data m-line. Never a stream.
pub const INIT_LABEL: &str = "init";
/// Inbound channels waiting to be accepted; past this a channel is refused.
const MAX_PENDING_INBOUND: usize = 64;
/// Signaling events (candidates, state changes) waiting for the driver.
const MAX_PENDING_EVENTS: usize = 256;

/// What the signaling driver hears from the browser.
#[derive(Debug)]
pub enum PcEvent {
    /// A local ICE candidate as JSON, `None` at the end of gathering.
    Candidate(Option<String>),
    State(PcState),
}

#[derive(Default)]
struct Shared {
    events: VecDeque<PcEvent>,
    event_waker: Option<Waker>,
    inbound: VecDeque<Channel>,
    inbound_waker: Option<Waker>,
    state_waker: Option<Waker>,
    /// Every channel of this connection, to close when we close it.
    channels: Vec<CloseHandle>,
}

impl Shared {
    /// Whether a channel we were closing on stream `id` was closed by the
    /// browser for the remote's reuse of `id`; forgets it, so that a later
    /// channel on `id` is taken.
    fn take_reused(&mut self, id: Option<u16>) -> bool {
        let before = self.channels.len();
        self.channels.retain(|c| !c.is_reused(id));
        self.channels.len() != before
    }

    fn track(&mut self, channel: &Channel) {
        self.channels.retain(|c| !c.is_gone());
        self.channels.push(channel.close_handle());
    }
}

struct Callbacks {
    _candidate: Closure<dyn FnMut(RtcPeerConnectionIceEvent)>,
    _state: Closure<dyn FnMut(Event)>,
    _channel: Closure<dyn FnMut(RtcDataChannelEvent)>,
}

/// The `RTCSctpTransport` and the `statechange` handler set on it.
type SctpWatch = (JsValue, Closure<dyn FnMut(Event)>);

pub struct PeerConnection {
    pc: RtcPeerConnection,
    shared: Rc<RefCell<Shared>>,
    callbacks: Option<Callbacks>,
    /// The `RTCSctpTransport` and its `statechange` handler, once connected
    /// (see [`PeerConnection::watch_sctp`]).
    sctp: Option<SctpWatch>,
}

pub fn map_state(state: RtcPeerConnectionState) -> PcState {
    match state {
        RtcPeerConnectionState::Connecting => PcState::Connecting,
        RtcPeerConnectionState::Connected => PcState::Connected,
        RtcPeerConnectionState::Disconnected => PcState::Disconnected,
        RtcPeerConnectionState::Failed => PcState::Failed,
        RtcPeerConnectionState::Closed => PcState::Closed,
        _ => PcState::New,
    }
}

impl PeerConnection {
    /// Creates the connection with the given ICE servers (the relay's STUN,
    /// and whatever else its operator configured).
    pub fn new(ice_servers: &[IceServer]) -> Result<Self, Error> {
        let config = RtcConfiguration::new();
        let servers = ice_servers
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| Error::js(e.into()))?;
        config.set_ice_servers(&servers);
        let pc = RtcPeerConnection::new_with_configuration(&config).map_err(Error::js)?;
        let shared = Rc::new(RefCell::new(Shared::default()));

        let on_candidate = {
            let shared = shared.clone();
            Closure::<dyn FnMut(RtcPeerConnectionIceEvent)>::new(
                move |ev: RtcPeerConnectionIceEvent| {
                    let json = ev
                        .candidate()
                        .and_then(|c| JSON::stringify(&c.to_json()).ok())
                        .and_then(|s| s.as_string());
                    push_event(&shared, PcEvent::Candidate(json));
                },
            )
        };
        let on_state = {
            let shared = shared.clone();
            let pc = pc.clone();
            Closure::<dyn FnMut(Event)>::new(move |_: Event| {
                push_event(&shared, PcEvent::State(map_state(pc.connection_state())));
                if let Some(w) = shared.borrow_mut().state_waker.take() {
                    w.wake();
                }
            })
        };
        let on_channel = {
            let shared = shared.clone();
            Closure::<dyn FnMut(RtcDataChannelEvent)>::new(move |ev: RtcDataChannelEvent| {
                let dc = ev.channel();
                if dc.label() == INIT_LABEL {
                    // The dialer's negotiation channel: the dialer closes it.
                    return;
                }
                let mut s = shared.borrow_mut();
                if s.take_reused(dc.id()) {
                    // Doomed (see `CloseHandle`): closed now, its reset
                    // still reaches the remote.
                    tracing::debug!(id = ?dc.id(), "refusing a channel on a stream id still closing here");
                    dc.close();
                    return;
                }
                if s.inbound.len() >= MAX_PENDING_INBOUND {
                    tracing::warn!("too many unaccepted inbound streams; refusing one");
                    dc.close();
                    return;
                }
                // Wrap at once so that its first messages are kept.
                let channel = Channel::new(dc);
                s.track(&channel);
                s.inbound.push_back(channel);
                if let Some(w) = s.inbound_waker.take() {
                    w.wake();
                }
            })
        };
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        pc.set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
        Ok(Self {
            pc,
            shared,
            sctp: None,
            callbacks: Some(Callbacks {
                _candidate: on_candidate,
                _state: on_state,
                _channel: on_channel,
            }),
        })
    }

    pub fn state(&self) -> PcState {
        map_state(self.pc.connection_state())
    }

    /// Opens an ordered data channel; fails (rather than throwing through
    /// the wasm stack) when the connection is already closed.
    pub fn open_channel(&self, label: &str) -> Result<Channel, Error> {
        let init = RtcDataChannelInit::new();
        init.set_ordered(true);
        // Called through `Function::call2`, which returns the exception as an
        // `Err`: web-sys's binding lets a closed connection's
        // `InvalidStateError` unwind through wasm, leaving borrows held.
        let create: js_sys::Function = Reflect::get(&self.pc, &"createDataChannel".into())
            .map_err(Error::js)?
            .unchecked_into();
        let channel = create
            .call2(&self.pc, &label.into(), &init)
            .map_err(Error::js)?
            .unchecked_into::<RtcDataChannel>();
        let channel = Channel::new(channel);
        self.shared.borrow_mut().track(&channel);
        Ok(channel)
    }

    pub fn poll_event(&self, cx: &mut Context<'_>) -> Poll<PcEvent> {
        let mut s = self.shared.borrow_mut();
        match s.events.pop_front() {
            Some(ev) => Poll::Ready(ev),
            None => {
                s.event_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Stops queueing signaling events (after signaling is over).
    pub fn end_signaling(&self) {
        self.pc.set_onicecandidate(None);
        let mut s = self.shared.borrow_mut();
        s.events.clear();
        s.event_waker = None;
    }

    pub fn poll_inbound(&self, cx: &mut Context<'_>) -> Poll<Channel> {
        let mut s = self.shared.borrow_mut();
        match s.inbound.pop_front() {
            Some(ch) => Poll::Ready(ch),
            None => {
                s.inbound_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Also wake the state waker when the SCTP association changes state.
    /// It closes as soon as the remote closes its `RTCPeerConnection` (a tab
    /// closed, a peer that hung up), while ICE only notices seconds later.
    /// web-sys has no `RTCSctpTransport` binding, hence `Reflect`.
    pub fn watch_sctp(&mut self) {
        let Ok(sctp) = Reflect::get(&self.pc, &"sctp".into()) else {
            return;
        };
        if !sctp.is_object() {
            return;
        }
        let shared = self.shared.clone();
        let on_change = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            if let Some(w) = shared.borrow_mut().state_waker.take() {
                w.wake();
            }
        });
        if Reflect::set(&sctp, &"onstatechange".into(), on_change.as_ref()).is_ok() {
            self.sctp = Some((sctp, on_change));
        }
    }

    /// The SCTP association (every data channel) is gone.
    pub fn sctp_closed(&self) -> bool {
        self.sctp
            .as_ref()
            .and_then(|(sctp, _)| Reflect::get(sctp, &"state".into()).ok())
            .and_then(|v| v.as_string())
            .is_some_and(|state| state == "closed")
    }

    /// Wakes `cx` at the next connection state change.
    pub fn register_state_waker(&self, cx: &Context<'_>) {
        self.shared.borrow_mut().state_waker = Some(cx.waker().clone());
    }

    pub async fn create_offer(&self) -> Result<String, Error> {
        let offer = JsFuture::from(self.pc.create_offer())
            .await
            .map_err(Error::js)?;
        sdp_of(&offer)
    }

    pub async fn create_answer(&self) -> Result<String, Error> {
        let answer = JsFuture::from(self.pc.create_answer())
            .await
            .map_err(Error::js)?;
        sdp_of(&answer)
    }

    pub async fn set_local(&self, kind: RtcSdpType, sdp: &str) -> Result<(), Error> {
        let desc = RtcSessionDescriptionInit::new(kind);
        desc.set_sdp(sdp);
        JsFuture::from(self.pc.set_local_description(&desc))
            .await
            .map_err(Error::js)?;
        Ok(())
    }

    pub async fn set_remote(&self, kind: RtcSdpType, sdp: &str) -> Result<(), Error> {
        let desc = RtcSessionDescriptionInit::new(kind);
        desc.set_sdp(sdp);
        JsFuture::from(self.pc.set_remote_description(&desc))
            .await
            .map_err(Error::js)?;
        Ok(())
    }

    /// Adds a remote candidate given as the JSON of an `RTCIceCandidateInit`.
    pub async fn add_candidate(&self, json: &str) -> Result<(), Error> {
        let value = JSON::parse(json).map_err(Error::js)?;
        if !value.is_object() {
            return Err(Error::Protocol("ICE candidate is not a JSON object".into()));
        }
        let init: RtcIceCandidateInit = value.unchecked_into();
        JsFuture::from(
            self.pc
                .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
        )
        .await
        .map_err(Error::js)?;
        Ok(())
    }

    pub fn close(&self) {
        self.pc.close();
        self.close_channels();
    }

    /// `close()` fires no event on the channels: tell their streams.
    fn close_channels(&self) {
        let channels = std::mem::take(&mut self.shared.borrow_mut().channels);
        for channel in channels {
            channel.close();
        }
    }
}

fn push_event(shared: &Rc<RefCell<Shared>>, ev: PcEvent) {
    let mut s = shared.borrow_mut();
    if s.events.len() >= MAX_PENDING_EVENTS {
        tracing::warn!("dropping a signaling event: the driver is not keeping up");
        return;
    }
    s.events.push_back(ev);
    if let Some(w) = s.event_waker.take() {
        w.wake();
    }
}

fn sdp_of(desc: &JsValue) -> Result<String, Error> {
    Reflect::get(desc, &"sdp".into())
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| Error::Protocol("session description without sdp".into()))
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        // Never leak the connection: whoever drops it is done with it.
        self.close();
        if self.callbacks.take().is_some() {
            self.pc.set_onicecandidate(None);
            self.pc.set_onconnectionstatechange(None);
            self.pc.set_ondatachannel(None);
        }
        if let Some((sctp, _on_change)) = self.sctp.take() {
            let _ = Reflect::set(&sctp, &"onstatechange".into(), &JsValue::NULL);
        }
    }
}
