//! Ethernet ports: lookup by device name, queue setup with RSS, start, MAC, link, stats, and the
//! per-queue burst RX/TX handles the lcores own.

use std::cell::Cell;
use std::ffi::CString;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::Eal;
use super::error::{check_port, strerror, DpdkError};
use super::mbuf::MbufBatch;
use super::mempool::Mempool;

/// How to set up a port: queue counts and ring sizes (the device may round the sizes, see
/// `rte_eth_dev_adjust_nb_rx_tx_desc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// RX queues (one per forwarding lcore). More than one turns on RSS.
    pub rx_queues: u16,
    /// TX queues (one per forwarding lcore).
    pub tx_queues: u16,
    /// RX ring size per queue.
    pub rx_descriptors: u16,
    /// TX ring size per queue.
    pub tx_descriptors: u16,
}

/// Link state from `rte_eth_link_get_nowait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link is up.
    pub up: bool,
    /// Speed in Mbit/s (0 when unknown or down).
    pub speed_mbps: u32,
}

/// Device counters from `rte_eth_stats_get` (the NIC's view; the lcores count their own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames the NIC dropped because the RX ring was full (the lcore was too slow).
    pub rx_missed: u64,
    /// Erroneous received frames.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// RX mbuf allocation failures (pool exhausted).
    pub rx_nombuf: u64,
}

#[derive(Debug)]
struct PortInner {
    dev: u16,
    name: String,
    started: AtomicBool,
    /// The pool the RX rings fill from; dropped after the port is closed (field order).
    pool: std::sync::OnceLock<Arc<Mempool>>,
    _eal: Eal,
}

/// One ethdev (`rte_eth_dev`), identified by DPDK's port id. Stopped and closed when the `Port`
/// and all its queue handles are gone.
#[derive(Clone, Debug)]
pub struct Port {
    inner: Arc<PortInner>,
}

impl Port {
    /// Finds the port whose device name is `name` (a vdev name such as `net_tap0`, or a PCI
    /// address such as `0000:03:00.0`).
    pub fn by_name(eal: &Eal, name: &str) -> Result<Port, DpdkError> {
        let not_found = || DpdkError::PortNotFound { name: name.to_owned() };
        let c_name = CString::new(name).map_err(|_| not_found())?;
        let mut dev = 0u16;
        // SAFETY: c_name is a valid C string; `dev` is a valid out pointer for the call.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut dev) };
        if rc != 0 {
            return Err(not_found());
        }
        Ok(Port {
            inner: Arc::new(PortInner {
                dev,
                name: name.to_owned(),
                started: AtomicBool::new(false),
                pool: std::sync::OnceLock::new(),
                _eal: eal.clone(),
            }),
        })
    }

    /// DPDK's port id.
    pub fn dev_id(&self) -> u16 {
        self.inner.dev
    }

