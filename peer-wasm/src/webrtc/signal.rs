//! Runs one `/webrtc-signaling/0.0.1` exchange: the sans-IO
//! [`shoal_proto::signaling::Signaling`] decides, this driver moves its
//! messages over the relayed libp2p stream and applies them to the
//! `RTCPeerConnection`.

use std::future::poll_fn;

use futures::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt as _};
use futures_timer::Delay;
use libp2p::Stream;
use shoal_proto::signaling::{Output, Role, Signaling};
use web_sys::RtcSdpType;
use web_time::Instant;

use super::{
    pc::{PcEvent, PeerConnection},
    Error,
};

/// How long a successful side waits for its half-close of the stream.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs signaling until the peer connection is `connected`, the remote fails
/// it, or `timeout` passes. On error the caller drops (and so closes) `pc`.
pub async fn run(
    role: Role,
    mut stream: Stream,
    pc: &PeerConnection,
    timeout: std::time::Duration,
) -> Result<(), Error> {
    let epoch = Instant::now();
    let mut sig = Signaling::new(role, epoch.elapsed(), timeout);
    // A local description is applied only after the state machine's messages
    // are written: js writes the SDP first, then sets it locally.
    let mut pending_local = None;
    if role == Role::Dialer {
        let offer = pc.create_offer().await?;
        sig.local_offer(offer.clone());
        pending_local = Some((RtcSdpType::Offer, offer));
    }
    let mut buf = vec![0u8; 8192];
    let mut eof = false;
    // Once our SDP is out, a broken stream only stops the trickle: ICE may
    // still connect with the candidates already exchanged.
    let mut sdp_sent = false;
    let mut broken = false;
    loop {
        while let Some(out) = sig.poll_output() {
            match out {
                Output::Send(bytes) if !sdp_sent => {
                    write(&mut stream, &bytes).await?;
                    sdp_sent = true;
                }
                Output::Send(_) if broken => {}
                Output::Send(bytes) => {
                    if let Err(e) = write(&mut stream, &bytes).await {
                        tracing::debug!(
                            "signaling stream broke after the SDP ({e}); waiting for ICE"
                        );
                        broken = true;
                    }
                }
                Output::SetRemoteOffer(sdp) => {
                    pc.set_remote(RtcSdpType::Offer, &sdp).await?;
                    let answer = pc.create_answer().await?;
                    sig.local_answer(answer.clone());
                    pending_local = Some((RtcSdpType::Answer, answer));
                }
                Output::SetRemoteAnswer(sdp) => pc.set_remote(RtcSdpType::Answer, &sdp).await?,
                Output::AddIceCandidate(json) => {
                    if let Err(e) = pc.add_candidate(&json).await {
                        tracing::debug!("remote ICE candidate rejected: {e}");
                    }
                }
                Output::Connected => {
                    pc.end_signaling();
                    // Both sides half-close the stream on success; the
                    // connection is up either way, so this waits briefly.
                    if !broken {
                        futures::select! {
                            _ = stream.close().fuse() => {},
                            _ = Delay::new(CLOSE_WAIT).fuse() => {},
                        }
                    }
                    return Ok(());
                }
                Output::Failed(e) => {
                    pc.end_signaling();
                    // Dropping the stream unclosed resets it.
                    return Err(Error::Signaling(e));
                }
            }
        }
        if let Some((kind, sdp)) = pending_local.take() {
            pc.set_local(kind, &sdp).await?;
            continue;
        }

        let deadline = sig
            .poll_timeout()
            .map(|t| t.saturating_sub(epoch.elapsed()));
        let mut timer = Delay::new(deadline.unwrap_or(timeout)).fuse();
        let mut read = if eof {
            futures::future::pending().boxed_local()
        } else {
            stream.read(&mut buf).boxed_local()
        }
        .fuse();
        let mut event = poll_fn(|cx| pc.poll_event(cx)).fuse();
        enum Step {
            Read(std::io::Result<usize>),
            Event(PcEvent),
            Timer,
        }
        let step = futures::select! {
            r = read => Step::Read(r),
            e = event => Step::Event(e),
            _ = timer => Step::Timer,
        };
        drop(read);
        match step {
            Step::Read(Ok(0)) | Step::Read(Err(_)) => {
                eof = true;
                sig.remote_eof();
            }
            Step::Read(Ok(n)) => sig.remote_bytes(&buf[..n]),
            Step::Event(PcEvent::Candidate(c)) => sig.local_candidate(c),
            Step::Event(PcEvent::State(s)) => sig.pc_state(s),
            Step::Timer => sig.handle_timeout(epoch.elapsed()),
        }
    }
}

async fn write(stream: &mut Stream, bytes: &[u8]) -> Result<(), Error> {
    stream.write_all(bytes).await.map_err(Error::Io)?;
    stream.flush().await.map_err(Error::Io)
}
