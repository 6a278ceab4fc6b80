//! The download scheduler: a sans-IO state machine for fetching one share.
//!
//! The driver tells it what happens — peers join with a [`Bitfield`], announce
//! chunks, leave, answer requests, fail — and polls it for [`Action`]s:
//! requests to send, cancels, verified chunks to store and announce. It never
//! reads a clock: every call that cares about time takes `now`, a
//! [`Duration`] since any fixed origin the driver likes, and
//! [`poll_timeout`](Scheduler::poll_timeout) says when to call
//! [`handle_timeout`](Scheduler::handle_timeout) next.
//!
//! # Policy
//!
//! - **Rarest first.** Chunks are requested in order of how many connected
//!   peers have them, fewest first. Ties go by a pseudo-random order of runs
//!   of [`Config::tie_run`] chunks, derived from [`Config::seed`], and in
//!   order within a run: downloaders of one seeder start on different chunks
//!   and have something to trade sooner, while the seeder reads each run of
//!   its file as one sequential stream. With a fixed seed the order is
//!   deterministic. Each chunk goes to the least-loaded peer that has it,
//!   preferring peers whose request for that chunk has not failed before, and
//!   then the smallest peer key.
//! - **Bounded.** At most [`Config::max_in_flight_per_peer`] requests to a peer
//!   at once, and never two for the same chunk to the same peer.
//! - **Endgame.** Once every missing chunk that someone has is already
//!   requested, idle peers may be asked for chunks in flight elsewhere, up to
//!   [`Config::endgame_duplicates`] extra requests per chunk; the first copy
//!   to verify wins and the other requests are cancelled.
//! - **Verification.** Every chunk is checked against the manifest before it
//!   is stored. A chunk that fails is dropped and fetched again elsewhere; the
//!   sender is never asked for that chunk again, and once it has sent
//!   [`Config::max_bad_chunks`] bad chunks (default 1) it is banned for the
//!   rest of the download. One strike is enough by default because WebRTC's
//!   DTLS already authenticates every byte in transit: a chunk that fails its
//!   hash was wrong when the peer sent it, through bad storage or malice, and
//!   each bad chunk costs a whole chunk of bandwidth.
//! - **Subset.** [`Scheduler::set_wanted`] narrows the download to some
//!   chunks (those of the files a user picked, [`Manifest::wanted_chunks`]):
//!   only wanted chunks are requested, and [`Action::Done`] comes when every
//!   wanted chunk is stored. A verified chunk that is not wanted (a late
//!   answer) is still stored, and everything stored is served.
//! - **Focus** (playing while downloading). [`Scheduler::set_focus`] names
//!   a range of chunks a reader waits for: the playhead and the read-ahead
//!   window after it. Its missing chunks are requested before any other, in
//!   order from its start, but a peer never has more than
//!   [`Config::focus_slots`] requests made for the focus in flight (requests
//!   made rarest first that happen to lie in it do not count): the rest still
//!   go rarest first, so a swarm of players keeps trading rare chunks
//!   instead of all fetching the same few. Moving the focus (a seek) makes the next free slots start at the
//!   new place; requests already made for the old one are left to finish.
//!   Focus never widens the download: unwanted chunks stay unrequested.
//! - **Failures.** A request the peer refused or could not get
//!   ([`Scheduler::request_failed`]) goes to another peer that has the chunk
//!   at once; the peer that failed is asked for it last from then on, and not
//!   at all for [`Config::retry_after`]. So a driver that fails requests as
//!   fast as they come never makes `poll_action` ask forever.
//! - **Timeouts** measure silence: a request times out when its peer has sent
//!   no chunk for [`Config::request_timeout`] since the request was made. A
//!   timed-out request is cancelled and its chunk requeued; the peer is not
//!   penalised beyond being asked last for that chunk.
//!
//! # Cost
//!
//! Inputs cost `O(log n)` per chunk they touch; a peer joining or leaving
//! with more than a quarter of the chunks rebuilds the queue instead,
//! `O(n log n)`. A bitfield from a peer already joined
//! ([`Scheduler::peer_bitfield`]) only adds its new chunks: a peer that
//! repeats its bitfield costs `O(n / 8)`, never a rebuild. Planning requests happens in `poll_action`, at most once per
//! batch of inputs, and walks the requestable chunks rarest first until every
//! peer's request window is full: `O(n · peers)` at worst, usually far less.
//! At the largest manifest (262,080 chunks) with 20 seeders, natively in
//! release: ~40 ms per seeder joining, ~8 µs per chunk received including
//! its BLAKE3 check (`scheduler_at_scale`, an ignored test).

use std::collections::{BTreeSet, VecDeque};

use shoal_proto::vecmap::{VecMap, VecSet};
use std::hash::Hash;
use std::time::Duration;

use crate::bitfield::Bitfield;
use crate::chunk::VerifyError;
use crate::manifest::Manifest;

/// Tuning for one download.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Requests outstanding to one peer at once; at least 1. Default 4: with
    /// 256 KiB chunks, 1 MiB per peer in flight, which keeps a 10 MB/s link
    /// busy at 100 ms round trip.
    pub max_in_flight_per_peer: u32,
    /// How long a peer may stay silent before its requests time out.
    /// Default 20 s.
    pub request_timeout: Duration,
    /// Bad chunks after which a peer is banned; at least 1. Default 1.
    pub max_bad_chunks: u32,
    /// Extra requests per chunk in endgame; 0 turns endgame off. Default 1.
    pub endgame_duplicates: u32,
    /// Seed of the tie-break order among equally rare chunks. Drivers should
    /// pass a random value; tests pass a fixed one. Default 0.
    pub seed: u64,
    /// Equally rare chunks go in runs of this many consecutive chunks, the
    /// runs in the seed's order; at least 1 (1: every chunk on its own).
    /// Default 16, 4 MiB at 256 KiB chunks: a sharer's browser then reads its
    /// file in 4 MiB sequential stretches rather than by a `Blob.slice` per
    /// chunk, each of which costs a round trip to the browser's blob registry
    /// (the largest item on a sharer's main thread, BENCHMARKS.md "Profile").
    pub tie_run: u32,
    /// How long a peer whose request for a chunk failed
    /// ([`Scheduler::request_failed`]) is not asked for that chunk again.
    /// Default 1 s: others that have it are asked at once, and a peer that
    /// refused because it was busy or briefly unreachable gets another try
    /// soon, without a driver that fails requests at once spinning.
    pub retry_after: Duration,
    /// Of each peer's `max_in_flight_per_peer` slots, how many may carry
    /// requests for the focus ([`Scheduler::set_focus`]); 0 turns focus off.
    /// Default 2, half of the default slots: a player gets two chunks in
    /// flight per peer (512 KiB at 256 KiB chunks, many times a video's
    /// bitrate per round trip), and the other half keeps rarest first going.
    pub focus_slots: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_in_flight_per_peer: 4,
            request_timeout: Duration::from_secs(20),
            max_bad_chunks: 1,
            endgame_duplicates: 1,
            seed: 0,
            tie_run: 16,
            retry_after: Duration::from_secs(1),
            focus_slots: 2,
        }
    }
}

/// What the driver should do next; see [`Scheduler::poll_action`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action<P> {
    /// Ask `peer` for chunk `index`.
    Request { peer: P, index: u32 },
    /// Withdraw an earlier request: another copy arrived, or it timed out.
    /// The peer may still answer; that answer is harmless.
    Cancel { peer: P, index: u32 },
    /// A verified chunk: write it to storage. From now on it may be served.
    Store { index: u32, bytes: Vec<u8> },
    /// Tell connected peers that we have chunk `index` now.
    Announce { index: u32 },
    /// `peer` sent bad data and is ignored from now on; the driver may close
    /// its connection and should stop serving it.
    Ban { peer: P },
    /// Every wanted chunk is stored (every chunk, unless
    /// [`Scheduler::set_wanted`] narrowed it). Emitted once each time the
    /// wanted set becomes complete.
    Done,
}

/// What [`Scheduler::chunk_received`] made of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Verified; a [`Action::Store`] and [`Action::Announce`] follow.
    Stored,
    /// We already had this chunk; the bytes were dropped.
    Duplicate,
    /// Failed verification and was dropped; the sender was penalised, and
    /// banned if `banned`.
    Rejected { error: VerifyError, banned: bool },
    /// From a peer that is not connected, or is banned; dropped unread.
    Ignored,
}

/// Misuse of the scheduler, or a peer message that cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    #[error("invalid config: {0}")]
    InvalidConfig(&'static str),
    #[error("bitfield has {actual} bits but the file has {expected} chunks")]
    BitfieldLength { expected: u32, actual: u32 },
    #[error("chunk {index} does not exist (the file has {count} chunks)")]
    IndexOutOfRange { index: u32, count: u32 },
    #[error("peer is not connected")]
    UnknownPeer,
    #[error("peer is banned")]
    Banned,
}

/// Counters for one peer, kept after it leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// Verified chunks stored from this peer.
    pub chunks_received: u32,
    /// Bytes of those chunks.
    pub bytes_received: u64,
    /// Chunks from this peer that failed verification.
    pub bad_chunks: u32,
    /// Requests to this peer that failed or timed out.
    pub failed_requests: u32,
    /// Requests to this peer outstanding now.
    pub in_flight: u32,
    /// Whether the peer is connected now.
    pub connected: bool,
    /// Whether the peer is banned.
    pub banned: bool,
}

