//! 802.1Q: the tag view, `VlanRepr` round trip and `L2Info` over any bytes. Must never panic.
#![no_main]
use dataplane::wire::{L2Info, VlanPacket, VlanRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tag) = VlanPacket::new_checked(data) {
        let _ = (tag.pcp(), tag.dei(), tag.vid(), tag.ethertype(), tag.payload().len());
        if let Ok(repr) = VlanRepr::parse(&tag) {
            let mut buf = [0u8; 4];
            repr.emit(&mut VlanPacket::new_unchecked(&mut buf[..]));
            assert_eq!(&buf[..], &data[..4]);
        }
    }
    if let Ok(info) = L2Info::parse(data) {
        assert!(info.l3_offset <= data.len());
    }
});
