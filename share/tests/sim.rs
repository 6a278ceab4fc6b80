//! Deterministic swarm simulation driving the scheduler.
//!
//! A seeded xorshift RNG makes files, peers, latencies and misbehaviour; a
//! discrete-event loop plays the network. After every action the scheduler
//! emits, the driver checks the invariants against its own model of the
//! swarm: requests go only to connected, unbanned peers that have the chunk;
//! no (peer, chunk) is requested twice at once; no peer exceeds its window;
//! normal requests are rarest first and endgame requests only happen when
//! nothing else is requestable; every chunk is stored once, with the right
//! bytes; `Done` comes once, last.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use shoal_share::manifest::MIN_CHUNK_SIZE;
use shoal_share::{Action, Bitfield, Config, Manifest, ManifestBuilder, Scheduler, Verdict};

/// xorshift64*: small, fast, and enough for test scheduling.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Every chunk it sends is corrupt.
    Corrupt,
    /// Sends this one chunk corrupt, the rest fine.
    CorruptOnce(u32),
    /// Never answers.
    Stall,
}

#[derive(Debug, Clone)]
struct PeerSpec {
    id: u8,
    has: BTreeSet<u32>,
    latency_ms: u64,
    behaviour: Behaviour,
    /// Percent of requests answered with a failure instead.
    fail_percent: u64,
    join_at: u64,
    leave_at: Option<u64>,
    /// (time, chunk) announcements made after joining.
    gains: Vec<(u64, u32)>,
}

