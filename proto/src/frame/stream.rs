//! [`StreamState`]: one libp2p stream over one data channel, sans-IO.
//!
//! The driver passes every channel message to [`StreamState::on_message`],
//! serves `AsyncRead`/`AsyncWrite` with [`read`](StreamState::read) and
//! [`write`](StreamState::write), sends whatever
//! [`poll_transmit`](StreamState::poll_transmit) yields (whole encoded frames:
//! the driver may pack several into one channel message, never split one),
//! and closes the channel once
//! [`can_close_channel`](StreamState::can_close_channel) says so — only then,
//! because Chrome may drop queued data when a channel closes.
//!
//! Each direction closes on its own:
//! - our write side: we send FIN (the remote answers FIN_ACK), or the remote
//!   sends STOP_SENDING;
//! - our read side: the remote sends FIN (we answer FIN_ACK at once), or we
//!   send STOP_SENDING (data still in flight is then dropped on arrival);
//! - RESET_STREAM, sent or received, ends both and discards buffered data.
//!
//! Protocol errors (malformed frames, data after the remote's FIN, more unread
//! data than `max_read_buffer`) reset the stream and send RESET_STREAM.
//! Repeated flags are ignored.

use std::collections::VecDeque;

use super::{Flag, Frame, FrameError, FrameReader, MAX_PAYLOAD};

/// Result of [`StreamState::read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were copied into the buffer.
    Data(usize),
    /// Nothing buffered yet; wait for the next channel message.
    Pending,
    /// The remote finished writing (or we stopped reading) and everything
    /// buffered has been read.
    Eof,
    /// The stream was reset, by the remote or because of a local error; see
    /// [`StreamState::reset_reason`].
    Reset,
}

/// Why [`StreamState::write`] refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// We sent FIN, or the remote sent STOP_SENDING.
    #[error("the stream's write side is closed")]
    Closed,
    /// The stream was reset.
    #[error("the stream was reset")]
    Reset,
}

/// Why a stream was reset.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The remote sent RESET_STREAM.
    #[error("the remote reset the stream")]
    RemoteReset,
    /// [`StreamState::reset`] was called.
    #[error("the stream was reset locally")]
    LocalReset,
    /// The remote sent bytes that are not frames.
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    /// Unread data would exceed the read buffer (reads have no backpressure in
    /// this protocol, so the only defence is a cap).
    #[error("unread data exceeds the {max}-byte read buffer")]
    ReadBufferFull { max: usize },
    /// The remote sent data after its FIN.
    #[error("data received after the remote's FIN")]
    DataAfterFin,
}

/// The state of one stream (one data channel).
#[derive(Debug)]
pub struct StreamState {
    reader: FrameReader,
    max_read_buffer: usize,
    read_buf: VecDeque<u8>,
    transmit: VecDeque<Vec<u8>>,
    /// The remote sent FIN: no more data will come.
    remote_fin: bool,
    /// We queued STOP_SENDING.
    stop_sending_sent: bool,
    /// We queued FIN.
    fin_sent: bool,
    /// The remote answered our FIN.
    fin_acked: bool,
    /// The remote sent STOP_SENDING: our writes are unwanted.
    remote_stop_sending: bool,
    /// Set once, when the stream is reset for any reason.
    reset: Option<StreamError>,
}

impl StreamState {
    /// `max_read_buffer`: the most unread payload bytes held before the
    /// stream is reset (the driver uses 4 MiB).
    pub fn new(max_read_buffer: usize) -> Self {
        Self {
            reader: FrameReader::new(),
            max_read_buffer,
            read_buf: VecDeque::new(),
            transmit: VecDeque::new(),
            remote_fin: false,
            stop_sending_sent: false,
            fin_sent: false,
            fin_acked: false,
            remote_stop_sending: false,
            reset: None,
        }
    }