    /// The device name it was found by.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn check(&self, rc: i32, op: &'static str) -> Result<(), DpdkError> {
        check_port(rc, &self.inner.name, op)
    }

    fn info(&self) -> Result<sys::rte_eth_dev_info, DpdkError> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: `info` is a valid out pointer; dev is a port id DPDK gave us.
        let rc = unsafe { sys::rte_eth_dev_info_get(self.inner.dev, &mut info) };
        self.check(rc, "rte_eth_dev_info_get")?;
        Ok(info)
    }

    /// The NUMA socket the device is attached to (-1: unknown/any).
    pub fn socket_id(&self) -> i32 {
        // SAFETY: dev is a valid port id; the call only reads device data.
        unsafe { sys::rte_eth_dev_socket_id(self.inner.dev) }
    }

    /// Configures the port and sets up its queues, RX rings filling from `pool`. With more than
    /// one RX queue the port spreads flows by RSS over IPv4/IPv6 addresses and TCP/UDP ports (as
    /// far as the device can hash them, `flow_type_rss_offloads`; a device without RSS hashing
    /// gets no RSS configuration and distributes by its own means, if any). Turns on `MBUF_FAST_FREE` when
    /// offered: every mbuf we send comes from one pool and has refcount 1.
    /// Returns one RX and one TX handle per queue, in queue order. Can be called once per port.
    pub fn configure(
        &self,
        conf: &PortConfig,
        pool: &Arc<Mempool>,
    ) -> Result<(Vec<RxQueue>, Vec<TxQueue>), DpdkError> {
        let info = self.info()?;
        for (dir, asked, max) in
            [("RX", conf.rx_queues, info.max_rx_queues), ("TX", conf.tx_queues, info.max_tx_queues)]
        {
            if asked > max {
                return Err(DpdkError::TooManyQueues { port: self.inner.name.clone(), dir, asked, max });
            }
        }
        let mut eth = sys::rte_eth_conf::default();
        if conf.rx_queues > 1 {
            let wanted = u64::from(sys::RTE_ETH_RSS_IP | sys::RTE_ETH_RSS_TCP | sys::RTE_ETH_RSS_UDP);
            let hf = wanted & info.flow_type_rss_offloads;
            if hf == 0 {
                // Not necessarily one queue: a software device may spread flows by its own
                // means (net_af_packet with qpairs=N joins its sockets in a PACKET_FANOUT hash
                // group, so the kernel picks the queue by flow), a NIC without RSS does not.
                tracing::warn!(
                    port = %self.inner.name,
                    queues = conf.rx_queues,
                    "device offers no RSS hash over IP/TCP/UDP: flows spread over the queues only if the device does it itself (net_af_packet: the kernel's fanout hash), else all arrive on queue 0"
                );
            } else {
                eth.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
                eth.rx_adv_conf.rss_conf.rss_hf = hf;
            }
        }
        let fast_free = u64::from(sys::RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE);
        if info.tx_offload_capa & fast_free != 0 {
            eth.txmode.offloads |= fast_free;
        }
        let dev = self.inner.dev;
        // SAFETY: `eth` is a valid configuration that lives for the call; dev is a valid port.
        let rc = unsafe { sys::rte_eth_dev_configure(dev, conf.rx_queues, conf.tx_queues, &eth) };
        self.check(rc, "rte_eth_dev_configure")?;
        let (mut nb_rx, mut nb_tx) = (conf.rx_descriptors, conf.tx_descriptors);
        // SAFETY: valid out pointers to the two ring sizes.
        let rc = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(dev, &mut nb_rx, &mut nb_tx) };
        self.check(rc, "rte_eth_dev_adjust_nb_rx_tx_desc")?;
        // Rings live on the device's socket; SOCKET_ID_ANY (-1) when unknown, passed as unsigned
        // as the C API expects.
        let socket = self.socket_id() as u32;
        let mut txconf = info.default_txconf;
        txconf.offloads = eth.txmode.offloads;
        if self.inner.pool.set(pool.clone()).is_err() {
            return Err(DpdkError::Port {
                port: self.inner.name.clone(),
                op: "configure (called twice)",
                code: libc::EALREADY,
                reason: strerror(libc::EALREADY),
            });
        }
        let mut rx = Vec::with_capacity(conf.rx_queues.into());
        for q in 0..conf.rx_queues {
            // SAFETY: q < nb_rx_queue configured above; a NULL rxconf selects the defaults; the
            // pool outlives the port (stored in `self.inner.pool`, dropped after close).
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(dev, q, nb_rx, socket, std::ptr::null(), pool.as_ptr())
            };
            self.check(rc, "rte_eth_rx_queue_setup")?;
            rx.push(RxQueue { port: self.inner.clone(), queue: q, _not_sync: PhantomData });
        }
        let mut tx = Vec::with_capacity(conf.tx_queues.into());
        for q in 0..conf.tx_queues {
            // SAFETY: q < nb_tx_queue; txconf is a valid configuration for the call.
            let rc = unsafe { sys::rte_eth_tx_queue_setup(dev, q, nb_tx, socket, &txconf) };
            self.check(rc, "rte_eth_tx_queue_setup")?;
            tx.push(TxQueue { port: self.inner.clone(), queue: q, _not_sync: PhantomData });
        }
        Ok((rx, tx))
    }

    /// Starts the port (`rte_eth_dev_start`); call after [`Port::configure`].
    pub fn start(&self) -> Result<(), DpdkError> {
        // SAFETY: dev is a configured port.
        let rc = unsafe { sys::rte_eth_dev_start(self.inner.dev) };
        self.check(rc, "rte_eth_dev_start")?;
        self.inner.started.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Receives frames for every destination MAC (needed on af_packet/veth test links and for
    /// VIP traffic addressed to a MAC the NIC does not own).
    pub fn promiscuous_enable(&self) -> Result<(), DpdkError> {
        // SAFETY: dev is a valid port.
        let rc = unsafe { sys::rte_eth_promiscuous_enable(self.inner.dev) };
        self.check(rc, "rte_eth_promiscuous_enable")
    }

    /// The port's MAC address.
    pub fn mac_address(&self) -> Result<[u8; 6], DpdkError> {
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: `mac` is a valid out pointer for the call.
        let rc = unsafe { sys::rte_eth_macaddr_get(self.inner.dev, &mut mac) };
        self.check(rc, "rte_eth_macaddr_get")?;
        Ok(mac.addr_bytes)
    }

    /// Sets the port's MAC address (`rte_eth_dev_default_mac_addr_set`). Used to give a TAP
    /// exception port its NIC's MAC, so the kernel answers with the address clients talk to.
    pub fn set_mac_address(&self, mac: [u8; 6]) -> Result<(), DpdkError> {
        let mut addr = sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: `addr` is a valid MAC for the duration of the call.
        let rc = unsafe { sys::rte_eth_dev_default_mac_addr_set(self.inner.dev, &mut addr) };
        self.check(rc, "rte_eth_dev_default_mac_addr_set")
    }

    /// Current link state, without waiting for autonegotiation.
    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: `link` is a valid out pointer for the call.
        let rc = unsafe { sys::rte_eth_link_get_nowait(self.inner.dev, &mut link) };
        self.check(rc, "rte_eth_link_get_nowait")?;
        let up = link.link_status() != 0;
        Ok(LinkStatus { up, speed_mbps: if up { link.link_speed } else { 0 } })
    }

    /// The device's counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: `s` is a valid out pointer for the call.
        let rc = unsafe { sys::rte_eth_stats_get(self.inner.dev, &mut s) };
        self.check(rc, "rte_eth_stats_get")?;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }
}

