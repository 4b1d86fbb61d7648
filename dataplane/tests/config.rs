//! Config parsing and validation: a full valid file parses into the expected typed values, and
//! every rule of docs/CONFIG.md refuses a bad file with an error that names the field.

use std::net::IpAddr;
use std::time::Duration;

use dataplane::config::{Config, ConfigError, Encap, Ipv4Prefix, Ipv6Prefix, Mode, PortRole, Problem, Protocol};
use dataplane::wire::EthernetAddress;

/// A one-NIC box with a TAP exception port, v4 and v6, every mode and encapsulation.
const FULL: &str = r#"
[eal]
args = ["--in-memory", "--no-pci"]
main_lcore = 0
lcores = [1, 2]

[[port]]
name = "nic0"
devargs = "net_af_packet0,iface=lb0"
role = "nic"
kernel = "kni0"

[[port]]
name = "kni0"
devargs = "net_tap0,iface=dp0"
role = "kernel"

[host]
ipv4 = "198.18.0.2/24"
ipv6 = "fd00::2/64"
gateway4 = "198.18.0.1"
gateway6 = "fd00::1"
mtu = 1500

[conntrack]
capacity = 65536
tcp_syn_timeout = 5
tcp_established_timeout = 900
tcp_closing_timeout = 10
udp_timeout = 30

[control]
socket = "/run/dataplane.sock"

[[service]]
name = "web"
vip = "198.18.0.100"
protocol = "tcp"
port = 80
mode = "tunnel"
encap = "ipip"
maglev_size = 65537
[[service.backend]]
address = "198.18.1.10"
weight = 1
mac = "02:00:00:00:01:10"
[[service.backend]]
address = "198.18.0.11"
weight = 2
[[service.backend]]
address = "fd00:1::12"

[[service]]
name = "web-any"
vip = "198.18.0.100"
protocol = "tcp"
mode = "tunnel"
encap = "gue"
gue_port = 6081
tunnel_source4 = "198.18.0.3"
maglev_size = 13
[[service.backend]]
address = "198.18.0.20"

[[service]]
name = "dns"
vip = "198.18.0.100"
protocol = "udp"
port = 53
mode = "dsr-l2"
[[service.backend]]
address = "198.18.0.30"
[[service.backend]]
address = "10.9.9.9"
mac = "02:00:00:00:09:09"

[[service]]
name = "web6"
vip = "fd00::100"
protocol = "tcp"
port = 443
[[service.backend]]
address = "fd00::10"
"#;

/// `FULL` with the first occurrence of `from` replaced by `to` (panics if absent, so a table
/// entry cannot silently test the valid file).
/// A single-address outer source (prefix length 32).
fn host4(a: &str) -> Ipv4Prefix {
    Ipv4Prefix { addr: a.parse().unwrap(), len: 32 }
}

/// A single-address outer source (prefix length 128).
fn host6(a: &str) -> Ipv6Prefix {
    Ipv6Prefix { addr: a.parse().unwrap(), len: 128 }
}

fn with(from: &str, to: &str) -> String {
    assert!(FULL.contains(from), "fixture does not contain {from:?}");
    FULL.replacen(from, to, 1)
}

/// The smallest valid file: required keys only, every default applied.
const MINIMAL: &str = r#"
[eal]
main_lcore = 0
lcores = [1]
[[port]]
name = "nic0"
devargs = "0000:03:00.0"
role = "nic"
[host]
ipv4 = "10.0.0.2/24"
"#;

