//! What the relay does, counted: served at `GET /metrics` in the Prometheus
//! text format (prometheus-client). Counters only grow; rates and ratios are
//! for the scraper.
//!
//! The relay cannot look inside a relayed connection (Noise is end to end),
//! so "relayed bytes" here are all bytes of the peers' libp2p WebSockets:
//! relayed circuits plus signaling and the peers' own control traffic
//! (ping, rendezvous, the relay's identify). When browsers connect directly, that stays
//! small; when they fall back to the relay, it carries their files.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Direction {
    pub direction: &'static str,
}

/// Every counter, registered once; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// libp2p WebSockets: `accepted` by the swarm, `refused` (busy, shutting down).
    pub websockets: Family<Outcome, Counter>,
    /// libp2p WebSockets refused, by reason (`address_full`, `relay_full`;
    /// `busy`: the swarm is behind; `shutting_down`).
    pub websockets_refused: Family<Reason, Counter>,
    /// Bytes over those WebSockets, `in` (from peers) and `out`.
    pub websocket_bytes: Family<Direction, Counter>,
    /// Times a connection waited for the total bandwidth cap
    /// (`--max-relay-bytes-per-sec`).
    pub bandwidth_waits: Counter,
    /// The total bandwidth cap in bytes per second (0: none).
    pub bandwidth_limit: Gauge,
    /// Peers connected to the relay now.
    pub peers: Gauge,
    /// Reservation requests: `accepted`, `renewed`, `denied`.
    pub reservations: Family<Outcome, Counter>,
    /// Circuit requests: `accepted`, `denied`.
    pub circuits: Family<Outcome, Counter>,
    /// Circuits that ended: `closed` by a peer (often because the two went
    /// direct), `failed` (an error or a limit).
    pub circuits_ended: Family<Outcome, Counter>,
    /// Rendezvous registrations `accepted` or `refused`, discoveries `served`.
    pub rendezvous: Family<Outcome, Counter>,
    /// Rendezvous requests refused, by reason (`foreign_namespace`,
    /// `peer_full`, … see [`crate::rendezvous::Refusal::reason`]; `bad_stream`:
    /// a stream that carried no readable request).
    pub rendezvous_refused: Family<Reason, Counter>,
    /// Rendezvous registrations held now.
    pub rendezvous_registrations: Gauge,
    /// Swarms (rendezvous namespaces) with at least one registration.
    pub rendezvous_swarms: Gauge,
    /// The relay process's resident memory, read at each scrape.
    pub resident_memory: Gauge,
    /// STUN datagrams `answered`, `refused`.
    pub stun: Family<Outcome, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("shoal_relay");
        let websockets = Family::default();
        let websocket_bytes = Family::default();
        let websockets_refused = Family::default();
        let bandwidth_waits = Counter::default();
        let bandwidth_limit = Gauge::default();
        let peers = Gauge::default();
        let reservations = Family::default();
        let circuits = Family::default();
        let circuits_ended = Family::default();
        let rendezvous = Family::default();
        let stun = Family::default();
        let rendezvous_refused = Family::default();
        let rendezvous_registrations = Gauge::default();
        let rendezvous_swarms = Gauge::default();
        let resident_memory = Gauge::default();
        registry.register(
            "websockets",
            "libp2p WebSockets by outcome",
            websockets.clone(),
        );
        registry.register(
            "websockets_refused",
            "libp2p WebSockets refused at admission, by reason",
            websockets_refused.clone(),
        );
        registry.register(
            "websocket_bytes",
            "Bytes over the peers' libp2p WebSockets (relayed circuits, signaling, control)",
            websocket_bytes.clone(),
        );
        registry.register(
            "bandwidth_waits",
            "Times a libp2p WebSocket waited for the total bandwidth cap",
            bandwidth_waits.clone(),
        );
        registry.register(
            "bandwidth_limit_bytes_per_second",
            "The total bandwidth cap on bytes from peers (0: none)",
            bandwidth_limit.clone(),
        );
        registry.register("peers", "Peers connected to the relay", peers.clone());
        registry.register(
            "reservations",
            "Relay reservation requests by outcome",
            reservations.clone(),
        );
        registry.register(
            "circuits",
            "Relayed circuit requests by outcome",
            circuits.clone(),
        );
        registry.register(
            "circuits_ended",
            "Relayed circuits that ended, by how",
            circuits_ended.clone(),
        );
        registry.register(
            "rendezvous",
            "Rendezvous requests by outcome",
            rendezvous.clone(),
        );
        registry.register(
            "rendezvous_refused",
            "Rendezvous requests refused, by reason",
            rendezvous_refused.clone(),
        );
        registry.register(
            "rendezvous_registrations",
            "Rendezvous registrations held",
            rendezvous_registrations.clone(),
        );
        registry.register(
            "rendezvous_swarms",
            "Swarms (rendezvous namespaces) with registrations",
            rendezvous_swarms.clone(),
        );
        registry.register(
            "resident_memory_bytes",
            "Resident memory of the relay process (VmRSS)",
            resident_memory.clone(),
        );
        registry.register("stun", "STUN datagrams by outcome", stun.clone());
        // Zeros from the start, so that a scraper sees every series.
        for (family, outcomes) in [
            (&websockets, &["accepted", "refused"][..]),
            (&reservations, &["accepted", "renewed", "denied"][..]),
            (&circuits, &["accepted", "denied"][..]),
            (&circuits_ended, &["closed", "failed"][..]),
            (&stun, &["answered", "refused"][..]),
        ] {
            for &outcome in outcomes {
                let _ = family.get_or_create(&Outcome { outcome });
            }
        }
        for &reason in crate::rendezvous::Refusal::REASONS
            .iter()
            .chain(&["bad_stream"])
        {
            let _ = rendezvous_refused.get_or_create(&Reason { reason });
        }
        for reason in ["address_full", "relay_full", "busy", "shutting_down"] {
            let _ = websockets_refused.get_or_create(&Reason { reason });
        }
        for direction in ["in", "out"] {
            let _ = websocket_bytes.get_or_create(&Direction { direction });
        }
        Self {
            registry,
            websockets,
            websocket_bytes,
            websockets_refused,
            bandwidth_waits,
            bandwidth_limit,
            peers,
            reservations,
            circuits,
            circuits_ended,
            rendezvous,
            rendezvous_refused,
            rendezvous_registrations,
            rendezvous_swarms,
            resident_memory,
            stun,
        }
    }
}

