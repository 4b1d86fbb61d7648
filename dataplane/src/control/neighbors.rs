//! The control plane's view of next-hop MACs: which next hops the config needs, and what the
//! lcores learned for them from ARP replies and IPv6 neighbor advertisements.
//!
//! Contract:
//! - A next hop is *wanted* when some backend without a static `mac` is reached through it
//!   ([`crate::config::HostConfig::next_hop`]: the backend itself when on-link, else the
//!   gateway of its family). Only wanted next hops are learned, so the table is bounded by the
//!   number of backends plus two gateways however many ARP replies a network sends.
//! - [`Neighbors::observe`] returns true only when a wanted next hop got a MAC it did not have:
//!   the caller then rebuilds and republishes the snapshot. Repeated replies with the same MAC
//!   only refresh `last_seen`.
//! - Entries are never aged out while wanted: a backend keeps its last known MAC (sending to a
//!   stale MAC loses packets, but dropping the entry would lose them all until re-resolution).
//!   A MAC change is picked up from the next ARP reply / advertisement the lcores see.
//! - Static MACs from the config are not stored here: the snapshot builder takes them from the
//!   config directly, and they win over learned ones.
//! - Time is passed in (`now`), nothing here reads a clock.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Instant;

use serde::Serialize;

use crate::config::Config;
use crate::pipeline::{Neighbor, NeighborTable, PortId};
use crate::wire::EthernetAddress;

/// One learned next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    /// Its MAC.
    pub mac: EthernetAddress,
    /// The port it answered on.
    pub port: PortId,
    /// When it was last seen.
    pub last_seen: Instant,
    /// When its MAC was first learned or last changed.
    pub since: Instant,
}

/// Learned next hops of the running config (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Neighbors {
    wanted: HashSet<IpAddr>,
    learned: HashMap<IpAddr, Learned>,
}

/// One row of the control socket's `neighbors` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NeighborRow {
    /// Next-hop IP.
    pub ip: IpAddr,
    /// Its MAC, `None` while unresolved.
    pub mac: Option<String>,
    /// Port name it answered on.
    pub port: Option<String>,
    /// Seconds since it was last seen.
    pub age_secs: Option<u64>,
}

/// The next hops `config` needs resolved: one per backend without a static MAC.
pub fn wanted_next_hops(config: &Config) -> HashSet<IpAddr> {
    config
        .backends()
        .filter(|(_, _, b)| b.mac.is_none())
        .filter_map(|(_, _, b)| config.host.next_hop(b.address))
        .collect()
}

impl Neighbors {
    /// Empty, wanting the next hops of `config`.
    pub fn new(config: &Config) -> Self {
        Neighbors { wanted: wanted_next_hops(config), learned: HashMap::new() }
    }

    /// The same learned entries, wanting the next hops of `config` (for a reload): entries no
    /// longer wanted are forgotten.
    pub fn for_config(&self, config: &Config) -> Self {
        let wanted = wanted_next_hops(config);
        let learned = self.learned.iter().filter(|(ip, _)| wanted.contains(ip)).map(|(ip, l)| (*ip, *l)).collect();
        Neighbors { wanted, learned }
    }

    /// Records an observation; true when a wanted next hop got a new or different MAC.
    pub fn observe(&mut self, n: Neighbor, now: Instant) -> bool {
        if !self.wanted.contains(&n.ip) || !n.mac.is_unicast() || n.mac == EthernetAddress::UNSPECIFIED {
            return false;
        }
        match self.learned.get_mut(&n.ip) {
            Some(l) if l.mac == n.mac => {
                l.last_seen = now;
                l.port = n.port;
                false
            }
            Some(l) => {
                *l = Learned { mac: n.mac, port: n.port, last_seen: now, since: now };
                true
            }
            None => {
                self.learned.insert(n.ip, Learned { mac: n.mac, port: n.port, last_seen: now, since: now });
                true
            }
        }
    }

    /// The learned MACs, as the snapshot builder takes them.
    pub fn table(&self) -> NeighborTable {
        let mut t = NeighborTable::new();
        for (ip, l) in &self.learned {
            t.insert(*ip, l.mac);
        }
        t
    }

    /// The learned entry for `ip`.
    pub fn get(&self, ip: &IpAddr) -> Option<&Learned> {
        self.learned.get(ip)
    }

    /// Number of learned next hops.
    pub fn learned_len(&self) -> usize {
        self.learned.len()
    }

    /// Wanted next hops without a MAC yet.
    pub fn unresolved(&self) -> impl Iterator<Item = &IpAddr> {
        self.wanted.iter().filter(|ip| !self.learned.contains_key(ip))
    }

