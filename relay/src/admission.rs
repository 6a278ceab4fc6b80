//! Who may open a libp2p WebSocket: at most
//! [`MAX_CONNECTIONS_PER_IP`](crate::limits::MAX_CONNECTIONS_PER_IP) at once
//! per client address, IPv6 counted per /64 (one household or office gets a
//! whole /64, so counting single v6 addresses would limit nothing), and
//! [`MAX_CONNECTIONS`](crate::limits::MAX_CONNECTIONS) in all.
//!
//! Checked when the WebSocket upgrade arrives. A refused client gets the
//! upgrade and at once a close frame with code [`CLOSE_TRY_AGAIN_LATER`] and
//! a short reason, then nothing more: a browser cannot read an HTTP error
//! status of a failed upgrade, but it can read a close frame. That costs one
//! upgrade and no slot. A [`Permit`] is held by the connection and returns
//! its slot when dropped. The swarm bounds the total again
//! (`libp2p-connection-limits`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The unit an address is counted in: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKey {
    V4(u32),
    V6Prefix(u64),
}

impl From<IpAddr> for AddrKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddrKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(u32::from(v4)),
                None => AddrKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Why a libp2p WebSocket was refused. The page reads
/// [`Refused::close_reason`] in the WebSocket close frame (code
/// [`CLOSE_TRY_AGAIN_LATER`]), so it can say why it cannot connect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    #[error("{open} libp2p connections are already open from this address (the limit is {limit})")]
    AddressFull { open: usize, limit: usize },
    #[error("the relay is full: {open} libp2p connections are open (the limit is {limit})")]
    RelayFull { open: usize, limit: usize },
}

/// RFC 6455's "Try Again Later" close code: the relay refused this
/// connection for now (`peer-wasm/src/ws.rs` shows the reason).
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

impl Refused {
    /// The reason sent in the close frame (at most 123 bytes by RFC 6455).
    pub fn close_reason(&self) -> &'static str {
        match self {
            Refused::AddressFull { .. } => "too many connections from your address",
            Refused::RelayFull { .. } => "the relay is full",
        }
    }

    /// Label for `/metrics`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::AddressFull { .. } => "address_full",
            Refused::RelayFull { .. } => "relay_full",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    per_address: HashMap<AddrKey, usize>,
    total: usize,
}

/// Open connections per address and in total. Cheap to clone; all clones
/// share the counts.
#[derive(Debug, Clone)]
pub struct Admission {
    per_address: usize,
    total: usize,
    open: Arc<Mutex<Counts>>,
}

impl Admission {
    /// At most `per_address` connections per address unit, `total` in all.
    pub fn new(per_address: usize, total: usize) -> Self {
        Self {
            per_address,
            total,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection from `ip`, or why not.
    pub fn admit(&self, ip: IpAddr) -> Result<Permit, Refused> {
        let key = AddrKey::from(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.total {
            return Err(Refused::RelayFull {
                open: open.total,
                limit: self.total,
            });
        }
        let count = open.per_address.get(&key).copied().unwrap_or(0);
        if count >= self.per_address {
            return Err(Refused::AddressFull {
                open: count,
                limit: self.per_address,
            });
        }
        open.per_address.insert(key, count + 1);
        open.total += 1;
        Ok(Permit {
            key,
            open: self.open.clone(),
        })
    }

    /// Connections open from `ip`'s address unit now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.per_address
            .get(&AddrKey::from(ip))
            .copied()
            .unwrap_or(0)
    }

    /// Connections open now, in all.
    pub fn open_total(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// One admitted connection; its slot is free again when this is dropped.
#[derive(Debug)]
pub struct Permit {
    key: AddrKey,
    open: Arc<Mutex<Counts>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_address.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                // No entry per address ever seen: the map holds only live ones.
                open.per_address.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn limit_per_address_and_release_on_drop() {
        let a = Admission::new(2, 100);
        let p1 = a.admit(ip("192.0.2.1")).expect("first");
        let _p2 = a.admit(ip("192.0.2.1")).expect("second");
        assert_eq!(
            a.admit(ip("192.0.2.1")).err(),
            Some(Refused::AddressFull { open: 2, limit: 2 })
        );
        // Another address is not affected.
        let _other = a.admit(ip("192.0.2.2")).expect("other address");
        drop(p1);
        assert_eq!(a.open_from(ip("192.0.2.1")), 1);
        let _p3 = a.admit(ip("192.0.2.1")).expect("slot returned");
    }

    #[test]
    fn ipv6_counts_per_slash_64() {
        let a = Admission::new(1, 100);
        let _p = a.admit(ip("2001:db8:1:2::1")).expect("first");
        assert!(a.admit(ip("2001:db8:1:2:ffff::9")).is_err(), "same /64");
        assert!(a.admit(ip("2001:db8:1:3::1")).is_ok(), "next /64");
        // IPv4-mapped IPv6 is the IPv4 address.
        let _v4 = a.admit(ip("198.51.100.7")).expect("v4");
        assert!(a.admit(ip("::ffff:198.51.100.7")).is_err());
    }

    #[test]
    fn map_holds_only_live_addresses() {
        let a = Admission::new(3, 1000);
        for i in 0..100u8 {
            drop(a.admit(IpAddr::from([10, 0, 0, i])).expect("admit"));
        }
        assert!(a.open.lock().expect("lock").per_address.is_empty());
        assert_eq!(a.open_total(), 0);
    }

    #[test]
    fn total_is_capped_across_addresses() {
        let a = Admission::new(10, 2);
        let p1 = a.admit(ip("192.0.2.1")).expect("first");
        let _p2 = a.admit(ip("192.0.2.2")).expect("second");
        let refused = a.admit(ip("192.0.2.3")).err();
        assert_eq!(refused, Some(Refused::RelayFull { open: 2, limit: 2 }));
        assert_eq!(refused.map(|r| r.close_reason()), Some("the relay is full"));
        drop(p1);
        assert!(a.admit(ip("192.0.2.3")).is_ok());
        assert!(
            Refused::AddressFull { open: 1, limit: 1 }
                .close_reason()
                .len()
                <= 123
        );
    }
}