/// The full example parses into the typed values the snapshot builder relies on.
#[test]
fn full_config_parses() {
    let c = Config::parse(FULL).expect("valid");
    assert_eq!(c.eal.lcores, vec![1, 2]);
    assert_eq!(c.ports.len(), 2);
    assert_eq!(c.ports[0].role, PortRole::Nic);
    assert_eq!(c.ports[0].kernel.as_deref(), Some("kni0"));
    assert_eq!(c.port_index("kni0"), Some(1));
    assert_eq!(c.host.ipv4.unwrap().len, 24);
    assert_eq!(c.host.gateway6, Some("fd00::1".parse().unwrap()));
    assert_eq!(c.conntrack.capacity, 65536);
    assert_eq!(c.conntrack.tcp_established_timeout, Duration::from_secs(900));
    assert_eq!(c.services.len(), 4);

    let web = &c.services[0];
    assert_eq!(web.protocol, Protocol::Tcp);
    assert_eq!(web.port, Some(80));
    assert_eq!(web.backends.len(), 3);
    assert_eq!(web.backends[0].mac, Some(EthernetAddress([2, 0, 0, 0, 1, 0x10])));
    assert_eq!(web.backends[1].weight, 2);
    assert_eq!(web.backends[2].weight, 1, "weight defaults to 1");
    // 4in4 and 4in6 backends: both outer sources default to the host addresses.
    assert_eq!(
        web.mode,
        Mode::Tunnel {
            encap: Encap::Ipip,
            source4: Some(host4("198.18.0.2")),
            source6: Some(host6("fd00::2")),
        }
    );
    let any = &c.services[1];
    assert_eq!(any.port, None, "port omitted = all ports");
    assert_eq!(
        any.mode,
        Mode::Tunnel { encap: Encap::Gue { port: 6081 }, source4: Some(host4("198.18.0.3")), source6: None }
    );
    assert_eq!(c.services[2].mode, Mode::DsrL2);
    assert_eq!(c.services[3].vip, "fd00::100".parse::<IpAddr>().unwrap());
    assert_eq!(c.services[3].maglev_size, 65537, "default Maglev size");

    // Backend counter indices run over all services in config order.
    let idx: Vec<(usize, usize)> = c.backends().map(|(b, s, _)| (b, s)).collect();
    assert_eq!(idx, vec![(0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 2), (6, 3)]);
}

/// Omitted sections and keys take the documented defaults.
#[test]
fn defaults() {
    let c = Config::parse(MINIMAL).expect("valid");
    assert!(c.eal.args.is_empty());
    assert!(c.ports[0].is_pci());
    assert_eq!(c.host.mtu, 1500);
    assert_eq!(c.conntrack.capacity, 1 << 20);
    assert_eq!(c.conntrack.tcp_syn_timeout, Duration::from_secs(5));
    assert_eq!(c.conntrack.tcp_established_timeout, Duration::from_secs(900));
    assert_eq!(c.conntrack.tcp_closing_timeout, Duration::from_secs(10));
    assert_eq!(c.conntrack.udp_timeout, Duration::from_secs(30));
    assert_eq!(c.control.socket.to_str(), Some("/run/dataplane.sock"));
    assert!(c.services.is_empty());
    let t = Config::parse(&format!(
        "{MINIMAL}\n[[service]]\nname = \"s\"\nvip = \"10.0.0.100\"\nprotocol = \"udp\"\nencap = \"gue\"\n[[service.backend]]\naddress = \"10.0.0.5\"\n"
    ))
    .expect("valid");
    assert_eq!(
        t.services[0].mode,
        Mode::Tunnel { encap: Encap::Gue { port: 6080 }, source4: Some(host4("10.0.0.2")), source6: None },
        "mode defaults to tunnel, gue_port to 6080"
    );
}

/// `[eal.cpus]` pins lcores to CPUs (several may share one: two forwarding lcores on a 2-CPU
/// test machine); lcores it does not list run on the CPU of their own number. The EAL gets it as
/// `--lcores L@CPU,...`, and the config dump writes the table back.
#[test]
fn eal_cpus_pin_lcores() {
    let c = Config::parse(&with("lcores = [1, 2]\n", "lcores = [1, 2]\n[eal.cpus]\n0 = 0\n2 = 1\n")).expect("valid");
    assert_eq!((c.eal.cpu(0), c.eal.cpu(1), c.eal.cpu(2)), (0, 1, 1));
    assert_eq!(c.eal.lcores_arg(), "0@0,1@1,2@1");
    let text = toml::to_string(&c).expect("serializes as TOML");
    assert_eq!(Config::parse(&text).expect("dump parses"), c);
    assert_eq!(Config::parse(FULL).unwrap().eal.lcores_arg(), "0@0,1@1,2@2", "default: the lcore's own CPU");
    Config::parse(&with("net_af_packet0,iface=lb0", "net_af_packet0,iface=lb0,qpairs=2")).expect("qpairs = number of lcores");
}

/// The config dump (control socket `config` command) has the file's shape and parses back to
/// the same config: defaults are made explicit, nothing is lost.
#[test]
fn dump_round_trips() {
    let c = Config::parse(FULL).unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["service"][1]["encap"], "gue");
    assert_eq!(json["service"][1]["gue_port"], 6081);
    assert_eq!(json["host"]["ipv4"], "198.18.0.2/24");
    assert_eq!(json["service"][0]["backend"][0]["mac"], "02:00:00:00:01:10");
    let text = toml::to_string(&c).expect("serializes as TOML");
    assert_eq!(Config::parse(&text).expect("dump parses"), c);
}

