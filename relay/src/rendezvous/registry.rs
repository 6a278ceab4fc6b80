//! The rendezvous registry, sans-IO: requests and `now` in, answers out. No
//! clock, no sockets; [`super::behaviour`] feeds it.
//!
//! # Policy
//! - Only namespaces `shoal/<swarm>` ([`Policy::prefix`]); discovery must
//!   name one (no listing of every swarm).
//! - TTLs are clamped to [`Policy::min_ttl`]..=[`Policy::max_ttl`] and the
//!   granted TTL is answered; a registration is served only until it expires.
//! - Caps per peer, per client address, per namespace and in total; a
//!   re-registration replaces the peer's entry in that namespace and counts
//!   once.
//! - Everything a peer registered is dropped when its last connection
//!   closes ([`Registry::peer_disconnected`]).
//! - Discovery answers are paged: at most [`Policy::page`] entries, in
//!   registration order, and a [`Cookie`] that asks for the ones after.
//!
//! # Cookies
//! A cookie is the sequence number of the last registration returned (8
//! bytes, big endian) followed by the namespace, the layout rust-libp2p's
//! client parses. Every (re-)registration takes the next number, so a cookie
//! means "what registered or renewed since" and the server keeps no state per
//! cookie. Numbers start at a value the driver picks (the wall clock in
//! microseconds), so a cookie from before a restart asks for everything.
//!
//! # Envelope forms
//! Records come signed in the legacy envelope (rust-libp2p) or the current
//! `libp2p-peer-record` one (js-libp2p, go-libp2p). A client can only read
//! the form it writes (rust-libp2p's client fails a whole answer on one
//! record it cannot read), so an answer holds only records of the form the
//! enquirer last registered with, legacy when it has not registered.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::admission::AddrKey;
use crate::limits;

/// How a peer record is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// Domain `libp2p-routing-state`, payload type
    /// `/libp2p/routing-state-record`: what rust-libp2p signs and reads.
    Legacy,
    /// Domain `libp2p-peer-record`, payload type `0x0301`: the libp2p spec's.
    Standard,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Legacy => "legacy",
            Form::Standard => "standard",
        }
    }
}

/// A signed peer record whose signature was checked: the envelope bytes as
/// received, served to others verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRecord {
    /// The peer the record is signed by and names.
    pub peer: PeerId,
    pub form: Form,
    pub envelope: Vec<u8>,
}

/// The protocol's status codes for refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InvalidNamespace = 100,
    InvalidSignedPeerRecord = 101,
    InvalidTtl = 102,
    InvalidCookie = 103,
    NotAuthorized = 200,
    InternalError = 300,
    Unavailable = 400,
}

/// Why a request was refused. Each maps to a status code for the client and
/// a reason label for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("namespace {0:?} is not a shoal swarm (`shoal/<swarm>`)")]
    ForeignNamespace(String),
    #[error("discovery must name a swarm")]
    NamespaceRequired,
    #[error("the signed peer record is {size} bytes, over the limit of {limit}")]
    RecordTooLarge { size: usize, limit: usize },
    #[error("the signed peer record has {count} addresses, over the limit of {limit}")]
    TooManyAddresses { count: usize, limit: usize },
    #[error("bad signed peer record: {0}")]
    BadRecord(&'static str),
    #[error("the peer record is signed by {signer}, not by the registering peer")]
    WrongPeer { signer: PeerId },
    #[error("this peer already holds {0} registrations")]
    PeerFull(usize),
    #[error("this address already holds {0} registrations")]
    AddressFull(usize),
    #[error("this swarm already has {0} registrations")]
    SwarmFull(usize),
    #[error("the registry is full ({0} registrations)")]
    RegistryFull(usize),
    #[error("bad cookie")]
    BadCookie,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

impl Refusal {
    /// The status code answered to the client.
    pub fn status(&self) -> Status {
        match self {
            Refusal::ForeignNamespace(_) | Refusal::NamespaceRequired => Status::InvalidNamespace,
            Refusal::RecordTooLarge { .. }
            | Refusal::TooManyAddresses { .. }
            | Refusal::BadRecord(_) => Status::InvalidSignedPeerRecord,
            Refusal::WrongPeer { .. } => Status::NotAuthorized,
            Refusal::PeerFull(_)
            | Refusal::AddressFull(_)
            | Refusal::SwarmFull(_)
            | Refusal::RegistryFull(_) => Status::Unavailable,
            Refusal::BadCookie => Status::InvalidCookie,
            Refusal::Malformed(_) => Status::InternalError,
        }
    }

    /// A short label for metrics and logs (no peer data).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::ForeignNamespace(_) => "foreign_namespace",
            Refusal::NamespaceRequired => "namespace_required",
            Refusal::RecordTooLarge { .. } => "record_too_large",
            Refusal::TooManyAddresses { .. } => "too_many_addresses",
            Refusal::BadRecord(_) => "bad_record",
            Refusal::WrongPeer { .. } => "wrong_peer",
            Refusal::PeerFull(_) => "peer_full",
            Refusal::AddressFull(_) => "address_full",
            Refusal::SwarmFull(_) => "swarm_full",
            Refusal::RegistryFull(_) => "registry_full",
            Refusal::BadCookie => "bad_cookie",
            Refusal::Malformed(_) => "malformed",
        }
    }

    /// Every reason label, to show zeros in `/metrics` from the start.
    pub const REASONS: [&'static str; 12] = [
        "foreign_namespace",
        "namespace_required",
        "record_too_large",
        "too_many_addresses",
        "bad_record",
        "wrong_peer",
        "peer_full",
        "address_full",
        "swarm_full",
        "registry_full",
        "bad_cookie",
        "malformed",
    ];
}

