//! Which chunks a peer has: one bit per chunk.
//!
//! # Encoding
//!
//! A varint bit count (at most [`MAX_CHUNKS`]), then `ceil(len / 8)` bytes.
//! Bit `i` is the `0x80 >> (i % 8)` bit of byte `i / 8` (most significant
//! bit first, as BitTorrent's `bitfield` message), and the unused low bits
//! of the last byte must be zero. Nothing may follow. As with manifests,
//! every bitfield has exactly one encoding.

use crate::manifest::MAX_CHUNKS;
use shoal_proto::varint;

/// A fixed-length set of chunk indices.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    len: u32,
    bytes: Vec<u8>,
    ones: u32,
}

/// Why a bitfield was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BitfieldError {
    #[error("bitfield ends early")]
    Truncated,
    #[error("malformed varint in bitfield")]
    BadVarint,
    #[error("bitfield of {len} bits is longer than the {max} chunks a manifest may have", max = MAX_CHUNKS)]
    TooLong { len: u64 },
    #[error("bitfield has bits set past its end")]
    SpareBitsSet,
    #[error("{0} bytes follow the bitfield")]
    TrailingBytes(usize),
    #[error("index {index} is outside a bitfield of {len} bits")]
    OutOfRange { index: u32, len: u32 },
}

impl Bitfield {
    /// `len` bits, all clear.
    pub fn new(len: u32) -> Self {
        Self {
            len,
            bytes: vec![0; (len as usize).div_ceil(8)],
            ones: 0,
        }
    }

    /// `len` bits, all set: what a peer that has the whole file sends.
    pub fn full(len: u32) -> Self {
        let mut field = Self {
            len,
            bytes: vec![0xff; (len as usize).div_ceil(8)],
            ones: len,
        };
        field.clear_spare_bits();
        field
    }

    /// Number of bits.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether there are no bits at all (not whether none is set).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether bit `index` is set; `false` past the end.
    pub fn get(&self, index: u32) -> bool {
        index < self.len && self.bytes[(index / 8) as usize] & mask(index) != 0
    }

    /// Sets bit `index`; `Ok(true)` if it was clear.
    pub fn set(&mut self, index: u32) -> Result<bool, BitfieldError> {
        self.check(index)?;
        let byte = &mut self.bytes[(index / 8) as usize];
        let was_clear = *byte & mask(index) == 0;
        *byte |= mask(index);
        self.ones += u32::from(was_clear);
        Ok(was_clear)
    }

    /// Clears bit `index`; `Ok(true)` if it was set.
    pub fn clear(&mut self, index: u32) -> Result<bool, BitfieldError> {
        self.check(index)?;
        let byte = &mut self.bytes[(index / 8) as usize];
        let was_set = *byte & mask(index) != 0;
        *byte &= !mask(index);
        self.ones -= u32::from(was_set);
        Ok(was_set)
    }

    /// Number of set bits.
    pub fn count_ones(&self) -> u32 {
        self.ones
    }

    /// Whether every bit is set.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// Indices of the set bits, ascending.
    pub fn iter_ones(&self) -> impl Iterator<Item = u32> + '_ {
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0)
            .flat_map(|(i, &b)| {
                (0..8u32)
                    .filter(move |bit| b & (0x80 >> bit) != 0)
                    .map(move |bit| i as u32 * 8 + bit)
            })
    }

    /// Indices set here but not in `old`, ascending; none if the lengths
    /// differ. `O(len / 8)` plus the indices found: cheap for a bitfield a
    /// peer sends again with little new in it.
    pub fn iter_new_ones<'a>(&'a self, old: &'a Bitfield) -> impl Iterator<Item = u32> + 'a {
        let same = self.len == old.len;
        self.bytes
            .iter()
            .zip(&old.bytes)
            .enumerate()
            .filter(move |(_, (&new, &was))| same && new & !was != 0)
            .flat_map(|(i, (&new, &was))| {
                let fresh = new & !was;
                (0..8u32)
                    .filter(move |bit| fresh & (0x80 >> bit) != 0)
                    .map(move |bit| i as u32 * 8 + bit)
            })
    }

    /// The wire form (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(varint::MAX_LEN + self.bytes.len());
        varint::encode(u64::from(self.len), &mut out);
        out.extend_from_slice(&self.bytes);
        out
    }

    /// Parses the wire form, strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, BitfieldError> {
        let (field, rest) = Self::decode_prefix(bytes)?;
        if !rest.is_empty() {
            return Err(BitfieldError::TrailingBytes(rest.len()));
        }
        Ok(field)
    }

    /// Parses a wire form that other bytes follow (a record of several
    /// fields), strictly; returns it and what follows it.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Self, &[u8]), BitfieldError> {
        let (len, n) = varint::decode(bytes).map_err(|e| match e {
            varint::Error::Insufficient => BitfieldError::Truncated,
            _ => BitfieldError::BadVarint,
        })?;
        if len > u64::from(MAX_CHUNKS) {
            return Err(BitfieldError::TooLong { len });
        }
        let len = len as u32;
        let body = &bytes[n..];
        let want = (len as usize).div_ceil(8);
        if body.len() < want {
            return Err(BitfieldError::Truncated);
        }
        let (body, rest) = body.split_at(want);
        let mut field = Self {
            len,
            bytes: body.to_vec(),
            ones: 0,
        };
        let before = field.bytes.last().copied();
        field.clear_spare_bits();
        if field.bytes.last().copied() != before {
            return Err(BitfieldError::SpareBitsSet);
        }
        field.ones = field.bytes.iter().map(|b| b.count_ones()).sum();
        Ok((field, rest))
    }

    fn check(&self, index: u32) -> Result<(), BitfieldError> {
        if index < self.len {
            Ok(())
        } else {
            Err(BitfieldError::OutOfRange {
                index,
                len: self.len,
            })
        }
    }

    fn clear_spare_bits(&mut self) {
        let used = self.len % 8;
        if let (Some(last), true) = (self.bytes.last_mut(), used != 0) {
            *last &= 0xff << (8 - used);
        }
    }
}

