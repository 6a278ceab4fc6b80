//! Manifests: the encoding is canonical, so whatever decodes re-encodes to
//! the same bytes, and its share id is the hash of the input.

use shoal_share::manifest::{MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_ENCODED_LEN, MIN_CHUNK_SIZE};
use shoal_share::{Manifest, ManifestError, ShareId};

pub fn check(data: &[u8]) {
    let id = ShareId::of_encoded(data);
    let decoded = Manifest::decode(data);
    assert_eq!(Manifest::decode_verified(data, &id), decoded);
    if decoded.is_ok() {
        let other = ShareId::from_bytes([!id.as_bytes()[0]; 32]);
        assert_eq!(
            Manifest::decode_verified(data, &other),
            Err(ManifestError::ShareIdMismatch)
        );
    }
    let Ok(m) = decoded else { return };

    assert_eq!(m.encode(), data, "not canonical");
    assert_eq!(m.share_id(), id);
    assert!(data.len() <= MAX_ENCODED_LEN);
    assert!(!m.name().is_empty());
    assert!((MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&m.chunk_size()));
    assert!(m.chunk_size().is_power_of_two());
    assert!(m.chunk_count() <= MAX_CHUNKS);
    assert_eq!(m.chunk_count() as usize, m.chunks().len());
    assert_eq!(
        u64::from(m.chunk_count()),
        m.size().div_ceil(u64::from(m.chunk_size()))
    );
    // Chunks tile the file exactly.
    let mut end = 0;
    for index in 0..m.chunk_count() {
        let range = m.chunk_range(index).expect("in range");
        assert_eq!(range.start, end);
        assert!(range.end > range.start);
        assert_eq!(
            m.chunk_len(index).map(u64::from),
            Some(range.end - range.start)
        );
        end = range.end;
    }
    assert_eq!(end, m.size());
    assert_eq!(m.chunk_range(m.chunk_count()), None);

    // The checked constructor agrees with the decoder.
    let rebuilt = Manifest::new(
        m.name().to_owned(),
        m.media_type().to_owned(),
        m.size(),
        m.chunk_size(),
        m.chunks().to_vec(),
    );
    assert_eq!(rebuilt.as_ref(), Ok(&m));
}
