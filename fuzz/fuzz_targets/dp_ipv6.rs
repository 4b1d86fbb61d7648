//! IPv6: any bytes through `new_checked`, every getter, the extension-header walker (bounded,
//! never loops) and the repr round trip. Must never panic.
#![no_main]
use dataplane::wire::{pretty, Error, Ipv6Packet, Ipv6Repr, MAX_IPV6_EXT_HEADERS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pretty::ip(data).to_string();
    let Ok(p) = Ipv6Packet::new_checked(data) else { return };
    let _ = (p.version(), p.traffic_class(), p.flow_label(), p.payload_len(), p.next_header());
    let _ = (p.hop_limit(), p.src_addr(), p.dst_addr(), p.payload().len(), p.pseudo_header());
    let mut seen = 0;
    for ext in p.ext_headers() {
        seen += 1;
        assert!(seen <= MAX_IPV6_EXT_HEADERS + 1, "walker exceeded its bound");
        match ext {
            Ok(h) => {
                let _ = (h.kind, h.next_header, h.offset, h.body().len(), h.fragment());
                assert!(h.offset + h.data.len() <= p.payload().len());
            }
            Err(e) => assert!(matches!(e, Error::Truncated | Error::Malformed | Error::ExtHeaderLimit)),
        }
    }
    if let Ok(up) = p.upper_layer() {
        assert!(up.offset <= data.len());
        assert!(up.ext_headers <= MAX_IPV6_EXT_HEADERS);
    }
    let repr = Ipv6Repr::parse(&p).unwrap();
    let mut buf = vec![0u8; 40 + repr.payload_len];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..])).unwrap();
    assert_eq!(&buf[..40], &data[..40]);
});
