//! Replays every committed fuzz input through the property its target
//! checks: `fuzz/corpus/<target>/*` (seeds) and `fuzz/regressions/<target>/*`
//! (inputs that once failed). Stable Rust, no libFuzzer: this is how
//! `cargo test` keeps the targets honest between fuzz runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;

use shoal_fuzz_props::{CountingAlloc, TARGETS};

// The memory properties need the counting allocator, as under libFuzzer.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_and_regression_file_holds() {
    // The allocator counts, so the memory properties run here too.
    let before = shoal_fuzz_props::live_bytes().expect("counting allocator");
    let held = vec![0u8; 1000];
    assert!(shoal_fuzz_props::live_bytes().expect("counting") - before >= 1000);
    drop(held);

    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (name, check) in TARGETS {
        let corpus = files(&fuzz.join("corpus").join(name));
        assert!(
            corpus.len() >= 3,
            "fuzz/corpus/{name} has {} seeds; commit a handful",
            corpus.len()
        );
        for file in corpus
            .iter()
            .chain(&files(&fuzz.join("regressions").join(name)))
        {
            let data = fs::read(file).expect("readable");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", file.display());
        }
    }
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in TARGETS {
        assert!(
            fuzz.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
}

/// Every seed of every target, loaded once.
fn all_seeds() -> &'static [(usize, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(usize, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut seeds = Vec::new();
        for (i, (name, _)) in TARGETS.iter().enumerate() {
            for file in files(&fuzz.join("corpus").join(name)) {
                seeds.push((i, fs::read(file).expect("readable")));
            }
        }
        seeds
    })
}

proptest! {
    /// A small stable fuzzer: seeds with a few bytes changed, cut short or
    /// extended, through their target's property.
    #[test]
    fn mutated_seeds_hold(
        pick in any::<Index>(),
        edits in proptest::collection::vec((any::<Index>(), any::<u8>()), 0..4),
        keep in any::<Index>(),
        extra in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let seeds = all_seeds();
        let (target, seed) = pick.get(seeds);
        let mut data = seed.clone();
        for (at, byte) in &edits {
            if !data.is_empty() {
                let i = at.index(data.len());
                data[i] = *byte;
            }
        }
        data.truncate(keep.index(data.len() + 1));
        data.extend_from_slice(&extra);
        (TARGETS[*target].1)(&data);
    }

    /// Arbitrary bytes through every target.
    #[test]
    fn arbitrary_bytes_hold(target in 0..TARGETS.len(), data in proptest::collection::vec(any::<u8>(), 0..128)) {
        (TARGETS[target].1)(&data);
    }
}

/// Writes the seed corpora from the crates' own test vectors and a few
/// edge cases: `cargo test -p shoal-fuzz-props -- --ignored write_seeds`.
/// Existing files are overwritten; the signed peer records differ per run
/// (libp2p stamps them with the time), so commit only what changed on purpose.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seeds() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (target, seeds) in seeds::all() {
        let dir = fuzz.join("corpus").join(target);
        fs::create_dir_all(&dir).expect("mkdir");
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes).expect("write a seed");
        }
    }
}

mod seeds {

    use libp2p::core::PeerRecord;
    use libp2p::identity::Keypair;
    use prost::Message as _;
    use shoal_fuzz_props::blocks_session::{self, LOCAL, NONCE, REMOTE};
    use shoal_proto::frame::{Flag, Frame};
    use shoal_proto::info::RelayInfo;
    use shoal_proto::signaling::{Message as Signal, MessageType};
    use shoal_relay::rendezvous::protocol::{kind, proto};
    use shoal_share::handshake::{Ends, Nonce, Proof, ShareKey, NONCE_LEN, PROOF_LEN};
    use shoal_share::resume::HaveRecord;
    use shoal_share::{make_link, Bitfield, ChunkHash, Manifest, Message, ShareId};

