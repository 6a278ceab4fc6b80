//! The OPFS store and the share locks against the browser's own OPFS (a
//! dedicated worker with synchronous access handles, `js/opfs.js`) and Web
//! Locks (`make wasm-unit`; the test page is a secure context on 127.0.0.1).
//! Which files exist and what they mean is `shoal_share::resume`, tested
//! natively; this checks the bytes go to disk and come back.
//!
//! Each test uses its own share id: the page (and its OPFS) is shared.

use std::rc::Rc;

use shoal_share::{resume, Bitfield, ShareId};
use wasm_bindgen_test::wasm_bindgen_test;

use super::store::{self, LockMode, ShareLock, Store};

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn exclusive(id: &ShareId) -> Rc<ShareLock> {
    Rc::new(
        ShareLock::take(id, LockMode::Exclusive, false)
            .await
            .unwrap()
            .expect("the lock is free"),
    )
}

#[wasm_bindgen_test]
async fn a_download_is_written_read_checkpointed_and_completed_on_disk() {
    let id = ShareId::from_bytes([1; 32]);
    let lock = exclusive(&id).await;
    // Held exclusive by us: nobody else gets it, shared or not.
    assert!(ShareLock::take(&id, LockMode::Exclusive, false)
        .await
        .unwrap()
        .is_none());
    assert!(ShareLock::take(&id, LockMode::Shared, false)
        .await
        .unwrap()
        .is_none());

    let store = Store::open_data(&id, 3000, lock.clone()).await.unwrap();
    // Written out of order, as chunks arrive.
    let (a, b, c) = (bytes(1000, 1), bytes(1000, 2), bytes(1000, 3));
    store.write(2000, &c).await.unwrap();
    store.write(0, &a).await.unwrap();
    store.write(1000, &b).await.unwrap();
    assert_eq!(store.read(1000, 1000).await.unwrap(), b);
    let whole = [a.clone(), b.clone(), c.clone()].concat();
    assert_eq!(store.read(0, 3000).await.unwrap(), whole);
    // The file is exactly `size` long: a read past its end is short.
    assert!(store.read(2500, 1000).await.is_err());

    let mut have = Bitfield::new(3);
    for i in 0..3 {
        have.set(i).unwrap();
    }
    let picked = Bitfield::new(2);
    store.checkpoint(&id, &have, Some(&picked)).await.unwrap();
    let record = store::read_small(&resume::file_name(&id, resume::FileKind::Have), 4096)
        .await
        .unwrap();
    assert_eq!(
        record,
        Some(resume::HaveRecord::encode(&have, Some(&picked)))
    );

    // Complete: served from disk, the lock shared so other tabs may serve it.
    let done = store.complete().await.unwrap();
    assert!(matches!(done, Store::Stored { .. }));
    assert_eq!(lock.mode(), LockMode::Shared);
    assert_eq!(done.read(0, 3000).await.unwrap(), whole);
    assert!(
        done.write(0, &a).await.is_err(),
        "a complete file is read-only"
    );
    let data = resume::file_name(&id, resume::FileKind::Data);
    let blob = store::file(&data).await.unwrap().expect("the data file");
    assert_eq!(blob.size(), 3000.0);
    assert!(store::list().await.unwrap().contains(&data));

    // Not deleted while this tab holds the lock; deleted once it lets go.
    let key = id.to_string();
    let names = resume::file_names(&id).to_vec();
    assert!(!store::remove(&key, &names).await.unwrap());
    drop((done, store));
    lock.release_now().await;
    assert!(store::remove(&key, &names).await.unwrap());
    let left = store::list().await.unwrap();
    assert!(names.iter().all(|n| !left.contains(n)), "{left:?}");
}

#[wasm_bindgen_test]
async fn an_abandoned_download_reopens_with_its_bytes() {
    let id = ShareId::from_bytes([2; 32]);
    let lock = exclusive(&id).await;
    let store = Store::open_data(&id, 4096, lock.clone()).await.unwrap();
    let first = bytes(2048, 9);
    store.write(0, &first).await.unwrap();
    store.abandon().await;
    drop((store, lock));

    // As after a reload: the lock again, the file opened again (never
    // shortened), the first half still there and the rest writable.
    let lock = exclusive(&id).await;
    let store = Store::open_data(&id, 4096, lock.clone()).await.unwrap();
    assert_eq!(store.read(0, 2048).await.unwrap(), first);
    let second = bytes(2048, 10);
    store.write(2048, &second).await.unwrap();
    assert_eq!(store.read(0, 4096).await.unwrap(), [first, second].concat());
    store.abandon().await;
}

#[wasm_bindgen_test]
async fn a_lock_is_held_once_per_tab_and_free_once_released() {
    let id = ShareId::from_bytes([3; 32]);
    let key = id.to_string();
    let reader = ShareLock::take(&id, LockMode::Shared, false)
        .await
        .unwrap()
        .expect("free");
    // Once per tab (js/opfs.js): asking again here gives nothing.
    for mode in [LockMode::Shared, LockMode::Exclusive] {
        assert!(ShareLock::take(&id, mode, false).await.unwrap().is_none());
    }
    assert!(store::locked_keys().await.unwrap().contains(&key));
    reader.release_now().await;
    assert!(!store::locked_keys().await.unwrap().contains(&key));
    let writer = ShareLock::take(&id, LockMode::Exclusive, false)
        .await
        .unwrap()
        .expect("free again once released");
    assert_eq!(writer.mode(), LockMode::Exclusive);
}