/// Every rule, one bad file each: the error message starts with the field path and the problem.
#[test]
fn each_rule_names_the_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        // [eal]
        ("eal missing", FULL.replacen("[eal]\nargs = [\"--in-memory\", \"--no-pci\"]\nmain_lcore = 0\nlcores = [1, 2]\n", "", 1), "eal: is required but missing"),
        ("lcores empty", with("lcores = [1, 2]", "lcores = []"), "eal.lcores: must not be empty"),
        ("lcores contains main", with("lcores = [1, 2]", "lcores = [1, 0]"), "eal.lcores[1]: contains eal.main_lcore 0"),
        ("lcore duplicated", with("lcores = [1, 2]", "lcores = [1, 1]"), "eal.lcores[1]: lcore 1 is already used by eal.lcores[0]"),
        ("lcore out of range", with("lcores = [1, 2]", "lcores = [1, 128]"), "eal.lcores[1]: must be 0..=127, got 128"),
        ("main lcore negative", with("main_lcore = 0", "main_lcore = -1"), "eal.main_lcore: must be 0..=127, got -1"),
        ("reserved eal arg", with("\"--no-pci\"]", "\"--no-pci\", \"-l\"]"), "eal.args[2]: \"-l\" is set by the dataplane"),
        ("reserved attached short option", with("\"--no-pci\"]", "\"-l1-3\"]"), "eal.args[1]: \"-l1-3\" is set by the dataplane from eal.lcores, eal.main_lcore and eal.cpus"),
        ("cpus key not an lcore", with("lcores = [1, 2]\n", "lcores = [1, 2]\n[eal.cpus]\n7 = 1\n"), "eal.cpus.7: \"7\" is not an lcore of this config (eal.main_lcore 0, eal.lcores [1, 2])"),
        ("cpus key not a number", with("lcores = [1, 2]\n", "lcores = [1, 2]\n[eal.cpus]\nfirst = 1\n"), "eal.cpus.first: \"first\" is not an lcore of this config"),
        ("cpus lcore twice", with("lcores = [1, 2]\n", "lcores = [1, 2]\n[eal.cpus]\n1 = 1\n01 = 0\n"), "eal.cpus.1: lcore 1 is already used by another key of eal.cpus"),
        ("af_packet qpairs not the lcore count", with("net_af_packet0,iface=lb0", "net_af_packet0,iface=lb0,qpairs=3"), "port[0].devargs: qpairs=3 but there are 2 forwarding lcores (eal.lcores); set qpairs=2"),
        ("cpu out of range", with("lcores = [1, 2]\n", "lcores = [1, 2]\n[eal.cpus]\n2 = 1024\n"), "eal.cpus.2: must be 0..=1023, got 1024"),
        ("reserved vdev", with("\"--no-pci\"]", "\"--vdev=net_tap1\"]"), "eal.args[1]: \"--vdev=net_tap1\" is set by the dataplane"),
        // [[port]]
        ("port name duplicated", with("name = \"kni0\"\ndevargs", "name = \"nic0\"\ndevargs"), "port[1].name: \"nic0\" is already used by port[0]"),
        ("port name empty", with("name = \"nic0\"", "name = \"\""), "port[0].name: must not be empty"),
        ("port devargs missing", with("devargs = \"net_af_packet0,iface=lb0\"\n", ""), "port[0].devargs: is required but missing"),
        ("port devargs duplicated", with("net_tap0,iface=dp0", "net_af_packet0,iface=lb0"), "port[1].devargs: \"net_af_packet0,iface=lb0\" is already used by port[0]"),
        ("bad role", with("role = \"kernel\"", "role = \"tap\""), "port[1].role: must be one of \"nic\", \"kernel\", got \"tap\""),
        ("kernel names nothing", with("kernel = \"kni0\"", "kernel = \"kni9\""), "port[0].kernel: no [[port]] is named \"kni9\""),
        ("kernel names a nic", with("kernel = \"kni0\"", "kernel = \"nic0\""), "port[0].kernel: port \"nic0\" has role \"nic\""),
        ("kernel on kernel port", with("role = \"kernel\"", "role = \"kernel\"\nkernel = \"kni0\""), "port[1].kernel: only a role = \"nic\" port"),
        ("unused kernel port", with("kernel = \"kni0\"\n", ""), "port[1]: no nic names kernel port \"kni0\""),
        ("no nic", with("role = \"nic\"\nkernel = \"kni0\"", "role = \"kernel\""), "port: no port has role = \"nic\""),
        ("no ports", MINIMAL.replace("[[port]]\nname = \"nic0\"\ndevargs = \"0000:03:00.0\"\nrole = \"nic\"\n", ""), "port: is required but missing"),
        // [host]
        ("host ipv4 without prefix", with("ipv4 = \"198.18.0.2/24\"", "ipv4 = \"198.18.0.2\""), "host.ipv4: \"198.18.0.2\" is not an IPv4 address with a prefix length"),
        ("host ipv4 is v6", with("ipv4 = \"198.18.0.2/24\"", "ipv4 = \"fd00::2/64\""), "host.ipv4: \"fd00::2/64\" is not an IPv4 address"),
        ("host ipv4 prefix too long", with("ipv4 = \"198.18.0.2/24\"", "ipv4 = \"198.18.0.2/33\""), "host.ipv4: \"198.18.0.2/33\" is not an IPv4 address"),
        ("host ipv6 garbage", with("ipv6 = \"fd00::2/64\"", "ipv6 = \"fd00::g/64\""), "host.ipv6: \"fd00::g/64\" is not an IPv6 address"),
        ("no host address", MINIMAL.replace("ipv4 = \"10.0.0.2/24\"", "mtu = 1500"), "host: at least one of host.ipv4 and host.ipv6"),
        ("gateway off-link", with("gateway4 = \"198.18.0.1\"", "gateway4 = \"198.19.0.1\""), "host.gateway4: 198.19.0.1 is not on-link in 198.18.0.2/24"),
        ("gateway not an address", with("gateway4 = \"198.18.0.1\"", "gateway4 = \"gw\""), "host.gateway4: \"gw\" is not an IPv4 address"),
        ("mtu too small", with("mtu = 1500", "mtu = 575"), "host.mtu: must be 576..=9000, got 575"),
        ("mtu too large", with("mtu = 1500", "mtu = 9001"), "host.mtu: must be 576..=9000, got 9001"),
        // [conntrack]
        ("capacity too small", with("capacity = 65536", "capacity = 10"), "conntrack.capacity: must be 1024..=33554432, got 10"),
        ("timeout zero", with("udp_timeout = 30", "udp_timeout = 0"), "conntrack.udp_timeout: must be 1..=604800, got 0"),
        ("syn timeout negative", with("tcp_syn_timeout = 5", "tcp_syn_timeout = -5"), "conntrack.tcp_syn_timeout: must be 1..=604800, got -5"),
        // [control]
        ("relative socket", with("socket = \"/run/dataplane.sock\"", "socket = \"dataplane.sock\""), "control.socket: \"dataplane.sock\" is not an absolute path"),
        // [[service]]
        ("service name duplicated", with("name = \"web-any\"", "name = \"web\""), "service[1].name: \"web\" is already used by service[0]"),
        ("vip not an address", with("vip = \"198.18.0.100\"", "vip = \"198.18.0.x\""), "service[0].vip: \"198.18.0.x\" is not an IPv4 or IPv6 address"),
        ("vip is host address", with("vip = \"198.18.0.100\"", "vip = \"198.18.0.2\""), "service[0].vip: 198.18.0.2 is the host's own address"),
        ("vip multicast", with("vip = \"198.18.0.100\"", "vip = \"224.0.0.1\""), "service[0].vip: 224.0.0.1 cannot be used here"),
        ("vip duplicated", with("name = \"web-any\"\nvip = \"198.18.0.100\"\nprotocol = \"tcp\"\n", "name = \"web-any\"\nvip = \"198.18.0.100\"\nprotocol = \"tcp\"\nport = 80\n"), "service[1].vip: tcp 198.18.0.100 port 80 is already used by service[0]"),
        ("bad protocol", with("protocol = \"udp\"", "protocol = \"sctp\""), "service[2].protocol: must be one of \"tcp\", \"udp\", got \"sctp\""),
        ("port zero", with("port = 80", "port = 0"), "service[0].port: must be 1..=65535, got 0"),
        ("bad mode", with("mode = \"dsr-l2\"", "mode = \"nat\""), "service[2].mode: must be one of \"tunnel\", \"dsr-l2\", got \"nat\""),
        ("bad encap", with("encap = \"ipip\"", "encap = \"gre\""), "service[0].encap: must be one of \"ipip\", \"gue\", got \"gre\""),
        ("gue_port with ipip", with("encap = \"ipip\"", "encap = \"ipip\"\ngue_port = 6080"), "service[0].gue_port: only valid with encap = \"gue\""),
        ("gue_port out of range", with("gue_port = 6081", "gue_port = 70000"), "service[1].gue_port: must be 1..=65535, got 70000"),
        ("encap with dsr-l2", with("mode = \"dsr-l2\"", "mode = \"dsr-l2\"\nencap = \"ipip\""), "service[2].encap: only valid with mode = \"tunnel\""),
        ("tunnel source not v4", with("tunnel_source4 = \"198.18.0.3\"", "tunnel_source4 = \"fd00::3\""), "service[1].tunnel_source4: \"fd00::3\" is not an IPv4 address"),
        ("maglev not prime", with("maglev_size = 13", "maglev_size = 65536"), "service[1].maglev_size: must be a prime number"),
        ("maglev too large", with("maglev_size = 13", "maglev_size = 1000033"), "service[1].maglev_size: must be 2..=1000003, got 1000033"),
        ("maglev smaller than backends", with("maglev_size = 65537", "maglev_size = 2"), "service[0].maglev_size: 2 is smaller than the 3 backends"),
        ("no backends", with("[[service.backend]]\naddress = \"fd00::10\"\n", ""), "service[3].backend: must not be empty"),
        ("backend address bad", with("address = \"198.18.1.10\"", "address = \"10.0.0.x\""), "service[0].backend[0].address: \"10.0.0.x\" is not an IPv4 or IPv6 address"),
        ("backend address missing", with("address = \"198.18.1.10\"\n", ""), "service[0].backend[0].address: is required but missing"),
        ("backend duplicated", with("address = \"198.18.0.11\"", "address = \"198.18.1.10\""), "service[0].backend[1].address: 198.18.1.10 is already used by service[0].backend[0]"),
        ("weight zero", with("weight = 2", "weight = 0"), "service[0].backend[1].weight: must be 1..=65535, got 0"),
        ("weight too large", with("weight = 2", "weight = 65536"), "service[0].backend[1].weight: must be 1..=65535, got 65536"),
        ("bad mac", with("mac = \"02:00:00:00:01:10\"", "mac = \"02:00:00:00:01\""), "service[0].backend[0].mac: \"02:00:00:00:01\" is not a MAC address"),
        ("multicast mac", with("mac = \"02:00:00:00:01:10\"", "mac = \"01:00:5e:00:00:01\""), "service[0].backend[0].mac: 01:00:5e:00:00:01 is a multicast/broadcast MAC"),
        ("6in4 refused", with("address = \"fd00::10\"", "address = \"198.18.0.10\""), "service[3].backend[0].address: IPv6 VIP fd00::100 cannot be tunnelled to IPv4 backend 198.18.0.10"),
        ("dsr-l2 family", with("address = \"198.18.0.30\"", "address = \"fd00::30\""), "service[2].backend[0].address: dsr-l2 forwards the client's packet unchanged, so backend fd00::30 must be the same address family as VIP 198.18.0.100"),
        ("v4-mapped vip", with("vip = \"fd00::100\"", "vip = \"::ffff:198.18.0.9\""), "service[3].vip: ::ffff:198.18.0.9 is an IPv4-mapped IPv6 address"),
        ("v4-mapped backend", with("address = \"fd00::10\"", "address = \"::ffff:198.18.0.10\""), "service[3].backend[0].address: ::ffff:198.18.0.10 is an IPv4-mapped"),
        ("dsr-l2 off-link", with("address = \"10.9.9.9\"\nmac = \"02:00:00:00:09:09\"", "address = \"10.9.9.9\""), "service[2].backend[1].address: dsr-l2 backend 10.9.9.9 is not on-link in host.ipv4 198.18.0.2/24"),
        ("tunnel backend unreachable", with("gateway6 = \"fd00::1\"\n", ""), "service[0].backend[2].address: backend fd00:1::12 is not on-link in host.ipv6 fd00::2/64 and host.gateway6 is not set"),
        ("4in6 without v6 source", with("ipv6 = \"fd00::2/64\"\n", "").replacen("gateway6 = \"fd00::1\"\n", "", 1).replacen("vip = \"fd00::100\"", "vip = \"198.18.0.101\"", 1).replacen("address = \"fd00::10\"", "address = \"198.18.0.10\"", 1), "service[0].backend[2].address: IPv6 backend fd00:1::12 needs an outer IPv6 source"),
    ];
    for (what, text, want) in &cases {
        match Config::parse(text) {
            Ok(_) => panic!("{what}: accepted, expected {want:?}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with(want), "{what}:\n  got:  {msg}\n  want: {want}...");
                assert!(matches!(e, ConfigError::Invalid { .. }), "{what}: {e:?}");
            }
        }
    }
}