/// What the registry accepts; [`Policy::default`] is [`crate::limits`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub prefix: &'static str,
    pub max_namespace: usize,
    pub min_ttl: u64,
    pub max_ttl: u64,
    pub per_peer: usize,
    pub per_ip: usize,
    pub per_namespace: usize,
    pub total: usize,
    pub page: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            prefix: limits::RENDEZVOUS_NAMESPACE_PREFIX,
            max_namespace: limits::RENDEZVOUS_MAX_NAMESPACE,
            min_ttl: limits::RENDEZVOUS_MIN_TTL,
            max_ttl: limits::RENDEZVOUS_MAX_TTL,
            per_peer: limits::RENDEZVOUS_PER_PEER,
            per_ip: limits::RENDEZVOUS_PER_IP,
            per_namespace: limits::RENDEZVOUS_PER_NAMESPACE,
            total: limits::RENDEZVOUS_TOTAL,
            page: limits::RENDEZVOUS_DISCOVER_LIMIT,
        }
    }
}

/// Where a discovery answer stopped: pass it back for what came after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub seq: u64,
    pub namespace: String,
}

impl Cookie {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.seq.to_be_bytes().to_vec();
        out.extend_from_slice(self.namespace.as_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Refusal> {
        let (seq, ns) = bytes.split_first_chunk::<8>().ok_or(Refusal::BadCookie)?;
        let namespace = std::str::from_utf8(ns).map_err(|_| Refusal::BadCookie)?;
        Ok(Self {
            seq: u64::from_be_bytes(*seq),
            namespace: namespace.to_owned(),
        })
    }
}

/// One registration in a discovery answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub namespace: String,
    pub envelope: Vec<u8>,
    /// Seconds left.
    pub ttl: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub registrations: Vec<Found>,
    pub cookie: Cookie,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    expires: Instant,
    ip: AddrKey,
    record: SignedRecord,
}

#[derive(Debug)]
struct PeerState {
    namespaces: Vec<String>,
    /// The form of its last registration: what it can read.
    reads: Form,
}

/// Every live registration, with the counts the caps need.
#[derive(Debug)]
pub struct Registry {
    policy: Policy,
    entries: HashMap<(String, PeerId), Entry>,
    /// Per namespace, sequence number → peer: the order discovery pages in.
    by_namespace: HashMap<String, BTreeMap<u64, PeerId>>,
    peers: HashMap<PeerId, PeerState>,
    per_ip: HashMap<AddrKey, usize>,
    next_seq: u64,
}

