//! Limits on what one client may hold, against the real server over TCP:
//! libp2p WebSockets per address are refused once the limit is reached — the
//! upgrade completes and a close frame with code 1013 and a reason follows at
//! once, what a browser can read — and a closed one frees its slot.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use shoal_relay::limits::MAX_CONNECTIONS_PER_IP;

mod common;

/// Opens `/p2p` as a WebSocket; returns the status code and the open socket.
fn upgrade(addr: SocketAddr) -> (u16, TcpStream) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET /p2p HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read");
        assert_eq!(
            n,
            1,
            "connection closed mid-head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, s)
}

/// Reads the first frame; for a close frame, its code and reason.
fn close_frame(mut s: TcpStream) -> Option<(u16, String)> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).ok()?;
    if head[0] != 0x88 {
        return None;
    }
    // Server frames are unmasked; a close payload is at most 125 bytes.
    let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
    s.read_exact(&mut payload).ok()?;
    let code = u16::from_be_bytes([*payload.first()?, *payload.get(1)?]);
    Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_per_address_are_capped_and_slots_come_back() {
    let relay = common::start(&[]).await;
    let addr = relay.addr;

    let (open, refused) = tokio::task::spawn_blocking(move || {
        let mut open = Vec::new();
        for _ in 0..MAX_CONNECTIONS_PER_IP {
            let (status, socket) = upgrade(addr);
            assert_eq!(status, 101, "below the limit the upgrade is accepted");
            open.push(socket);
        }
        let (status, refused) = upgrade(addr);
        assert_eq!(status, 101, "the refusal comes as a close frame");
        (open, close_frame(refused))
    })
    .await
    .expect("join");
    assert_eq!(
        refused,
        Some((1013, "too many connections from your address".to_string())),
        "one over the limit is closed at once with 1013 and the reason"
    );

    // Closing one socket frees its slot (once the relay has seen it close).
    let mut open = open;
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = tokio::task::spawn_blocking(move || loop {
        let (status, socket) = upgrade(addr);
        if status == 101 || Instant::now() > deadline {
            drop(socket);
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    })
    .await
    .expect("join");
    assert_eq!(status, 101, "a freed slot is given to the next client");
    drop(open);

    // A frame that announces 200 MiB is refused at its header: the socket is
    // closed, nothing of that size is allocated or awaited.
    let answer = tokio::task::spawn_blocking(move || {
        let (status, mut s) = upgrade(addr);
        assert_eq!(status, 101);
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(200u64 << 20).to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]); // mask
        frame.extend_from_slice(&[0; 1024]);
        s.write_all(&frame).expect("write frame header");
        // Refused at the header means closed at once; a relay without the cap
        // waits for the payload until an unrelated 10 s timeout, past this bound.
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(n) => buf[..n].to_vec(),
            // Reset instead of an orderly close: refused all the same.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Vec::new(),
            Err(e) => panic!("the relay neither closed nor answered: {e}"),
        }
    })
    .await
    .expect("join");
    assert!(
        answer.is_empty() || answer[0] == 0x88,
        "expected the socket closed (EOF or a Close frame), got {answer:?}"
    );

    relay.stop().await;
}
