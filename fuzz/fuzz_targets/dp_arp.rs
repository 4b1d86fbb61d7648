//! ARP: any bytes through `new_checked`, every getter, and the repr round trip (emit reproduces
//! the 28 bytes it parsed). Must never panic.
#![no_main]
use dataplane::wire::{ArpPacket, ArpRepr, EthernetAddress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = ArpPacket::new_checked(data) else { return };
    let _ = (p.hardware_type(), p.protocol_type(), p.hardware_len(), p.protocol_len(), p.operation());
    let _ = (p.source_hardware_addr(), p.source_protocol_addr(), p.target_hardware_addr(), p.target_protocol_addr());
    if let Ok(repr) = ArpRepr::parse(&p) {
        let _ = repr.to_string();
        let mut buf = [0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], &data[..28]);
        let reply = repr.reply(EthernetAddress([2, 0, 0, 0, 0, 1]));
        reply.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap(), reply);
    }
});