impl PeerSpec {
    fn seeder(id: u8, chunks: u32) -> Self {
        Self {
            id,
            has: (0..chunks).collect(),
            latency_ms: 20,
            behaviour: Behaviour::Honest,
            fail_percent: 0,
            join_at: 0,
            leave_at: None,
            gains: vec![],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Join(u8),
    Leave(u8),
    Gain(u8, u32),
    Deliver(u8, u32),
    Fail(u8, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Log {
    Request {
        peer: u8,
        index: u32,
        endgame: bool,
    },
    Cancel {
        peer: u8,
        index: u32,
    },
    Store {
        index: u32,
    },
    Ban {
        peer: u8,
    },
    Done,
    Verdict {
        peer: u8,
        index: u32,
        verdict: Verdict,
    },
    Left {
        peer: u8,
        outstanding: Vec<u32>,
    },
}

struct Sim {
    rng: XorShift,
    file: Vec<u8>,
    manifest: Manifest,
    config: Config,
    sched: Scheduler<u8>,
    now: u64,
    specs: BTreeMap<u8, PeerSpec>,
    /// What the scheduler has been told each peer has.
    has: BTreeMap<u8, BTreeSet<u32>>,
    connected: BTreeSet<u8>,
    banned: BTreeSet<u8>,
    bad_pairs: BTreeSet<(u8, u32)>,
    corrupted_once: BTreeSet<u8>,
    outstanding: BTreeSet<(u8, u32)>,
    /// (peer, chunk) whose request failed, and until when (ms) that peer is
    /// not to be asked for it (`Config::retry_after`).
    waiting: BTreeMap<(u8, u32), u64>,
    events: BTreeMap<(u64, u64), Event>,
    seq: u64,
    stored: BTreeMap<u32, u32>,
    initially_had: BTreeSet<u32>,
    log: Vec<(u64, Log)>,
    done: u32,
}

impl Sim {
    fn new(
        seed: u64,
        chunks: u32,
        have: BTreeSet<u32>,
        specs: Vec<PeerSpec>,
        config: Config,
    ) -> Self {
        let mut rng = XorShift::new(seed);
        let last = 1 + rng.below(u64::from(MIN_CHUNK_SIZE)) as usize;
        let size = (chunks as usize - 1) * MIN_CHUNK_SIZE as usize + last;
        let file: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
        let mut builder =
            ManifestBuilder::new("sim.bin", "application/octet-stream", MIN_CHUNK_SIZE)
                .expect("valid");
        builder.update(&file).expect("fits");
        let manifest = builder.finish().expect("valid");
        assert_eq!(manifest.chunk_count(), chunks);

        let mut have_field = Bitfield::new(chunks);
        for &i in &have {
            have_field.set(i).expect("in range");
        }
        let sched =
            Scheduler::new(manifest.clone(), have_field, config.clone()).expect("valid config");
        let mut sim = Self {
            rng,
            file,
            manifest,
            config,
            sched,
            now: 0,
            specs: BTreeMap::new(),
            has: BTreeMap::new(),
            connected: BTreeSet::new(),
            banned: BTreeSet::new(),
            bad_pairs: BTreeSet::new(),
            corrupted_once: BTreeSet::new(),
            outstanding: BTreeSet::new(),
            waiting: BTreeMap::new(),
            events: BTreeMap::new(),
            seq: 0,
            stored: have.iter().map(|&i| (i, 1)).collect(),
            initially_had: have,
            log: vec![],
            done: 0,
        };
        for spec in specs {
            sim.at(spec.join_at, Event::Join(spec.id));
            if let Some(t) = spec.leave_at {
                sim.at(t, Event::Leave(spec.id));
            }
            for &(t, i) in &spec.gains {
                sim.at(t, Event::Gain(spec.id, i));
            }
            sim.has.insert(spec.id, spec.has.clone());
            sim.specs.insert(spec.id, spec);
        }
        sim
    }

    fn at(&mut self, t: u64, event: Event) {
        self.seq += 1;
        self.events.insert((t, self.seq), event);
    }

    fn ms(&self) -> Duration {
        Duration::from_millis(self.now)
    }

    fn run(&mut self) {
        self.drain();
        for _ in 0..200_000 {
            if self.done > 0 {
                return;
            }
            let next_event = self.events.keys().next().map(|&(t, _)| t);
            let next_timeout = self.sched.poll_timeout().map(|d| d.as_millis() as u64);
            let next = match (next_event, next_timeout) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or_else(|| {
                    panic!(
                        "stuck at {} ms: {:?}\n{:?}",
                        self.now,
                        self.sched.progress(),
                        self.log.last()
                    )
                }),
            };
            self.now = self.now.max(next);
            while let Some(entry) = self.events.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let event = entry.remove();
                self.apply(event);
                self.drain();
            }
            self.sched.handle_timeout(self.ms());
            self.drain();
        }
        panic!("did not finish");
    }

    fn avail(&self, index: u32) -> u32 {
        self.connected
            .iter()
            .filter(|p| !self.banned.contains(p))
            .filter(|&&p| self.has[&p].contains(&index) && !self.bad_pairs.contains(&(p, index)))
            .count() as u32
    }

    fn peer_has(&self, peer: u8, index: u32) -> bool {
        self.has[&peer].contains(&index) && !self.bad_pairs.contains(&(peer, index))
    }

    /// Whether the scheduler may ask `peer` for `index` now: it has it, and
    /// is not waiting out a failed request for it.
    fn may_ask(&self, peer: u8, index: u32) -> bool {
        self.peer_has(peer, index)
            && self
                .waiting
                .get(&(peer, index))
                .is_none_or(|&until| self.now >= until)
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Join(p) => {
                let mut field = Bitfield::new(self.manifest.chunk_count());
                for &i in &self.has[&p] {
                    field.set(i).expect("in range");
                }
                let result = self.sched.peer_joined(p, field);
                // A new connection: failed requests are forgotten.
                self.waiting.retain(|&(q, _), _| q != p);
                if self.banned.contains(&p) {
                    assert!(result.is_err());
                } else {
                    result.expect("valid join");
                    self.connected.insert(p);
                }
            }
            Event::Leave(p) => {
                self.connected.remove(&p);
                let mine: Vec<u32> = self
                    .outstanding
                    .iter()
                    .filter(|&&(q, _)| q == p)
                    .map(|&(_, i)| i)
                    .collect();
                self.outstanding.retain(|&(q, _)| q != p);
                self.events.retain(
                    |_, e| !matches!(e, Event::Deliver(q, _) | Event::Fail(q, _) if *q == p),
                );
                self.log.push((
                    self.now,
                    Log::Left {
                        peer: p,
                        outstanding: mine,
                    },
                ));
                self.sched.peer_left(&p);
            }
            Event::Gain(p, i) => {
                self.has.get_mut(&p).expect("known peer").insert(i);
                if self.connected.contains(&p) && !self.banned.contains(&p) {
                    self.sched.peer_has(&p, i).expect("valid announcement");
                }
            }
            Event::Fail(p, i) => {
                assert!(
                    self.outstanding.remove(&(p, i)),
                    "failure for a request not outstanding"
                );
                let now = self.ms();
                self.sched.request_failed(&p, i, now);
                let until = self.now + self.config.retry_after.as_millis() as u64;
                self.waiting.insert((p, i), until);
            }
            Event::Deliver(p, i) => self.deliver(p, i),
        }
    }

    fn deliver(&mut self, p: u8, i: u32) {
        let range = self.manifest.chunk_range(i).expect("real chunk");
        let mut bytes = self.file[range.start as usize..range.end as usize].to_vec();
        let corrupt = match self.specs[&p].behaviour {
            Behaviour::Corrupt => true,
            Behaviour::CorruptOnce(k) => k == i && self.corrupted_once.insert(p),
            _ => false,
        };
        if corrupt {
            if self.rng.chance(20) {
                bytes.pop();
            } else {
                let at = self.rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 << self.rng.below(8);
            }
        }
        self.outstanding.remove(&(p, i));
        let verdict = self.sched.chunk_received(&p, i, bytes, self.ms());
        if self.banned.contains(&p) {
            assert_eq!(verdict, Verdict::Ignored);
        } else if corrupt {
            let Verdict::Rejected { banned, .. } = verdict else {
                panic!("corrupt chunk {i} from {p} gave {verdict:?}");
            };
            self.bad_pairs.insert((p, i));
            let bad = self.log.iter().filter(|(_, l)| matches!(l, Log::Verdict { peer, verdict: Verdict::Rejected { .. }, .. } if *peer == p)).count() as u32 + 1;
            assert_eq!(banned, bad >= self.config.max_bad_chunks, "ban policy");
        } else if self.stored.contains_key(&i) {
            assert_eq!(verdict, Verdict::Duplicate);
        } else {
            assert_eq!(verdict, Verdict::Stored);
        }
        self.log.push((
            self.now,
            Log::Verdict {
                peer: p,
                index: i,
                verdict,
            },
        ));
    }

    fn drain(&mut self) {
        while let Some(action) = self.sched.poll_action(self.ms()) {
            assert_eq!(self.done, 0, "action after Done: {action:?}");
            match action {
                Action::Request { peer, index } => self.on_request(peer, index),
                Action::Cancel { peer, index } => {
                    assert!(
                        self.outstanding.remove(&(peer, index)),
                        "cancel of {index} at {peer}: not outstanding"
                    );
                    // Half the time the answer is already on its way.
                    if self.rng.chance(50) {
                        self.events.retain(|_, e| {
                            *e != Event::Deliver(peer, index) && *e != Event::Fail(peer, index)
                        });
                    } else {
                        self.events.retain(|_, e| *e != Event::Fail(peer, index));
                    }
                    self.log.push((self.now, Log::Cancel { peer, index }));
                }
                Action::Store { index, bytes } => {
                    let range = self.manifest.chunk_range(index).expect("real chunk");
                    assert!(
                        bytes == self.file[range.start as usize..range.end as usize],
                        "stored wrong bytes"
                    );
                    let n = self.stored.entry(index).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "chunk {index} stored twice");
                    self.log.push((self.now, Log::Store { index }));
                }
                Action::Announce { index } => {
                    assert!(self.stored.contains_key(&index), "announce before store")
                }
                Action::Ban { peer } => {
                    assert!(self.banned.insert(peer), "banned twice");
                    // The scheduler cancels its requests (checked above).
                    self.log.push((self.now, Log::Ban { peer }));
                }
                Action::Done => {
                    assert_eq!(self.stored.len() as u32, self.manifest.chunk_count());
                    self.done += 1;
                    self.log.push((self.now, Log::Done));
                }
                other => panic!("unexpected action {other:?}"),
            }
        }
    }

