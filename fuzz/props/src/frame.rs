//! Data-channel frames: [`FrameReader`] over any chunking, [`Frame`]
//! re-encoding, and [`StreamState`] (read buffer cap, FIN, RESET) against a
//! model of what it should do with the frames the reader yields.

use crate::{assert_reader_memory, pieces, read_prefix, split_seed};
use shoal_proto::frame::{
    Flag, Frame, FrameError, FrameReader, ReadOutcome, StreamError, StreamState, MAX_FRAME_LEN,
};
use shoal_proto::prefixed::{self, PrefixError};

/// What a driver gets from a stream: the frames up to the first error.
fn read_all(pieces: &[&[u8]]) -> (Vec<Frame>, Option<FrameError>) {
    prefixed::read_all(FrameReader::new(), pieces)
}

pub fn check(data: &[u8]) {
    let (seed, rest) = split_seed(data);
    let (cap, stream) = split_seed(rest);
    let cut = pieces(seed, stream);

    assert_reader_memory("FrameReader", FrameReader::new(), &cut, MAX_FRAME_LEN);

    let (frames, error) = read_all(&cut);
    assert_eq!(read_all(&[stream]), (frames.clone(), error.clone()));
    assert_eq!(
        read_all(&pieces(1, stream)),
        (frames.clone(), error.clone())
    );
    if let Some(FrameError::Prefix(PrefixError::TooLong { len, max })) = &error {
        assert_eq!(*max, MAX_FRAME_LEN);
        assert!(
            *len >= (MAX_FRAME_LEN - 2) as u64,
            "{len} refused under the limit"
        );
    }

    for frame in &frames {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes);
        assert_eq!(bytes.len(), frame.encoded_len());
        // Re-encoding drops unknown fields and padding, so it never grows.
        assert!(bytes.len() <= MAX_FRAME_LEN, "{} bytes", bytes.len());
        let (body_len, prefix_len) = read_prefix(&bytes).expect("encode wrote a prefix");
        assert_eq!(bytes.len() as u64, prefix_len as u64 + body_len);
        assert_eq!(Frame::decode(&bytes[prefix_len..]).as_ref(), Ok(frame));
        assert_eq!(read_all(&[&bytes]), (vec![frame.clone()], None));
    }

    check_stream(usize::from(cap) * 16, &cut, &frames, error);
}

/// Feeds the stream to a [`StreamState`] that nobody reads from, then reads
/// everything, and compares with what the frames say should happen.
fn check_stream(
    max_read_buffer: usize,
    cut: &[&[u8]],
    frames: &[Frame],
    error: Option<FrameError>,
) {
    let mut state = StreamState::new(max_read_buffer);
    for piece in cut {
        state.on_message(piece);
    }

    // The model.
    let mut expected = Vec::new();
    let mut remote_fin = false;
    let mut reset = None;
    for frame in frames {
        if let Some(payload) = frame.message.as_ref().filter(|p| !p.is_empty()) {
            if remote_fin {
                reset = Some(StreamError::DataAfterFin);
                break;
            }
            if expected.len() + payload.len() > max_read_buffer {
                reset = Some(StreamError::ReadBufferFull {
                    max: max_read_buffer,
                });
                break;
            }
            expected.extend_from_slice(payload);
        }
        match frame.flag {
            Some(Flag::Fin) => remote_fin = true,
            Some(Flag::Reset) => {
                reset = Some(StreamError::RemoteReset);
                break;
            }
            _ => {}
        }
    }
    if reset.is_none() {
        reset = error.map(StreamError::Frame);
    }

    assert_eq!(state.reset_reason(), reset.as_ref());
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        match state.read(&mut buf) {
            ReadOutcome::Data(n) => {
                assert!(n > 0);
                read.extend_from_slice(&buf[..n]);
            }
            other => break other,
        }
    };
    assert!(read.len() <= max_read_buffer, "read buffer over its cap");
    match reset {
        Some(_) => assert_eq!(end, ReadOutcome::Reset),
        None => {
            assert_eq!(read, expected);
            let want = if remote_fin {
                ReadOutcome::Eof
            } else {
                ReadOutcome::Pending
            };
            assert_eq!(end, want);
        }
    }
    // Whatever it queued is a valid frame.
    while let Some(bytes) = state.poll_transmit() {
        let (frames, error) = read_all(&[&bytes]);
        assert_eq!((frames.len(), error), (1, None));
    }
}
