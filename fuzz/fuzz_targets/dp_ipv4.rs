//! IPv4: any bytes through `new_checked`, every getter, the repr round trip, and the in-place
//! rewrites (TTL, addresses) that must keep the header checksum valid. Must never panic.
#![no_main]
use dataplane::wire::{pretty, Ipv4Packet, Ipv4Repr};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let _ = pretty::ip(data).to_string();
    let Ok(p) = Ipv4Packet::new_checked(data) else { return };
    let _ = (p.version(), p.header_len(), p.tos(), p.dscp(), p.ecn(), p.total_len(), p.ident());
    let _ = (p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment(), p.ttl(), p.next_header());
    let _ = (p.checksum(), p.src_addr(), p.dst_addr(), p.options().len(), p.payload().len(), p.pseudo_header());
    let valid = p.verify_checksum();
    match Ipv4Repr::parse(&p) {
        Ok(repr) => {
            assert!(valid);
            let mut buf = [0u8; 20];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])).unwrap();
            let mut again = vec![0u8; 20 + repr.payload_len];
            again[..20].copy_from_slice(&buf);
            let back = Ipv4Repr::parse(&Ipv4Packet::new_checked(&again[..]).unwrap()).unwrap();
            assert_eq!(back, repr);
        }
        Err(_) => assert!(!valid),
    }
    let mut copy = data.to_vec();
    let mut m = Ipv4Packet::new_unchecked(&mut copy[..]);
    m.decrement_ttl();
    m.rewrite_dst_addr(Ipv4Addr::new(192, 0, 2, 1));
    m.rewrite_src_addr(Ipv4Addr::new(198, 51, 100, 7));
    assert_eq!(m.verify_checksum(), valid, "incremental update preserves validity");
});