/// A snapshot from [`Scheduler::progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress<P: Ord> {
    pub chunks_done: u32,
    pub chunks_total: u32,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Chunks wanted ([`Scheduler::set_wanted`]; all by default) and how
    /// many of those are stored.
    pub chunks_wanted: u32,
    pub chunks_wanted_done: u32,
    /// Every peer seen during this download.
    pub peers: VecMap<P, PeerStats>,
}

/// Everything known about one peer; outlives its connection so that stats,
/// bans and bad chunks survive a reconnect.
#[derive(Debug)]
struct PeerState {
    stats: PeerStats,
    /// Chunks this peer sent wrong; never requested from it again.
    bad: VecSet<u32>,
    conn: Option<Conn>,
}

#[derive(Debug)]
struct Conn {
    /// What the peer has, less its `bad` chunks. Counted in `availability`.
    has: Bitfield,
    /// `has.count_ones()`, kept up to date.
    held: u32,
    /// Outstanding requests and their deadlines.
    requests: VecMap<u32, Duration>,
    /// Chunks whose request to this peer failed; it is asked for them last.
    failed: VecSet<u32>,
    /// Chunks whose request to this peer failed explicitly
    /// ([`Scheduler::request_failed`]), and when it may be asked again.
    retry_at: VecMap<u32, Duration>,
    /// Chunks requested for the focus. Those still in `requests` count
    /// against `focus_slots` (pruned when planning).
    focused: VecSet<u32>,
}

/// Sans-IO scheduler for downloading one share (module docs).
///
/// `P` identifies a peer: a libp2p `PeerId` in the browser, a small integer
/// in tests. Its `Ord` decides ties, which keeps runs reproducible.
#[derive(Debug)]
pub struct Scheduler<P> {
    manifest: Manifest,
    config: Config,
    have: Bitfield,
    /// Chunks to fetch; the rest are never requested.
    wanted: Bitfield,
    /// Wanted chunks not stored yet: done at zero.
    wanted_missing: u32,
    bytes_done: u64,
    /// Connected, unbanned peers that have each chunk.
    availability: Vec<u32>,
    /// Requestable chunks: missing, not in flight, held by someone. Ordered by
    /// (availability, tie-break, index), so iteration is rarest first.
    ready: BTreeSet<(u32, u64, u32)>,
    /// The availability each chunk in `ready` was filed under.
    ready_key: Vec<Option<u32>>,
    /// Peers asked for each chunk now.
    in_flight: VecMap<u32, VecSet<P>>,
    peers: VecMap<P, PeerState>,
    actions: VecDeque<Action<P>>,
    /// Chunks a reader waits for, requested first ([`Scheduler::set_focus`]).
    focus: Option<std::ops::Range<u32>>,
    /// Something changed since requests were last planned.
    dirty: bool,
    done: bool,
}

impl<P: Clone + Eq + Hash + Ord> Scheduler<P> {
    /// Starts a download of `manifest`, of which the chunks in `have` are
    /// already stored (from an earlier, interrupted session, say).
    pub fn new(manifest: Manifest, have: Bitfield, config: Config) -> Result<Self, SchedulerError> {
        if config.max_in_flight_per_peer == 0 {
            return Err(SchedulerError::InvalidConfig(
                "max_in_flight_per_peer must be at least 1",
            ));
        }
        if config.max_bad_chunks == 0 {
            return Err(SchedulerError::InvalidConfig(
                "max_bad_chunks must be at least 1",
            ));
        }
        if config.tie_run == 0 {
            return Err(SchedulerError::InvalidConfig("tie_run must be at least 1"));
        }
        let count = manifest.chunk_count();
        if have.len() != count {
            return Err(SchedulerError::BitfieldLength {
                expected: count,
                actual: have.len(),
            });
        }
        let bytes_done = have
            .iter_ones()
            .filter_map(|i| manifest.chunk_len(i))
            .map(u64::from)
            .sum();
        let mut scheduler = Self {
            availability: vec![0; count as usize],
            ready_key: vec![None; count as usize],
            manifest,
            config,
            wanted: Bitfield::full(count),
            wanted_missing: count - have.count_ones(),
            have,
            bytes_done,
            ready: BTreeSet::new(),
            in_flight: VecMap::new(),
            peers: VecMap::new(),
            actions: VecDeque::new(),
            focus: None,
            dirty: false,
            done: false,
        };
        scheduler.check_done();
        Ok(scheduler)
    }

    /// The manifest being downloaded.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Chunks stored so far: what we can serve, and announce in a bitfield.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Whether every wanted chunk is stored.
    pub fn is_done(&self) -> bool {
        self.wanted_missing == 0
    }

    /// The chunks to fetch (all, unless narrowed by
    /// [`set_wanted`](Self::set_wanted)).
    pub fn wanted(&self) -> &Bitfield {
        &self.wanted
    }

    /// Fetches only the chunks in `wanted` from now on (widening or
    /// narrowing): requests in flight for chunks no longer wanted are
    /// cancelled, and [`Action::Done`] comes once every wanted chunk is
    /// stored (at once, if they all are). `O(n log n)`.
    pub fn set_wanted(&mut self, wanted: Bitfield) -> Result<(), SchedulerError> {
        let count = self.manifest.chunk_count();
        if wanted.len() != count {
            return Err(SchedulerError::BitfieldLength {
                expected: count,
                actual: wanted.len(),
            });
        }
        let dropped: Vec<u32> = self
            .in_flight
            .keys()
            .copied()
            .filter(|&i| !wanted.get(i))
            .collect();
        for index in dropped {
            for peer in self.in_flight.remove(&index).unwrap_or_default() {
                if let Some(conn) = self.conn_mut(&peer) {
                    conn.requests.remove(&index);
                }
                self.actions.push_back(Action::Cancel { peer, index });
            }
        }
        self.wanted_missing = wanted.iter_ones().filter(|&i| !self.have.get(i)).count() as u32;
        self.wanted = wanted;
        self.done = false;
        let all: Vec<u32> = (0..count).collect();
        self.refresh_many(&all);
        self.check_done();
        Ok(())
    }

    /// Requests the chunks of `focus` first, in order (a player's position
    /// and read-ahead; see the module docs), or none with `None`. Clipped to
    /// the file; an empty range is no focus. `O(1)`; the next
    /// [`poll_action`](Self::poll_action) plans with it.
    pub fn set_focus(&mut self, focus: Option<std::ops::Range<u32>>) {
        let count = self.manifest.chunk_count();
        let focus = focus
            .map(|r| r.start.min(count)..r.end.min(count))
            .filter(|r| !r.is_empty());
        if focus != self.focus {
            self.focus = focus;
            self.dirty = true;
        }
    }

    /// The chunks requested first now, if any ([`set_focus`](Self::set_focus)).
    pub fn focus(&self) -> Option<std::ops::Range<u32>> {
        self.focus.clone()
    }

    /// How many connected, unbanned peers have chunk `index`.
    pub fn availability(&self, index: u32) -> u32 {
        self.availability.get(index as usize).copied().unwrap_or(0)
    }

    /// A peer connected and sent its bitfield. If it was connected already,
    /// the new bitfield replaces the old and its outstanding requests are
    /// forgotten (a late answer is still accepted if it verifies).
    pub fn peer_joined(&mut self, peer: P, has: Bitfield) -> Result<(), SchedulerError> {
        let count = self.manifest.chunk_count();
        if has.len() != count {
            return Err(SchedulerError::BitfieldLength {
                expected: count,
                actual: has.len(),
            });
        }
        if self.peers.get(&peer).is_some_and(|p| p.stats.banned) {
            return Err(SchedulerError::Banned);
        }
        self.disconnect(&peer, false);
        let state = self.peers.entry(peer).or_insert_with(|| PeerState {
            stats: PeerStats::default(),
            bad: VecSet::new(),
            conn: None,
        });
        let mut has = has;
        for &index in &state.bad {
            // In range: `bad` only holds indices of this manifest.
            let _ = has.clear(index);
        }
        let held: Vec<u32> = has.iter_ones().collect();
        state.stats.connected = true;
        state.conn = Some(Conn {
            held: held.len() as u32,
            has,
            requests: VecMap::new(),
            failed: VecSet::new(),
            retry_at: VecMap::new(),
            focused: VecSet::new(),
        });
        for &index in &held {
            self.availability[index as usize] += 1;
        }
        self.refresh_many(&held);
        self.dirty = true;
        Ok(())
    }

    /// A peer sent a bitfield. If it is connected already, only the chunks
    /// new in it are added (as [`peer_has`](Self::peer_has) would), its
    /// requests stay in flight, and chunks it no longer lists are ignored
    /// (peers do not lose chunks): `O(n / 8)` plus `O(log n)` per new chunk,
    /// so a peer that repeats its bitfield costs no rebuild. Otherwise it
    /// joins ([`peer_joined`](Self::peer_joined)).
    pub fn peer_bitfield(&mut self, peer: P, has: Bitfield) -> Result<(), SchedulerError> {
        let count = self.manifest.chunk_count();
        if has.len() != count {
            return Err(SchedulerError::BitfieldLength {
                expected: count,
                actual: has.len(),
            });
        }
        let new: Vec<u32> = match self.peers.get(&peer) {
            Some(state) if state.stats.banned => return Err(SchedulerError::Banned),
            Some(PeerState {
                conn: Some(conn), ..
            }) => has.iter_new_ones(&conn.has).collect(),
            _ => return self.peer_joined(peer, has),
        };
        for index in new {
            self.peer_has(&peer, index)?;
        }
        Ok(())
    }

