//! Unsigned LEB128 varints, as libp2p uses for length prefixes.

/// Longest varint we accept: 9 bytes covers 63 bits, far more than any frame.
pub const MAX_LEN: usize = 9;

/// Appends `value` to `out` as an unsigned varint.
pub fn encode(mut value: u64, out: &mut Vec<u8>) {
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

/// Result of [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// A value and how many bytes it took.
    Value(u64, usize),
    /// More bytes are needed.
    Incomplete,
    /// Longer than [`MAX_LEN`] bytes, or a non-minimal encoding.
    Invalid,
}

/// Reads a varint from the front of `buf`.
pub fn decode(buf: &[u8]) -> Decoded {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate() {
        if i >= MAX_LEN {
            return Decoded::Invalid;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // Reject non-minimal forms (trailing zero groups) as the
            // unsigned-varint spec does.
            if i > 0 && byte == 0 {
                return Decoded::Invalid;
            }
            return Decoded::Value(value, i + 1);
        }
    }
    if buf.len() >= MAX_LEN {
        Decoded::Invalid
    } else {
        Decoded::Incomplete
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
        assert_eq!(decode(&[0xac, 0x02]), Decoded::Value(300, 2));
        assert_eq!(decode(&[0xac]), Decoded::Incomplete);
        assert_eq!(decode(&[0x80, 0x00]), Decoded::Invalid);
        assert_eq!(decode(&[0xff; 10]), Decoded::Invalid);
    }

    proptest! {
        #[test]
        fn round_trip(v in 0u64..(1 << 62)) {
            let mut out = Vec::new();
            encode(v, &mut out);
            prop_assert_eq!(decode(&out), Decoded::Value(v, out.len()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = decode(&bytes);
        }
    }
}