    /// Every wanted next hop, sorted, with what is known about it (`port_names` by port id).
    pub fn rows(&self, now: Instant, port_names: &[String]) -> Vec<NeighborRow> {
        let mut ips: Vec<&IpAddr> = self.wanted.iter().collect();
        ips.sort();
        ips.into_iter()
            .map(|ip| match self.learned.get(ip) {
                Some(l) => NeighborRow {
                    ip: *ip,
                    mac: Some(l.mac.to_string()),
                    port: port_names.get(usize::from(l.port.0)).cloned(),
                    age_secs: Some(now.saturating_duration_since(l.last_seen).as_secs()),
                },
                None => NeighborRow { ip: *ip, mac: None, port: None, age_secs: None },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CONFIG: &str = r#"
[eal]
main_lcore = 0
lcores = [1]
[[port]]
name = "nic0"
devargs = "net_tap0"
role = "nic"
[host]
ipv4 = "10.0.0.2/24"
gateway4 = "10.0.0.1"
[[service]]
name = "web"
vip = "10.0.0.100"
protocol = "tcp"
[[service.backend]]
address = "10.0.0.10"
[[service.backend]]
address = "10.9.0.10"
[[service.backend]]
address = "10.0.0.11"
mac = "02:00:00:00:00:11"
"#;

    fn n(ip: &str, last: u8) -> Neighbor {
        Neighbor { ip: ip.parse().unwrap(), mac: EthernetAddress([2, 0, 0, 0, 0, last]), port: PortId(0) }
    }

    /// On-link backends and the gateway of off-link ones are wanted; backends with a static
    /// MAC and arbitrary hosts are not, so a flood of ARP replies cannot grow the table.
    #[test]
    fn only_wanted_next_hops_are_learned() {
        let c = Config::parse(CONFIG).unwrap();
        let mut t = Neighbors::new(&c);
        let now = Instant::now();
        let mut un: Vec<String> = t.unresolved().map(|i| i.to_string()).collect();
        un.sort();
        assert_eq!(un, vec!["10.0.0.1", "10.0.0.10"]);
        assert!(!t.observe(n("10.0.0.11", 1), now), "static MAC next hop");
        assert!(!t.observe(n("10.9.0.10", 1), now), "off-link backend: its gateway is the next hop");
        assert!(!t.observe(n("10.0.0.77", 1), now), "not a next hop at all");
        assert!(t.observe(n("10.0.0.1", 1), now));
        assert_eq!(t.learned_len(), 1);
        assert_eq!(t.table().get(&"10.0.0.1".parse().unwrap()), Some(EthernetAddress([2, 0, 0, 0, 0, 1])));
    }

    /// Only a new or changed MAC asks for a republish; the same MAC just refreshes the entry.
    #[test]
    fn change_detection() {
        let c = Config::parse(CONFIG).unwrap();
        let mut t = Neighbors::new(&c);
        let t0 = Instant::now();
        assert!(t.observe(n("10.0.0.10", 1), t0));
        assert!(!t.observe(n("10.0.0.10", 1), t0 + Duration::from_secs(5)));
        assert_eq!(t.get(&"10.0.0.10".parse().unwrap()).unwrap().last_seen, t0 + Duration::from_secs(5));
        assert!(t.observe(n("10.0.0.10", 2), t0 + Duration::from_secs(6)), "MAC changed");
        let bad = Neighbor { mac: EthernetAddress::BROADCAST, ..n("10.0.0.1", 0) };
        assert!(!t.observe(bad, t0), "a broadcast MAC is never a next hop");
        let rows = t.rows(t0 + Duration::from_secs(10), &["nic0".into()]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(rows[0].mac, None);
        assert_eq!(rows[1].mac.as_deref(), Some("02:00:00:00:00:02"));
        assert_eq!(rows[1].port.as_deref(), Some("nic0"));
        assert_eq!(rows[1].age_secs, Some(4));
    }

    /// A reload keeps what is still needed and forgets the rest.
    #[test]
    fn reload_keeps_wanted_entries() {
        let c = Config::parse(CONFIG).unwrap();
        let mut t = Neighbors::new(&c);
        let now = Instant::now();
        t.observe(n("10.0.0.10", 1), now);
        t.observe(n("10.0.0.1", 1), now);
        let c2 = Config::parse(&CONFIG.replace("address = \"10.9.0.10\"", "address = \"10.0.0.12\"")).unwrap();
        let t2 = t.for_config(&c2);
        assert!(t2.get(&"10.0.0.10".parse().unwrap()).is_some());
        assert!(t2.get(&"10.0.0.1".parse().unwrap()).is_none(), "gateway no longer needed");
        assert_eq!(t2.unresolved().count(), 1, "10.0.0.12 is new");
    }
}