    /// One data-channel message from the remote, which may hold part of a
    /// frame, one frame, or several.
    pub fn on_message(&mut self, bytes: &[u8]) {
        if self.reset.is_some() {
            return;
        }
        self.reader.push(bytes);
        while self.reset.is_none() {
            match self.reader.next_frame() {
                Ok(Some(frame)) => self.on_frame(frame),
                Ok(None) => break,
                Err(error) => self.fail(StreamError::Frame(error)),
            }
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        if let Some(payload) = frame.message.filter(|p| !p.is_empty()) {
            if self.remote_fin {
                return self.fail(StreamError::DataAfterFin);
            }
            if !self.stop_sending_sent {
                if self.read_buf.len().saturating_add(payload.len()) > self.max_read_buffer {
                    return self.fail(StreamError::ReadBufferFull {
                        max: self.max_read_buffer,
                    });
                }
                self.read_buf.extend(payload);
            }
        }
        match frame.flag {
            Some(Flag::Fin) if !self.remote_fin => {
                self.remote_fin = true;
                self.queue(Frame::flag(Flag::FinAck));
            }
            Some(Flag::StopSending) => self.remote_stop_sending = true,
            // A FIN_ACK for a FIN we never sent means nothing.
            Some(Flag::FinAck) if self.fin_sent => self.fin_acked = true,
            Some(Flag::Reset) => self.end(StreamError::RemoteReset, false),
            // No flag, or a repeated FIN / stray FIN_ACK.
            None | Some(Flag::Fin | Flag::FinAck) => {}
        }
    }

    /// Copies buffered payload into `out`.
    pub fn read(&mut self, out: &mut [u8]) -> ReadOutcome {
        if self.reset.is_some() {
            return ReadOutcome::Reset;
        }
        if !self.read_buf.is_empty() {
            let n = out.len().min(self.read_buf.len());
            let (front, back) = self.read_buf.as_slices();
            let from_front = n.min(front.len());
            out[..from_front].copy_from_slice(&front[..from_front]);
            out[from_front..n].copy_from_slice(&back[..n - from_front]);
            self.read_buf.drain(..n);
            return ReadOutcome::Data(n);
        }
        if self.remote_fin || self.stop_sending_sent {
            ReadOutcome::Eof
        } else {
            ReadOutcome::Pending
        }
    }

    /// Frames up to [`MAX_PAYLOAD`] bytes of `data` (one frame per call) and
    /// returns how many were taken. The driver should check the channel's
    /// `bufferedAmount` before calling and send [`poll_transmit`](Self::poll_transmit)'s
    /// frames after.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        if self.reset.is_some() {
            return Err(WriteError::Reset);
        }
        if self.fin_sent || self.remote_stop_sending {
            return Err(WriteError::Closed);
        }
        let n = data.len().min(MAX_PAYLOAD);
        if n > 0 {
            self.queue(Frame::data(data[..n].to_vec()));
        }
        Ok(n)
    }

    /// Half-closes our write side: queues FIN once. Wait for
    /// [`fin_acked`](Self::fin_acked) (js waits up to 10 s) before closing
    /// the channel.
    pub fn close_write(&mut self) {
        if self.reset.is_none() && !self.fin_sent {
            self.fin_sent = true;
            self.queue(Frame::flag(Flag::Fin));
        }
    }

    /// Half-closes our read side: queues STOP_SENDING once. Data already
    /// buffered can still be read; data arriving later is dropped.
    pub fn close_read(&mut self) {
        if self.reset.is_none() && !self.stop_sending_sent {
            self.stop_sending_sent = true;
            self.queue(Frame::flag(Flag::StopSending));
        }
    }

    /// Aborts the stream: queues RESET_STREAM (dropping frames not yet sent)
    /// and discards buffered data. Does nothing if it is already reset.
    pub fn reset(&mut self) {
        self.end(StreamError::LocalReset, true);
    }

    /// The next whole frame to send, as one data-channel message.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Our FIN was answered by FIN_ACK, or the stream was reset.
    pub fn fin_acked(&self) -> bool {
        self.fin_acked || self.reset.is_some()
    }

    /// No more data will arrive (remote FIN, our STOP_SENDING, or reset);
    /// buffered data may still be readable.
    pub fn read_closed(&self) -> bool {
        self.remote_fin || self.stop_sending_sent || self.reset.is_some()
    }

    /// [`write`](Self::write) will fail from now on.
    pub fn write_closed(&self) -> bool {
        self.fin_sent || self.remote_stop_sending || self.reset.is_some()
    }

    /// Whether the stream was reset (by either side or an error).
    pub fn is_reset(&self) -> bool {
        self.reset.is_some()
    }

    /// Why the stream was reset, if it was.
    pub fn reset_reason(&self) -> Option<&StreamError> {
        self.reset.as_ref()
    }

    /// Both directions are finished and every queued frame has been handed to
    /// the driver, so the data channel can be closed without losing anything:
    /// - writes: our FIN was acknowledged, or the remote sent STOP_SENDING;
    /// - reads: the remote sent FIN, or we sent STOP_SENDING;
    /// - or the stream was reset.
    pub fn can_close_channel(&self) -> bool {
        let write_done = self.fin_acked || self.remote_stop_sending;
        let read_done = self.remote_fin || self.stop_sending_sent;
        self.transmit.is_empty() && (self.reset.is_some() || (write_done && read_done))
    }

    fn queue(&mut self, frame: Frame) {
        self.transmit.push_back(frame.into_bytes());
    }

    /// A local protocol error: reset and tell the remote.
    fn fail(&mut self, error: StreamError) {
        self.end(error, true);
    }

    fn end(&mut self, cause: StreamError, send_reset: bool) {
        if self.reset.is_some() {
            return;
        }
        self.read_buf = VecDeque::new();
        self.reader = FrameReader::new();
        self.transmit.clear();
        if send_reset {
            self.queue(Frame::flag(Flag::Reset));
        }
        self.reset = Some(cause);
    }
}