    fn on_request(&mut self, p: u8, i: u32) {
        assert!(
            self.connected.contains(&p) && !self.banned.contains(&p),
            "request to absent peer {p}"
        );
        assert!(
            self.peer_has(p, i),
            "asked {p} for {i}, which it does not have"
        );
        assert!(
            self.may_ask(p, i),
            "asked {p} for {i} again before its failed request's wait ended"
        );
        assert!(
            !self.stored.contains_key(&i),
            "asked for {i}, which is stored"
        );
        assert!(
            !self.outstanding.contains(&(p, i)),
            "asked {p} for {i} twice at once"
        );
        assert_eq!(
            self.sched.availability(i),
            self.avail(i),
            "availability of {i}"
        );

        let endgame = self.outstanding.iter().any(|&(_, j)| j == i);
        if endgame {
            // Only when every chunk someone has is in flight.
            for j in 0..self.manifest.chunk_count() {
                let requestable = !self.stored.contains_key(&j)
                    && self
                        .connected
                        .iter()
                        .any(|&q| !self.banned.contains(&q) && self.may_ask(q, j));
                let in_flight = self.outstanding.iter().any(|&(_, k)| k == j);
                assert!(
                    !requestable || in_flight,
                    "endgame for {i} while {j} is requestable"
                );
            }
            let askers = self.outstanding.iter().filter(|&&(_, j)| j == i).count() as u32;
            assert!(
                askers < 1 + self.config.endgame_duplicates,
                "too many duplicates of {i}"
            );
        } else {
            // Rarest first: nothing rarer that this peer could have served.
            let mine = self.avail(i);
            for j in 0..self.manifest.chunk_count() {
                let open =
                    !self.stored.contains_key(&j) && !self.outstanding.iter().any(|&(_, k)| k == j);
                if j != i && open && self.may_ask(p, j) {
                    assert!(
                        self.avail(j) >= mine,
                        "asked {p} for {i} (avail {mine}) before {j} (avail {})",
                        self.avail(j)
                    );
                }
            }
        }

        self.outstanding.insert((p, i));
        let window = self.outstanding.iter().filter(|&&(q, _)| q == p).count() as u32;
        assert!(
            window <= self.config.max_in_flight_per_peer,
            "{p} has {window} requests in flight"
        );
        self.log.push((
            self.now,
            Log::Request {
                peer: p,
                index: i,
                endgame,
            },
        ));

        let spec = &self.specs[&p];
        let (latency, fail_percent, stall) = (
            spec.latency_ms,
            spec.fail_percent,
            spec.behaviour == Behaviour::Stall,
        );
        if stall {
            return;
        }
        let t = self.now + latency + self.rng.below(latency + 1);
        if self.rng.chance(fail_percent) {
            self.at(t, Event::Fail(p, i));
        } else {
            self.at(t, Event::Deliver(p, i));
        }
    }

