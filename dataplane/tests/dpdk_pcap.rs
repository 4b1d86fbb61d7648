//! Golden pcap through the real binary and EAL: `dataplane run` on a `net_pcap` port replays an
//! input pcap (ARP for the VIP, ICMP echo, TCP SYNs and an ACK to the VIP, traffic without a
//! service, a truncated frame, a bad checksum, ARP for the host with no exception port) and
//! writes what it transmits to an output pcap. The output must be, frame for frame, what the pure
//! pipeline produces in-process for the same input (so the mbuf path — headroom, prepend, length
//! fields, burst TX — changes nothing), and the counters read over the control socket must match
//! the verdicts.
#![cfg(feature = "dpdk")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use dataplane::config::{Config, PortRole};
use dataplane::pipeline::{NeighborTable, PacketBuf, Pipeline, PortId, PortInfo, Snapshot, VecBuf, Verdict};
use dataplane::stats::LcoreCounters;
use dataplane::wire::EthernetAddress;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT: [u8; 4] = [198, 18, 0, 1];
const VIP: [u8; 4] = [198, 18, 0, 100];
const HOST: [u8; 4] = [198, 18, 0, 2];

fn csum(data: &[u8], init: u32) -> u16 {
    let mut s = init;
    for c in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn eth(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&CLIENT_MAC);
    a.extend_from_slice(&CLIENT);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target);
    eth([0xff; 6], 0x0806, &a)
}

fn ipv4(dst_mac: [u8; 6], proto: u8, dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&CLIENT);
    ip.extend_from_slice(&dst);
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(l4);
    eth(dst_mac, 0x0800, &ip)
}

fn l4_csum(proto: u8, dst: [u8; 4], seg: &mut [u8], at: usize) {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&CLIENT);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    let mut init = 0u32;
    for c in pseudo.chunks(2) {
        init += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    let c = csum(seg, init);
    seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

fn tcp(dst_mac: [u8; 6], sport: u16, flags: u8, seq: u32) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&80u16.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    l4_csum(6, VIP, &mut t, 16);
    ipv4(dst_mac, 6, VIP, &t)
}

fn udp(dst_mac: [u8; 6], dport: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&5353u16.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&12u16.to_be_bytes());
    u.extend_from_slice(&[0, 0, b'p', b'i', b'n', b'g']);
    l4_csum(17, VIP, &mut u, 6);
    ipv4(dst_mac, 17, VIP, &u)
}

fn echo(dst_mac: [u8; 6]) -> Vec<u8> {
    let mut i = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'e', b'l', b'l', b'o'];
    let c = csum(&i, 0);
    i[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4(dst_mac, 1, VIP, &i)
}

/// The input frames; `mac` is the NIC's MAC (the frames after ARP are addressed to it).
fn inputs(mac: [u8; 6]) -> Vec<Vec<u8>> {
    let mut bad = tcp(mac, 40002, 0x02, 7);
    bad[24] ^= 0xff; // IPv4 header checksum
    vec![
        arp_request(VIP),
        echo(mac),
        tcp(mac, 40000, 0x02, 1000),
        tcp(mac, 40001, 0x02, 2000),
        tcp(mac, 40000, 0x10, 1001),
        udp(mac, 53),
        mac[..6].iter().copied().chain([0x08, 0x00, 0x45, 0x00]).collect(),
        bad,
        arp_request(HOST),
    ]
}

/// Writes a pcap file (Ethernet link type) holding `frames`.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    std::fs::write(path, dataplane::pcap::write(frames, 1_700_000_000)).unwrap();
}

/// Reads the frames of a pcap file (none when the file is missing).
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap_or_default();
    dataplane::pcap::records(&b).map(<[u8]>::to_vec).collect()
}