impl Drop for PortInner {
    fn drop(&mut self) {
        // Runs when the Port and every queue handle are gone, so no lcore polls the port.
        if *self.started.get_mut() {
            // SAFETY: dev is a started port nobody polls any more.
            let rc = unsafe { sys::rte_eth_dev_stop(self.dev) };
            if rc < 0 {
                tracing::warn!(port = %self.name, reason = %strerror(-rc), "rte_eth_dev_stop failed");
            }
        }
        // SAFETY: the port is stopped; closing frees its queues (returning their mbufs to the
        // pool, which is still alive: `pool` is dropped after this body).
        let rc = unsafe { sys::rte_eth_dev_close(self.dev) };
        if rc < 0 {
            tracing::warn!(port = %self.name, reason = %strerror(-rc), "rte_eth_dev_close failed");
        }
    }
}

/// One RX queue of a port. `Send` (moved to its lcore) but not `Sync`: DPDK queues are
/// single-consumer.
#[derive(Debug)]
pub struct RxQueue {
    port: Arc<PortInner>,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    /// DPDK port id.
    pub fn dev_id(&self) -> u16 {
        self.port.dev
    }

    /// Queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `batch.room()` frames into `batch`; returns how many arrived.
    #[inline]
    pub fn rx_burst<'a>(&'a self, batch: &mut MbufBatch<'a>) -> usize {
        let room = batch.room();
        if room == 0 {
            return 0;
        }
        let (slots, len) = batch.raw_tail();
        // SAFETY: `slots` has room for `room` pointers; this queue is set up and, being !Sync and
        // not Clone, polled by this thread only. DPDK hands us ownership of the n mbufs.
        let n = usize::from(unsafe { sys::rte_eth_rx_burst(self.port.dev, self.queue, slots, room as u16) });
        // SAFETY: slots[len..len + n] were just filled with owned mbufs.
        unsafe { batch.set_len(len + n) };
        n
    }
}

/// One TX queue of a port. `Send` but not `Sync`, like [`RxQueue`].
#[derive(Debug)]
pub struct TxQueue {
    port: Arc<PortInner>,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl TxQueue {
    /// DPDK port id.
    pub fn dev_id(&self) -> u16 {
        self.port.dev
    }

    /// Queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Hands the batch's frames to the NIC. Returns how many it took; those leave the batch, and
    /// the ones it did not take (ring full) stay in it, in order, for the caller to retry or to
    /// free and count.
    #[inline]
    pub fn tx_burst(&self, batch: &mut MbufBatch<'_>) -> usize {
        let n = batch.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: the batch holds n owned mbufs; the queue is set up and used by this thread only;
        // DPDK takes ownership of the first `sent` of them.
        let sent = usize::from(unsafe { sys::rte_eth_tx_burst(self.port.dev, self.queue, batch.raw_head(), n as u16) });
        batch.consume_front(sent);
        sent
    }
}