    /// End-of-run checks common to every scenario.
    fn check_complete(&self) {
        assert_eq!(self.done, 1, "Done exactly once");
        assert_eq!(self.log.last().map(|(_, l)| l), Some(&Log::Done));
        let count = self.manifest.chunk_count();
        assert!(
            (0..count).all(|i| self.stored.get(&i) == Some(&1)),
            "every chunk stored exactly once"
        );
        let progress = self.sched.progress();
        assert_eq!(progress.chunks_done, count);
        assert_eq!(progress.bytes_done, self.manifest.size());
        let received: u32 = progress.peers.values().map(|s| s.chunks_received).sum();
        assert_eq!(received as usize, count as usize - self.initially_had.len());
        for (peer, stats) in &progress.peers {
            assert_eq!(stats.banned, self.banned.contains(peer));
            assert_eq!(stats.in_flight, 0, "requests left over at {peer}");
        }
        assert_eq!(self.sched.poll_timeout(), None);
    }

    fn requests(&self) -> impl Iterator<Item = (u64, u8, u32, bool)> + '_ {
        self.log.iter().filter_map(|&(t, ref l)| match *l {
            Log::Request {
                peer,
                index,
                endgame,
            } => Some((t, peer, index, endgame)),
            _ => None,
        })
    }
}