    /// A connected peer announced that it now has chunk `index`. Ignored for
    /// banned peers and for chunks the peer has sent wrong before.
    pub fn peer_has(&mut self, peer: &P, index: u32) -> Result<(), SchedulerError> {
        let count = self.manifest.chunk_count();
        let Some(state) = self.peers.get_mut(peer) else {
            return Err(SchedulerError::UnknownPeer);
        };
        if state.stats.banned {
            return Ok(());
        }
        let Some(conn) = state.conn.as_mut() else {
            return Err(SchedulerError::UnknownPeer);
        };
        if index >= count {
            return Err(SchedulerError::IndexOutOfRange { index, count });
        }
        if state.bad.contains(&index) {
            return Ok(());
        }
        if conn.has.set(index) == Ok(true) {
            conn.held += 1;
            self.availability[index as usize] += 1;
            self.refresh(index);
        }
        Ok(())
    }

    /// A peer disconnected. Its outstanding requests go back in the queue.
    pub fn peer_left(&mut self, peer: &P) {
        self.disconnect(peer, false);
    }

    /// A request could not be served: the peer said no, or its stream broke.
    /// The chunk is requeued; the peer is asked for it last from now on, and
    /// not at all before [`Config::retry_after`] has passed. So a peer that
    /// fails at once (a driver that cannot reach it, say) is never asked
    /// again in the same round: draining [`poll_action`](Self::poll_action)
    /// always ends.
    pub fn request_failed(&mut self, peer: &P, index: u32, now: Duration) {
        if self.fail_request(peer, index, false) {
            let at = now.saturating_add(self.config.retry_after);
            if let Some(conn) = self.conn_mut(peer) {
                conn.retry_at.insert(index, at);
            }
        }
    }

    /// Times out requests whose peer has been silent for
    /// [`Config::request_timeout`]; each gets an [`Action::Cancel`].
    pub fn handle_timeout(&mut self, now: Duration) {
        let expired: Vec<(P, u32)> = self
            .peers
            .iter()
            .filter_map(|(peer, state)| Some((peer, state.conn.as_ref()?)))
            .flat_map(|(peer, conn)| {
                conn.requests
                    .iter()
                    .filter(|&(_, &deadline)| deadline <= now)
                    .map(|(&i, _)| (peer.clone(), i))
            })
            .collect();
        for (peer, index) in expired {
            self.fail_request(&peer, index, true);
        }
        // Peers whose wait for a failed chunk is over may be asked again.
        for state in self.peers.values_mut() {
            if let Some(conn) = state.conn.as_mut() {
                let before = conn.retry_at.len();
                conn.retry_at.retain(|_, at| *at > now);
                self.dirty |= conn.retry_at.len() != before;
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work: the
    /// earliest request deadline, or end of a wait after a failed request
    /// for a chunk still missing.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let missing = |index: u32| self.wanted.get(index) && !self.have.get(index);
        self.peers
            .values()
            .filter_map(|state| state.conn.as_ref())
            .flat_map(|conn| {
                let waits = conn
                    .retry_at
                    .iter()
                    .filter(move |&(&index, _)| missing(index))
                    .map(|(_, at)| at);
                conn.requests.values().chain(waits)
            })
            .copied()
            .min()
    }

    /// A peer sent chunk `index`. Verifies it against the manifest; if it is
    /// good, queues [`Action::Store`] and [`Action::Announce`] and cancels
    /// other requests for it. Unrequested chunks are taken too if we still
    /// need them and they verify (a late answer to a timed-out request).
    pub fn chunk_received(
        &mut self,
        peer: &P,
        index: u32,
        bytes: Vec<u8>,
        now: Duration,
    ) -> Verdict {
        let deadline = now.saturating_add(self.config.request_timeout);
        // Banned peers have no connection either.
        let Some(conn) = self.conn_mut(peer) else {
            return Verdict::Ignored;
        };
        if conn.requests.remove(&index).is_some() {
            self.remove_asker(index, peer);
            self.refresh(index);
            self.dirty = true;
        }

        if self.have.get(index) {
            if let Some(conn) = self.conn_mut(peer) {
                refresh_deadlines(conn, deadline);
            }
            return Verdict::Duplicate;
        }

        if let Err(error) = self.manifest.verify(index, &bytes) {
            return self.penalise(peer, index, error);
        }

        let len = bytes.len() as u64;
        if let Some(state) = self.peers.get_mut(peer) {
            state.stats.chunks_received += 1;
            state.stats.bytes_received += len;
            if let Some(conn) = state.conn.as_mut() {
                refresh_deadlines(conn, deadline);
            }
        }
        // `index` verified, so it is in range.
        let _ = self.have.set(index);
        if self.wanted.get(index) {
            self.wanted_missing -= 1;
        }
        self.bytes_done += len;
        for other in self.in_flight.remove(&index).unwrap_or_default() {
            if let Some(conn) = self.conn_mut(&other) {
                conn.requests.remove(&index);
            }
            self.actions
                .push_back(Action::Cancel { peer: other, index });
        }
        self.refresh(index);
        self.actions.push_back(Action::Store { index, bytes });
        self.actions.push_back(Action::Announce { index });
        self.check_done();
        self.dirty = true;
        Verdict::Stored
    }

    /// The next thing to do, or `None` until the next input. Plans new
    /// requests when the queue runs dry; requests made now time out at
    /// `now + request_timeout`. Call until it returns `None` after each input.
    pub fn poll_action(&mut self, now: Duration) -> Option<Action<P>> {
        if self.actions.is_empty() && self.dirty {
            self.dirty = false;
            self.plan(now);
        }
        self.actions.pop_front()
    }

    /// Chunks and bytes done, and per-peer counters.
    pub fn progress(&self) -> Progress<P> {
        let peers = self
            .peers
            .iter()
            .map(|(peer, state)| {
                let mut stats = state.stats.clone();
                stats.in_flight = state.conn.as_ref().map_or(0, |c| c.requests.len() as u32);
                (peer.clone(), stats)
            })
            .collect();
        Progress {
            chunks_done: self.have.count_ones(),
            chunks_total: self.manifest.chunk_count(),
            bytes_done: self.bytes_done,
            bytes_total: self.manifest.size(),
            chunks_wanted: self.wanted.count_ones(),
            chunks_wanted_done: self.wanted.count_ones() - self.wanted_missing,
            peers,
        }
    }

    /// Fills free request slots: rarest chunks first, then endgame duplicates.
    fn plan(&mut self, now: Duration) {
        if self.is_done() {
            return;
        }
        let max = self.config.max_in_flight_per_peer as usize;
        // (peer, free slots), in peer order.
        let mut free: Vec<(P, usize)> = self
            .peers
            .iter()
            .filter_map(|(peer, state)| {
                let conn = state.conn.as_ref()?;
                let slots = max.saturating_sub(conn.requests.len());
                (slots > 0 && conn.has.count_ones() > 0).then(|| (peer.clone(), slots))
            })
            .collect();
        let mut open = free.len();
        if open == 0 {
            return;
        }
        self.plan_focus(&mut free, &mut open, now);
        if open == 0 {
            return;
        }

        let mut picks: Vec<(u32, P)> = Vec::new();
        for &(_, _, index) in &self.ready {
            if let Some(k) = self.best_peer(&free, index, now) {
                picks.push((index, free[k].0.clone()));
                free[k].1 -= 1;
                if free[k].1 == 0 {
                    open -= 1;
                    if open == 0 {
                        break;
                    }
                }
            }
        }
        for (index, peer) in picks {
            self.request(peer, index, now);
        }

        if open == 0 || !self.ready.is_empty() || self.config.endgame_duplicates == 0 {
            return;
        }
        // Endgame: every chunk anyone has is in flight, and some peers idle.
        let limit = (self.config.endgame_duplicates as usize).saturating_add(1);
        let mut candidates: Vec<(usize, u64, u32)> = self
            .in_flight
            .iter()
            .filter(|(_, askers)| askers.len() < limit)
            .map(|(&index, askers)| (askers.len(), self.tie_break(index), index))
            .collect();
        candidates.sort_unstable();
        let mut picks: Vec<(u32, P)> = Vec::new();
        'chunks: for (mut askers, _, index) in candidates {
            while askers < limit {
                let Some(k) = self.best_peer(&free, index, now) else {
                    continue 'chunks;
                };
                let peer = free[k].0.clone();
                free[k].1 -= 1;
                askers += 1;
                picks.push((index, peer.clone()));
                // Mark now so `best_peer` skips this peer for this chunk.
                self.in_flight.entry(index).or_default().insert(peer);
                if free[k].1 == 0 {
                    open -= 1;
                    if open == 0 {
                        break 'chunks;
                    }
                }
            }
        }
        for (index, peer) in picks {
            self.request(peer, index, now);
        }
    }

    /// Requests the focus's missing chunks, in order, in at most
    /// `focus_slots` slots of each peer (counting its requests in flight
    /// for focus chunks already); takes what it uses out of `free`.
    fn plan_focus(&mut self, free: &mut [(P, usize)], open: &mut usize, now: Duration) {
        let Some(focus) = self.focus.clone() else {
            return;
        };
        let cap = self.config.focus_slots as usize;
        if cap == 0 {
            return;
        }
        // Each peer's free slots that focus may use: `focus_slots` less its
        // focus requests in flight (wherever the focus was when they were
        // made: a peer never has more than `focus_slots` of them).
        let mut slots: Vec<(P, usize)> = Vec::with_capacity(free.len());
        for (peer, n) in free.iter() {
            let used = self.conn_mut(peer).map_or(0, |c| {
                let requests = &c.requests;
                c.focused.retain(|i| requests.contains_key(i));
                c.focused.len()
            });
            slots.push((peer.clone(), (*n).min(cap.saturating_sub(used))));
        }
        let mut left: usize = slots.iter().map(|(_, n)| n).sum();
        for index in focus {
            if left == 0 {
                break;
            }
            // Requestable and held by someone: filed in `ready`.
            if self.ready_key[index as usize].is_none() {
                continue;
            }
            let Some(k) = self.best_peer(&slots, index, now) else {
                continue;
            };
            slots[k].1 -= 1;
            left -= 1;
            free[k].1 -= 1;
            if free[k].1 == 0 {
                *open -= 1;
            }
            let peer = slots[k].0.clone();
            self.request(peer.clone(), index, now);
            if let Some(conn) = self.conn_mut(&peer) {
                conn.focused.insert(index);
            }
        }
    }

    /// Index in `free` of the peer to ask for `index`: it has the chunk, has
    /// a free slot, is not already asked for it, and among those has not
    /// failed this chunk before, holds the fewest chunks (a downloader before
    /// a complete seed: everyone else needs the seed for the chunks only it
    /// has, so it should not spend its upload on chunks others can send),
    /// has the most free slots, has the smallest key.
    fn best_peer(&self, free: &[(P, usize)], index: u32, now: Duration) -> Option<usize> {
        let askers = self.in_flight.get(&index);
        free.iter()
            .enumerate()
            .filter(|(_, (peer, slots))| *slots > 0 && askers.is_none_or(|a| !a.contains(peer)))
            .filter_map(|(k, (peer, slots))| {
                let conn = self.peers.get(peer)?.conn.as_ref()?;
                let waiting = conn.retry_at.get(&index).is_some_and(|&at| at > now);
                (conn.has.get(index) && !waiting).then(|| {
                    (
                        conn.failed.contains(&index),
                        conn.held,
                        std::cmp::Reverse(*slots),
                        k,
                    )
                })
            })
            .min()
            .map(|(_, _, _, k)| k)
    }

    fn request(&mut self, peer: P, index: u32, now: Duration) {
        let deadline = now.saturating_add(self.config.request_timeout);
        if let Some(conn) = self.peers.get_mut(&peer).and_then(|s| s.conn.as_mut()) {
            conn.requests.insert(index, deadline);
            // A focus request marks itself after this (`plan_focus`).
            conn.focused.remove(&index);
            self.in_flight
                .entry(index)
                .or_default()
                .insert(peer.clone());
            self.refresh(index);
            self.actions.push_back(Action::Request { peer, index });
        }
    }

    /// Requeues `peer`'s request for `index`; false if there was none.
    fn fail_request(&mut self, peer: &P, index: u32, timed_out: bool) -> bool {
        let Some(state) = self.peers.get_mut(peer) else {
            return false;
        };
        let Some(conn) = state.conn.as_mut() else {
            return false;
        };
        if conn.requests.remove(&index).is_none() {
            return false;
        }
        conn.failed.insert(index);
        state.stats.failed_requests = state.stats.failed_requests.saturating_add(1);
        self.remove_asker(index, peer);
        if timed_out {
            self.actions.push_back(Action::Cancel {
                peer: peer.clone(),
                index,
            });
        }
        self.refresh(index);
        self.dirty = true;
        true
    }

    /// Drops `peer`'s connection state, requeueing its requests (with a
    /// cancel each if `cancel`) and withdrawing its chunks from availability.
    fn disconnect(&mut self, peer: &P, cancel: bool) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        let Some(conn) = state.conn.take() else {
            return;
        };
        state.stats.connected = false;
        for &index in conn.requests.keys() {
            self.remove_asker(index, peer);
            if cancel {
                self.actions.push_back(Action::Cancel {
                    peer: peer.clone(),
                    index,
                });
            }
            self.refresh(index);
        }
        let held: Vec<u32> = conn.has.iter_ones().collect();
        for &index in &held {
            self.availability[index as usize] -= 1;
        }
        self.refresh_many(&held);
        self.dirty = true;
    }

