//! Test harness for the real-traffic and bad-input integration tests.
//!
//! Contract: everything here runs real processes (our `spiped`/`spipe`, sshd, nginx, python) on
//! 127.0.0.1 only, every wait is bounded, and every child process is killed by its PID when its
//! guard is dropped, so a failing assertion never leaves a daemon behind.
//!
//! Pieces:
//! - [`TempDir`]: a private directory removed on drop.
//! - [`Proc`]: a child process whose stderr goes to a file we can search ("the daemon logged a
//!   named error" is asserted on that text), killed with SIGKILL on drop.
//! - [`Stream`]: deterministic pseudo-random stream contents with random access, so a receiver
//!   can check "exactly a prefix of what was sent" without keeping the data.
//! - [`Sink`]: a TCP server that checks every received byte against the stream it expects and
//!   records how each connection ended (clean EOF or error/RST).
//! - [`Mitm`]: a TCP proxy between `spiped -e` and `spiped -d` that parses native-protocol
//!   records (`type(1) || plaintext length(2) || ciphertext || tag`) and injects one fault into
//!   one chosen connection.
#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ring::digest::{Context, SHA256};
use spiped::proto::native::wire;

/// Upper bound for "a daemon comes up" and similar waits. Generous because the machine running
/// the tests is shared and may be busy building.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Path of one of this package's binaries (cargo builds them before integration tests).
pub fn bin(name: &str) -> PathBuf {
    match name {
        "spiped" => PathBuf::from(env!("CARGO_BIN_EXE_spiped")),
        "spipe" => PathBuf::from(env!("CARGO_BIN_EXE_spipe")),
        other => panic!("unknown binary {other}"),
    }
}

// ------------------------------------------------------------------------------------------------
// Temporary directories

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private directory under the system temp dir, removed (recursively) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `/tmp/spiped-<tag>-<pid>-<n>` (unique per process and call).
    pub fn new(tag: &str) -> TempDir {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("spiped-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // SPIPED_TEST_KEEP=1 keeps the directory (daemon logs) for debugging a failure.
        if std::env::var_os("SPIPED_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Writes a fresh 32-byte random key file and returns its path.
pub fn write_key(dir: &TempDir, name: &str) -> PathBuf {
    let mut k = [0u8; 32];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut k)).expect("read /dev/urandom");
    let p = dir.join(name);
    fs::write(&p, k).expect("write key");
    p
}

// ------------------------------------------------------------------------------------------------
// Ports

/// A currently free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// `127.0.0.1:port`.
pub fn lo(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `[127.0.0.1]:port`, spiped's address syntax.
pub fn spiped_addr(port: u16) -> String {
    format!("[127.0.0.1]:{port}")
}

/// True if some socket is in LISTEN state on 127.0.0.1:`port` (or 0.0.0.0:`port`). Read from
/// /proc/net/tcp instead of connecting, because a probe connection would itself count as a
/// (bad) handshake at a `spiped -d`.
pub fn is_listening(port: u16) -> bool {
    let Ok(t) = fs::read_to_string("/proc/net/tcp") else { return false };
    let want_lo = format!("0100007F:{port:04X}");
    let want_any = format!("00000000:{port:04X}");
    t.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && (f[1] == want_lo || f[1] == want_any) && f[3] == "0A"
    })
}

