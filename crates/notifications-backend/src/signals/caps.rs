//! How many connections one client address and one user may hold: without a cap, one client
//! (even an anonymous one) could open connections until the server runs out of file descriptors
//! or memory.

use std::collections::HashMap;
use std::net::IpAddr;

/// Who opens a connection, as the caps count it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// The client's address (`None`: not a TCP client, not capped by address).
    pub ip: Option<IpAddr>,
    /// The signed-in user (`None`: anonymous or a service, capped by address only).
    pub user: Option<String>,
}

impl Peer {
    pub fn new(ip: Option<IpAddr>, user: Option<String>) -> Self {
        Self {
            ip: ip.map(address_key),
            user,
        }
    }
}

/// An IPv6 client usually holds a whole /64: counting single addresses would not cap it.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("Too many signal connections from this address (at most {0}); close some first")]
    Address(usize),
    #[error("Too many signal connections for this user (at most {0}); close some first")]
    User(usize),
}

/// The open connections by address and by user, within their caps.
pub(super) struct Caps {
    per_ip: usize,
    per_user: usize,
    ips: HashMap<IpAddr, usize>,
    users: HashMap<String, usize>,
}

impl Caps {
    pub(super) fn new(per_ip: usize, per_user: usize) -> Self {
        Self {
            per_ip,
            per_user,
            ips: HashMap::new(),
            users: HashMap::new(),
        }
    }

    /// Counts one more connection of `peer`, unless that would exceed a cap.
    pub(super) fn admit(&mut self, peer: &Peer) -> Result<(), Refused> {
        if let Some(ip) = &peer.ip
            && self.ips.get(ip).copied().unwrap_or(0) >= self.per_ip
        {
            return Err(Refused::Address(self.per_ip));
        }
        if let Some(user) = &peer.user
            && self.users.get(user).copied().unwrap_or(0) >= self.per_user
        {
            return Err(Refused::User(self.per_user));
        }
        if let Some(ip) = peer.ip {
            *self.ips.entry(ip).or_default() += 1;
        }
        if let Some(user) = &peer.user {
            *self.users.entry(user.clone()).or_default() += 1;
        }
        Ok(())
    }

    /// Counts one connection of `peer` fewer (one that [`Self::admit`] counted).
    pub(super) fn release(&mut self, peer: &Peer) {
        if let Some(ip) = &peer.ip {
            decrement(&mut self.ips, ip);
        }
        if let Some(user) = &peer.user {
            decrement(&mut self.users, user);
        }
    }
}

/// Forgets keys at zero, so that the maps hold only clients with connections open.
fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str, user: Option<&str>) -> Peer {
        Peer::new(Some(ip.parse().unwrap()), user.map(str::to_owned))
    }

    #[test]
    fn addresses_and_users_are_capped_apart() {
        let mut caps = Caps::new(3, 2);
        let alice = peer("10.0.0.1", Some("user:default/alice"));
        caps.admit(&alice).unwrap();
        caps.admit(&alice).unwrap();
        assert_eq!(caps.admit(&alice), Err(Refused::User(2)));
        // Refused: not counted.
        assert_eq!(caps.ips[&alice.ip.unwrap()], 2);
        // Alice from elsewhere is still alice; bob on her address is one more for it.
        assert_eq!(
            caps.admit(&peer("10.0.0.2", Some("user:default/alice"))),
            Err(Refused::User(2))
        );
        caps.admit(&peer("10.0.0.1", Some("user:default/bob")))
            .unwrap();
        assert_eq!(
            caps.admit(&peer("10.0.0.1", None)),
            Err(Refused::Address(3))
        );
        caps.admit(&peer("10.0.0.2", None)).unwrap();
        caps.release(&alice);
        caps.admit(&peer("10.0.0.1", None)).unwrap();
        // Nothing is left once everything is released.
        for p in [
            alice,
            peer("10.0.0.1", Some("user:default/bob")),
            peer("10.0.0.1", None),
            peer("10.0.0.2", None),
        ] {
            caps.release(&p);
        }
        assert!(caps.ips.is_empty() && caps.users.is_empty());
    }

    #[test]
    fn an_ipv6_network_counts_as_one_address() {
        let mut caps = Caps::new(1, 1);
        caps.admit(&peer("2001:db8:1:2::1", None)).unwrap();
        assert_eq!(
            caps.admit(&peer("2001:db8:1:2:ffff::9", None)),
            Err(Refused::Address(1))
        );
        caps.admit(&peer("2001:db8:1:3::1", None)).unwrap();
        caps.admit(&peer("10.1.1.1", None)).unwrap();
        assert_eq!(
            caps.admit(&peer("::ffff:10.1.1.1", None)),
            Err(Refused::Address(1)),
            "an IPv4-mapped address is the IPv4 address"
        );
        // Not over TCP: no address to count.
        caps.admit(&Peer::default()).unwrap();
        caps.admit(&Peer::default()).unwrap();
    }
}