impl Metrics {
    pub fn count(family: &Family<Outcome, Counter>, outcome: &'static str) {
        family.get_or_create(&Outcome { outcome }).inc();
    }

    pub fn refuse(family: &Family<Reason, Counter>, reason: &'static str) {
        family.get_or_create(&Reason { reason }).inc();
    }

    /// A counter of WebSocket bytes in one direction, to hold and add to.
    pub fn bytes(&self, direction: &'static str) -> Counter {
        self.websocket_bytes
            .get_or_create(&Direction { direction })
            .clone()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        if let Some(rss) = resident_bytes() {
            self.resident_memory.set(rss);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// VmRSS from `/proc/self/status` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_in_text_format() {
        let m = Metrics::default();
        Metrics::count(&m.circuits, "accepted");
        Metrics::count(&m.circuits, "accepted");
        m.bytes("in").inc_by(1000);
        m.peers.set(3);
        let text = m.render();
        assert!(
            text.contains("shoal_relay_circuits_total{outcome=\"accepted\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("shoal_relay_websocket_bytes_total{direction=\"in\"} 1000"),
            "{text}"
        );
        assert!(text.contains("shoal_relay_peers 3"), "{text}");
        let rss = text
            .lines()
            .find_map(|l| l.strip_prefix("shoal_relay_resident_memory_bytes "))
            .and_then(|v| v.parse::<i64>().ok());
        assert!(rss.is_some_and(|b| b > 1 << 20), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
