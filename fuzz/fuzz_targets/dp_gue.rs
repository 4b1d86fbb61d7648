//! GUE: the variant detector and the variant-0 header over any bytes, the repr round trip, and
//! the tunnel emitter wrapping the input as an inner packet. Must never panic.
#![no_main]
use dataplane::wire::tunnel::inner_protocol;
use dataplane::wire::{Encap, GueHeader, GueRepr, GueVariant, IpProtocol, OuterAddrs, TunnelRepr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = GueVariant::of(data);
    if let Ok(h) = GueHeader::new_checked(data) {
        let _ = (h.version(), h.is_control(), h.hlen(), h.header_len(), h.proto_ctype(), h.protocol());
        let _ = (h.flags(), h.fields().len(), h.payload().len());
        let repr = GueRepr::parse(&h).unwrap();
        let _ = repr.to_string();
        let mut buf = vec![0u8; repr.header_len()];
        repr.emit(&mut GueHeader::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(&buf[..], &data[..repr.header_len()]);
    }
    let fields: &[u8] = if data.len() >= 8 { &data[..8] } else { &[] };
    let repr = TunnelRepr {
        outer: OuterAddrs::V6 { src: "fc00::1".parse().unwrap(), dst: "fc00::2".parse().unwrap() },
        encap: Encap::Gue { src_port: 1, dst_port: 6080, fields },
        inner: inner_protocol(data).unwrap_or(IpProtocol::IPV4),
        hop_limit: 64,
        tos: 0,
        flow_label: 0,
        udp_checksum: true,
    };
    let mut buf = vec![0u8; repr.header_len() + data.len()];
    buf[repr.header_len()..].copy_from_slice(data);
    if repr.emit(&mut buf).is_ok() {
        assert_eq!(&buf[repr.header_len()..], data);
    }
});