/// Waits until something listens on `port`, or panics after [`STARTUP_TIMEOUT`].
pub fn wait_listening(port: u16, what: &str) {
    let t0 = Instant::now();
    while !is_listening(port) {
        assert!(t0.elapsed() < STARTUP_TIMEOUT, "{what} did not listen on 127.0.0.1:{port}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Connects with retries for up to `timeout` (for servers that need a moment to start).
pub fn connect_retry(port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let t0 = Instant::now();
    loop {
        match TcpStream::connect_timeout(&lo(port), Duration::from_secs(2)) {
            Ok(s) => return Ok(s),
            Err(e) if t0.elapsed() > timeout => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Processes

/// A child process with its stderr in a file; SIGKILLed (by PID) and reaped on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    stderr_path: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdin/stdout on /dev/null and stderr to `<dir>/<name>.stderr`.
    pub fn spawn(name: &str, dir: &Path, cmd: &mut Command) -> Proc {
        let stderr_path = dir.join(format!("{name}.stderr"));
        let err = fs::File::create(&stderr_path).expect("create stderr file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc { name: name.to_string(), child: Some(child), stderr_path }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("process already reaped").id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits up to `timeout` for stderr to contain any of `needles` (case-insensitive); returns
    /// the matching needle.
    pub fn wait_stderr(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let t0 = Instant::now();
        loop {
            let s = self.stderr().to_lowercase();
            if let Some(n) = needles.iter().find(|n| s.contains(&n.to_lowercase())) {
                return Some(n.to_string());
            }
            if t0.elapsed() > timeout {
                return None;
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Like [`Proc::wait_stderr`] but panics with the whole stderr if nothing matched.
    pub fn expect_stderr(&self, needles: &[&str], timeout: Duration) -> String {
        self.wait_stderr(needles, timeout).unwrap_or_else(|| {
            panic!("{} did not log any of {needles:?} within {timeout:?}; stderr:\n{}", self.name, self.stderr())
        })
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Resident set size in KiB (VmRSS from /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig);
    }

    /// SIGKILL and reap now.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for exit up to `timeout`; returns the exit status if it exited.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        loop {
            match self.child.as_mut()?.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if t0.elapsed() > timeout => return None,
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// VmRSS of `pid` in KiB (0 if unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Which way a daemon works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-e`: plaintext in, ciphertext out.
    Encrypt,
    /// `-d`: ciphertext in, plaintext out.
    Decrypt,
}

/// Starts our `spiped` in the foreground (`-F`) from `src_port` to `dst_port` with `extra`
/// flags, and waits until it listens.
pub fn spiped(dir: &TempDir, name: &str, mode: Mode, src_port: u16, dst_port: u16, key: &Path, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(bin("spiped"));
    cmd.current_dir(dir.path())
        .arg(if mode == Mode::Encrypt { "-e" } else { "-d" })
        .arg("-F")
        .args(["-s", &spiped_addr(src_port), "-t", &spiped_addr(dst_port)])
        .arg("-k")
        .arg(key)
        .arg("-p")
        .arg(dir.join(&format!("{name}.pid")))
        .args(extra)
        // SPIPED_TEST_LOG=debug raises the daemons' log level for debugging a failure.
        .env("RUST_LOG", std::env::var("SPIPED_TEST_LOG").unwrap_or_else(|_| "info".into()));
    let p = Proc::spawn(name, dir.path(), &mut cmd);
    wait_listening(src_port, name);
    p
}

/// A `spiped -e` → `spiped -d` pair: plaintext enters at `entry`, leaves towards `target`.
pub struct Pair {
    pub enc: Proc,
    pub dec: Proc,
    pub entry: u16,
    /// The port `spiped -d` listens on (ciphertext).
    pub middle: u16,
}

impl Pair {
    /// Starts `-d` (middle → target) and `-e` (entry → middle), both with `extra` flags.
    pub fn start(dir: &TempDir, key: &Path, target: u16, extra: &[&str]) -> Pair {
        let middle = free_port();
        let entry = free_port();
        let dec = spiped(dir, "spiped-d", Mode::Decrypt, middle, target, key, extra);
        let enc = spiped(dir, "spiped-e", Mode::Encrypt, entry, middle, key, extra);
        Pair { enc, dec, entry, middle }
    }
}

// ------------------------------------------------------------------------------------------------
// Deterministic stream contents

/// A deterministic pseudo-random byte stream, addressable at any offset (SplitMix64 in counter
/// mode), so senders and receivers agree on every byte without sharing buffers.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    pub seed: u64,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Stream {
    /// Fills `buf` with the stream's bytes starting at `offset`.
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut o = offset;
        let mut i = 0;
        while i < buf.len() {
            let word = splitmix64(self.seed ^ (o / 8).wrapping_mul(0xD6E8_FEB8_6659_FD93)).to_le_bytes();
            let start = (o % 8) as usize;
            let n = (8 - start).min(buf.len() - i);
            buf[i..i + n].copy_from_slice(&word[start..start + n]);
            i += n;
            o += n as u64;
        }
    }

    /// The first `len` bytes.
    pub fn bytes(&self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(0, &mut v);
        v
    }
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Context::new(&SHA256);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `len` bytes of `Stream { seed }` to `path`.
pub fn write_random_file(path: &Path, len: usize, seed: u64) {
    fs::write(path, Stream { seed }.bytes(len)).expect("write random file");
}

// ------------------------------------------------------------------------------------------------
// Sending and receiving checked streams

/// Every checked stream starts with its 8-byte little-endian id; the payload that follows is
/// `Stream { seed: id }`. The sink uses the id to know what to expect.
pub const ID_LEN: usize = 8;

/// How a connection's byte stream ended, as seen by its reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// read() returned 0: the peer closed cleanly (FIN).
    Eof,
    /// read() failed (ECONNRESET and friends): the peer aborted.
    Error(ErrorKind),
    /// The reader gave up waiting.
    Timeout,
}

/// What the sink saw on one connection.
#[derive(Clone, Debug)]
pub struct Received {
    /// Stream id from the first 8 bytes (`None` if fewer than 8 bytes arrived).
    pub id: Option<u64>,
    /// Payload bytes received after the id.
    pub len: u64,
    /// Offset of the first payload byte that differed from the expected stream, if any.
    pub first_mismatch: Option<u64>,
    pub end: End,
}

/// A TCP server on 127.0.0.1 that reads each connection to its end, checking the payload
/// against `Stream { seed: id }` on the fly, and reports a [`Received`] per connection.
pub struct Sink {
    pub port: u16,
    rx: mpsc::Receiver<Received>,
    /// While set, connection readers stop reading (a target that stops reading, S11).
    pub paused: Arc<AtomicBool>,
    /// Number of connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// Finished connections received while waiting for another one, not yet claimed.
    stash: Mutex<Vec<Received>>,
    stop: Arc<AtomicBool>,
}

/// How long a sink connection waits for data before reporting [`End::Timeout`].
pub const SINK_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Sink {
    pub fn start() -> Sink {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let port = l.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        let paused = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p2, a2, s2) = (paused.clone(), accepted.clone(), stop.clone());
        l.set_nonblocking(true).unwrap();
        thread::spawn(move || loop {
            if s2.load(Ordering::Relaxed) {
                return;
            }
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    a2.fetch_add(1, Ordering::SeqCst);
                    let tx = tx.clone();
                    let p = p2.clone();
                    thread::spawn(move || {
                        let _ = tx.send(read_checked(s, &p));
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        });
        Sink { port, rx, paused, accepted, stash: Mutex::default(), stop }
    }

    /// Waits up to `timeout` for the connection carrying stream `id` (reports of other
    /// connections that finish meanwhile are kept for their own `wait_for`). `None` if it did
    /// not finish in time; then the unclaimed reports are returned for diagnostics.
    pub fn wait_for(&self, id: u64, timeout: Duration) -> (Option<Received>, Vec<Received>) {
        let mut stash = self.stash.lock().unwrap();
        if let Some(i) = stash.iter().position(|r| r.id == Some(id)) {
            return (Some(stash.remove(i)), Vec::new());
        }
        let t0 = Instant::now();
        while let Some(left) = timeout.checked_sub(t0.elapsed()) {
            match self.rx.recv_timeout(left) {
                Ok(r) if r.id == Some(id) => return (Some(r), Vec::new()),
                Ok(r) => stash.push(r),
                Err(_) => break,
            }
        }
        (None, stash.clone())
    }

    /// Removes and returns an unclaimed report of a connection that ended before its stream
    /// id arrived, if any.
    pub fn take_anonymous(&self) -> Option<Received> {
        let mut stash = self.stash.lock().unwrap();
        let i = stash.iter().position(|r| r.id.is_none())?;
        Some(stash.remove(i))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_checked(mut s: TcpStream, paused: &AtomicBool) -> Received {
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut expect = vec![0u8; 1 << 16];
    let mut head = Vec::with_capacity(ID_LEN);
    let mut r = Received { id: None, len: 0, first_mismatch: None, end: End::Timeout };
    let mut last_data = Instant::now();
    loop {
        if paused.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(10));
            last_data = Instant::now();
            continue;
        }
        match s.read(&mut buf) {
            Ok(0) => {
                r.end = End::Eof;
                return r;
            }
            Ok(n) => {
                last_data = Instant::now();
                let mut data = &buf[..n];
                if r.id.is_none() {
                    let take = (ID_LEN - head.len()).min(data.len());
                    head.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if head.len() == ID_LEN {
                        r.id = Some(u64::from_le_bytes(head[..].try_into().unwrap()));
                    }
                }
                if let (Some(id), false) = (r.id, data.is_empty()) {
                    if r.first_mismatch.is_none() {
                        Stream { seed: id }.fill(r.len, &mut expect[..data.len()]);
                        if let Some(i) = data.iter().zip(&expect).position(|(a, b)| a != b) {
                            r.first_mismatch = Some(r.len + i as u64);
                        }
                    }
                    r.len += data.len() as u64;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                if last_data.elapsed() > SINK_IDLE_TIMEOUT {
                    r.end = End::Timeout;
                    return r;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                r.end = End::Error(e.kind());
                return r;
            }
        }
    }
}

/// What the sending side of a checked stream saw.
#[derive(Debug)]
pub struct Sent {
    /// Payload bytes accepted by write().
    pub written: u64,
    /// The write error, if writing failed before all bytes were written.
    pub write_error: Option<ErrorKind>,
    /// How the reverse direction ended after we shut down our side.
    pub end: End,
}

impl Sent {
    /// Whether the sender was told that the connection failed. Linux reports a received RST
    /// once, to the first call that touches the socket: when that was a `write` (here
    /// `write_error`), the `read` after it returns 0, so `end == Eof` alone proves nothing.
    pub fn saw_fault(&self) -> bool {
        self.write_error.is_some() || self.end != End::Eof
    }
}

/// Connects to `port` and sends stream `id` (`len` payload bytes), then half-closes and waits
/// for the other side to close. `pause_at`: after that many payload bytes, block until the
/// receiver of the channel fires (used to keep a healthy stream in flight during a fault).
pub fn send_stream(port: u16, id: u64, len: u64, pause_at: Option<(u64, mpsc::Receiver<()>)>) -> Sent {
    let mut s = match connect_retry(port, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => return Sent { written: 0, write_error: Some(e.kind()), end: End::Error(e.kind()) },
    };
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut sent = Sent { written: 0, write_error: None, end: End::Timeout };
    if let Err(e) = s.write_all(&id.to_le_bytes()) {
        sent.write_error = Some(e.kind());
        sent.end = End::Error(e.kind());
        return sent;
    }
    let stream = Stream { seed: id };
    let mut buf = vec![0u8; 1 << 16];
    let mut pause = pause_at;
    while sent.written < len {
        if let Some((at, _)) = &pause {
            if sent.written >= *at {
                let (_, rx) = pause.take().unwrap();
                let _ = rx.recv_timeout(Duration::from_secs(60));
            }
        }
        let mut n = (len - sent.written).min(buf.len() as u64) as usize;
        if let Some((at, _)) = &pause {
            n = n.min((*at - sent.written).max(1) as usize);
        }
        stream.fill(sent.written, &mut buf[..n]);
        match s.write(&buf[..n]) {
            Ok(0) => {
                sent.write_error = Some(ErrorKind::WriteZero);
                break;
            }
            Ok(k) => sent.written += k as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                sent.write_error = Some(e.kind());
                break;
            }
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut b = [0u8; 4096];
    sent.end = loop {
        match s.read(&mut b) {
            Ok(0) => break End::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => break End::Timeout,
            Err(e) => break End::Error(e.kind()),
        }
    };
    sent
}

/// [`send_stream`] on a thread.
pub fn send_stream_bg(port: u16, id: u64, len: u64, pause_at: Option<(u64, mpsc::Receiver<()>)>) -> thread::JoinHandle<Sent> {
    thread::spawn(move || send_stream(port, id, len, pause_at))
}

/// Asserts the Jepsen-style rule for a stream that must have arrived completely and cleanly.
pub fn assert_intact(r: &Received, id: u64, len: u64) {
    assert_eq!(r.id, Some(id), "wrong stream id: {r:?}");
    assert_eq!(r.first_mismatch, None, "stream {id} corrupted: {r:?}");
    assert_eq!(r.len, len, "stream {id} length: {r:?}");
    assert_eq!(r.end, End::Eof, "stream {id} did not end cleanly: {r:?}");
}

/// Asserts that `r` is a strict prefix of stream `id` (`len` payload bytes) of at most
/// `max_len` bytes, never corrupted.
pub fn assert_strict_prefix(r: &Received, id: u64, len: u64, max_len: u64) {
    if let Some(rid) = r.id {
        assert_eq!(rid, id, "wrong stream id: {r:?}");
    }
    assert_eq!(r.first_mismatch, None, "stream {id}: a byte that was not sent was delivered: {r:?}");
    assert!(r.len < len, "stream {id}: everything arrived despite the fault: {r:?}");
    assert!(r.len <= max_len, "stream {id}: {} bytes delivered, but only {max_len} were sent before the fault: {r:?}", r.len);
}

// ------------------------------------------------------------------------------------------------
// Man-in-the-middle proxy for the native protocol

/// Native record header: type (1 byte) || plaintext length (2 bytes, big-endian); the body that
/// follows is the ciphertext plus a [`TAG_LEN`]-byte AEAD tag (docs/PROTOCOL.md part 1).
pub const RECORD_HEADER_LEN: usize = spiped::proto::native::RECORD_HEADER_LEN;
/// AEAD tag length of every native record.
pub const TAG_LEN: usize = spiped::proto::native::TAG_LEN;

/// One fault to inject into the client→server (`-e` → `-d`) direction of one connection.
/// Record indices count records *after* the handshake, from 0.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Pass everything through unchanged.
    None,
    /// Forward only the first `n` bytes the client sends, then stop forwarding (keep the
    /// connection open): a handshake that stops halfway.
    StallAfterBytes(usize),
    /// Flip one bit of record `record`'s body (byte `byte` of the body, bit 0).
    FlipBit { record: usize, byte: usize },
    /// Send record `record` twice.
    Replay { record: usize },
    /// Do not forward record `record`.
    Drop { record: usize },
    /// Insert `bytes` (a forged record) before record `before`.
    Inject { before: usize, bytes: Vec<u8> },
    /// After `records` records, send a FIN to the server and forward nothing more.
    FinAfter { records: usize },
}

/// What the proxy did on one connection.
#[derive(Clone, Debug, Default)]
pub struct MitmReport {
    /// Records forwarded before the fault took effect.
    pub records_before_fault: usize,
    /// Plaintext bytes carried by the records forwarded before the fault: the most that may
    /// legitimately reach the target.
    pub plain_bytes_before_fault: u64,
    /// Whether the fault was applied (the stream got that far).
    pub fault_applied: bool,
    /// When the server side closed its connection to the proxy, measured from accept.
    pub server_closed_after: Option<Duration>,
}

/// A TCP proxy on 127.0.0.1 that forwards to `upstream` and applies `fault_for(conn_index)` to
/// the client→server direction of each accepted connection.
pub struct Mitm {
    pub port: u16,
    pub reports: Arc<Mutex<Vec<Option<MitmReport>>>>,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Mitm {
    pub fn start(upstream: u16, fault_for: impl Fn(usize) -> Fault + Send + 'static) -> Mitm {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind mitm");
        let port = l.local_addr().unwrap().port();
        let reports: Arc<Mutex<Vec<Option<MitmReport>>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r2, a2, s2) = (reports.clone(), accepted.clone(), stop.clone());
        l.set_nonblocking(true).unwrap();
        thread::spawn(move || loop {
            if s2.load(Ordering::Relaxed) {
                return;
            }
            let (client, _) = match l.accept() {
                Ok(c) => c,
                Err(_) => {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            client.set_nonblocking(false).unwrap();
            let idx = a2.fetch_add(1, Ordering::SeqCst);
            r2.lock().unwrap().push(None);
            let Ok(server) = TcpStream::connect(lo(upstream)) else { continue };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let fault = fault_for(idx);
            let reports = r2.clone();
            thread::spawn(move || {
                let t0 = Instant::now();
                let closed_at: Arc<Mutex<Option<Duration>>> = Arc::default();
                // server → client: plain copy; notes when the server closed.
                let (sc_r, cs_w) = (server.try_clone().unwrap(), client.try_clone().unwrap());
                let closed2 = closed_at.clone();
                let back = thread::spawn(move || {
                    copy_until_end(sc_r, cs_w);
                    *closed2.lock().unwrap() = Some(t0.elapsed());
                });
                let mut rep = forward_with_fault(client.try_clone().unwrap(), server.try_clone().unwrap(), fault);
                let _ = back.join();
                rep.server_closed_after = *closed_at.lock().unwrap();
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                reports.lock().unwrap()[idx] = Some(rep);
            });
        });
        Mitm { port, reports, accepted, stop }
    }

    /// The report of connection `idx` once it finished, waiting up to `timeout`.
    pub fn report(&self, idx: usize, timeout: Duration) -> Option<MitmReport> {
        let t0 = Instant::now();
        loop {
            if let Some(Some(r)) = self.reports.lock().unwrap().get(idx) {
                return Some(r.clone());
            }
            if t0.elapsed() > timeout {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mitm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` → `to` until EOF (propagated as a half-close) or an error (propagated as a
/// full shutdown).
fn copy_until_end(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Reads exactly `buf.len()` bytes; false on EOF or error.
fn read_full(s: &mut TcpStream, buf: &mut [u8]) -> bool {
    s.read_exact(buf).is_ok()
}

fn forward_with_fault(mut client: TcpStream, mut server: TcpStream, fault: Fault) -> MitmReport {
    let mut rep = MitmReport::default();
    if let Fault::None = fault {
        copy_until_end(client, server);
        return rep;
    }
    if let Fault::StallAfterBytes(n) = fault {
        // Forward the first `n` bytes, then never read from the client again; the caller waits
        // for the server to close (its handshake timeout).
        let mut first = vec![0u8; n];
        if read_full(&mut client, &mut first) && server.write_all(&first).is_ok() {
            rep.fault_applied = true;
        }
        return rep;
    }
    // The initiator's handshake passes unchanged: its `Hello` (fixed length), then its key share
    // (one frame, `type || body length (2) || body`). Everything after it is records.
    let mut hello = vec![0u8; wire::HELLO_LEN];
    if !read_full(&mut client, &mut hello) || server.write_all(&hello).is_err() {
        return rep;
    }
    let mut fh = [0u8; wire::FRAME_HEADER_LEN];
    if !read_full(&mut client, &mut fh) {
        return rep;
    }
    let mut frame = fh.to_vec();
    frame.resize(wire::FRAME_HEADER_LEN + usize::from(u16::from_be_bytes([fh[1], fh[2]])), 0);
    if !read_full(&mut client, &mut frame[wire::FRAME_HEADER_LEN..]) || server.write_all(&frame).is_err() {
        return rep;
    }
    let mut idx = 0usize;
    loop {
        let mut header = [0u8; RECORD_HEADER_LEN];
        if !read_full(&mut client, &mut header) {
            // Client ended (cleanly or not): end the server side the same way.
            let _ = server.shutdown(Shutdown::Write);
            return rep;
        }
        let plain_len = usize::from(u16::from_be_bytes([header[1], header[2]]));
        let body_len = plain_len + TAG_LEN;
        let mut rec = header.to_vec();
        rec.resize(RECORD_HEADER_LEN + body_len, 0);
        if !read_full(&mut client, &mut rec[RECORD_HEADER_LEN..]) {
            let _ = server.shutdown(Shutdown::Write);
            return rep;
        }
        let mut out: Vec<u8> = Vec::new();
        let mut applied = false;
        match &fault {
            Fault::FlipBit { record, byte } if *record == idx => {
                let i = RECORD_HEADER_LEN + (*byte).min(body_len - 1);
                rec[i] ^= 1;
                out.extend_from_slice(&rec);
                applied = true;
            }
            Fault::Replay { record } if *record == idx => {
                // The first copy is the genuine record, in order: its plaintext may reach the
                // target before the second copy fails.
                rep.records_before_fault += 1;
                rep.plain_bytes_before_fault += plain_len as u64;
                out.extend_from_slice(&rec);
                out.extend_from_slice(&rec);
                applied = true;
            }
            Fault::Drop { record } if *record == idx => applied = true,
            Fault::Inject { before, bytes } if *before == idx => {
                out.extend_from_slice(bytes);
                out.extend_from_slice(&rec);
                applied = true;
            }
            Fault::FinAfter { records } if *records == idx => {
                let _ = server.shutdown(Shutdown::Write);
                rep.fault_applied = true;
                // Swallow the rest of the client's stream, bounded by the server closing.
                client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut sink = vec![0u8; 1 << 16];
                while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
                return rep;
            }
            _ => out.extend_from_slice(&rec),
        }
        if applied {
            rep.fault_applied = true;
        }
        if !rep.fault_applied {
            rep.records_before_fault += 1;
            rep.plain_bytes_before_fault += plain_len as u64;
        }
        if server.write_all(&out).is_err() {
            let _ = client.shutdown(Shutdown::Both);
            return rep;
        }
        idx += 1;
    }
}

/// Monotonic counter for unique stream ids within one test process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh stream id (also used as the seed of its contents).
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed) * 0x1000_0001 + u64::from(std::process::id())
}