#[cfg(test)]
mod tests {
    use super::super::MAX_FRAME_LEN;
    use super::*;
    use proptest::prelude::*;

    const FIN: [u8; 3] = [0x02, 0x08, 0x00];
    const STOP_SENDING: [u8; 3] = [0x02, 0x08, 0x01];
    const RESET: [u8; 3] = [0x02, 0x08, 0x02];
    const FIN_ACK: [u8; 3] = [0x02, 0x08, 0x03];
    const BUF: usize = 4 << 20;

    fn transmitted(s: &mut StreamState) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }

    /// Moves every queued frame from `from` to `to`.
    fn pump(from: &mut StreamState, to: &mut StreamState) {
        for message in transmitted(from) {
            to.on_message(&message);
        }
    }

    fn read_all(s: &mut StreamState) -> (Vec<u8>, ReadOutcome) {
        let mut data = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            match s.read(&mut buf) {
                ReadOutcome::Data(n) => data.extend_from_slice(&buf[..n]),
                other => return (data, other),
            }
        }
    }

    fn data_frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Frame::data(payload.to_vec()).encode(&mut out);
        out
    }

    #[test]
    fn write_transmit_read() {
        let (mut a, mut b) = (StreamState::new(BUF), StreamState::new(BUF));
        assert_eq!(a.write(b"hello "), Ok(6));
        assert_eq!(a.write(b"world"), Ok(5));
        assert_eq!(a.write(b""), Ok(0));
        pump(&mut a, &mut b);
        assert_eq!(
            read_all(&mut b),
            (b"hello world".to_vec(), ReadOutcome::Pending)
        );
    }

    #[test]
    fn large_writes_are_split_into_full_frames() {
        let (mut a, mut b) = (StreamState::new(BUF), StreamState::new(BUF));
        let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut sent = 0;
        while sent < data.len() {
            sent += a.write(&data[sent..]).expect("open");
        }
        let frames = transmitted(&mut a);
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| f.len() <= MAX_FRAME_LEN));
        for f in &frames {
            b.on_message(f);
        }
        assert_eq!(read_all(&mut b).0, data);
    }

    #[test]
    fn prefix_and_body_in_separate_messages_and_several_frames_in_one() {
        let mut s = StreamState::new(BUF);
        let one = data_frame(b"abc");
        s.on_message(&one[..1]);
        assert_eq!(s.read(&mut [0; 8]), ReadOutcome::Pending);
        s.on_message(&one[1..]);
        let mut many = data_frame(b"de");
        many.extend(data_frame(b"f"));
        many.extend(FIN);
        s.on_message(&many);
        assert_eq!(read_all(&mut s), (b"abcdef".to_vec(), ReadOutcome::Eof));
        assert_eq!(transmitted(&mut s), [FIN_ACK.to_vec()]);
    }

    #[test]
    fn fin_fin_ack_handshake_both_ways() {
        let (mut a, mut b) = (StreamState::new(BUF), StreamState::new(BUF));
        a.write(b"request").expect("open");
        a.close_write();
        a.close_write();
        assert!(a.write_closed() && !a.fin_acked());
        assert_eq!(a.write(b"late"), Err(WriteError::Closed));
        let frames = transmitted(&mut a);
        assert_eq!(frames.last(), Some(&FIN.to_vec()));
        assert_eq!(frames.len(), 2, "FIN is queued once");
        for f in &frames {
            b.on_message(f);
        }
        assert!(b.read_closed());
        assert_eq!(read_all(&mut b), (b"request".to_vec(), ReadOutcome::Eof));

        b.write(b"response").expect("open");
        b.close_write();
        pump(&mut b, &mut a);
        assert!(a.fin_acked());
        assert_eq!(read_all(&mut a), (b"response".to_vec(), ReadOutcome::Eof));
        // a's FIN_ACK for b's FIN is still queued: not yet.
        assert!(!a.can_close_channel());
        pump(&mut a, &mut b);
        assert!(a.can_close_channel() && b.can_close_channel());
        assert!(!a.is_reset() && !b.is_reset());
    }

    #[test]
    fn message_and_flag_in_one_frame() {
        let mut s = StreamState::new(BUF);
        let mut frame = Vec::new();
        Frame {
            flag: Some(Flag::Fin),
            message: Some(b"last".to_vec()),
        }
        .encode(&mut frame);
        s.on_message(&frame);
        assert_eq!(read_all(&mut s), (b"last".to_vec(), ReadOutcome::Eof));
    }

    #[test]
    fn duplicate_flags_are_idempotent() {
        let mut s = StreamState::new(BUF);
        s.on_message(&FIN);
        s.on_message(&FIN);
        s.on_message(&STOP_SENDING);
        s.on_message(&STOP_SENDING);
        s.on_message(&FIN_ACK); // for a FIN we never sent
        assert_eq!(transmitted(&mut s), [FIN_ACK.to_vec()]);
        assert!(!s.fin_acked() && !s.is_reset());
    }

    #[test]
    fn stop_sending() {
        let (mut a, mut b) = (StreamState::new(BUF), StreamState::new(BUF));
        b.write(b"before").expect("open");
        pump(&mut b, &mut a);
        b.write(b"in flight").expect("open");
        a.close_read();
        a.close_read();
        assert!(a.read_closed());
        pump(&mut a, &mut b);
        assert_eq!(b.write(b"after"), Err(WriteError::Closed));
        assert!(b.write_closed());
        pump(&mut b, &mut a);
        // What arrived before close_read is still readable; the rest is dropped.
        assert_eq!(read_all(&mut a), (b"before".to_vec(), ReadOutcome::Eof));
        // b's reads are unaffected.
        a.write(b"still").expect("a can write");
        a.close_write();
        pump(&mut a, &mut b);
        assert_eq!(read_all(&mut b), (b"still".to_vec(), ReadOutcome::Eof));
        pump(&mut b, &mut a);
        assert!(a.fin_acked());
        assert!(a.can_close_channel(), "a: FIN acked, read stopped");
        assert!(b.can_close_channel(), "b: told to stop sending, FIN seen");
    }

    #[test]
    fn reset_both_ways() {
        let (mut a, mut b) = (StreamState::new(BUF), StreamState::new(BUF));
        a.write(b"queued but never sent").expect("open");
        b.write(b"unread").expect("open");
        pump(&mut b, &mut a);
        a.reset();
        a.reset();
        assert_eq!(transmitted(&mut a), [RESET.to_vec()]);
        assert_eq!(a.read(&mut [0; 8]), ReadOutcome::Reset);
        assert_eq!(a.write(b"x"), Err(WriteError::Reset));
        assert_eq!(a.reset_reason(), Some(&StreamError::LocalReset));
        assert!(a.fin_acked() && a.read_closed() && a.write_closed() && a.can_close_channel());

        b.on_message(&RESET);
        assert_eq!(b.read(&mut [0; 8]), ReadOutcome::Reset);
        assert_eq!(b.write(b"x"), Err(WriteError::Reset));
        assert_eq!(b.reset_reason(), Some(&StreamError::RemoteReset));
        assert_eq!(
            transmitted(&mut b),
            Vec::<Vec<u8>>::new(),
            "no RESET echoed"
        );
        b.on_message(&data_frame(b"ignored"));
        assert_eq!(b.read(&mut [0; 8]), ReadOutcome::Reset);
    }

    #[test]
    fn read_buffer_overflow_resets() {
        let mut s = StreamState::new(10);
        s.on_message(&data_frame(b"0123456789"));
        assert!(!s.is_reset());
        s.on_message(&data_frame(b"x"));
        assert_eq!(s.read(&mut [0; 32]), ReadOutcome::Reset);
        assert_eq!(
            s.reset_reason(),
            Some(&StreamError::ReadBufferFull { max: 10 })
        );
        assert_eq!(transmitted(&mut s), [RESET.to_vec()]);
    }

    #[test]
    fn draining_makes_room() {
        let mut s = StreamState::new(4);
        s.on_message(&data_frame(b"abcd"));
        assert_eq!(s.read(&mut [0; 3]), ReadOutcome::Data(3));
        s.on_message(&data_frame(b"efg"));
        assert_eq!(read_all(&mut s), (b"defg".to_vec(), ReadOutcome::Pending));
    }

    #[test]
    fn data_after_fin_resets() {
        let mut s = StreamState::new(BUF);
        s.on_message(&FIN);
        s.on_message(&data_frame(b"late"));
        assert_eq!(s.reset_reason(), Some(&StreamError::DataAfterFin));
        assert_eq!(
            transmitted(&mut s),
            [RESET.to_vec()],
            "the pending FIN_ACK is dropped"
        );
    }

    #[test]
    fn malformed_frames_reset() {
        let mut s = StreamState::new(BUF);
        s.on_message(&[0x02, 0x08, 0x09]);
        assert_eq!(
            s.reset_reason(),
            Some(&StreamError::Frame(FrameError::UnknownFlag(9)))
        );
        assert_eq!(transmitted(&mut s), [RESET.to_vec()]);

        let mut s = StreamState::new(BUF);
        s.on_message(&[0xff, 0xff, 0x01]);
        assert!(matches!(
            s.reset_reason(),
            Some(StreamError::Frame(FrameError::Prefix(
                crate::prefixed::PrefixError::TooLong { .. }
            )))
        ));
    }

    #[test]
    fn channel_stays_open_until_both_sides_finish() {
        let (mut a, mut b) = (StreamState::new(BUF), StreamState::new(BUF));
        a.close_write();
        pump(&mut a, &mut b);
        pump(&mut b, &mut a);
        assert!(a.fin_acked());
        assert!(!a.can_close_channel(), "b may still write");
        assert!(!b.can_close_channel(), "b has not finished writing");
        b.close_write();
        pump(&mut b, &mut a);
        pump(&mut a, &mut b);
        assert!(a.can_close_channel() && b.can_close_channel());
    }

    proptest! {
        #[test]
        fn bytes_arrive_intact_in_any_chunking(
            writes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20_000), 0..5),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
        ) {
            let (mut a, mut b) = (StreamState::new(BUF), StreamState::new(BUF));
            for w in &writes {
                let mut sent = 0;
                while sent < w.len() {
                    sent += a.write(&w[sent..]).expect("open");
                }
            }
            a.close_write();
            let wire: Vec<u8> = transmitted(&mut a).concat();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (wire.len() + 1)).collect();
            cuts.push(wire.len());
            cuts.sort_unstable();
            let mut from = 0;
            for cut in cuts {
                b.on_message(&wire[from..cut]);
                from = cut;
            }
            prop_assert_eq!(read_all(&mut b), (writes.concat(), ReadOutcome::Eof));
            pump(&mut b, &mut a);
            prop_assert!(a.fin_acked());
        }

        #[test]
        fn arbitrary_messages_never_panic(messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut s = StreamState::new(64);
            for m in &messages {
                s.on_message(m);
                let _ = s.read(&mut [0; 16]);
                let _ = s.write(b"x");
                let _ = s.poll_transmit();
            }
            let _ = s.can_close_channel();
        }
    }
}