    /// Records a bad chunk from `peer`: never ask it for this chunk again,
    /// and ban it once it reaches `max_bad_chunks`.
    fn penalise(&mut self, peer: &P, index: u32, error: VerifyError) -> Verdict {
        let in_range = index < self.manifest.chunk_count();
        let Some(state) = self.peers.get_mut(peer) else {
            return Verdict::Ignored;
        };
        state.stats.bad_chunks += 1;
        let banned = state.stats.bad_chunks >= self.config.max_bad_chunks;
        if in_range {
            state.bad.insert(index);
            let lost = state.conn.as_mut().is_some_and(|conn| {
                let cleared = conn.has.clear(index) == Ok(true);
                conn.held -= u32::from(cleared);
                cleared
            });
            if lost {
                self.availability[index as usize] -= 1;
            }
            self.refresh(index);
        }
        if banned {
            self.ban(peer);
        }
        Verdict::Rejected { error, banned }
    }

    fn conn_mut(&mut self, peer: &P) -> Option<&mut Conn> {
        self.peers.get_mut(peer)?.conn.as_mut()
    }

    fn remove_asker(&mut self, index: u32, peer: &P) {
        if let Some(askers) = self.in_flight.get_mut(&index) {
            askers.remove(peer);
            if askers.is_empty() {
                self.in_flight.remove(&index);
            }
        }
    }

    fn ban(&mut self, peer: &P) {
        self.disconnect(peer, true);
        if let Some(state) = self.peers.get_mut(peer) {
            state.stats.banned = true;
        }
        self.actions.push_back(Action::Ban { peer: peer.clone() });
    }

    /// Re-files chunk `index` in `ready` after anything it depends on changed.
    fn refresh(&mut self, index: u32) {
        let i = index as usize;
        let tie = self.tie_break(index);
        if let Some(avail) = self.ready_key[i].take() {
            self.ready.remove(&(avail, tie, index));
        }
        let avail = self.availability[i];
        if avail > 0 && self.is_requestable(index) {
            self.ready.insert((avail, tie, index));
            self.ready_key[i] = Some(avail);
            self.dirty = true;
        }
    }

    /// [`refresh`](Self::refresh) for many chunks at once, as when a seeder
    /// joins: past a quarter of the file, rebuilding `ready` from a sorted
    /// list is cheaper than moving entries one by one.
    fn refresh_many(&mut self, indices: &[u32]) {
        if indices.len() < self.ready_key.len() / 4 {
            for &index in indices {
                self.refresh(index);
            }
            return;
        }
        let mut entries = Vec::new();
        for index in 0..self.manifest.chunk_count() {
            let i = index as usize;
            let avail = self.availability[i];
            if avail > 0 && self.is_requestable(index) {
                entries.push((avail, self.tie_break(index), index));
                self.ready_key[i] = Some(avail);
            } else {
                self.ready_key[i] = None;
            }
        }
        entries.sort_unstable();
        self.ready = entries.into_iter().collect();
        self.dirty = true;
    }

    /// Position of `index`'s run among equally rare chunks: splitmix64 of
    /// seed + run, a bijection, so no two runs tie (and within a run the
    /// index, last in every sort key, decides).
    fn tie_break(&self, index: u32) -> u64 {
        let run = index / self.config.tie_run;
        let mut z = self
            .config
            .seed
            .wrapping_add(u64::from(run))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Wanted, missing, and not asked for yet (availability aside).
    fn is_requestable(&self, index: u32) -> bool {
        self.wanted.get(index) && !self.have.get(index) && !self.in_flight.contains_key(&index)
    }

    fn check_done(&mut self) {
        if self.is_done() && !self.done {
            self.done = true;
            self.actions.push_back(Action::Done);
        }
    }
}

fn refresh_deadlines(conn: &mut Conn, deadline: Duration) {
    for d in conn.requests.values_mut() {
        *d = (*d).max(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ManifestBuilder;
    use crate::manifest::MIN_CHUNK_SIZE;

    const CS: usize = MIN_CHUNK_SIZE as usize;

    /// A file of `chunks` chunks where chunk `i` is filled with byte `i`.
    fn file(chunks: u32) -> (Manifest, Vec<Vec<u8>>) {
        let data: Vec<Vec<u8>> = (0..chunks).map(|i| vec![i as u8; CS]).collect();
        let mut b = ManifestBuilder::new("t", "", MIN_CHUNK_SIZE).expect("valid");
        for chunk in &data {
            b.push_chunk(chunk).expect("in order");
        }
        (b.finish().expect("valid"), data)
    }

    fn sched(chunks: u32, config: Config) -> (Scheduler<u8>, Vec<Vec<u8>>) {
        let (m, data) = file(chunks);
        (
            Scheduler::new(m, Bitfield::new(chunks), config).expect("valid"),
            data,
        )
    }

    fn drain(s: &mut Scheduler<u8>, now: Duration) -> Vec<Action<u8>> {
        std::iter::from_fn(|| s.poll_action(now)).collect()
    }

    fn requests(actions: &[Action<u8>]) -> Vec<(u8, u32)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Request { peer, index } => Some((*peer, *index)),
                _ => None,
            })
            .collect()
    }