/// The 6in4 error is one typed variant, so callers can tell it apart without parsing text.
#[test]
fn problems_are_typed() {
    let e = Config::parse(&with("address = \"fd00::10\"", "address = \"198.18.0.10\"")).unwrap_err();
    assert_eq!(e.field(), Some("service[3].backend[0].address"));
    assert!(matches!(e, ConfigError::Invalid { problem: Problem::SixInFour { .. }, .. }));
}

/// An IPv6 VIP may reach an IPv4 backend through GUE (the inner IPv6 packet rides in UDP over
/// IPv4); only plain ipip refuses it.
#[test]
fn six_over_gue_to_v4_backend_is_allowed() {
    let text = with("address = \"fd00::10\"", "address = \"198.18.0.10\"").replacen("port = 443\n", "port = 443\nencap = \"gue\"\n", 1);
    let c = Config::parse(&text).expect("6-in-GUE-over-IPv4 is valid");
    assert_eq!(
        c.services[3].mode,
        Mode::Tunnel {
            encap: Encap::Gue { port: 6080 },
            source4: Some(Ipv4Prefix { addr: "198.18.0.2".parse().unwrap(), len: 32 }),
            source6: None
        }
    );
}

/// `tunnel_source4` takes a prefix as well as an address: the pipeline then fills the host bits
/// from the flow hash (Katran's 172.16/16 trick) so backends' RSS spreads tunnelled flows. The
/// prefix survives a dump/parse round trip; a bad prefix names the field.
#[test]
fn tunnel_source_prefix_varies_per_flow() {
    let text = with("tunnel_source4 = \"198.18.0.3\"", "tunnel_source4 = \"172.16.0.0/16\"");
    let c = Config::parse(&text).expect("a tunnel source prefix is valid");
    let Mode::Tunnel { source4: Some(p), .. } = c.services[1].mode else { panic!("service[1] is a v4 tunnel") };
    assert_eq!((p.addr, p.len), ("172.16.0.0".parse().unwrap(), 16));
    let again = Config::parse(&toml::to_string(&c).expect("serializes")).expect("dump parses");
    assert_eq!(again.services[1].mode, c.services[1].mode);
    let bad = with("tunnel_source4 = \"198.18.0.3\"", "tunnel_source4 = \"172.16.0.0/33\"");
    let e = Config::parse(&bad).unwrap_err().to_string();
    assert!(e.starts_with("service[1].tunnel_source4:"), "{e}");
}

