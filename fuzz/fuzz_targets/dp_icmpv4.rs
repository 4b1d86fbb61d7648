//! ICMPv4: any bytes through `new_checked`, every getter, the quoted-packet parser, the repr
//! round trip and the in-place echo reply. Must never panic.
#![no_main]
use dataplane::wire::{Icmpv4Packet, Icmpv4Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Icmpv4Packet::new_checked(data) else { return };
    let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident(), p.echo_seq_no(), p.next_hop_mtu());
    let _ = p.data().len();
    if let Ok(q) = p.quoted() {
        let _ = (q.src_addr, q.dst_addr, q.protocol, q.ports());
        assert!(q.l4_offset + q.l4.len() == p.data().len());
    }
    if let Ok(repr) = Icmpv4Repr::parse(&p) {
        let _ = repr.to_string();
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
    }
    let mut copy = data.to_vec();
    let valid = p.verify_checksum();
    let mut m = Icmpv4Packet::new_unchecked(&mut copy[..]);
    if m.echo_request_into_reply() {
        assert_eq!(m.verify_checksum(), valid);
    }
});