    /// Delivers every request in `actions` from the data; returns the
    /// actions that followed.
    fn answer(s: &mut Scheduler<u8>, data: &[Vec<u8>], actions: &[Action<u8>]) -> Vec<Action<u8>> {
        for (peer, index) in requests(actions) {
            s.chunk_received(&peer, index, data[index as usize].clone(), T0);
        }
        drain(s, T0)
    }

    #[test]
    fn a_subset_download_requests_exactly_the_wanted_chunks() {
        let (mut s, data) = sched(16, cfg(16));
        let mut wanted = Bitfield::new(16);
        for i in [3, 4, 9] {
            wanted.set(i).expect("in range");
        }
        s.set_wanted(wanted.clone()).expect("right length");
        s.peer_joined(1, Bitfield::full(16)).expect("joins");
        s.peer_joined(2, Bitfield::full(16)).expect("joins");
        let first = drain(&mut s, T0);
        let mut asked: Vec<u32> = requests(&first).iter().map(|&(_, i)| i).collect();
        asked.sort_unstable();
        // Each from one peer, then once more from the other (endgame).
        assert_eq!(asked, [3, 3, 4, 4, 9, 9]);
        let rest = answer(&mut s, &data, &first);
        // Done with the wanted three; nothing else is ever asked for.
        assert!(rest.contains(&Action::Done));
        assert!(requests(&rest).is_empty(), "{rest:?}");
        assert!(s.is_done());
        assert_eq!(s.have().iter_ones().collect::<Vec<_>>(), [3, 4, 9]);
        let p = s.progress();
        assert_eq!((p.chunks_wanted, p.chunks_wanted_done), (3, 3));
        assert_eq!((p.chunks_done, p.chunks_total), (3, 16));

        // Widening after Done: the new chunks only, then Done once more.
        wanted.set(10).expect("in range");
        s.set_wanted(wanted).expect("right length");
        let more = drain(&mut s, T0);
        assert_eq!(
            requests(&more).iter().map(|&(_, i)| i).collect::<Vec<_>>(),
            [10, 10]
        );
        assert!(answer(&mut s, &data, &more).contains(&Action::Done));
        assert_eq!(
            Scheduler::<u8>::new(file(3).0, Bitfield::new(3), Config::default())
                .expect("valid")
                .set_wanted(Bitfield::new(2)),
            Err(SchedulerError::BitfieldLength {
                expected: 3,
                actual: 2
            })
        );
    }