fn mask(index: u32) -> u8 {
    0x80 >> (index % 8)
}

impl std::fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitfield({}/{} ", self.ones, self.len)?;
        if self.len <= 128 {
            for i in 0..self.len {
                f.write_str(if self.get(i) { "1" } else { "0" })?;
            }
        } else {
            f.write_str("…")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ones_are_the_difference() {
        let mut old = Bitfield::new(20);
        let mut new = Bitfield::new(20);
        for i in [1, 5, 19] {
            old.set(i).expect("in range");
            new.set(i).expect("in range");
        }
        for i in [0, 9, 18] {
            new.set(i).expect("in range");
        }
        assert_eq!(new.iter_new_ones(&old).collect::<Vec<_>>(), [0, 9, 18]);
        assert_eq!(old.iter_new_ones(&new).count(), 0);
        assert_eq!(new.iter_new_ones(&Bitfield::new(21)).count(), 0);
    }
    use proptest::prelude::*;

    #[test]
    fn byte_exact_vector() {
        let mut field = Bitfield::new(10);
        field.set(0).expect("in range");
        field.set(9).expect("in range");
        assert_eq!(field.encode(), [10, 0b1000_0000, 0b0100_0000]);
        assert_eq!(Bitfield::full(10).encode(), [10, 0xff, 0b1100_0000]);
        assert_eq!(Bitfield::new(0).encode(), [0]);
        assert_eq!(
            Bitfield::decode(&[10, 0xff, 0b1110_0000]),
            Err(BitfieldError::SpareBitsSet)
        );
        assert_eq!(Bitfield::decode(&[10, 0xff]), Err(BitfieldError::Truncated));
        assert_eq!(
            Bitfield::decode(&[10, 0xff, 0, 0]),
            Err(BitfieldError::TrailingBytes(1))
        );
        assert_eq!(Bitfield::decode(&[]), Err(BitfieldError::Truncated));
        assert_eq!(
            Bitfield::decode(&[0xff, 0xff, 0xff, 0x7f]),
            Err(BitfieldError::TooLong { len: (1 << 28) - 1 })
        );
    }

    #[test]
    fn set_clear_count() {
        let mut field = Bitfield::new(9);
        assert_eq!(field.set(8), Ok(true));
        assert_eq!(field.set(8), Ok(false));
        assert_eq!(
            field.set(9),
            Err(BitfieldError::OutOfRange { index: 9, len: 9 })
        );
        assert!(!field.get(9));
        assert_eq!(field.count_ones(), 1);
        assert_eq!(field.iter_ones().collect::<Vec<_>>(), [8]);
        assert_eq!(field.clear(8), Ok(true));
        assert_eq!(field.clear(8), Ok(false));
        assert_eq!(field.count_ones(), 0);
        assert!(Bitfield::full(9).is_full());
        assert!(Bitfield::new(0).is_full());
    }

    proptest! {
        #[test]
        fn round_trip(len in 0u32..300, picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..50)) {
            let mut field = Bitfield::new(len);
            if len > 0 {
                for p in &picks {
                    field.set(p.index(len as usize) as u32).expect("in range");
                }
            }
            let decoded = Bitfield::decode(&field.encode()).expect("own encoding decodes");
            prop_assert_eq!(decoded.count_ones() as usize, decoded.iter_ones().count());
            prop_assert_eq!(&decoded, &field);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(field) = Bitfield::decode(&bytes) {
                prop_assert_eq!(field.encode(), bytes);
                prop_assert_eq!(field.count_ones() as usize, field.iter_ones().count());
                prop_assert!(field.iter_ones().all(|i| i < field.len()));
            }
        }
    }
}
