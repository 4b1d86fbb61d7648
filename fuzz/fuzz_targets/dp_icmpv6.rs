//! ICMPv6: any bytes through `new_checked`, every getter, ND options, the quoted-packet parser
//! and the repr round trip (checksum over a fixed pseudo-header). Must never panic.
#![no_main]
use dataplane::wire::{Icmpv6Packet, Icmpv6Repr, PseudoHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Icmpv6Packet::new_checked(data) else { return };
    let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident(), p.echo_seq_no(), p.mtu());
    let _ = (p.router_flag(), p.solicited_flag(), p.override_flag(), p.target_addr(), p.data().len());
    for opt in p.ndisc_options() {
        let _ = opt;
    }
    if let Ok(q) = p.quoted() {
        let _ = (q.src_addr, q.dst_addr, q.protocol, q.ports());
    }
    let ph = PseudoHeader::V6 { src: "fe80::1".parse().unwrap(), dst: "ff02::1:ff00:1".parse().unwrap() };
    // Make the checksum valid so parsing reaches the per-type code.
    let mut copy = data.to_vec();
    Icmpv6Packet::new_unchecked(&mut copy[..]).fill_checksum(&ph);
    let fixed = Icmpv6Packet::new_checked(&copy[..]).unwrap();
    if let Ok(repr) = Icmpv6Repr::parse(&fixed, &ph) {
        let _ = repr.to_string();
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &ph).unwrap();
        assert_eq!(Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&buf[..]).unwrap(), &ph).unwrap(), repr);
    }
});