fn config(max_in_flight: u32) -> Config {
    let mut config = Config::default();
    config.max_in_flight_per_peer = max_in_flight;
    config.request_timeout = Duration::from_secs(2);
    config.seed = 7;
    config
}

#[test]
fn random_swarms_complete_with_invariants_held() {
    // How often each situation came up, so that the runs are known to cover them.
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for seed in 1..=40u64 {
        let mut rng = XorShift::new(seed * 1000);
        let chunks = 8 + rng.below(50) as u32;
        let mut cfg = config(1 + rng.below(4) as u32);
        cfg.endgame_duplicates = rng.below(3) as u32;
        cfg.max_bad_chunks = 1 + rng.below(3) as u32;
        cfg.seed = rng.next();
        let have: BTreeSet<u32> = (0..chunks).filter(|_| rng.chance(10)).collect();

        let n = 3 + rng.below(5) as u8;
        let mut specs = Vec::new();
        for id in 1..=n {
            let density = 10 + rng.below(90);
            let behaviour = match rng.below(10) {
                0 => Behaviour::Corrupt,
                1 => Behaviour::CorruptOnce(rng.below(u64::from(chunks)) as u32),
                2 => Behaviour::Stall,
                _ => Behaviour::Honest,
            };
            let join_at = if rng.chance(60) { 0 } else { rng.below(3000) };
            let leave_at = rng.chance(30).then(|| join_at + rng.below(3000));
            let gains = (0..rng.below(6))
                .map(|_| (rng.below(5000), rng.below(u64::from(chunks)) as u32))
                .collect();
            specs.push(PeerSpec {
                id,
                has: (0..chunks).filter(|_| rng.chance(density)).collect(),
                latency_ms: 5 + rng.below(200),
                behaviour,
                fail_percent: rng.below(15),
                join_at,
                leave_at,
                gains,
            });
        }
        // One honest seeder, possibly late, guarantees the file is complete.
        let mut seeder = PeerSpec::seeder(n + 1, chunks);
        seeder.join_at = rng.below(4000);
        seeder.latency_ms = 5 + rng.below(100);
        specs.push(seeder);

        let mut sim = Sim::new(seed, chunks, have, specs, cfg);
        sim.run();
        sim.check_complete();
        for (_, l) in &sim.log {
            let kind = match l {
                Log::Request { endgame: true, .. } => "endgame request",
                Log::Request { .. } => "request",
                Log::Cancel { .. } => "cancel",
                Log::Ban { .. } => "ban",
                Log::Left { outstanding, .. } if !outstanding.is_empty() => "left with requests",
                Log::Verdict {
                    verdict: Verdict::Rejected { banned: false, .. },
                    ..
                } => "rejected, not banned",
                Log::Verdict {
                    verdict: Verdict::Duplicate,
                    ..
                } => "duplicate",
                Log::Verdict {
                    verdict: Verdict::Ignored,
                    ..
                } => "ignored",
                _ => continue,
            };
            *seen.entry(kind).or_default() += 1;
        }
        let failed: u32 = sim
            .sched
            .progress()
            .peers
            .values()
            .map(|s| s.failed_requests)
            .sum();
        *seen.entry("failed or timed out").or_default() += failed;
        // Peers that sent bad chunks were never asked for those chunks again.
        for &(peer, index) in &sim.bad_pairs {
            let rejected_at = sim
                .log
                .iter()
                .position(|(_, l)| matches!(l, Log::Verdict { peer: p, index: i, verdict: Verdict::Rejected { .. } } if *p == peer && *i == index))
                .expect("logged");
            assert!(!sim.log[rejected_at..].iter().any(|(_, l)| *l
                == Log::Request {
                    peer,
                    index,
                    endgame: false
                }
                || *l
                    == Log::Request {
                        peer,
                        index,
                        endgame: true
                    }));
        }
    }
    println!("{seen:?}");
    for kind in [
        "request",
        "endgame request",
        "cancel",
        "ban",
        "left with requests",
        "rejected, not banned",
        "duplicate",
        "ignored",
        "failed or timed out",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "no run had a {kind}: {seen:?}"
        );
    }
}