fn config_text(dir: &Path, input: &Path, output: &Path, hugepages: bool) -> String {
    let mem = if hugepages { r#""--in-memory""# } else { r#""--no-huge", "--no-shconf", "-m", "256""# };
    format!(
        r#"
[eal]
args = [{mem}, "--no-pci", "--log-level", "*:warning"]
main_lcore = 0
lcores = [1]
[[port]]
name = "nic0"
devargs = "net_pcap0,rx_pcap={input},tx_pcap={output}"
role = "nic"
[host]
ipv4 = "198.18.0.2/24"
mtu = 1500
[conntrack]
capacity = 4096
[control]
socket = "{sock}"
[[service]]
name = "web"
vip = "198.18.0.100"
protocol = "tcp"
port = 80
mode = "tunnel"
encap = "ipip"
[[service.backend]]
address = "198.18.0.11"
mac = "02:00:00:00:00:11"
[[service.backend]]
address = "198.18.0.12"
mac = "02:00:00:00:00:12"
"#,
        input = input.display(),
        output = output.display(),
        sock = dir.join("dp.sock").display(),
    )
}

/// Expected output: the pure pipeline over `VecBuf`s, keeping Forward/Reply frames in order.
fn expected(config: &Config, mac: [u8; 6], frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Verdict>) {
    let ports = vec![PortInfo {
        id: PortId(0),
        name: "nic0".into(),
        role: PortRole::Nic,
        mac: EthernetAddress(mac),
        kernel: None,
    }];
    let snap = Arc::new(Snapshot::build(config, &ports, &NeighborTable::new()).unwrap());
    let mut p = Pipeline::new(snap, Arc::new(LcoreCounters::new()), Arc::new(ArrayQueue::new(16)), 4096);
    let mut out = Vec::new();
    let mut verdicts = Vec::new();
    for f in frames {
        let mut b = VecBuf::new(f);
        let v = p.process(&mut b, PortId(0), 1_000_000_000);
        if matches!(v, Verdict::Forward(_) | Verdict::Reply) {
            out.push(b.data().to_vec());
        }
        verdicts.push(v);
    }
    (out, verdicts)
}

fn dataplane() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dataplane"))
}

/// See the file docs.
#[test]
#[ignore = "needs root: run by tests/run.sh"]
fn pcap_port_matches_the_pure_pipeline() {
    let dir = std::env::temp_dir().join(format!("dp-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output, cfg_path) = (dir.join("in.pcap"), dir.join("out.pcap"), dir.join("dp.toml"));
    let hugepages = std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0)
        >= 64;
    // net_pcap gives its port a fixed MAC ("\x02pcap" + port index).
    let mac = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
    let frames = inputs(mac);
    write_pcap(&input, &frames);
    let text = config_text(&dir, &input, &output, hugepages);
    std::fs::write(&cfg_path, &text).unwrap();
    let config = Config::parse(&text).unwrap();

    let mut child = Command::new(dataplane())
        .args(["run", "--config"])
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("dp.log")).unwrap()))
        .spawn()
        .unwrap();
    let sock = dir.join("dp.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stats = None;
    while Instant::now() < deadline {
        if let Ok(v) = dataplane::control::client_request(&sock, "stats") {
            let rx = v["stats"]["ports"][0]["rx_packets"].as_u64().unwrap_or(0);
            if rx >= frames.len() as u64 {
                stats = Some(v);
                break;
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("dataplane exited early ({st}): {}", std::fs::read_to_string(dir.join("dp.log")).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGTERM: the port closes and net_pcap flushes the output file.
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("dp.log")).unwrap_or_default();
    assert!(status.success(), "dataplane exited with {status}: {log}");
    let stats = stats.unwrap_or_else(|| panic!("the frames never all arrived: {log}"));
    assert!(log.contains(&EthernetAddress(mac).to_string()), "the pcap port's MAC is not {mac:02x?}: {log}");

    let (want, verdicts) = expected(&config, mac, &frames);
    let got = read_pcap(&output);
    assert_eq!(got.len(), want.len(), "frames out; verdicts were {verdicts:?}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "output frame {i} differs");
    }
    // The same input must get the expected kinds of verdicts: 2 replies, 3 forwards, 4 drops.
    let replies = verdicts.iter().filter(|v| **v == Verdict::Reply).count();
    let forwards = verdicts.iter().filter(|v| matches!(v, Verdict::Forward(_))).count();
    assert_eq!((replies, forwards), (2, 3), "{verdicts:?}");
    // Forwarded SYNs and the ACK are IPIP (protocol 4) to a backend MAC.
    for f in got.iter().filter(|f| f[12..14] == [0x08, 0x00] && f[23] == 4) {
        assert!(f[0..6] == [2, 0, 0, 0, 0, 0x11] || f[0..6] == [2, 0, 0, 0, 0, 0x12]);
    }
    assert_eq!(got.iter().filter(|f| f.len() > 23 && f[23] == 4).count(), 3);

    let s = &stats["stats"];
    assert_eq!(s["verdicts"]["replied"].as_u64(), Some(2), "{s}");
    assert_eq!(s["verdicts"]["forwarded"].as_u64(), Some(3), "{s}");
    assert_eq!(s["ports"][0]["tx_packets"].as_u64(), Some(5), "{s}");
    let web = &s["services"][0];
    assert_eq!(web["new_flows"].as_u64(), Some(2), "{s}");
    let dropped: u64 = s["drops"].as_array().unwrap().iter().map(|d| d["packets"].as_u64().unwrap()).sum();
    assert_eq!(dropped, 4, "{s}");
    std::fs::remove_dir_all(&dir).ok();
}