/// Syntax errors, unknown keys and wrong types keep toml's line and column.
#[test]
fn syntax_errors_keep_toml_position() {
    let mtu_line = FULL[..FULL.find("mtu = 1500").unwrap()].lines().count() + 1;
    let e = Config::parse(&with("mtu = 1500", "mtu = ")).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax(_)));
    assert!(e.to_string().contains(&format!("line {mtu_line}, column 7")), "{e}");

    let e = Config::parse(&with("mtu = 1500", "mtu = 1500\nmtuu = 1")).unwrap_err();
    let msg = e.to_string();
    let want = format!("line {}", mtu_line + 1);
    assert!(msg.contains("unknown field `mtuu`") && msg.contains(&want), "{msg}");

    let e = Config::parse(&with("weight = 2", "weight = \"two\"")).unwrap_err();
    assert!(e.to_string().contains("line "), "{e}");
}

/// A missing file is reported with its path.
#[test]
fn load_reports_the_path() {
    let e = Config::load(std::path::Path::new("/nonexistent/dataplane.toml")).unwrap_err();
    assert!(e.to_string().starts_with("cannot read config file /nonexistent/dataplane.toml"), "{e}");
}

/// The shipped example config is valid.
#[test]
fn shipped_example_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/dataplane.toml");
    Config::load(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
}