/// What the JS function `body`, given `bytes` as a `Uint8Array` named
/// `bytes`, returns: the stand-ins for a picked file below.
fn from_js<T: wasm_bindgen::JsCast>(body: &str, bytes: &[u8]) -> T {
    use wasm_bindgen::JsCast as _;
    js_sys::Function::new_with_args("bytes", body)
        .call1(
            &wasm_bindgen::JsValue::NULL,
            &js_sys::Uint8Array::from(bytes),
        )
        .unwrap()
        .unchecked_into()
}

/// A blob of `bytes`.
fn blob_of(bytes: &[u8]) -> web_sys::Blob {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap()
}

#[wasm_bindgen_test]
async fn a_picked_file_is_read_in_order_and_at_any_offset_into_reused_buffers() {
    let whole = bytes(1000, 9);
    let mut reader = super::reader::BlobReader::new(&blob_of(&whole));
    let mut got = Vec::new();
    let mut lens = Vec::new();
    while got.len() < whole.len() {
        let part = reader.next(300).await.unwrap();
        lens.push(part.len());
        got.extend_from_slice(part);
    }
    assert_eq!(lens, [300, 300, 300, 100]);
    assert_eq!(got, whole);
    // At the end: nothing more, and no read that waits for ever.
    assert_eq!(reader.next(300).await.unwrap(), b"");

    // Served chunks: any offset, in pooled buffers; a read past the end is short.
    let store = Store::Blob(blob_of(&whole));
    assert_eq!(store.read(300, 400).await.unwrap(), &whole[300..700]);
    assert_eq!(store.read(0, 1000).await.unwrap(), whole);
    assert_eq!(store.read(300, 400).await.unwrap(), &whole[300..700]);
    assert!(store.read(900, 300).await.is_err());
    assert_eq!(
        store::read_blob(&blob_of(&whole), 900, 300).await.unwrap(),
        &whole[900..]
    );

    // An empty file reads as nothing.
    let mut empty = super::reader::BlobReader::new(&blob_of(&[]));
    assert_eq!(empty.next(300).await.unwrap(), b"");
}

/// A blob of `bytes` whose streams never deliver, as Chromium's now and then
/// do: its reads must fall back to slices after the deadline, bytes intact.
fn stalling_blob_of(bytes: &[u8]) -> web_sys::Blob {
    from_js(
        "const fake = (b) => ({ size: b.size, slice: (x, y) => fake(b.slice(x, y)), \
           arrayBuffer: () => b.arrayBuffer(), \
           stream: () => new ReadableStream({ type: 'bytes', pull: () => new Promise(() => {}) }) }); \
         return fake(new Blob([bytes]));",
        bytes,
    )
}

#[wasm_bindgen_test]
async fn a_stalled_read_is_redone_by_slices() {
    let whole = bytes(1000, 5);
    let mut reader = super::reader::BlobReader::new(&stalling_blob_of(&whole));
    let mut got = reader.next(600).await.unwrap().to_vec();
    got.extend_from_slice(reader.next(600).await.unwrap());
    assert_eq!(got, whole);
    let store = Store::Blob(stalling_blob_of(&whole));
    assert_eq!(store.read(300, 400).await.unwrap(), &whole[300..700]);
    super::reader::retry_byob();
}

/// A blob of `bytes` that counts the `slice` calls made on it, and the count.
fn counting_blob_of(bytes: &[u8]) -> (web_sys::Blob, impl Fn() -> u32) {
    use wasm_bindgen::JsCast as _;
    let pair: js_sys::Array = from_js(
        "const b = new Blob([bytes]); let n = 0; \
         return [{ size: b.size, slice: (x, y) => { n++; return b.slice(x, y); } }, () => n];",
        bytes,
    );
    let count: js_sys::Function = pair.get(1).unchecked_into();
    let slices = move || {
        count
            .call0(&wasm_bindgen::JsValue::NULL)
            .unwrap()
            .as_f64()
            .unwrap() as u32
    };
    (pair.get(0).unchecked_into(), slices)
}

#[wasm_bindgen_test]
async fn served_chunks_asked_in_order_are_read_from_one_stream() {
    super::reader::retry_byob();
    let whole = bytes(4000, 3);
    let (blob, slices) = counting_blob_of(&whole);
    let store = Store::Blob(blob);
    // Four reads started at once, in order (a writer reading ahead), each
    // after its own header: one slice, one stream, the bytes in order.
    let reads: Vec<_> = (0..4u8)
        .map(|i| store.read_after(vec![i], u64::from(i) * 500, 500))
        .collect();
    for (i, read) in futures::future::join_all(reads)
        .await
        .into_iter()
        .enumerate()
    {
        let mut want = vec![i as u8];
        want.extend_from_slice(&whole[i * 500..(i + 1) * 500]);
        assert_eq!(read.unwrap(), want, "read {i}");
    }
    assert_eq!(slices(), 1);
    // The next chunk continues the same stream.
    assert_eq!(store.read(2000, 500).await.unwrap(), &whole[2000..2500]);
    assert_eq!(slices(), 1);
    // A jump opens a second stream; the first still continues where it was.
    assert_eq!(store.read(3500, 500).await.unwrap(), &whole[3500..]);
    assert_eq!(slices(), 2);
    assert_eq!(store.read(2500, 1000).await.unwrap(), &whole[2500..3500]);
    assert_eq!(slices(), 2);
    // Past the end: short, an error; the file's start reads again.
    assert!(store.read(3800, 500).await.is_err());
    assert_eq!(store.read(0, 700).await.unwrap(), &whole[..700]);
}
