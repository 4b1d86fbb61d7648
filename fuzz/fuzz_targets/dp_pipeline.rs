//! The whole pipeline: arbitrary bytes as a frame on a NIC port, a kernel port, or a NIC
//! without an exception port, against a fixed snapshot with IPv4 and IPv6 services in every
//! mode (ipip, ip6ip6, 4in6, GUE over v4 and v6, dsr-l2, a backend without a MAC). One
//! pipeline lives across inputs so the connection table, snapshot switches, solicitations and
//! expiry are exercised too. Must never panic; every output frame must have a sane length.
//!
//! Input layout: byte 0 selects the port (bits 0-1) and a header template (bits 2-4) that
//! prefixes the rest with a valid Ethernet (+VLAN) / IPv4 / IPv6 header addressed to a VIP, so
//! the fuzzer reaches the L4, ICMP and ND code without first having to guess a checksum.
//!
//! A second pipeline gets every input through `process_burst` (the lcores' path, with the
//! fixed-offset parse of plain IPv4 frames) and must give the same verdict and bytes as
//! `process` (the general parse).
#![no_main]
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use dataplane::config::PortRole;
use dataplane::conntrack::Timeouts;
use dataplane::pipeline::{
    ArrayQueue, Encap, HostSpec, Mode, NeighborTable, PacketBuf, Pipeline, PortId, PortInfo, ServiceSpec,
    Snapshot, SnapshotBuilder, SourceRange, VecBuf, Verdict,
};
use dataplane::stats::LcoreCounters;
use dataplane::wire::EthernetAddress;
use libfuzzer_sys::fuzz_target;

const LB: [u8; 6] = [2, 0, 0, 0, 0, 1];
const VIP4: [u8; 4] = [198, 18, 0, 100];
const VIP6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0];
/// Largest growth of a frame: GUE over IPv6 (40 + 8 + 4) or an ICMPv6 error (48).
const MAX_GROWTH: usize = 52;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn snapshot(variant: u8) -> Arc<Snapshot> {
    let m = Some(EthernetAddress([2, 0, 0, 0, 1, 0x10]));
    let ipip = Mode::Tunnel(Encap::Ipip);
    let gue = Mode::Tunnel(Encap::Gue { port: 6080 });
    let mut vary = ServiceSpec::new("vary", ip("198.18.0.100"), 17, None, ipip).backend(ip("198.18.1.11"), 1, m);
    vary.source4 = Some(SourceRange { addr: "172.16.0.0".parse().unwrap(), len: 16 });
    let mut services = vec![
        ServiceSpec::new("ipip4", ip("198.18.0.100"), 6, Some(80), ipip)
            .backend(ip("198.18.1.10"), 1, m)
            .backend(ip("198.18.1.20"), u32::from(variant), m),
        vary,
        ServiceSpec::new("gue4", ip("198.18.0.100"), 6, Some(443), gue).backend(ip("198.18.1.12"), 1, m),
        ServiceSpec::new("dsr4", ip("198.18.0.100"), 6, None, Mode::DsrL2).backend(ip("198.18.0.20"), 1, m),
        ServiceSpec::new("4in6", ip("198.18.0.101"), 6, None, ipip).backend(ip("fd00:1::11"), 1, m),
        ServiceSpec::new("ip6ip6", ip("fd00::100"), 6, Some(80), ipip).backend(ip("fd00:1::10"), 1, m),
        ServiceSpec::new("gue6", ip("fd00::100"), 17, None, gue).backend(ip("fd00:1::12"), 1, m),
        ServiceSpec::new("gue6in4", ip("fd00::100"), 6, Some(443), gue).backend(ip("198.18.1.13"), 1, m),
        ServiceSpec::new("dsr6", ip("fd00::100"), 6, None, Mode::DsrL2).backend(ip("fd00::20"), 1, m),
        ServiceSpec::new("noneigh", ip("198.18.0.102"), 6, None, ipip).backend(ip("198.18.0.30"), 1, None),
        ServiceSpec::new("noneigh6", ip("fd00::102"), 6, None, ipip).backend(ip("fd00::30"), 1, None),
    ];
    for s in &mut services {
        s.maglev_size = 251;
    }
    let builder = SnapshotBuilder {
        host: HostSpec {
            ipv4: Some(("198.18.0.2".parse().unwrap(), 24)),
            ipv6: Some(("fd00::2".parse().unwrap(), 64)),
            gateway4: Some("198.18.0.1".parse().unwrap()),
            gateway6: Some("fd00::1".parse().unwrap()),
            mtu: 1500,
        },
        timeouts: Timeouts::default(),
        services,
    };
    let ports = vec![
        PortInfo { id: PortId(0), name: "nic0".into(), role: PortRole::Nic, mac: EthernetAddress(LB), kernel: Some(PortId(1)) },
        PortInfo { id: PortId(1), name: "kni0".into(), role: PortRole::Kernel, mac: EthernetAddress(LB), kernel: None },
        PortInfo { id: PortId(2), name: "nic1".into(), role: PortRole::Nic, mac: EthernetAddress(LB), kernel: None },
    ];
    Arc::new(builder.build(&ports, &NeighborTable::new()).expect("fuzz snapshot builds"))
}

