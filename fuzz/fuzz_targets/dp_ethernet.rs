//! Ethernet: any bytes through `new_checked`, every getter, `L2Info`, the repr round trip and
//! the pretty-printer. Must never panic.
#![no_main]
use dataplane::wire::{pretty, EthernetFrame, EthernetRepr, L2Info};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = EthernetFrame::new_checked(data) {
        let _ = (frame.dst_addr().is_broadcast(), frame.src_addr().is_multicast(), frame.ethertype());
        let _ = frame.payload().len();
        let repr = EthernetRepr::parse(&frame).expect("checked frame parses");
        let mut buf = [0u8; 14];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[..], &data[..14]);
    }
    let _ = L2Info::parse(data);
    let _ = pretty::frame(data).to_string();
});