impl Registry {
    /// `first_seq`: the first sequence number handed out (see [Cookies](self#cookies)).
    pub fn new(policy: Policy, first_seq: u64) -> Self {
        Self {
            policy,
            entries: HashMap::new(),
            by_namespace: HashMap::new(),
            peers: HashMap::new(),
            per_ip: HashMap::new(),
            next_seq: first_seq,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Namespaces with at least one registration.
    pub fn namespaces(&self) -> usize {
        self.by_namespace.len()
    }

    fn check_namespace(&self, namespace: &str) -> Result<(), Refusal> {
        let swarm = namespace.strip_prefix(self.policy.prefix);
        if swarm.is_none_or(str::is_empty) || namespace.len() > self.policy.max_namespace {
            return Err(Refusal::ForeignNamespace(truncate(namespace)));
        }
        Ok(())
    }

    /// REGISTER from `peer` (connected from `ip`): the granted TTL, or why not.
    pub fn register(
        &mut self,
        peer: PeerId,
        ip: AddrKey,
        namespace: &str,
        record: SignedRecord,
        ttl: Option<u64>,
        now: Instant,
    ) -> Result<u64, Refusal> {
        self.check_namespace(namespace)?;
        if record.peer != peer {
            return Err(Refusal::WrongPeer {
                signer: record.peer,
            });
        }
        let ttl = ttl
            .unwrap_or(self.policy.max_ttl)
            .clamp(self.policy.min_ttl, self.policy.max_ttl);
        let key = (namespace.to_owned(), peer);
        let form = record.form;
        let expires = now + Duration::from_secs(ttl);
        if let Some(old) = self.entries.remove(&key) {
            // A renewal: replaces the entry, takes a new place in the order.
            self.unindex(namespace, old.seq);
            self.release_ip(old.ip);
            self.insert(key, ip, record, expires);
        } else {
            let held = self.peers.get(&peer).map_or(0, |p| p.namespaces.len());
            if held >= self.policy.per_peer {
                return Err(Refusal::PeerFull(held));
            }
            let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
            if from_ip >= self.policy.per_ip {
                return Err(Refusal::AddressFull(from_ip));
            }
            let in_ns = self.by_namespace.get(namespace).map_or(0, BTreeMap::len);
            if in_ns >= self.policy.per_namespace {
                return Err(Refusal::SwarmFull(in_ns));
            }
            if self.entries.len() >= self.policy.total {
                return Err(Refusal::RegistryFull(self.entries.len()));
            }
            self.peers
                .entry(peer)
                .or_insert_with(|| PeerState {
                    namespaces: Vec::new(),
                    reads: form,
                })
                .namespaces
                .push(namespace.to_owned());
            self.insert(key, ip, record, expires);
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.reads = form;
        }
        Ok(ttl)
    }

    fn insert(
        &mut self,
        key: (String, PeerId),
        ip: AddrKey,
        record: SignedRecord,
        expires: Instant,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_namespace
            .entry(key.0.clone())
            .or_default()
            .insert(seq, key.1);
        *self.per_ip.entry(ip).or_insert(0) += 1;
        self.entries.insert(
            key,
            Entry {
                seq,
                expires,
                ip,
                record,
            },
        );
    }

    fn unindex(&mut self, namespace: &str, seq: u64) {
        if let Some(index) = self.by_namespace.get_mut(namespace) {
            index.remove(&seq);
            if index.is_empty() {
                self.by_namespace.remove(namespace);
            }
        }
    }

    fn release_ip(&mut self, ip: AddrKey) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    fn remove(&mut self, namespace: &str, peer: PeerId) -> bool {
        let Some(entry) = self.entries.remove(&(namespace.to_owned(), peer)) else {
            return false;
        };
        self.unindex(namespace, entry.seq);
        self.release_ip(entry.ip);
        if let Some(state) = self.peers.get_mut(&peer) {
            state.namespaces.retain(|ns| ns != namespace);
            if state.namespaces.is_empty() {
                self.peers.remove(&peer);
            }
        }
        true
    }

    /// UNREGISTER: whether there was something to remove. Never refused.
    pub fn unregister(&mut self, peer: PeerId, namespace: &str) -> bool {
        self.remove(namespace, peer)
    }

    /// The peer's last connection closed: drop all it registered. Returns
    /// how many registrations went.
    pub fn peer_disconnected(&mut self, peer: PeerId) -> usize {
        let Some(state) = self.peers.get(&peer) else {
            return 0;
        };
        let namespaces = state.namespaces.clone();
        namespaces.iter().filter(|ns| self.remove(ns, peer)).count()
    }

    /// DISCOVER from `peer`: a page of registrations in `namespace` after
    /// `cookie`, at most `limit` (clamped to [`Policy::page`]).
    pub fn discover(
        &self,
        peer: PeerId,
        namespace: Option<&str>,
        cookie: Option<&[u8]>,
        limit: Option<u64>,
        now: Instant,
    ) -> Result<Page, Refusal> {
        let namespace = namespace.ok_or(Refusal::NamespaceRequired)?;
        self.check_namespace(namespace)?;
        let after = match cookie {
            Some(bytes) => {
                let cookie = Cookie::from_bytes(bytes)?;
                if cookie.namespace != namespace || cookie.seq >= self.next_seq {
                    return Err(Refusal::BadCookie);
                }
                Some(cookie.seq)
            }
            None => None,
        };
        let limit = limit.unwrap_or(self.policy.page).clamp(1, self.policy.page);
        let reads = self.peers.get(&peer).map_or(Form::Legacy, |p| p.reads);
        let mut registrations = Vec::new();
        let mut last = after;
        if let Some(index) = self.by_namespace.get(namespace) {
            let from = after.map_or(0, |seq| seq.saturating_add(1));
            for (&seq, &owner) in index.range(from..) {
                if registrations.len() as u64 >= limit {
                    break;
                }
                last = Some(seq);
                let Some(entry) = self.entries.get(&(namespace.to_owned(), owner)) else {
                    continue;
                };
                if entry.expires <= now || entry.record.form != reads {
                    continue;
                }
                registrations.push(Found {
                    namespace: namespace.to_owned(),
                    envelope: entry.record.envelope.clone(),
                    ttl: entry
                        .expires
                        .saturating_duration_since(now)
                        .as_secs()
                        .max(1),
                });
            }
        }
        let cookie = Cookie {
            // Nothing seen yet: start before the next registration.
            seq: last.unwrap_or(self.next_seq.saturating_sub(1)),
            namespace: namespace.to_owned(),
        };
        Ok(Page {
            registrations,
            cookie,
        })
    }

    /// Drops expired registrations; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let expired: Vec<(String, PeerId)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .iter()
            .filter(|(ns, peer)| self.remove(ns, *peer))
            .count()
    }
}

/// Namespaces from clients are echoed in logs and errors: at most 64 bytes.
fn truncate(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    const NS: &str = "shoal/default";

    fn ip(s: &str) -> AddrKey {
        AddrKey::from(s.parse::<IpAddr>().expect("ip"))
    }

    fn record(peer: PeerId, form: Form) -> SignedRecord {
        SignedRecord {
            peer,
            form,
            envelope: peer.to_bytes(),
        }
    }

    fn small() -> Policy {
        Policy {
            per_peer: 2,
            per_ip: 3,
            per_namespace: 4,
            total: 5,
            page: 2,
            ..Policy::default()
        }
    }

    fn reg(
        r: &mut Registry,
        peer: PeerId,
        addr: &str,
        ns: &str,
        now: Instant,
    ) -> Result<u64, Refusal> {
        r.register(
            peer,
            ip(addr),
            ns,
            record(peer, Form::Legacy),
            Some(300),
            now,
        )
    }

    #[test]
    fn namespaces_must_be_shoal_swarms() {
        let mut r = Registry::new(Policy::default(), 1);
        let now = Instant::now();
        let p = PeerId::random();
        for bad in ["other", "shoal/", "shoal", "", "Shoal/x"] {
            assert!(
                matches!(
                    reg(&mut r, p, "10.0.0.1", bad, now),
                    Err(Refusal::ForeignNamespace(_))
                ),
                "{bad}"
            );
        }
        let long = format!("shoal/{}", "x".repeat(250));
        assert_eq!(
            reg(&mut r, p, "10.0.0.1", &long, now).map_err(|e| e.status()),
            Err(Status::InvalidNamespace)
        );
        assert_eq!(reg(&mut r, p, "10.0.0.1", NS, now), Ok(300));
        assert_eq!(
            r.discover(p, None, None, None, now),
            Err(Refusal::NamespaceRequired)
        );
        assert!(r.discover(p, Some("other/x"), None, None, now).is_err());
    }

    #[test]
    fn ttl_is_clamped_and_expired_entries_are_not_served() {
        let mut r = Registry::new(Policy::default(), 1);
        let now = Instant::now();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let ttl = |t| Some(t);
        assert_eq!(
            r.register(
                a,
                ip("10.0.0.1"),
                NS,
                record(a, Form::Legacy),
                ttl(7200),
                now
            ),
            Ok(limits::RENDEZVOUS_MAX_TTL)
        );
        assert_eq!(
            r.register(b, ip("10.0.0.1"), NS, record(b, Form::Legacy), ttl(1), now),
            Ok(limits::RENDEZVOUS_MIN_TTL)
        );
        assert_eq!(
            r.register(c, ip("10.0.0.1"), NS, record(c, Form::Legacy), None, now),
            Ok(limits::RENDEZVOUS_MAX_TTL)
        );
        let later = now + Duration::from_secs(limits::RENDEZVOUS_MIN_TTL);
        let page = r
            .discover(a, Some(NS), None, None, later)
            .expect("discover");
        assert_eq!(page.registrations.len(), 2, "b expired");
        assert!(page
            .registrations
            .iter()
            .all(|f| f.ttl <= limits::RENDEZVOUS_MAX_TTL));
        assert_eq!(r.expire(later), 1);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn record_must_be_the_registering_peers() {
        let mut r = Registry::new(Policy::default(), 1);
        let (a, b) = (PeerId::random(), PeerId::random());
        let res = r.register(
            a,
            ip("10.0.0.1"),
            NS,
            record(b, Form::Legacy),
            None,
            Instant::now(),
        );
        assert_eq!(res, Err(Refusal::WrongPeer { signer: b }));
        assert_eq!(res.map_err(|e| e.status()), Err(Status::NotAuthorized));
    }

    #[test]
    fn caps_per_peer_ip_namespace_and_total() {
        let mut r = Registry::new(small(), 1);
        let now = Instant::now();
        let a = PeerId::random();
        assert!(reg(&mut r, a, "10.0.0.1", "shoal/1", now).is_ok());
        assert!(reg(&mut r, a, "10.0.0.1", "shoal/2", now).is_ok());
        // Renewal counts once.
        assert!(reg(&mut r, a, "10.0.0.1", "shoal/2", now).is_ok());
        assert_eq!(
            reg(&mut r, a, "10.0.0.1", "shoal/3", now),
            Err(Refusal::PeerFull(2))
        );
        // Third from this address is the last.
        assert!(reg(&mut r, PeerId::random(), "10.0.0.1", "shoal/1", now).is_ok());
        assert_eq!(
            reg(&mut r, PeerId::random(), "10.0.0.1", "shoal/1", now),
            Err(Refusal::AddressFull(3))
        );
        // IPv6 counts per /64.
        for i in 0..2 {
            assert!(reg(
                &mut r,
                PeerId::random(),
                &format!("2001:db8::{i}"),
                "shoal/1",
                now
            )
            .is_ok());
        }
        assert_eq!(
            reg(&mut r, PeerId::random(), "2001:db8::ff", "shoal/1", now),
            Err(Refusal::SwarmFull(4))
        );
        assert_eq!(r.len(), 5);
        assert_eq!(
            reg(&mut r, PeerId::random(), "10.0.0.9", "shoal/9", now),
            Err(Refusal::RegistryFull(5))
        );
        assert_eq!(Refusal::RegistryFull(5).status(), Status::Unavailable);
        // Leaving frees every count.
        assert_eq!(r.peer_disconnected(a), 2);
        assert!(reg(&mut r, PeerId::random(), "10.0.0.1", "shoal/9", now).is_ok());
    }

    #[test]
    fn disconnect_and_unregister_drop_registrations() {
        let mut r = Registry::new(Policy::default(), 1);
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        reg(&mut r, a, "10.0.0.1", NS, now).expect("a");
        reg(&mut r, b, "10.0.0.2", NS, now).expect("b");
        assert!(r.unregister(b, NS));
        assert!(!r.unregister(b, NS));
        assert_eq!(r.peer_disconnected(a), 1);
        assert!(r.is_empty());
        assert!(r.entries.is_empty() && r.by_namespace.is_empty());
        assert!(r.peers.is_empty() && r.per_ip.is_empty());
    }

    #[test]
    fn discovery_pages_with_cookies_and_sees_renewals() {
        let mut r = Registry::new(small(), 1_000);
        let now = Instant::now();
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        for (i, p) in peers.iter().enumerate() {
            reg(&mut r, *p, &format!("10.0.0.{i}"), NS, now).expect("register");
        }
        let me = PeerId::random();
        let first = r
            .discover(me, Some(NS), None, Some(100), now)
            .expect("page 1");
        assert_eq!(first.registrations.len(), 2, "clamped to the page size");
        assert_eq!(first.registrations[0].envelope, peers[0].to_bytes());
        let bytes = first.cookie.to_bytes();
        let second = r
            .discover(me, Some(NS), Some(&bytes), None, now)
            .expect("page 2");
        assert_eq!(second.registrations.len(), 1);
        assert_eq!(second.registrations[0].envelope, peers[2].to_bytes());
        let bytes = second.cookie.to_bytes();
        let third = r
            .discover(me, Some(NS), Some(&bytes), None, now)
            .expect("page 3");
        assert!(third.registrations.is_empty());
        assert_eq!(third.cookie, second.cookie);
        // A renewal shows up again after the cookie.
        reg(&mut r, peers[0], "10.0.0.0", NS, now).expect("renew");
        let again = r
            .discover(me, Some(NS), Some(&bytes), None, now)
            .expect("renewed");
        assert_eq!(again.registrations.len(), 1);
        assert_eq!(again.registrations[0].envelope, peers[0].to_bytes());
    }

    #[test]
    fn empty_namespace_cookie_sees_later_registrations() {
        let mut r = Registry::new(Policy::default(), 50);
        let now = Instant::now();
        let me = PeerId::random();
        let empty = r.discover(me, Some(NS), None, None, now).expect("empty");
        assert!(empty.registrations.is_empty());
        let a = PeerId::random();
        reg(&mut r, a, "10.0.0.1", NS, now).expect("a");
        let bytes = empty.cookie.to_bytes();
        let page = r
            .discover(me, Some(NS), Some(&bytes), None, now)
            .expect("page");
        assert_eq!(page.registrations.len(), 1);
    }

    #[test]
    fn bad_cookies_are_refused() {
        let mut r = Registry::new(Policy::default(), 10);
        let now = Instant::now();
        reg(&mut r, PeerId::random(), "10.0.0.1", NS, now).expect("a");
        let me = PeerId::random();
        let other_ns = Cookie {
            seq: 10,
            namespace: "shoal/other".into(),
        }
        .to_bytes();
        let future = Cookie {
            seq: 99,
            namespace: NS.into(),
        }
        .to_bytes();
        for bad in [
            &b"short"[..],
            &other_ns,
            &future,
            &[0, 0, 0, 0, 0, 0, 0, 1, 0xff][..],
        ] {
            assert_eq!(
                r.discover(me, Some(NS), Some(bad), None, now),
                Err(Refusal::BadCookie)
            );
        }
        // A cookie from before a restart (smaller numbers) asks for everything.
        let old = Cookie {
            seq: 3,
            namespace: NS.into(),
        }
        .to_bytes();
        let page = r
            .discover(me, Some(NS), Some(&old), None, now)
            .expect("old cookie");
        assert_eq!(page.registrations.len(), 1);
    }

    #[test]
    fn answers_hold_only_the_form_the_enquirer_reads() {
        let mut r = Registry::new(Policy::default(), 1);
        let now = Instant::now();
        let (rust, js) = (PeerId::random(), PeerId::random());
        r.register(
            rust,
            ip("10.0.0.1"),
            NS,
            record(rust, Form::Legacy),
            None,
            now,
        )
        .expect("rust");
        r.register(
            js,
            ip("10.0.0.2"),
            NS,
            record(js, Form::Standard),
            None,
            now,
        )
        .expect("js");
        let seen = |r: &Registry, who| {
            r.discover(who, Some(NS), None, None, now)
                .expect("discover")
                .registrations
                .into_iter()
                .map(|f| f.envelope)
                .collect::<Vec<_>>()
        };
        assert_eq!(seen(&r, rust), vec![rust.to_bytes()]);
        assert_eq!(seen(&r, js), vec![js.to_bytes()]);
        // Not registered: rust-libp2p's client, which reads legacy only.
        assert_eq!(seen(&r, PeerId::random()), vec![rust.to_bytes()]);
        // Re-registering in the other form switches what it is served.
        r.register(js, ip("10.0.0.2"), NS, record(js, Form::Legacy), None, now)
            .expect("js legacy");
        assert_eq!(seen(&r, js), vec![rust.to_bytes(), js.to_bytes()]);
    }

    #[test]
    fn memory_follows_live_registrations_only() {
        let mut r = Registry::new(Policy::default(), 1);
        let now = Instant::now();
        for i in 0..1_000u32 {
            let p = PeerId::random();
            let addr = format!("10.0.{}.{}", i / 256, i % 256);
            reg(&mut r, p, &addr, &format!("shoal/{i}"), now).expect("register");
            assert_eq!(r.peer_disconnected(p), 1);
        }
        assert!(r.entries.is_empty() && r.by_namespace.is_empty());
        assert!(r.peers.is_empty() && r.per_ip.is_empty());
    }
}