#[test]
fn rarest_chunks_are_requested_first() {
    // Chunks 0..4: only peer 1. Chunks 4..8: peers 1 and 2. Chunks 8..12: all three.
    let mut a = PeerSpec::seeder(1, 12);
    a.latency_ms = 50;
    let mut b = PeerSpec::seeder(2, 12);
    b.has = (4..12).collect();
    let mut c = PeerSpec::seeder(3, 12);
    c.has = (8..12).collect();
    let mut sim = Sim::new(1, 12, BTreeSet::new(), vec![a, b, c], config(1));
    sim.run();
    sim.check_complete();

    let first: Vec<(u8, u32)> = sim.requests().take(3).map(|(_, p, i, _)| (p, i)).collect();
    // Peer 1 takes a chunk only it has; peer 2 one that only 1 and 2 have;
    // peer 3 one that everyone has.
    assert_eq!(first.iter().map(|&(p, _)| p).collect::<Vec<_>>(), [1, 2, 3]);
    assert!((0..4).contains(&first[0].1), "{first:?}");
    assert!((4..8).contains(&first[1].1), "{first:?}");
    assert!((8..12).contains(&first[2].1), "{first:?}");
    // Every chunk only peer 1 has was asked of peer 1, and before any chunk
    // that others could also serve was asked of it.
    let from_1: Vec<u32> = sim
        .requests()
        .filter(|&(_, p, _, _)| p == 1)
        .map(|(_, _, i, _)| i)
        .collect();
    assert_eq!(
        from_1.iter().take(4).copied().collect::<BTreeSet<_>>(),
        (0..4).collect()
    );
}

#[test]
fn bad_chunk_is_refetched_from_another_peer_and_sender_banned() {
    let mut liar = PeerSpec::seeder(1, 10);
    liar.behaviour = Behaviour::Corrupt;
    liar.latency_ms = 5;
    let mut honest = PeerSpec::seeder(2, 10);
    honest.latency_ms = 40;
    let mut sim = Sim::new(3, 10, BTreeSet::new(), vec![liar, honest], config(2));
    sim.run();
    sim.check_complete();

    let (at, bad_index) = sim
        .log
        .iter()
        .enumerate()
        .find_map(|(k, (_, l))| match l {
            Log::Verdict {
                peer: 1,
                index,
                verdict: Verdict::Rejected { banned: true, .. },
            } => Some((k, *index)),
            _ => None,
        })
        .expect("the liar's first chunk is rejected and it is banned at once");
    let after = &sim.log[at..];
    assert_eq!(
        after[1].1,
        Log::Cancel {
            peer: 1,
            index: after_cancel_index(after)
        }
    );
    assert!(after.iter().any(|(_, l)| *l == Log::Ban { peer: 1 }));
    assert!(after
        .iter()
        .any(|(_, l)| matches!(l, Log::Request { peer: 2, index, .. } if *index == bad_index)));
    assert!(!after
        .iter()
        .any(|(_, l)| matches!(l, Log::Request { peer: 1, .. })));
    let stats = &sim.sched.progress().peers[&1];
    assert_eq!(
        (stats.bad_chunks, stats.banned, stats.chunks_received),
        (1, true, 0)
    );
    assert_eq!(sim.sched.progress().peers[&2].chunks_received, 10);
}

/// The index of the liar's other outstanding request, cancelled by the ban.
fn after_cancel_index(after: &[(u64, Log)]) -> u32 {
    match after[1].1 {
        Log::Cancel { index, .. } => index,
        ref other => panic!("expected a cancel right after the ban, got {other:?}"),
    }
}

