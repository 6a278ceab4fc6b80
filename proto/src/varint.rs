//! The one unsigned varint (LEB128, minimal form) of every shoal wire format:
//! length prefixes, block indices, manifest and bitfield integers. The
//! `unsigned-varint` crate does the work; this adds the one check it leaves
//! out, so that every `u64` has exactly one encoding and nothing else decodes.

pub use unsigned_varint::decode::Error;

/// Longest encoding of a `u64`.
pub const MAX_LEN: usize = 10;

/// Appends `value` to `out`.
pub fn encode(value: u64, out: &mut Vec<u8>) {
    let mut buf = unsigned_varint::encode::u64_buffer();
    out.extend_from_slice(unsigned_varint::encode::u64(value, &mut buf));
}

/// Reads a varint from the front of `buf`: the value and its length in bytes.
///
/// [`Error::Insufficient`] means the input ended inside the varint (more bytes
/// may complete it); [`Error::NotMinimal`] and [`Error::Overflow`] are final.
pub fn decode(buf: &[u8]) -> Result<(u64, usize), Error> {
    let (value, rest) = unsigned_varint::decode::u64(buf)?;
    let len = buf.len() - rest.len();
    // The tenth byte holds only bit 63; `unsigned-varint` drops higher bits
    // silently, which would give a second encoding of a smaller value.
    if len == MAX_LEN && buf[MAX_LEN - 1] > 1 {
        return Err(Error::Overflow);
    }
    Ok((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let mut out = Vec::new();
        encode(300, &mut out);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(decode(&[0xac, 0x02, 0xff]), Ok((300, 2)));
        assert_eq!(decode(&[0xac]), Err(Error::Insufficient));
        assert_eq!(decode(&[]), Err(Error::Insufficient));
        assert_eq!(decode(&[0x80, 0x00]), Err(Error::NotMinimal));
        assert_eq!(decode(&[0xff; 10]), Err(Error::Overflow));
        assert_eq!(decode(&[0xff; 11]), Err(Error::Overflow));
        let mut max = Vec::new();
        encode(u64::MAX, &mut max);
        assert_eq!(max.len(), MAX_LEN);
        assert_eq!(decode(&max), Ok((u64::MAX, MAX_LEN)));
        // Bit 64 and above do not fit.
        let mut over = max.clone();
        over[9] = 0x02;
        assert_eq!(decode(&over), Err(Error::Overflow));
    }

    proptest! {
        #[test]
        fn round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            encode(v, &mut out);
            prop_assert_eq!(decode(&out), Ok((v, out.len())));
        }

        #[test]
        fn decoded_values_reencode_identically(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            if let Ok((v, n)) = decode(&bytes) {
                let mut out = Vec::new();
                encode(v, &mut out);
                prop_assert_eq!(&out[..], &bytes[..n]);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = decode(&bytes);
        }
    }
}