    #[test]
    fn narrowing_the_wanted_set_cancels_requests_for_the_rest() {
        let (mut s, data) = sched(8, cfg(8));
        s.peer_joined(1, Bitfield::full(8)).expect("joins");
        let first = drain(&mut s, T0);
        assert_eq!(requests(&first).len(), 8);
        let mut wanted = Bitfield::new(8);
        wanted.set(2).expect("in range");
        s.set_wanted(wanted).expect("right length");
        let after = drain(&mut s, T0);
        let mut cancelled: Vec<u32> = after
            .iter()
            .filter_map(|a| match a {
                Action::Cancel { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        cancelled.sort_unstable();
        assert_eq!(cancelled, [0, 1, 3, 4, 5, 6, 7]);
        assert_eq!(s.progress().peers[&1].in_flight, 1);
        // A late unwanted chunk that verifies is kept (and may be served),
        // but is not what Done waits for.
        assert_eq!(
            s.chunk_received(&1, 5, data[5].clone(), T0),
            Verdict::Stored
        );
        assert!(!s.is_done());
        s.chunk_received(&1, 2, data[2].clone(), T0);
        assert!(drain(&mut s, T0).contains(&Action::Done));
        // Nothing wanted at all: done at once.
        let (mut none, _) = sched(4, cfg(4));
        none.set_wanted(Bitfield::new(4)).expect("right length");
        none.peer_joined(1, Bitfield::full(4)).expect("joins");
        assert_eq!(drain(&mut none, T0), [Action::Done]);
    }

    /// The wanted chunks of a tree's files are the chunks that hold their
    /// bytes, including one shared with a neighbour across a file boundary.
    #[test]
    fn picking_files_of_a_tree_fetches_their_chunks_only() {
        use crate::manifest::FileEntry;
        // Files of 1.5, 0, 2 and 0.5 chunks: a/1 in chunks 0-1, a/2 empty,
        // b in 1-3, c in 3.
        let sizes = [
            ("a/1", CS * 3 / 2),
            ("a/2", 0),
            ("b", CS * 2),
            ("c", CS / 2),
        ];
        let files = sizes
            .iter()
            .map(|&(p, n)| FileEntry::new(p, n as u64))
            .collect();
        let mut b = ManifestBuilder::with_files("tree", files, MIN_CHUNK_SIZE).expect("valid");
        let stream: Vec<u8> = sizes
            .iter()
            .enumerate()
            .flat_map(|(k, &(_, n))| vec![k as u8; n])
            .collect();
        b.update(&stream).expect("fits");
        let m = b.finish().expect("valid");
        assert_eq!(m.chunk_count(), 4);
        let wanted = m.wanted_chunks(|f| f.path() == "b");
        let mut s = Scheduler::new(m, Bitfield::new(4), cfg(8)).expect("valid");
        s.set_wanted(wanted).expect("right length");
        s.peer_joined(7, Bitfield::full(4)).expect("joins");
        let asked = drain(&mut s, T0);
        let mut indices: Vec<u32> = requests(&asked).iter().map(|&(_, i)| i).collect();
        indices.sort_unstable();
        assert_eq!(indices, [1, 2, 3]);
        let chunks: Vec<Vec<u8>> = stream.chunks(CS).map(<[u8]>::to_vec).collect();
        assert!(answer(&mut s, &chunks, &asked).contains(&Action::Done));
    }

    #[test]
    fn a_repeated_bitfield_adds_only_what_is_new_and_keeps_requests() {
        let (mut s, _) = sched(16, cfg(2));
        let mut half = Bitfield::new(16);
        for i in 0..8 {
            half.set(i).expect("in range");
        }
        s.peer_bitfield(1, half.clone()).expect("joins");
        let first = requests(&drain(&mut s, Duration::ZERO));
        assert_eq!(first.len(), 2);
        // The same bitfield again: nothing changes, requests stay in flight.
        s.peer_bitfield(1, half.clone()).expect("same");
        assert!(drain(&mut s, Duration::ZERO).is_empty());
        assert_eq!(s.progress().peers[&1].in_flight, 2);
        // A superset: the new chunks count, the old requests stay.
        s.peer_bitfield(1, Bitfield::full(16)).expect("more");
        assert_eq!(s.availability(15), 1);
        assert_eq!(s.progress().peers[&1].in_flight, 2);
        // A subset (a peer cannot lose chunks): ignored.
        s.peer_bitfield(1, Bitfield::new(16)).expect("ignored");
        assert_eq!(s.availability(15), 1);
        assert!(matches!(
            s.peer_bitfield(1, Bitfield::new(3)),
            Err(SchedulerError::BitfieldLength { .. })
        ));
    }

    fn cfg(max_in_flight: u32) -> Config {
        Config {
            max_in_flight_per_peer: max_in_flight,
            ..Config::default()
        }
    }

    const T0: Duration = Duration::ZERO;

    #[test]
    fn rejects_bad_setup_and_bad_peer_input() {
        let (m, _) = file(3);
        let zero = Config {
            max_in_flight_per_peer: 0,
            ..Config::default()
        };
        assert!(matches!(
            Scheduler::<u8>::new(m.clone(), Bitfield::new(3), zero),
            Err(SchedulerError::InvalidConfig(_))
        ));
        let no_bans = Config {
            max_bad_chunks: 0,
            ..Config::default()
        };
        assert!(matches!(
            Scheduler::<u8>::new(m.clone(), Bitfield::new(3), no_bans),
            Err(SchedulerError::InvalidConfig(_))
        ));
        assert_eq!(
            Scheduler::<u8>::new(m, Bitfield::new(4), Config::default()).err(),
            Some(SchedulerError::BitfieldLength {
                expected: 3,
                actual: 4
            })
        );

        let (mut s, data) = sched(3, cfg(1));
        assert_eq!(
            s.peer_joined(1, Bitfield::new(2)),
            Err(SchedulerError::BitfieldLength {
                expected: 3,
                actual: 2
            })
        );
        assert_eq!(s.peer_has(&1, 0), Err(SchedulerError::UnknownPeer));
        s.peer_joined(1, Bitfield::new(3)).expect("valid");
        assert_eq!(
            s.peer_has(&1, 3),
            Err(SchedulerError::IndexOutOfRange { index: 3, count: 3 })
        );
        assert_eq!(
            s.chunk_received(&9, 0, data[0].clone(), T0),
            Verdict::Ignored
        );
        // Unknown peers and unknown requests are ignored, not errors.
        s.request_failed(&9, 0, T0);
        s.request_failed(&1, 0, T0);
        s.peer_left(&9);
        assert_eq!(drain(&mut s, T0), []);
    }

    #[test]
    fn empty_file_and_complete_download_are_done_at_once() {
        let (m, _) = file(0);
        let mut s = Scheduler::<u8>::new(m, Bitfield::new(0), Config::default()).expect("valid");
        assert_eq!(drain(&mut s, T0), [Action::Done]);
        let (m, _) = file(2);
        let mut s = Scheduler::<u8>::new(m, Bitfield::full(2), Config::default()).expect("valid");
        assert_eq!(s.progress().bytes_done, 2 * CS as u64);
        s.peer_joined(1, Bitfield::full(2)).expect("valid");
        assert_eq!(drain(&mut s, T0), [Action::Done]);
    }

    #[test]
    fn announcements_make_chunks_requestable() {
        let (mut s, data) = sched(2, cfg(4));
        s.peer_joined(1, Bitfield::new(2)).expect("valid");
        assert_eq!(drain(&mut s, T0), []);
        s.peer_has(&1, 1).expect("valid");
        assert_eq!(requests(&drain(&mut s, T0)), [(1, 1)]);
        assert_eq!(s.availability(1), 1);
        assert_eq!(
            s.chunk_received(&1, 1, data[1].clone(), T0),
            Verdict::Stored
        );
        assert_eq!(
            drain(&mut s, T0),
            [
                Action::Store {
                    index: 1,
                    bytes: data[1].clone()
                },
                Action::Announce { index: 1 }
            ]
        );
        assert_eq!(s.progress().chunks_done, 1);
        assert_eq!(
            s.chunk_received(&1, 1, data[1].clone(), T0),
            Verdict::Duplicate
        );
    }

    #[test]
    fn lenient_ban_policy_penalises_only_the_bad_chunk() {
        let config = Config {
            max_bad_chunks: 2,
            endgame_duplicates: 0,
            ..cfg(1)
        };
        let (mut s, data) = sched(3, config);
        s.peer_joined(1, Bitfield::full(3)).expect("valid");
        let [(1, first)] = requests(&drain(&mut s, T0))[..] else {
            panic!("one request")
        };
        let verdict = s.chunk_received(&1, first, vec![0xee; CS], T0);
        assert!(matches!(
            verdict,
            Verdict::Rejected {
                error: VerifyError::HashMismatch { .. },
                banned: false
            }
        ));
        assert_eq!(s.availability(first), 0);
        // Re-announcing the bad chunk does not make it requestable from peer 1.
        s.peer_has(&1, first).expect("ignored");
        assert_eq!(s.availability(first), 0);
        let next = requests(&drain(&mut s, T0));
        assert_eq!(next.len(), 1);
        assert_ne!(next[0].1, first);
        // Rejoining keeps the mark.
        s.peer_joined(1, Bitfield::full(3)).expect("valid");
        assert_eq!(s.availability(first), 0);
        drain(&mut s, T0);
        // Another peer serves the chunk peer 1 got wrong.
        s.peer_joined(2, Bitfield::full(3)).expect("valid");
        let reqs = requests(&drain(&mut s, T0));
        assert!(reqs.contains(&(2, first)), "{reqs:?}");
        assert_eq!(
            s.chunk_received(&2, first, data[first as usize].clone(), T0),
            Verdict::Stored
        );
        // A second bad chunk, even an unrequested or out-of-range one, bans.
        let verdict = s.chunk_received(&1, 7, vec![], T0);
        assert!(matches!(
            verdict,
            Verdict::Rejected {
                error: VerifyError::NoSuchChunk { .. },
                banned: true
            }
        ));
        assert!(drain(&mut s, T0).contains(&Action::Ban { peer: 1 }));
        assert_eq!(
            s.peer_joined(1, Bitfield::full(3)),
            Err(SchedulerError::Banned)
        );
        assert_eq!(s.peer_has(&1, 0), Ok(()));
        assert_eq!(
            s.chunk_received(&1, 0, data[0].clone(), T0),
            Verdict::Ignored
        );
        let stats = &s.progress().peers[&1];
        assert_eq!(
            (stats.bad_chunks, stats.banned, stats.connected),
            (2, true, false)
        );
    }

    #[test]
    fn failed_chunk_goes_to_another_peer_first() {
        let config = Config {
            endgame_duplicates: 0,
            ..cfg(1)
        };
        let (mut s, _) = sched(1, config);
        s.peer_joined(1, Bitfield::full(1)).expect("valid");
        assert_eq!(requests(&drain(&mut s, T0)), [(1, 0)]);
        s.peer_joined(2, Bitfield::full(1)).expect("valid");
        assert_eq!(drain(&mut s, T0), []);
        s.request_failed(&1, 0, T0);
        assert_eq!(requests(&drain(&mut s, T0)), [(2, 0)]);
        s.request_failed(&2, 0, T0);
        // Both failed once: neither is asked again before `retry_after`,
        // then the smallest key is.
        assert_eq!(drain(&mut s, T0), []);
        let later = T0 + Config::default().retry_after;
        assert_eq!(s.poll_timeout(), Some(later));
        s.handle_timeout(later);
        assert_eq!(requests(&drain(&mut s, later)), [(1, 0)]);
        assert_eq!(s.progress().peers[&1].failed_requests, 1);
    }

    #[test]
    fn a_driver_that_fails_every_request_at_once_does_not_spin() {
        // The tab that froze: the driver could not reach the peer, failed
        // each request as it came, and the only peer that had the chunk was
        // asked again in the same round, for ever.
        let (mut s, _) = sched(3, cfg(4));
        s.peer_joined(1, Bitfield::full(3)).expect("valid");
        let mut asked = Vec::new();
        while let Some(action) = s.poll_action(T0) {
            if let Action::Request { peer, index } = action {
                asked.push(index);
                s.request_failed(&peer, index, T0);
            }
            assert!(asked.len() <= 3, "asked again in the same round: {asked:?}");
        }
        asked.sort_unstable();
        assert_eq!(asked, [0, 1, 2]);
        // A second later it is asked again, once per chunk.
        let later = T0 + Config::default().retry_after;
        s.handle_timeout(later - Duration::from_millis(1));
        assert_eq!(drain(&mut s, later - Duration::from_millis(1)), []);
        s.handle_timeout(later);
        assert_eq!(requests(&drain(&mut s, later)).len(), 3);
    }

    #[test]
    fn downloaders_are_asked_before_seeds() {
        let config = Config {
            endgame_duplicates: 0,
            ..cfg(2)
        };
        let (mut s, _) = sched(3, config);
        // Peer 1 is a complete seed; peer 2 has chunks 0 and 1.
        let mut partial = Bitfield::new(3);
        partial.set(0).expect("in range");
        partial.set(1).expect("in range");
        s.peer_joined(1, Bitfield::full(3)).expect("valid");
        s.peer_joined(2, partial).expect("valid");
        let mut reqs = requests(&drain(&mut s, T0));
        reqs.sort_unstable_by_key(|&(_, index)| index);
        // Chunk 2 only the seed has; chunks 0 and 1 both go to the
        // downloader, although the seed has a free slot and the smaller key.
        assert_eq!(reqs, [(2, 0), (2, 1), (1, 2)]);
    }

    #[test]
    fn timeouts_measure_silence() {
        let config = Config {
            request_timeout: Duration::from_secs(10),
            ..cfg(2)
        };
        let (mut s, data) = sched(4, config);
        s.peer_joined(1, Bitfield::full(4)).expect("valid");
        let reqs = requests(&drain(&mut s, T0));
        assert_eq!(reqs.len(), 2);
        assert_eq!(s.poll_timeout(), Some(Duration::from_secs(10)));
        // An answer at 8 s buys the other request another 10 s.
        let at8 = Duration::from_secs(8);
        assert_eq!(
            s.chunk_received(&1, reqs[0].1, data[reqs[0].1 as usize].clone(), at8),
            Verdict::Stored
        );
        drain(&mut s, at8);
        s.handle_timeout(Duration::from_secs(12));
        assert!(drain(&mut s, Duration::from_secs(12))
            .iter()
            .all(|a| !matches!(a, Action::Cancel { .. })));
        assert_eq!(s.poll_timeout(), Some(Duration::from_secs(18)));
        s.handle_timeout(Duration::from_secs(18));
        let actions = drain(&mut s, Duration::from_secs(18));
        assert!(
            actions.contains(&Action::Cancel {
                peer: 1,
                index: reqs[1].1
            }),
            "{actions:?}"
        );
        // The only peer is asked again (it is the only one that has it).
        assert!(requests(&actions).contains(&(1, reqs[1].1)));
    }

    /// The order in which one seeder is asked for all 16 chunks at once.
    fn first_order(seed: u64, tie_run: u32) -> Vec<u32> {
        let config = Config {
            seed,
            tie_run,
            ..cfg(16)
        };
        let (mut s, _) = sched(16, config);
        s.peer_joined(1, Bitfield::full(16)).expect("valid");
        requests(&drain(&mut s, T0))
            .into_iter()
            .map(|(_, i)| i)
            .collect()
    }

    #[test]
    fn seed_changes_the_order_of_equally_rare_chunks() {
        let order = |seed| first_order(seed, 1);
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
        let mut all = order(3);
        all.sort_unstable();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn equally_rare_chunks_go_in_runs_in_order_within_each() {
        let order = |seed| first_order(seed, 4);
        let runs = |order: &[u32]| order.chunks(4).map(|r| r[0] / 4).collect::<Vec<_>>();
        for seed in [1, 2, 3] {
            let o = order(seed);
            assert_eq!(o.len(), 16);
            for run in o.chunks(4) {
                let start = run[0];
                assert_eq!(start % 4, 0, "a run starts at its first chunk: {o:?}");
                assert_eq!(run, [start, start + 1, start + 2, start + 3], "{o:?}");
            }
        }
        // The seed orders the runs, and some seeds order them differently.
        assert_eq!(order(1), order(1));
        let orders: BTreeSet<Vec<u32>> = (1..=8).map(|seed| runs(&order(seed))).collect();
        assert!(orders.len() > 1, "8 seeds gave one run order: {orders:?}");
    }

    #[test]
    fn late_answer_after_timeout_is_taken_and_cancels_the_retry() {
        let config = Config {
            request_timeout: Duration::from_secs(1),
            endgame_duplicates: 0,
            ..cfg(1)
        };
        let (mut s, data) = sched(1, config);
        s.peer_joined(1, Bitfield::full(1)).expect("valid");
        s.peer_joined(2, Bitfield::full(1)).expect("valid");
        assert_eq!(requests(&drain(&mut s, T0)), [(1, 0)]);
        let t1 = Duration::from_secs(1);
        s.handle_timeout(t1);
        assert_eq!(
            drain(&mut s, t1),
            [
                Action::Cancel { peer: 1, index: 0 },
                Action::Request { peer: 2, index: 0 }
            ]
        );
        assert_eq!(
            s.chunk_received(&1, 0, data[0].clone(), t1),
            Verdict::Stored
        );
        assert_eq!(
            drain(&mut s, t1),
            [
                Action::Cancel { peer: 2, index: 0 },
                Action::Store {
                    index: 0,
                    bytes: data[0].clone()
                },
                Action::Announce { index: 0 },
                Action::Done
            ]
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn extreme_config_does_not_overflow() {
        let config = Config {
            request_timeout: Duration::MAX,
            endgame_duplicates: u32::MAX,
            max_bad_chunks: u32::MAX,
            max_in_flight_per_peer: u32::MAX,
            seed: u64::MAX,
            tie_run: u32::MAX,
            retry_after: Duration::MAX,
            focus_slots: u32::MAX,
        };
        let (mut s, data) = sched(3, config);
        s.peer_joined(1, Bitfield::full(3)).expect("valid");
        s.peer_joined(2, Bitfield::full(3)).expect("valid");
        let late = Duration::MAX - Duration::from_secs(1);
        let reqs = requests(&drain(&mut s, late));
        assert_eq!(
            reqs.len(),
            6,
            "three chunks, each asked of both peers in endgame"
        );
        assert_eq!(s.poll_timeout(), Some(Duration::MAX));
        for i in 0..3 {
            assert_eq!(
                s.chunk_received(&2, i, data[i as usize].clone(), late),
                Verdict::Stored
            );
        }
        assert_eq!(drain(&mut s, late).last(), Some(&Action::Done));
    }

    /// What a scheduler like `s` would request with no focus, in order.
    fn unfocused_order(chunks: u32, config: Config, peers: &[u8]) -> Vec<(u8, u32)> {
        let (mut s, _) = sched(chunks, config);
        for &p in peers {
            s.peer_joined(p, Bitfield::full(chunks)).expect("valid");
        }
        requests(&drain(&mut s, T0))
    }

    #[test]
    fn focus_is_requested_first_in_order_within_its_slots() {
        let config = Config {
            endgame_duplicates: 0,
            ..cfg(4)
        };
        let (mut s, data) = sched(32, config.clone());
        s.set_focus(Some(8..16));
        s.peer_joined(1, Bitfield::full(32)).expect("valid");
        let reqs = requests(&drain(&mut s, T0));
        // Two slots (focus_slots) for the focus, from its start; the other
        // two rarest first, as without focus (less the chunks taken).
        let rest: Vec<(u8, u32)> = unfocused_order(32, config, &[1])
            .into_iter()
            .filter(|&(_, i)| i != 8 && i != 9)
            .take(2)
            .collect();
        assert_eq!(reqs[..2], [(1, 8), (1, 9)]);
        assert_eq!(reqs[2..], rest[..]);
        // A focus chunk arrives: its slot goes to the next focus chunk not
        // yet asked for.
        assert_eq!(
            s.chunk_received(&1, 8, data[8].clone(), T0),
            Verdict::Stored
        );
        let next = requests(&drain(&mut s, T0));
        let expected = (10..16).find(|i| !rest.iter().any(|&(_, r)| r == *i));
        assert_eq!(next, [(1, expected.expect("a focus chunk left"))]);
    }

    #[test]
    fn rarest_first_keeps_its_slots_while_focused() {
        let config = Config {
            endgame_duplicates: 0,
            ..cfg(4)
        };
        let (mut s, data) = sched(32, config);
        s.set_focus(Some(0..32));
        s.peer_joined(1, Bitfield::full(32)).expect("valid");
        let reqs = requests(&drain(&mut s, T0));
        assert_eq!(reqs[..2], [(1, 0), (1, 1)]);
        // A chunk outside the first two arrives: its slot is not a focus
        // slot, and the focus has both of its own: rarest first refills it
        // (any chunk but the focus's next in order, 2, proves it).
        let other = reqs[2].1;
        assert_eq!(
            s.chunk_received(&1, other, data[other as usize].clone(), T0),
            Verdict::Stored
        );
        let next = requests(&drain(&mut s, T0));
        assert_eq!(next.len(), 1);
        assert_ne!(next[0].1, 2, "{next:?}");
    }

    #[test]
    fn requests_in_flight_before_the_focus_do_not_take_its_slots() {
        let config = Config {
            endgame_duplicates: 0,
            ..cfg(4)
        };
        let (mut s, data) = sched(12, config);
        s.peer_joined(1, Bitfield::full(12)).expect("valid");
        let first = requests(&drain(&mut s, T0));
        assert_eq!(first.len(), 4);
        // The whole file is the focus: the four rarest-first requests in
        // flight lie inside it, but were not made for it.
        s.set_focus(Some(0..12));
        assert_eq!(drain(&mut s, T0), []);
        let asked = |c: u32, list: &[(u8, u32)]| list.iter().any(|&(_, r)| r == c);
        let mut expected = (0..12).filter(|&c| !asked(c, &first));
        for &(_, i) in &first[..2] {
            assert_eq!(
                s.chunk_received(&1, i, data[i as usize].clone(), T0),
                Verdict::Stored
            );
            let next = requests(&drain(&mut s, T0));
            assert_eq!(next, [(1, expected.next().expect("one left"))]);
        }
        // Both focus slots are taken now: the next free slot goes rarest
        // first (here, with one peer and everything in focus, the rarest
        // is some chunk not asked yet).
        let (_, i) = first[2];
        assert_eq!(
            s.chunk_received(&1, i, data[i as usize].clone(), T0),
            Verdict::Stored
        );
        assert_eq!(requests(&drain(&mut s, T0)).len(), 1);
    }

    #[test]
    fn seek_moves_the_next_requests_to_the_new_focus() {
        let config = Config {
            endgame_duplicates: 0,
            ..cfg(4)
        };
        let (mut s, data) = sched(64, config);
        s.set_focus(Some(0..8));
        s.peer_joined(1, Bitfield::full(64)).expect("valid");
        let first = requests(&drain(&mut s, T0));
        assert_eq!(first[..2], [(1, 0), (1, 1)]);
        // Seek to chunk 50: the old requests stay, and the slots that free
        // up go to 50, 51, in order.
        s.set_focus(Some(50..58));
        assert_eq!(requests(&drain(&mut s, T0)), []);
        for &(_, i) in &first[..2] {
            assert_eq!(
                s.chunk_received(&1, i, data[i as usize].clone(), T0),
                Verdict::Stored
            );
        }
        let next = requests(&drain(&mut s, T0));
        // Rarest-first requests still in flight inside the new focus use
        // focus slots too; the other focus slots go to 50, 51, … in order.
        let in_focus = first[2..].iter().filter(|&&(_, i)| (50..58).contains(&i));
        let focus_free = 2 - in_focus.count();
        let expected: Vec<(u8, u32)> = (50..58)
            .filter(|i| !first.iter().any(|&(_, r)| r == *i))
            .take(focus_free)
            .map(|i| (1, i))
            .collect();
        assert_eq!(next.len(), 2);
        assert_eq!(next[..focus_free], expected[..]);
        assert_eq!(next[0], (1, 50));
        assert_eq!(s.focus(), Some(50..58));
        // No focus: back to rarest first alone.
        s.set_focus(None);
        assert_eq!(s.focus(), None);
    }

    #[test]
    fn focus_goes_to_the_peer_that_has_the_chunk_and_skips_unwanted() {
        let config = Config {
            endgame_duplicates: 0,
            ..cfg(4)
        };
        let (mut s, _) = sched(16, config);
        let mut wanted = Bitfield::full(16);
        wanted.clear(4).expect("in range");
        s.set_wanted(wanted).expect("valid");
        assert_eq!(drain(&mut s, T0), []);
        // Peer 1 has no chunk 5; peer 2 has only 5 and 6.
        let mut some = Bitfield::full(16);
        some.clear(5).expect("in range");
        let mut two = Bitfield::new(16);
        two.set(5).expect("in range");
        two.set(6).expect("in range");
        s.set_focus(Some(4..8));
        s.peer_joined(1, some).expect("valid");
        s.peer_joined(2, two).expect("valid");
        let reqs = requests(&drain(&mut s, T0));
        // 4 is unwanted; 5 only peer 2 has; 6 goes to the downloader with
        // fewer chunks (peer 2) too; 7 to peer 1.
        assert_eq!(reqs[..3], [(2, 5), (2, 6), (1, 7)]);
        assert!(reqs.iter().all(|&(_, i)| i != 4), "{reqs:?}");
    }

    #[test]
    fn focus_is_clipped_and_off_with_zero_slots() {
        let (mut s, _) = sched(4, cfg(4));
        s.set_focus(Some(2..100));
        assert_eq!(s.focus(), Some(2..4));
        s.set_focus(Some(9..12));
        assert_eq!(s.focus(), None);
        let config = Config {
            focus_slots: 0,
            endgame_duplicates: 0,
            ..cfg(2)
        };
        let order = unfocused_order(32, config.clone(), &[1]);
        let (mut s, _) = sched(32, config);
        s.set_focus(Some(20..24));
        s.peer_joined(1, Bitfield::full(32)).expect("valid");
        assert_eq!(requests(&drain(&mut s, T0)), order);
    }

    /// Planning cost at the largest manifest: 20 seeders, every chunk
    /// delivered in turn. Run by hand:
    /// `cargo test -p shoal-share --release --lib -- --ignored --nocapture scheduler_at_scale`
    #[test]
    #[ignore = "benchmark; run by hand in release mode"]
    #[cfg(not(target_arch = "wasm32"))]
    fn scheduler_at_scale() {
        use crate::chunk::hash_chunk;
        use crate::manifest::MAX_CHUNKS;
        let zeros = vec![0u8; CS];
        let hash = hash_chunk(&zeros);
        let count = MAX_CHUNKS;
        let size = u64::from(count) * CS as u64;
        let m = Manifest::new(
            "big".into(),
            String::new(),
            size,
            MIN_CHUNK_SIZE,
            vec![hash; count as usize],
        )
        .expect("valid");
        let start = std::time::Instant::now();
        let mut s =
            Scheduler::<u8>::new(m, Bitfield::new(count), Config::default()).expect("valid");
        for p in 0..20 {
            s.peer_joined(p, Bitfield::full(count)).expect("valid");
        }
        let mut pending: VecDeque<(u8, u32)> = VecDeque::new();
        let joined = start.elapsed();
        let mut done = false;
        while !done {
            while let Some(a) = s.poll_action(T0) {
                match a {
                    Action::Request { peer, index } => pending.push_back((peer, index)),
                    Action::Done => done = true,
                    _ => {}
                }
            }
            if let Some((peer, index)) = pending.pop_front() {
                s.chunk_received(&peer, index, zeros.clone(), T0);
            }
        }
        let total = start.elapsed();
        println!(
            "{count} chunks, 20 peers: joins {joined:?}, whole download {total:?} ({:.1} µs a chunk, incl. verify)",
            total.as_secs_f64() * 1e6 / f64::from(count)
        );
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Join(u8, Vec<bool>),
            Has(u8, u32),
            Left(u8),
            /// Good bytes for the chunk if `true`, else garbage.
            Chunk(u8, u32, bool),
            Failed(u8, u32),
            Timeout(u64),
            Poll(u64),
            Focus(Option<(u32, u32)>),
        }

        fn op() -> impl Strategy<Value = Op> {
            let peer = 0u8..4;
            let index = 0u32..7; // one past the end, to test rejection
            prop_oneof![
                (peer.clone(), proptest::collection::vec(any::<bool>(), 5..7))
                    .prop_map(|(p, b)| Op::Join(p, b)),
                (peer.clone(), index.clone()).prop_map(|(p, i)| Op::Has(p, i)),
                peer.clone().prop_map(Op::Left),
                (peer.clone(), index.clone(), any::<bool>())
                    .prop_map(|(p, i, g)| Op::Chunk(p, i, g)),
                (peer, index).prop_map(|(p, i)| Op::Failed(p, i)),
                (0u64..100).prop_map(Op::Timeout),
                (0u64..100).prop_map(Op::Poll),
                proptest::option::of((0u32..8, 0u32..8)).prop_map(Op::Focus),
            ]
        }

        proptest! {
            /// Whatever a driver or peers do, the scheduler neither panics
            /// nor breaks its own bounds.
            #[test]
            fn arbitrary_inputs_keep_invariants(
                ops in proptest::collection::vec(op(), 0..80),
                max_in_flight in 1u32..3,
                max_bad_chunks in 1u32..3,
                endgame_duplicates in 0u32..3,
                focus_slots in 0u32..3,
                tie_run in 1u32..8,
            ) {
                let config = Config {
                    max_in_flight_per_peer: max_in_flight,
                    max_bad_chunks,
                    endgame_duplicates,
                    request_timeout: Duration::from_secs(10),
                    seed: 1,
                    tie_run,
                    retry_after: Duration::from_secs(1),
                    focus_slots,
                };
                let (mut s, data) = sched(6, config);
                let mut outstanding: BTreeSet<(u8, u32)> = BTreeSet::new();
                let mut failed_at: std::collections::BTreeMap<(u8, u32), Duration> = Default::default();
                let mut stored = BTreeSet::new();
                let mut now = Duration::ZERO;
                for op in ops {
                    match op {
                        Op::Join(p, bits) => {
                            let mut field = Bitfield::new(bits.len() as u32);
                            for (i, _) in bits.iter().enumerate().filter(|(_, &b)| b) {
                                field.set(i as u32).expect("in range");
                            }
                            if s.peer_joined(p, field).is_ok() {
                                outstanding.retain(|&(q, _)| q != p);
                                // A new connection starts with a clean slate.
                                failed_at.retain(|&(q, _), _| q != p);
                            }
                        }
                        Op::Has(p, i) => { let _ = s.peer_has(&p, i); }
                        Op::Left(p) => {
                            s.peer_left(&p);
                            outstanding.retain(|&(q, _)| q != p);
                        }
                        Op::Chunk(p, i, good) => {
                            let bytes = if good { data.get(i as usize).cloned().unwrap_or_default() } else { vec![1, 2, 3] };
                            outstanding.remove(&(p, i));
                            let _ = s.chunk_received(&p, i, bytes, now);
                        }
                        Op::Failed(p, i) => {
                            if outstanding.remove(&(p, i)) {
                                failed_at.insert((p, i), now);
                            }
                            s.request_failed(&p, i, now);
                        }
                        Op::Timeout(dt) => {
                            now += Duration::from_secs(dt);
                            s.handle_timeout(now);
                        }
                        Op::Poll(dt) => now += Duration::from_millis(dt),
                        Op::Focus(f) => s.set_focus(f.map(|(a, b)| a..b)),
                    }
                    while let Some(action) = s.poll_action(now) {
                        match action {
                            Action::Request { peer, index } => {
                                prop_assert!(outstanding.insert((peer, index)), "duplicate request");
                                if let Some(&at) = failed_at.get(&(peer, index)) {
                                    prop_assert!(now >= at + Duration::from_secs(1), "asked again too soon");
                                }
                                prop_assert!(!stored.contains(&index));
                                prop_assert!(s.wanted().get(index), "unwanted chunk requested");
                                let window = outstanding.iter().filter(|&&(q, _)| q == peer).count() as u32;
                                prop_assert!(window <= max_in_flight);
                            }
                            Action::Cancel { peer, index } => {
                                prop_assert!(outstanding.remove(&(peer, index)), "cancel of nothing");
                            }
                            Action::Store { index, bytes } => {
                                prop_assert!(stored.insert(index), "stored twice");
                                prop_assert_eq!(&bytes, &data[index as usize]);
                            }
                            Action::Ban { peer } => {
                                prop_assert!(outstanding.iter().all(|&(q, _)| q != peer));
                            }
                            Action::Announce { .. } => {}
                            Action::Done => prop_assert_eq!(stored.len(), 6),
                        }
                    }
                    let progress = s.progress();
                    prop_assert_eq!(progress.chunks_done as usize, stored.len());
                    let in_flight: u32 = progress.peers.values().map(|p| p.in_flight).sum();
                    prop_assert_eq!(in_flight as usize, outstanding.len());
                }
            }
        }
    }
}