#[test]
fn peer_leaving_mid_transfer_has_its_requests_requeued() {
    let mut leaver = PeerSpec::seeder(1, 16);
    leaver.latency_ms = 100;
    leaver.leave_at = Some(150);
    let mut stayer = PeerSpec::seeder(2, 16);
    stayer.latency_ms = 30;
    // Without endgame, so peer 2 cannot already hold a duplicate request.
    let mut cfg = config(3);
    cfg.endgame_duplicates = 0;
    let mut sim = Sim::new(4, 16, BTreeSet::new(), vec![leaver, stayer], cfg);
    sim.run();
    sim.check_complete();

    let (k, orphans) = sim
        .log
        .iter()
        .enumerate()
        .find_map(|(k, (_, l))| match l {
            Log::Left {
                peer: 1,
                outstanding,
            } => Some((k, outstanding.clone())),
            _ => None,
        })
        .expect("peer 1 left");
    assert!(!orphans.is_empty(), "peer 1 left with requests outstanding");
    for index in orphans {
        assert!(
            sim.log[k..]
                .iter()
                .any(|(_, l)| matches!(l, Log::Request { peer: 2, index: i, .. } if *i == index)),
            "chunk {index} was not asked of peer 2 after peer 1 left"
        );
    }
    assert!(!sim.log[k..]
        .iter()
        .any(|(_, l)| matches!(l, Log::Request { peer: 1, .. })));
}

#[test]
fn stalled_requests_time_out_and_move_elsewhere() {
    let mut staller = PeerSpec::seeder(1, 6);
    staller.behaviour = Behaviour::Stall;
    let mut slow = PeerSpec::seeder(2, 6);
    slow.has = (3..6).collect();
    slow.join_at = 500;
    let mut late = PeerSpec::seeder(3, 6);
    late.join_at = 3000;
    let mut sim = Sim::new(5, 6, BTreeSet::new(), vec![staller, slow, late], config(2));
    sim.run();
    sim.check_complete();
    let cancels: Vec<(u64, u32)> = sim
        .log
        .iter()
        .filter_map(|&(t, ref l)| match *l {
            Log::Cancel { peer: 1, index } => Some((t, index)),
            _ => None,
        })
        .collect();
    // The first two requests went to the staller at 0 and timed out at 2 s.
    assert!(
        cancels.iter().filter(|&&(t, _)| t == 2000).count() == 2,
        "{cancels:?}"
    );
    assert_eq!(sim.sched.progress().peers[&1].chunks_received, 0);
    assert!(sim.sched.progress().peers[&1].failed_requests >= 2);
}

#[test]
fn endgame_duplicates_the_last_chunks_and_cancels_the_loser() {
    let mut slow = PeerSpec::seeder(1, 4);
    slow.latency_ms = 1000;
    let mut fast = PeerSpec::seeder(2, 4);
    fast.latency_ms = 10;
    let mut cfg = config(1);
    cfg.request_timeout = Duration::from_secs(60);
    let mut sim = Sim::new(6, 4, BTreeSet::new(), vec![slow, fast], cfg);
    sim.run();
    sim.check_complete();
    let dup = sim
        .requests()
        .find(|&(_, _, _, endgame)| endgame)
        .expect("an endgame request");
    assert_eq!(dup.1, 2, "the fast peer duplicates the slow peer's chunk");
    // The fast copy wins; the slow peer's request is cancelled.
    assert!(sim.log.iter().any(|(_, l)| *l
        == Log::Cancel {
            peer: 1,
            index: dup.2
        }));
    assert_eq!(sim.sched.progress().peers[&2].chunks_received, 4);
}

#[test]
fn without_endgame_the_slow_peer_finishes_its_chunk() {
    let mut slow = PeerSpec::seeder(1, 4);
    slow.latency_ms = 1000;
    let mut fast = PeerSpec::seeder(2, 4);
    fast.latency_ms = 10;
    let mut cfg = config(1);
    cfg.request_timeout = Duration::from_secs(60);
    cfg.endgame_duplicates = 0;
    let mut sim = Sim::new(6, 4, BTreeSet::new(), vec![slow, fast], cfg);
    sim.run();
    sim.check_complete();
    assert!(sim.requests().all(|(_, _, _, endgame)| !endgame));
    assert_eq!(sim.sched.progress().peers[&1].chunks_received, 1);
}
