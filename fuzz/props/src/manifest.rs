//! Manifests (version 1, and version 2 with files and paths): the encoding
//! is canonical, so whatever decodes re-encodes to the same bytes, and its
//! share id is the hash of the input; every path that decodes obeys the
//! path rules, and the files tile the byte stream.

use shoal_share::manifest::{
    validate_path, MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_COMPONENT_LEN, MAX_ENCODED_LEN, MAX_FILES,
    MAX_PATH_LEN, MIN_CHUNK_SIZE,
};
use shoal_share::{FileEntry, Manifest, ManifestError, ShareId};

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

    // The files tile the stream, in strictly increasing path order, and
    // every path is safe to write under a chosen directory.
    let files = m.files();
    assert!(!files.is_empty() && files.len() <= MAX_FILES as usize);
    let mut end = 0;
    for (i, file) in files.iter().enumerate() {
        assert_eq!(file.offset(), end);
        end += file.size();
        if i > 0 {
            assert!(files[i - 1].path().as_bytes() < file.path().as_bytes());
        }
        let chunks = m.file_chunks(i);
        assert_eq!(chunks.is_empty(), file.size() == 0);
        if m.has_paths() {
            let path = file.path();
            assert_eq!(validate_path(path.as_bytes()), Ok(()));
            assert!(path.len() <= MAX_PATH_LEN && !path.starts_with('/'));
            for component in path.split('/') {
                assert!(!component.is_empty() && component.len() <= MAX_COMPONENT_LEN);
                assert!(component != "." && component != ".." && !component.contains('\\'));
            }
            // No file is another's directory.
            for (at, _) in path.match_indices('/') {
                assert!(files.iter().all(|f| f.path() != &path[..at]));
            }
        }
    }
    assert_eq!(end, m.size());
    if m.has_paths() {
        let rebuilt = Manifest::with_files(
            m.name().to_owned(),
            files
                .iter()
                .map(|f| FileEntry::new(f.path(), f.size()))
                .collect(),
            m.chunk_size(),
            m.chunks().to_vec(),
        );
        assert_eq!(rebuilt.as_ref(), Ok(&m));
        return;
    }

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
