//! Bitfields (the `Bitfield` message's body) and the `.have` record that
//! wraps one on disk: both encodings are canonical.

use shoal_share::manifest::MAX_CHUNKS;
use shoal_share::resume::{HaveRecord, RecordError};
use shoal_share::Bitfield;

pub fn check(data: &[u8]) {
    if let Ok(field) = Bitfield::decode(data) {
        check_field(&field, data);
        let record = HaveRecord::encode(&field, None);
        let all = HaveRecord {
            have: field.clone(),
            picked: None,
        };
        assert_eq!(HaveRecord::decode(&record, field.len(), 1), Ok(all));
        if field.len() < MAX_CHUNKS {
            assert!(matches!(
                HaveRecord::decode(&record, field.len() + 1, 1),
                Err(RecordError::WrongLength { .. })
            ));
        }
        // The field as the files picked, of a share of one chunk.
        if !field.is_full() {
            let picked = HaveRecord::encode(&Bitfield::new(1), Some(&field));
            assert_eq!(
                HaveRecord::decode(&picked, 1, field.len()).map(|r| r.picked),
                Ok(Some(field.clone()))
            );
        }
    }
    // The input as a record: whatever lengths it claims, they must match.
    let have = data
        .get(5..)
        .and_then(|rest| Bitfield::decode_prefix(rest).ok());
    let claimed = have.as_ref().map_or(0, |(field, _)| field.len());
    let files = have
        .and_then(|(_, rest)| Bitfield::decode(rest).ok())
        .map_or(1, |field| field.len());
    if let Ok(record) = HaveRecord::decode(data, claimed, files) {
        assert_eq!(record.have.len(), claimed);
        assert_eq!(
            HaveRecord::encode(&record.have, record.picked.as_ref()),
            data,
            "record not canonical"
        );
        if let Some(picked) = &record.picked {
            assert_eq!(picked.len(), files);
            assert!(!picked.is_full());
        } else {
            check_field(&record.have, &data[5..]);
        }
    }
}

fn check_field(field: &Bitfield, encoded: &[u8]) {
    assert_eq!(field.encode(), encoded, "not canonical");
    assert!(field.len() <= MAX_CHUNKS);
    let ones: Vec<u32> = field.iter_ones().collect();
    assert_eq!(ones.len(), field.count_ones() as usize);
    assert!(ones.windows(2).all(|w| w[0] < w[1]));
    assert!(ones.iter().all(|&i| i < field.len() && field.get(i)));
    assert!(!field.get(field.len()));
    assert_eq!(field.is_full(), field.count_ones() == field.len());
    let empty = Bitfield::new(field.len());
    assert!(field.iter_new_ones(&empty).eq(ones.iter().copied()));
    assert_eq!(field.iter_new_ones(field).count(), 0);
    // Clearing every set bit leaves the empty field.
    let mut cleared = field.clone();
    for &i in &ones {
        assert_eq!(cleared.clear(i), Ok(true));
    }
    assert_eq!(cleared, empty);
}