    type Seeds = Vec<(&'static str, Vec<u8>)>;

    fn with_seed(seed: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![seed];
        out.extend_from_slice(bytes);
        out
    }

    pub fn all() -> Vec<(&'static str, Seeds)> {
        vec![
            ("signaling", signaling()),
            ("frame", frame()),
            ("blocks_wire", blocks_wire()),
            ("blocks_session", blocks_session()),
            ("manifest", manifest()),
            ("bitfield", bitfield()),
            ("share_link", share_link()),
            ("relay_info", relay_info()),
            ("rendezvous", rendezvous()),
            ("stun", stun()),
            ("forwarded_for", forwarded_for()),
        ]
    }

    fn signaling() -> Seeds {
        let offer = Signal {
            kind: MessageType::SdpOffer,
            data: Some("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\n".into()),
        };
        let answer = Signal {
            kind: MessageType::SdpAnswer,
            data: Some("v=0\r\n".into()),
        };
        let ice = Signal {
            kind: MessageType::IceCandidate,
            data: Some(
                r#"{"candidate":"candidate:1 1 udp 1 10.0.0.1 9 typ host","sdpMid":"0"}"#.into(),
            ),
        };
        let end = Signal {
            kind: MessageType::IceCandidate,
            data: None,
        };
        let mut all = Vec::new();
        for m in [&offer, &answer, &ice, &end] {
            all.extend_from_slice(&m.encode());
        }
        vec![
            ("offer", with_seed(0, &offer.encode())),
            ("session-bytewise", with_seed(1, &all)),
            ("session-pieces", with_seed(37, &all)),
            // 60000-byte body announced, 3 bytes sent: nothing reserved for it.
            (
                "announced-large",
                with_seed(0, &[0xe0, 0xd4, 0x03, 0x08, 0x00, 0x12]),
            ),
            // 65537-byte body announced: refused at the prefix.
            ("too-long", with_seed(0, &[0x81, 0x80, 0x04, 0x08, 0x00])),
            // Unknown field 3 skipped, type 7 unknown.
            (
                "unknown-field",
                with_seed(0, &[0x06, 0x18, 0x01, 0x08, 0x00, 0x12, 0x00]),
            ),
            ("unknown-type", with_seed(0, &[0x02, 0x08, 0x07])),
        ]
    }

    fn frame() -> Seeds {
        let mut frames = Vec::new();
        for f in [
            Frame::data(b"hello".to_vec()),
            Frame {
                flag: Some(Flag::Fin),
                message: Some(b"last".to_vec()),
            },
            Frame::flag(Flag::FinAck),
            Frame::flag(Flag::StopSending),
        ] {
            f.encode(&mut frames);
        }
        let mut reset = Vec::new();
        Frame::data(vec![0xab; 300]).encode(&mut reset);
        Frame::flag(Flag::Reset).encode(&mut reset);
        let mut big = Vec::new();
        Frame::data(vec![7; 2000]).encode(&mut big);
        // [chunking seed][read-buffer cap / 16][stream]
        let both = |seed: u8, cap: u8, bytes: &[u8]| {
            let mut out = vec![seed, cap];
            out.extend_from_slice(bytes);
            out
        };
        vec![
            ("data-fin", both(0, 255, &frames)),
            ("data-fin-bytewise", both(1, 255, &frames)),
            ("reset", both(9, 255, &reset)),
            ("over-read-buffer", both(0, 100, &big)),
            (
                "data-after-fin",
                both(0, 255, &[frames.clone(), frames].concat()),
            ),
            // 16000-byte frame announced, 3 bytes sent.
            (
                "announced-large",
                both(0, 255, &[0x80, 0x7d, 0x12, 0xfd, 0x7c]),
            ),
            // 16385-byte frame announced.
            ("too-long", both(0, 255, &[0x81, 0x80, 0x01])),
        ]
    }

    fn hello() -> Message {
        Message::Hello {
            nonce: Nonce([0x11; NONCE_LEN]),
            proof: Proof::from_bytes([0x22; PROOF_LEN]),
        }
    }

    fn blocks_wire() -> Seeds {
        let mut some = Bitfield::new(10);
        some.set(0).expect("in range");
        some.set(9).expect("in range");
        let messages = vec![
            hello(),
            Message::Welcome(Proof::from_bytes([0x33; 32])),
            Message::Bitfield(some),
            Message::Bitfield(Bitfield::full(10)),
            Message::Unknown,
            Message::GetManifest,
            Message::Manifest(b"SHOAL".to_vec()),
            Message::Have(0),
            Message::Request(300),
            Message::Chunk {
                index: 1,
                data: b"abc".to_vec(),
            },
            Message::Reject(u32::MAX),
            Message::Cancel(7),
        ];
        let mut all = Vec::new();
        for m in &messages {
            m.encode(&mut all);
        }
        let mut first = Vec::new();
        hello().encode(&mut first);
        Message::Request(1).encode(&mut first);
        vec![
            ("all-types", with_seed(0, &all)),
            ("all-types-bytewise", with_seed(1, &all)),
            ("all-types-pieces", with_seed(23, &all)),
            // 0x40: first message held to a Hello's length.
            ("hello-first-limit", with_seed(0x40, &first)),
            // 0x80: held to a Welcome's; a Hello is too long.
            ("welcome-limit-refuses-hello", with_seed(0x80, &first)),
            // A 1 MiB chunk announced, 4 bytes sent.
            (
                "announced-large",
                with_seed(0, &[0x80, 0x80, 0x40, 0x07, 0x00, b'a', b'b']),
            ),
            // A Have with a 7-byte body: over its type's limit.
            (
                "too-long-for-type",
                with_seed(0, &[0x07, 0x05, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
            ),
            ("non-minimal-index", with_seed(0, &[0x03, 0x05, 0x80, 0x00])),
        ]
    }

    fn blocks_session() -> Seeds {
        let keys: Vec<ShareKey> = blocks_session::shares().iter().map(ShareKey::new).collect();
        // The remote opens to us.
        let nonce = Nonce([0x42; NONCE_LEN]);
        let to_us = Ends {
            opener: REMOTE,
            acceptor: LOCAL,
        };
        let mut good_hello = Vec::new();
        Message::Hello {
            nonce,
            proof: keys[1].opener_proof(to_us, &nonce),
        }
        .encode(&mut good_hello);
        let mut then = good_hello.clone();
        Message::GetManifest.encode(&mut then);
        let mut bad_hello = Vec::new();
        hello().encode(&mut bad_hello);
        // We open to the remote.
        let from_us = Ends {
            opener: LOCAL,
            acceptor: REMOTE,
        };
        let mut welcome = Vec::new();
        Message::Welcome(keys[0].acceptor_proof(from_us, &NONCE)).encode(&mut welcome);
        Message::Bitfield(Bitfield::full(3)).encode(&mut welcome);
        Message::GetManifest.encode(&mut welcome);
        Message::GetManifest.encode(&mut welcome);
        let mut unknown = Vec::new();
        Message::Unknown.encode(&mut unknown);
        let mut wrong = Vec::new();
        Message::Welcome(Proof::from_bytes([9; 32])).encode(&mut wrong);
        vec![
            (
                "accept-good-hello",
                blocks_session::input(0, 0, &good_hello),
            ),
            (
                "accept-hello-then-early",
                blocks_session::input(0, 0, &then),
            ),
            (
                "accept-hello-then-later",
                blocks_session::input(1, 0, &then),
            ),
            ("accept-stranger", blocks_session::input(0, 0, &bad_hello)),
            (
                "open-welcome-manifest-twice",
                blocks_session::input(3, 1, &welcome),
            ),
            (
                "open-manifest-twice-bytewise",
                blocks_session::input(1, 1, &welcome),
            ),
            ("open-unknown", blocks_session::input(0, 1, &unknown)),
            ("open-bad-proof", blocks_session::input(0, 1, &wrong)),
        ]
    }

    fn tiny() -> Manifest {
        Manifest::new(
            "hi.txt".into(),
            "text/plain".into(),
            20_000,
            16 * 1024,
            vec![
                ChunkHash::from_bytes([0x11; 32]),
                ChunkHash::from_bytes([0x22; 32]),
            ],
        )
        .expect("valid")
    }

    fn manifest() -> Seeds {
        let empty =
            Manifest::new("empty".into(), String::new(), 0, 16 * 1024, vec![]).expect("valid");
        let mut trailing = tiny().encode();
        trailing.push(0);
        let mut bad_name = tiny().encode();
        bad_name[7] = b'/';
        vec![
            ("tiny", tiny().encode()),
            ("empty-file", empty.encode()),
            ("trailing-byte", trailing),
            ("slash-in-name", bad_name),
            ("magic-only", b"SHOAL\x01".to_vec()),
        ]
    }

    fn bitfield() -> Seeds {
        let mut some = Bitfield::new(10);
        some.set(0).expect("in range");
        some.set(9).expect("in range");
        vec![
            ("some", some.encode()),
            ("full", Bitfield::full(10).encode()),
            ("empty", Bitfield::new(0).encode()),
            ("spare-bits-set", vec![10, 0xff, 0xff]),
            ("have-record", HaveRecord::encode(&Bitfield::full(13), None)),
            (
                "have-record-picked",
                HaveRecord::encode(&some, Some(&Bitfield::new(3))),
            ),
        ]
    }

    fn share_link() -> Seeds {
        let id = tiny().share_id();
        vec![
            (
                "link",
                make_link("http://127.0.0.1:8080/", "my swarm", &id).into_bytes(),
            ),
            ("fragment", format!("#share={id}").into_bytes()),
            ("bare-id", id.to_string().into_bytes()),
            (
                "upper-case",
                id.to_string().to_ascii_uppercase().into_bytes(),
            ),
            ("bad-id", b"http://x/#share=abc".to_vec()),
            (
                "origin-and-swarm",
                b"https://shoal.example\nswarm/with #odd&chars".to_vec(),
            ),
            (
                "zero-id",
                ShareId::from_bytes([0; 32]).to_string().into_bytes(),
            ),
        ]
    }

    fn relay_info() -> Seeds {
        vec![
            (
                "info",
                serde_json::to_vec(&RelayInfo::example()).expect("json"),
            ),
            (
                "no-stun-odd-path",
                br#"{"peerId":"P/x","p2pPath":"/a/b%","stunPort":null,"iceServers":[],"listenAddrs":[],"version":""}"#.to_vec(),
            ),
            ("origin-https", b"https:\nshoal.example\n".to_vec()),
            ("origin-v6", b"http:\n[::1]\n8080".to_vec()),
            ("origin-bad-port", b"http:\nh\n99999".to_vec()),
        ]
    }

    fn prefixed(message: &proto::Message) -> Vec<u8> {
        message.encode_length_delimited_to_vec()
    }

    fn rendezvous() -> Seeds {
        // A fixed key, so the PeerId is stable (the record's seq is the time).
        let key = Keypair::ed25519_from_bytes([7; 32]).expect("key");
        let addr = "/ip4/127.0.0.1/tcp/8080/ws".parse().expect("addr");
        let legacy = PeerRecord::new(&key, vec![addr])
            .expect("sign")
            .into_signed_envelope()
            .into_protobuf_encoding();
        let register = |envelope: Vec<u8>| proto::Message {
            r#type: Some(kind::REGISTER),
            register: Some(proto::Register {
                ns: Some("shoal/swarm".into()),
                signed_peer_record: Some(envelope),
                ttl: Some(300),
            }),
            ..Default::default()
        };
        let mut cookie = 5u64.to_be_bytes().to_vec();
        cookie.extend_from_slice(b"shoal/swarm");
        let discover = proto::Message {
            r#type: Some(kind::DISCOVER),
            discover: Some(proto::Discover {
                ns: Some("shoal/swarm".into()),
                limit: Some(10),
                cookie: Some(cookie),
            }),
            ..Default::default()
        };
        let unregister = proto::Message {
            r#type: Some(kind::UNREGISTER),
            unregister: Some(proto::Unregister {
                ns: Some("shoal/swarm".into()),
                id: None,
            }),
            ..Default::default()
        };
        let mut tampered = legacy.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        vec![
            ("register", prefixed(&register(legacy))),
            ("register-tampered", prefixed(&register(tampered))),
            ("discover-cookie", prefixed(&discover)),
            ("unregister", prefixed(&unregister)),
            (
                "response-type",
                prefixed(&proto::Message {
                    r#type: Some(kind::REGISTER_RESPONSE),
                    ..Default::default()
                }),
            ),
            // 5000-byte request announced: over the limit.
            ("too-long", vec![0x88, 0x27, 0x08, 0x00]),
        ]
    }

    /// [peer index][header values, one per line]; peers 0–3 are trusted.
    fn forwarded_for() -> Seeds {
        let seed = |peer: u8, text: &str| {
            let mut out = vec![peer];
            out.extend_from_slice(text.as_bytes());
            out
        };
        vec![
            ("one-proxy", seed(0, "203.0.113.50")),
            ("chain", seed(0, "198.51.100.2, 10.0.0.9\n10.0.0.8")),
            (
                "v6-ports-mapped",
                seed(1, "[2001:db9::5]:443, [::ffff:203.0.113.9]:80, 2001:db8::1"),
            ),
            ("garbage-hop", seed(2, "203.0.113.1, not-an-ip, 10.2.2.2")),
            ("untrusted-peer", seed(4, "10.0.0.1")),
            ("all-trusted", seed(3, "10.0.0.1,10.0.0.2,127.0.0.1")),
        ]
    }

    fn stun() -> Seeds {
        // RFC 5769 §2.1 sample request.
        const RFC5769_REQUEST: [u8; 108] = [
            0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
            0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e,
            0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24,
            0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1,
            0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68,
            0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
            0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5,
            0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
        ];
        let header = |ty: u16, len: u16| {
            let mut b = ty.to_be_bytes().to_vec();
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&0x2112_a442_u32.to_be_bytes());
            b.extend_from_slice(&[7; 12]);
            b
        };
        vec![
            ("rfc5769-request", RFC5769_REQUEST.to_vec()),
            ("bare-binding", header(0x0001, 0)),
            ("binding-indication", header(0x0011, 0)),
            ("promises-more", header(0x0001, 8)),
            ("truncated", RFC5769_REQUEST[..30].to_vec()),
        ]
    }
}
