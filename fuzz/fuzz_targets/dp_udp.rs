//! UDP: any bytes through `new_checked`, every getter, checksum rules and rewrites, and the
//! repr round trip. Must never panic.
#![no_main]
use dataplane::wire::{PseudoHeader, UdpPacket, UdpRepr};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv6Addr;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = UdpPacket::new_checked(data) else { return };
    let _ = (p.src_port(), p.dst_port(), p.len(), p.is_empty(), p.checksum(), p.payload().len());
    let ph = PseudoHeader::V6 { src: Ipv6Addr::LOCALHOST, dst: "2001:db8::1".parse().unwrap() };
    let _ = UdpRepr::parse(&p, &ph);
    let mut copy = data.to_vec();
    let mut m = UdpPacket::new_unchecked(&mut copy[..]);
    let repr = UdpRepr { src_port: p.src_port(), dst_port: p.dst_port() };
    repr.emit(&mut m, usize::from(p.len()) - 8).unwrap();
    m.fill_checksum(&ph);
    assert!(m.checksum() != 0);
    m.rewrite_src_port(1234);
    m.update_checksum_for_ipv6_addr(Ipv6Addr::LOCALHOST, "2001:db8::2".parse().unwrap());
    let ph2 = PseudoHeader::V6 { src: "2001:db8::2".parse().unwrap(), dst: "2001:db8::1".parse().unwrap() };
    assert!(m.verify_checksum(&ph2));
    assert_eq!(UdpRepr::parse(&UdpPacket::new_checked(&copy[..]).unwrap(), &ph2).unwrap().src_port, 1234);
});
