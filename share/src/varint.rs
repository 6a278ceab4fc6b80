//! Unsigned LEB128 varints, strict: minimal form only, at most 10 bytes.
//!
//! Strictness matters here because a manifest is content-addressed: if two
//! byte strings could decode to the same manifest, one file would have two
//! share ids. Rejecting non-minimal forms keeps `encode(decode(b)) == b`.

/// Longest encoding of a `u64`.
pub(crate) const MAX_LEN: usize = 10;

/// Appends `value` to `out`.
pub(crate) fn encode(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Why [`decode`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Error {
    /// The input ended inside the varint.
    Truncated,
    /// Non-minimal, or does not fit in a `u64`.
    Invalid,
}

/// Reads a varint from the front of `buf`: the value and its length in bytes.
pub(crate) fn decode(buf: &[u8]) -> Result<(u64, usize), Error> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(MAX_LEN) {
        let group = u64::from(byte & 0x7f);
        // The tenth byte holds only bit 63.
        if i == MAX_LEN - 1 && group > 1 {
            return Err(Error::Invalid);
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(Error::Invalid);
            }
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= MAX_LEN {
        Err(Error::Invalid)
    } else {
        Err(Error::Truncated)
    }
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
        assert_eq!(decode(&[0xac]), Err(Error::Truncated));
        assert_eq!(decode(&[]), Err(Error::Truncated));
        assert_eq!(decode(&[0x80, 0x00]), Err(Error::Invalid));
        assert_eq!(decode(&[0xff; 11]), Err(Error::Invalid));
        let mut max = Vec::new();
        encode(u64::MAX, &mut max);
        assert_eq!(max.len(), MAX_LEN);
        assert_eq!(decode(&max), Ok((u64::MAX, MAX_LEN)));
        // Bit 64 and above do not fit.
        let mut over = max.clone();
        over[9] = 0x02;
        assert_eq!(decode(&over), Err(Error::Invalid));
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
    }
}
