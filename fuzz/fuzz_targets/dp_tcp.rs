//! TCP: any bytes through `new_checked`, every getter, the option iterator (stops on malformed
//! options), option re-emission, and checksum-preserving rewrites. Must never panic.
#![no_main]
use dataplane::wire::{PseudoHeader, TcpPacket};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = TcpPacket::new_checked(data) else { return };
    let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.header_len(), p.flags());
    let _ = (p.flags().to_string(), p.window_len(), p.checksum(), p.urgent_at(), p.payload().len(), p.mss());
    let mut at = 0;
    let mut out = [0u8; 64];
    for opt in p.option_iter() {
        let Ok(opt) = opt else { break };
        let n = opt.emit(&mut out[at..]).expect("an option read from <= 40 bytes fits 64");
        assert_eq!(&out[at..at + n], &p.options()[at..at + n], "option re-emits identically");
        at += n;
        if at > 40 {
            break;
        }
    }
    let ph = PseudoHeader::V4 { src: Ipv4Addr::new(10, 0, 0, 1), dst: Ipv4Addr::new(10, 0, 0, 2) };
    let mut copy = data.to_vec();
    let mut m = TcpPacket::new_unchecked(&mut copy[..]);
    m.fill_checksum(&ph);
    m.rewrite_dst_port(8080);
    m.clamp_mss(1200);
    m.update_checksum_for_ipv4_addr(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 9, 9, 9));
    let ph2 = PseudoHeader::V4 { src: Ipv4Addr::new(10, 0, 0, 1), dst: Ipv4Addr::new(10, 9, 9, 9) };
    assert!(m.verify_checksum(&ph2), "incremental rewrites keep the checksum valid");
});
