//! The `dpdk` wrappers against the real EAL: a `net_pcap` port replays frames from a pcap file
//! into an lcore job that rewrites them through the `PacketBuf` interface of `Mbuf` and sends
//! them to another pcap file, which must hold exactly the expected frames.
//!
//! One test function only: the EAL can be initialised once per process.
#![cfg(feature = "dpdk")]

use std::path::Path;
use std::sync::{Arc, Mutex};

use dataplane::dpdk::{Clock, DpdkError, Eal, LcoreId, MbufBatch, Mempool, Port, PortConfig};
use dataplane::pipeline::PacketBuf;

/// Writes a pcap file (Ethernet link type) holding `frames`.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    std::fs::write(path, dataplane::pcap::write(frames, 0)).unwrap();
}

/// Reads the frames of a pcap file written by libpcap.
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    assert!(b.len() >= dataplane::pcap::GLOBAL_HEADER, "pcap header missing");
    dataplane::pcap::records(&b).map(<[u8]>::to_vec).collect()
}

/// The rewrite the lcore job applies, through `PacketBuf` only: grow 4 bytes at the front and 3
/// at the back, then cut 2 from the front and 1 from the back. Frame `f` becomes
/// `"E!" + f + "EN"`, which proves prepend/append/adj/truncate move the right mbuf fields.
fn rewrite<B: PacketBuf>(b: &mut B) -> bool {
    let len = b.data().len();
    if !b.prepend(4) || !b.append(3) {
        return false;
    }
    b.data_mut()[..4].copy_from_slice(b"PRE!");
    let end = b.data().len();
    b.data_mut()[end - 3..].copy_from_slice(b"END");
    if !b.adj(2) {
        return false;
    }
    b.truncate(len + 4);
    b.data().len() == len + 4
}

/// Frames of varied sizes (60..1514 bytes) with recognisable content.
fn frames() -> Vec<Vec<u8>> {
    (0..100usize)
        .map(|i| {
            let len = 60 + (i * 97) % 1455;
            (0..len).map(|j| (i * 7 + j) as u8).collect()
        })
        .collect()
}

/// EAL init, mempool, port lookup/configure/start/MAC/link/stats, burst RX/TX, lcore launch with
/// panic capture, `Mbuf` as `PacketBuf`, and cleanup, all with the real EAL and `net_pcap`.
#[test]
#[ignore = "needs root: run by tests/run.sh"]
fn pcap_roundtrip_through_an_lcore() {
    let dir = std::env::temp_dir().join(format!("dp-dpdk-eal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.pcap");
    let output = dir.join("out.pcap");
    let sent = frames();
    write_pcap(&input, &sent);

    let vdev = format!("--vdev=net_pcap0,rx_pcap={},tx_pcap={}", input.display(), output.display());
    let hugepages = std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0)
        >= 64;
    let mut args = vec!["-l", "0,1", "--main-lcore", "0", "--no-pci", "--log-level", "lib.eal:warning", &vdev];
    if hugepages {
        args.push("--in-memory");
    } else {
        args.extend(["--no-huge", "--no-shconf", "-m", "256"]);
    }
    let eal = Eal::init(&args).expect("EAL init");
    assert!(matches!(Eal::init(&args), Err(DpdkError::AlreadyInitialized)));
    assert!(matches!(
        eal.launch(LcoreId(0), || ()),
        Err(DpdkError::LcoreNotWorker { lcore: 0 })
    ));

    // A panicking job is caught by the trampoline and reported, and the lcore is reusable.
    let h = eal.launch(LcoreId(1), || panic!("boom on purpose")).unwrap();
    match h.wait() {
        Err(DpdkError::LcorePanicked { lcore: 1, message }) => assert!(message.contains("boom")),
        other => panic!("expected a caught panic, got {other:?}"),
    }

    assert!(matches!(Port::by_name(&eal, "net_nope9"), Err(DpdkError::PortNotFound { .. })));
    let pool = Mempool::new(&eal, "test_pool", 1023, 32, Mempool::DEFAULT_DATA_ROOM, -1).unwrap();
    {
        let m = pool.alloc().expect("one mbuf");
        assert_eq!(m.len(), 0);
        assert_eq!(m.headroom(), 128);
        let mut batch = MbufBatch::new();
        assert!(pool.alloc_bulk(&mut batch, 32));
        assert!(!pool.alloc_bulk(&mut batch, 1), "a full batch refuses more");
        assert_eq!(batch.free_all(), 32);
    }
    let port = Port::by_name(&eal, "net_pcap0").unwrap();
    let conf = PortConfig { rx_queues: 1, tx_queues: 1, rx_descriptors: 256, tx_descriptors: 256 };
    let (mut rx, mut tx) = port.configure(&conf, &pool).unwrap();
    port.start().unwrap();
    let _ = port.mac_address().unwrap();
    let _ = port.link().unwrap();

    let (rxq, txq) = (rx.pop().unwrap(), tx.pop().unwrap());
    let clock = Clock::new(&eal);
    let failures = Arc::new(Mutex::new(0usize));
    let f2 = failures.clone();
    let want = sent.len();
    let job = eal
        .launch(LcoreId(1), move || {
            let deadline = clock.now_ns() + 10_000_000_000;
            let mut done = 0;
            while done < want && clock.now_ns() < deadline {
                let mut rx_batch = MbufBatch::new();
                if rxq.rx_burst(&mut rx_batch) == 0 {
                    continue;
                }
                let mut out = MbufBatch::new();
                for mut m in rx_batch.drain() {
                    done += 1;
                    if m.is_contiguous() && rewrite(&mut m) {
                        // `out` has room: it gets at most what one rx burst held.
                        let _ = out.push(m);
                    } else {
                        *f2.lock().unwrap() += 1;
                    }
                }
                while !out.is_empty() && clock.now_ns() < deadline {
                    txq.tx_burst(&mut out);
                }
            }
        })
        .unwrap();
    job.wait().unwrap();
    let stats = port.stats().unwrap();
    assert_eq!(stats.rx_packets, sent.len() as u64);
    assert_eq!(stats.tx_packets, sent.len() as u64);
    // Closing the port flushes the tx_pcap file.
    drop((port, pool));
    assert_eq!(*failures.lock().unwrap(), 0);
    let got = read_pcap(&output);
    let expected: Vec<Vec<u8>> = sent
        .iter()
        .map(|f| [b"E!".as_slice(), f, b"EN"].concat())
        .collect();
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "frame {i}");
    }
    drop(eal);
    std::fs::remove_dir_all(&dir).ok();
}