struct State {
    pipeline: Pipeline,
    burst: Pipeline,
    learned: Arc<ArrayQueue<dataplane::pipeline::Neighbor>>,
    burst_learned: Arc<ArrayQueue<dataplane::pipeline::Neighbor>>,
    snaps: [Arc<Snapshot>; 2],
    now: u64,
    n: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new({
        let snaps = [snapshot(0), snapshot(3)];
        let learned = Arc::new(ArrayQueue::new(8));
        let pipeline = Pipeline::new(snaps[0].clone(), Arc::new(LcoreCounters::new()), learned.clone(), 1024);
        let burst_learned = Arc::new(ArrayQueue::new(8));
        let burst = Pipeline::new(snaps[0].clone(), Arc::new(LcoreCounters::new()), burst_learned.clone(), 1024);
        State { pipeline, burst, learned, burst_learned, snaps, now: 0, n: 0 }
    });
}

/// IPv4 header checksum (RFC 1071), for the templates.
fn csum(h: &[u8]) -> u16 {
    let mut s: u32 = h.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn frame(template: u8, rest: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(rest.len() + 60);
    let eth = |f: &mut Vec<u8>, ethertype: u16, vlan: bool| {
        f.extend_from_slice(&LB);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 0xfe]);
        if vlan {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
    };
    match template {
        0 | 1 => f.extend_from_slice(rest),
        2 | 3 => {
            // IPv4 to the VIP: protocol from the first byte, correct total length and checksum.
            eth(&mut f, 0x0800, template == 3);
            let (proto, body) = rest.split_first().map(|(p, b)| (*p, b)).unwrap_or((6, &[]));
            let proto = [6u8, 17, 1][usize::from(proto % 3)];
            let total = (20 + body.len()).min(u16::MAX as usize) as u16;
            let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 203, 0, 113, 7];
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&VIP4);
            let c = csum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&h);
            f.extend_from_slice(body);
        }
        4 | 5 => {
            // IPv6 to the VIP (or, for template 5, to the VIP's solicited-node group, hop limit
            // 255): next header from the first byte.
            eth(&mut f, 0x86dd, false);
            let (nh, body) = rest.split_first().map(|(p, b)| (*p, b)).unwrap_or((6, &[]));
            let nh = [6u8, 17, 58, 0, 60, 44][usize::from(nh % 6)];
            let len = body.len().min(u16::MAX as usize) as u16;
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&len.to_be_bytes());
            f.extend_from_slice(&[nh, if template == 5 { 255 } else { 64 }]);
            f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
            if template == 5 {
                f.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 1, 0]);
            } else {
                f.extend_from_slice(&VIP6);
            }
            f.extend_from_slice(body);
        }
        _ => {
            // ARP with Ethernet/IPv4 lengths.
            eth(&mut f, 0x0806, template == 7);
            f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
            f.extend_from_slice(rest);
        }
    }
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let port = PortId(u16::from(sel & 3) % 3);
    let input = frame((sel >> 2) & 7, rest);
    STATE.with(|s| {
        let mut st = s.borrow_mut();
        st.n += 1;
        st.now += 10_000_000 + u64::from(sel) * 1_000_000;
        let now = st.now;
        if st.n % 64 == 0 {
            let next = st.snaps[(st.n / 64 % 2) as usize].clone();
            st.pipeline.set_snapshot(next.clone());
            st.burst.set_snapshot(next);
        }
        let mut buf = VecBuf::new(&input);
        let in_len = buf.data().len();
        let verdict = st.pipeline.process(&mut buf, port, now);
        let out = buf.data();
        let mut bufs = [VecBuf::new(&input)];
        let mut verdicts = [Verdict::ToKernel];
        st.burst.process_burst(&mut bufs, port, now, &mut verdicts);
        assert_eq!(verdicts[0], verdict, "process_burst and process disagree");
        assert_eq!(bufs[0].data(), out, "process_burst and process wrote different bytes");
        match verdict {
            Verdict::Drop(_) => {}
            Verdict::ToKernel => assert_eq!(out, &input[..in_len], "the kernel gets the frame unchanged"),
            Verdict::Forward(p) if port == PortId(1) => {
                assert_eq!(p, PortId(0));
                assert_eq!(out, &input[..in_len], "kernel egress leaves unchanged");
            }
            Verdict::Forward(_) | Verdict::Reply => {
                if let Verdict::Forward(p) = verdict {
                    assert_eq!(p, port, "VIP traffic leaves on its arrival NIC");
                }
                assert!(out.len() >= 14, "output shorter than an Ethernet header");
                assert!(out.len() <= in_len.max(86) + MAX_GROWTH, "output grew from {in_len} to {}", out.len());
                assert!(out.len() <= 1500 + 18 || out.len() <= in_len, "output over the MTU: {}", out.len());
            }
        }
        let mut sol = VecBuf::new(&[]);
        let _ = st.pipeline.solicit(&mut sol, now);
        st.pipeline.expire(now, 64);
        let mut sol = VecBuf::new(&[]);
        let _ = st.burst.solicit(&mut sol, now);
        st.burst.expire(now, 64);
        while st.learned.pop().is_some() {}
        while st.burst_learned.pop().is_some() {}
    });
});
