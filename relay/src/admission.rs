//! Who may open a libp2p WebSocket: at most
//! [`MAX_CONNECTIONS_PER_IP`](crate::limits::MAX_CONNECTIONS_PER_IP) at once
//! per client address, IPv6 counted per /64 (one household or office gets a
//! whole /64, so counting single v6 addresses would limit nothing).
//!
//! Checked before the WebSocket upgrade, so a refused client costs one HTTP
//! response. A [`Permit`] is held by the connection and returns its slot when
//! dropped. The total is bounded separately, in the swarm
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{open} libp2p connections are already open from this address (the limit is {limit})")]
pub struct TooMany {
    pub open: usize,
    pub limit: usize,
}

/// Open connections per address. Cheap to clone; all clones share the counts.
#[derive(Debug, Clone)]
pub struct Admission {
    limit: usize,
    open: Arc<Mutex<HashMap<AddrKey, usize>>>,
}

impl Admission {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Arc::default(),
        }
    }

    /// A slot for one more connection from `ip`, or why not.
    pub fn admit(&self, ip: IpAddr) -> Result<Permit, TooMany> {
        let key = AddrKey::from(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return Err(TooMany {
                open: *count,
                limit: self.limit,
            });
        }
        *count += 1;
        Ok(Permit {
            key,
            open: self.open.clone(),
        })
    }

    /// Connections open from `ip`'s address unit now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&AddrKey::from(ip)).copied().unwrap_or(0)
    }
}

/// One admitted connection; its slot is free again when this is dropped.
#[derive(Debug)]
pub struct Permit {
    key: AddrKey,
    open: Arc<Mutex<HashMap<AddrKey, usize>>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                // No entry per address ever seen: the map holds only live ones.
                open.remove(&self.key);
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
        let a = Admission::new(2);
        let p1 = a.admit(ip("192.0.2.1")).expect("first");
        let _p2 = a.admit(ip("192.0.2.1")).expect("second");
        assert_eq!(
            a.admit(ip("192.0.2.1")).err(),
            Some(TooMany { open: 2, limit: 2 })
        );
        // Another address is not affected.
        let _other = a.admit(ip("192.0.2.2")).expect("other address");
        drop(p1);
        assert_eq!(a.open_from(ip("192.0.2.1")), 1);
        let _p3 = a.admit(ip("192.0.2.1")).expect("slot returned");
    }

    #[test]
    fn ipv6_counts_per_slash_64() {
        let a = Admission::new(1);
        let _p = a.admit(ip("2001:db8:1:2::1")).expect("first");
        assert!(a.admit(ip("2001:db8:1:2:ffff::9")).is_err(), "same /64");
        assert!(a.admit(ip("2001:db8:1:3::1")).is_ok(), "next /64");
        // IPv4-mapped IPv6 is the IPv4 address.
        let _v4 = a.admit(ip("198.51.100.7")).expect("v4");
        assert!(a.admit(ip("::ffff:198.51.100.7")).is_err());
    }

    #[test]
    fn map_holds_only_live_addresses() {
        let a = Admission::new(3);
        for i in 0..100u8 {
            drop(a.admit(IpAddr::from([10, 0, 0, i])).expect("admit"));
        }
        assert!(a.open.lock().expect("lock").is_empty());
    }
}
