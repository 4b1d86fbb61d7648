//! `--protocol spiped1` against the real spiped 1.x (Debian's `/usr/bin/spiped` and
//! `/usr/bin/spipe`, 1.6.2): every role combination over TCP on 127.0.0.1 and over UNIX sockets,
//! with and without `-f`, `-g` refusing a `-f` peer on either side, 64 MiB each way compared byte
//! for byte, a flipped ciphertext bit (through an in-test MITM proxy) and a wrong key.
//!
//! Topologies (the plaintext client and the echo server are threads of this test):
//! - `RealEncrypts`:   client -> real `spiped -e` -> our `spiped -d` -> echo
//! - `OurEncrypts`:   client -> our `spiped -e` -> real `spiped -d` -> echo
//! - `RealSpipe`: real `spipe` (stdin/stdout) -> our `spiped -d` -> echo
//! - `OurSpipe`: our `spipe` (stdin/stdout) -> real `spiped -d` -> echo
//!
//! Every process is started with a unique scratch directory and killed by PID when its guard
//! drops, also when an assertion fails; every wait is bounded.
//!
//! Run by tests/run.sh (`cargo test --release -- --include-ignored`); by hand:
//! `cargo test -p spiped --release --test interop -- --include-ignored`.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

const REAL_SPIPED: &str = "/usr/bin/spiped";
const REAL_SPIPE: &str = "/usr/bin/spipe";
const OUR_SPIPED: &str = env!("CARGO_BIN_EXE_spiped");
const OUR_SPIPE: &str = env!("CARGO_BIN_EXE_spipe");
/// The flag that selects the compat protocol on our binaries.
const OUR_PROTOCOL: [&str; 2] = ["--protocol", "spiped1"];

/// Bytes sent each way in the bulk tests.
const BULK_LEN: usize = 64 << 20;
/// Bytes for tests whose point is not volume.
const SMALL_LEN: usize = 256 << 10;
/// Bound on any single wait: process start-up, a log line, a whole 64 MiB round trip.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes of handshake each side sends before the first data packet (32 + 288).
const HANDSHAKE_LEN: usize = 320;
/// Where the MITM proxy flips a bit: the middle of the first data packet's ciphertext.
const FLIP_OFFSET: usize = HANDSHAKE_LEN + 500;

/// What our daemon logs for each failure (the `Display` of the protocol error variants).
const LOG_BAD_KEY: &str = "does not hold the same key (bad key)";
const LOG_PFS_REQUIRED: &str = "-g requires it";
const LOG_BAD_MAC: &str = "record failed authentication";

// ---------------------------------------------------------------------------------------------
// Scratch space, processes, addresses

static NEXT_SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// A per-test directory for key files, UNIX sockets and logs; removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Self {
        let n = NEXT_SCRATCH.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("spiped1-interop-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A fresh 32-byte random key file.
    fn key(&self, name: &str) -> PathBuf {
        let mut k = [0u8; 32];
        SystemRandom::new().fill(&mut k).unwrap();
        let p = self.path(name);
        fs::write(&p, k).unwrap();
        p
    }

    fn addr(&self, net: Net, name: &str) -> Addr {
        match net {
            Net::Tcp => {
                // Ask the kernel for a free port; the tiny window before the daemon binds it is
                // acceptable on 127.0.0.1 in a test.
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                Addr::Tcp(l.local_addr().unwrap())
            }
            Net::Unix => Addr::Unix(self.path(&format!("{name}.sock"))),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Set SPIPED1_INTEROP_KEEP=1 to keep the logs of a failing run.
        if std::env::var_os("SPIPED1_INTEROP_KEEP").is_some() {
            eprintln!("keeping {}", self.dir.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Tcp,
    Unix,
}

#[derive(Clone, Debug)]
enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Addr {
    /// The address as spiped's `-s`/`-t` syntax.
    fn spec(&self) -> String {
        match self {
            Addr::Tcp(a) => format!("[{}]:{}", a.ip(), a.port()),
            Addr::Unix(p) => p.display().to_string(),
        }
    }

    fn connect(&self) -> Stream {
        match self {
            Addr::Tcp(a) => Stream::Tcp(TcpStream::connect_timeout(a, TIMEOUT).unwrap()),
            Addr::Unix(p) => Stream::Unix(UnixStream::connect(p).unwrap()),
        }
    }

    fn listen(&self) -> Listener {
        match self {
            Addr::Tcp(a) => Listener::Tcp(TcpListener::bind(a).unwrap()),
            Addr::Unix(p) => Listener::Unix(UnixListener::bind(p).unwrap()),
        }
    }

    /// Waits until something listens here, without connecting (a probe connection would show
    /// up as a failed handshake in the daemon's log).
    fn wait_listening(&self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let up = match self {
                Addr::Tcp(a) => tcp_listening(a.port()),
                Addr::Unix(p) => fs::metadata(p)
                    .map(|m| m.file_type().is_socket())
                    .unwrap_or(false),
            };
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {} after {TIMEOUT:?}",
                self.spec()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// True if /proc/net/tcp shows a socket in LISTEN state (0A) on 127.0.0.1:`port`.
fn tcp_listening(port: u16) -> bool {
    let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let want = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1] == want && f[3] == "0A"
    })
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn set_nonblocking(&self) {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true).unwrap(),
            Listener::Unix(l) => l.set_nonblocking(true).unwrap(),
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        let s = match self {
            Listener::Tcp(l) => Stream::Tcp(l.accept()?.0),
            Listener::Unix(l) => Stream::Unix(l.accept()?.0),
        };
        s.set_blocking();
        Ok(s)
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_blocking(&self) {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(false).unwrap(),
            Stream::Unix(s) => s.set_nonblocking(false).unwrap(),
        }
        self.set_timeout(TIMEOUT);
    }

    fn set_timeout(&self, t: Duration) {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(t)).unwrap();
                s.set_write_timeout(Some(t)).unwrap();
            }
            Stream::Unix(s) => {
                s.set_read_timeout(Some(t)).unwrap();
                s.set_write_timeout(Some(t)).unwrap();
            }
        }
    }

    fn try_clone(&self) -> Stream {
        match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone().unwrap()),
            Stream::Unix(s) => Stream::Unix(s.try_clone().unwrap()),
        }
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A child process, killed by PID and reaped when dropped.
struct Proc {
    child: Child,
    what: String,
    log: PathBuf,
}

impl Proc {
    /// Starts a daemon in the foreground with its stderr in `log`.
    fn daemon(bin: &str, args: &[&str], log: PathBuf) -> Proc {
        let err = fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        Proc {
            child,
            what: format!("{bin} {}", args.join(" ")),
            log,
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle` at least `times` times.
    fn wait_log(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + TIMEOUT;
        while self.log_text().matches(needle).count() < times {
            assert!(
                Instant::now() < deadline,
                "{} did not log {needle:?} {times} time(s); log:\n{}",
                self.what,
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "{} exited; log:\n{}",
            self.what,
            self.log_text()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our spiped with the compat protocol and `-F`, plus `extra` flags.
fn our_spiped(
    mode: &str,
    src: &Addr,
    dst: &Addr,
    key: &Path,
    extra: &[&str],
    log: PathBuf,
) -> Proc {
    let (s, t, k) = (src.spec(), dst.spec(), key.display().to_string());
    let mut args = vec![mode, "-F", "-s", &s, "-t", &t, "-k", &k];
    args.extend_from_slice(&OUR_PROTOCOL);
    args.extend_from_slice(extra);
    let p = Proc::daemon(OUR_SPIPED, &args, log);
    src.wait_listening();
    p
}

/// Debian's spiped in the foreground, plus `extra` flags.
fn real_spiped(
    mode: &str,
    src: &Addr,
    dst: &Addr,
    key: &Path,
    extra: &[&str],
    log: PathBuf,
) -> Proc {
    let (s, t, k) = (src.spec(), dst.spec(), key.display().to_string());
    let mut args = vec![mode, "-F", "-s", &s, "-t", &t, "-k", &k];
    args.extend_from_slice(extra);
    let p = Proc::daemon(REAL_SPIPED, &args, log);
    src.wait_listening();
    p
}

// ---------------------------------------------------------------------------------------------
// Echo server, data pumps, MITM proxy

/// Echoes every connection until EOF, then half-closes; counts the bytes it received.
struct Echo {
    addr: Addr,
    received: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start(scratch: &Scratch, net: Net) -> Echo {
        let addr = scratch.addr(net, "echo");
        let listener = addr.listen();
        listener.set_nonblocking();
        let received = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, s) = (
            Arc::clone(&received),
            Arc::clone(&connections),
            Arc::clone(&stop),
        );
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(mut conn) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        let r = Arc::clone(&r);
                        thread::spawn(move || {
                            let mut out = conn.try_clone();
                            let mut buf = vec![0u8; 64 << 10];
                            loop {
                                match conn.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        r.fetch_add(n, Ordering::Relaxed);
                                        if out.write_all(&buf[..n]).is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                            out.shutdown(Shutdown::Write);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Echo {
            addr,
            received,
            connections,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn random_data(len: usize) -> Arc<Vec<u8>> {
    let mut v = vec![0u8; len];
    for chunk in v.chunks_mut(1 << 20) {
        SystemRandom::new().fill(chunk).unwrap();
    }
    Arc::new(v)
}

/// Writes `data` into `w` (then closes it) while reading `r` to EOF; checks that exactly `data`
/// came back, byte for byte.
fn round_trip<W, R>(w: W, mut r: R, data: &Arc<Vec<u8>>, close: impl FnOnce(W) + Send + 'static)
where
    W: Write + Send + 'static,
    R: Read,
{
    let d = Arc::clone(data);
    let writer = thread::spawn(move || {
        let mut w = w;
        let res = d.chunks(64 << 10).try_for_each(|c| w.write_all(c));
        close(w);
        res
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => panic!("read failed after {got} of {} bytes: {e}", data.len()),
        };
        assert!(got + n <= data.len(), "received more than was sent");
        if buf[..n] != data[got..got + n] {
            let i = (0..n).find(|&i| buf[i] != data[got + i]).unwrap();
            panic!("data differs at byte {}", got + i);
        }
        got += n;
    }
    writer.join().unwrap().expect("writing the data failed");
    assert_eq!(got, data.len(), "stream ended early");
}

/// Round trip over a plaintext socket: connect, send, half-close, read everything back.
fn socket_round_trip(addr: &Addr, data: &Arc<Vec<u8>>) {
    let s = addr.connect();
    s.set_timeout(TIMEOUT);
    let w = s.try_clone();
    round_trip(w, s, data, |w| w.shutdown(Shutdown::Write));
}

/// Sends a few bytes into a tunnel that must fail and checks that nothing at all comes back.
fn expect_nothing_back(addr: &Addr) {
    // The daemon may fail the tunnel and reset our connection before connect() even reports
    // success; that is "nothing delivered" too.
    let conn = match addr {
        Addr::Tcp(a) => TcpStream::connect_timeout(a, TIMEOUT).map(Stream::Tcp),
        Addr::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
    };
    let mut s = match conn {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
        Err(e) => panic!("cannot connect to {}: {e}", addr.spec()),
    };
    s.set_timeout(TIMEOUT);
    let _ = s.write_all(&[0x55u8; 4096]);
    let mut buf = [0u8; 4096];
    let mut got = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert_eq!(got, 0, "a failed tunnel delivered {got} bytes");
}

/// Runs `spipe` with `args`, sending `data` on stdin and expecting it back on stdout.
fn spipe_round_trip(bin: &str, args: &[String], data: &Arc<Vec<u8>>) {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(Some(child));
    round_trip(stdin, stdout, data, drop);
    let out = guard.wait();
    assert!(
        out.status.success(),
        "{bin} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `spipe` that must fail; returns its stderr.
fn spipe_must_fail(bin: &str, args: &[String]) -> String {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(b"hello");
    drop(stdin);
    let guard = ChildGuard(Some(child));
    let out = guard.wait();
    assert!(
        !out.status.success(),
        "{bin} succeeded against a peer that must refuse it"
    );
    assert!(
        out.stdout.is_empty(),
        "{bin} delivered data from a refused connection"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Kills a short-lived child on panic; `wait` collects its output within [`TIMEOUT`].
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn wait(mut self) -> std::process::Output {
        let mut child = self.0.take().unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("child did not exit within {TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    ClientToServer,
    ServerToClient,
}

/// A TCP man-in-the-middle that forwards both directions and, on its first connection only,
/// flips one bit at stream offset [`FLIP_OFFSET`] in direction `flip`.
struct Mitm {
    addr: Addr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Mitm {
    fn start(upstream: Addr, flip: Dir) -> Mitm {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = Addr::Tcp(l.local_addr().unwrap());
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut first = true;
            while !s.load(Ordering::Relaxed) {
                let Ok((down, _)) = l.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                down.set_nonblocking(false).unwrap();
                let down = Stream::Tcp(down);
                let up = upstream.connect();
                let flip_here = |d| (first && flip == d).then_some(FLIP_OFFSET);
                splice(
                    down.try_clone(),
                    up.try_clone(),
                    flip_here(Dir::ClientToServer),
                );
                splice(up, down, flip_here(Dir::ServerToClient));
                first = false;
            }
        });
        Mitm {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Mitm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies `from` to `to` on a thread, flipping the low bit of byte `flip_at` if given.
fn splice(mut from: Stream, mut to: Stream, flip_at: Option<usize>) {
    from.set_timeout(TIMEOUT);
    thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        let mut pos = 0usize;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(at) = flip_at {
                if (pos..pos + n).contains(&at) {
                    buf[at - pos] ^= 1;
                }
            }
            pos += n;
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        to.shutdown(Shutdown::Write);
    });
}

// ---------------------------------------------------------------------------------------------
// The role matrix

#[derive(Clone, Copy, Debug)]
enum Topo {
    RealEncrypts,
    OurEncrypts,
    RealSpipe,
    OurSpipe,
}

/// Builds `topo` over `net` with `our_flags`/`real_flags` on the two tunnel ends and sends
/// `len` random bytes through it to the echo server and back.
fn bulk(topo: Topo, net: Net, our_flags: &[&str], real_flags: &[&str], len: usize) {
    let sc = Scratch::new(&format!("{topo:?}-{net:?}"));
    let key = sc.key("key");
    let echo = Echo::start(&sc, net);
    let data = random_data(len);
    let dec_addr = sc.addr(net, "dec");
    let enc_addr = sc.addr(net, "enc");
    let spipe_args = |extra: &[&str], ours: bool| {
        let mut a = vec![
            "-t".to_string(),
            dec_addr.spec(),
            "-k".into(),
            key.display().to_string(),
        ];
        if ours {
            a.extend(OUR_PROTOCOL.iter().map(|s| s.to_string()));
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    match topo {
        Topo::RealEncrypts => {
            let _d = our_spiped(
                "-d",
                &dec_addr,
                &echo.addr,
                &key,
                our_flags,
                sc.path("our-d.log"),
            );
            let _e = real_spiped(
                "-e",
                &enc_addr,
                &dec_addr,
                &key,
                real_flags,
                sc.path("real-e.log"),
            );
            socket_round_trip(&enc_addr, &data);
        }
        Topo::OurEncrypts => {
            let _d = real_spiped(
                "-d",
                &dec_addr,
                &echo.addr,
                &key,
                real_flags,
                sc.path("real-d.log"),
            );
            let _e = our_spiped(
                "-e",
                &enc_addr,
                &dec_addr,
                &key,
                our_flags,
                sc.path("our-e.log"),
            );
            socket_round_trip(&enc_addr, &data);
        }
        Topo::RealSpipe => {
            let _d = our_spiped(
                "-d",
                &dec_addr,
                &echo.addr,
                &key,
                our_flags,
                sc.path("our-d.log"),
            );
            spipe_round_trip(REAL_SPIPE, &spipe_args(real_flags, false), &data);
        }
        Topo::OurSpipe => {
            let _d = real_spiped(
                "-d",
                &dec_addr,
                &echo.addr,
                &key,
                real_flags,
                sc.path("real-d.log"),
            );
            spipe_round_trip(OUR_SPIPE, &spipe_args(our_flags, true), &data);
        }
    }
    assert_eq!(
        echo.received.load(Ordering::Relaxed),
        len,
        "echo server saw a different byte count"
    );
}

macro_rules! bulk_tests {
    ($($name:ident: $topo:ident, $net:ident, $ours:expr, $real:expr, $len:expr;)*) => {$(
        /// Data crosses the tunnel intact in both directions with this role/transport/flag mix.
        #[test]
        #[ignore = "needs Debian spiped: run by tests/run.sh"]
        fn $name() {
            bulk(Topo::$topo, Net::$net, &$ours, &$real, $len);
        }
    )*};
}

bulk_tests! {
    real_e_to_our_d_tcp: RealEncrypts, Tcp, [], [], BULK_LEN;
    real_e_to_our_d_tcp_f: RealEncrypts, Tcp, ["-f"], ["-f"], BULK_LEN;
    real_e_to_our_d_unix: RealEncrypts, Unix, [], [], BULK_LEN;
    real_e_to_our_d_unix_f: RealEncrypts, Unix, ["-f"], ["-f"], BULK_LEN;
    our_e_to_real_d_tcp: OurEncrypts, Tcp, [], [], BULK_LEN;
    our_e_to_real_d_tcp_f: OurEncrypts, Tcp, ["-f"], ["-f"], BULK_LEN;
    our_e_to_real_d_unix: OurEncrypts, Unix, [], [], BULK_LEN;
    our_e_to_real_d_unix_f: OurEncrypts, Unix, ["-f"], ["-f"], BULK_LEN;
    real_spipe_to_our_d_tcp: RealSpipe, Tcp, [], [], BULK_LEN;
    real_spipe_to_our_d_tcp_f: RealSpipe, Tcp, ["-f"], ["-f"], BULK_LEN;
    real_spipe_to_our_d_unix: RealSpipe, Unix, [], [], BULK_LEN;
    real_spipe_to_our_d_unix_f: RealSpipe, Unix, ["-f"], ["-f"], BULK_LEN;
    our_spipe_to_real_d_tcp: OurSpipe, Tcp, [], [], BULK_LEN;
    our_spipe_to_real_d_tcp_f: OurSpipe, Tcp, ["-f"], ["-f"], BULK_LEN;
    our_spipe_to_real_d_unix: OurSpipe, Unix, [], [], BULK_LEN;
    our_spipe_to_real_d_unix_f: OurSpipe, Unix, ["-f"], ["-f"], BULK_LEN;
    // -f on one side only: the default side accepts y = 1 (no forward secrecy, but it works).
    real_e_f_to_our_d_default: RealEncrypts, Tcp, [], ["-f"], SMALL_LEN;
    our_e_f_to_real_d_default: OurEncrypts, Tcp, ["-f"], [], SMALL_LEN;
    real_spipe_f_to_our_d_default: RealSpipe, Unix, [], ["-f"], SMALL_LEN;
    our_spipe_f_to_real_d_default: OurSpipe, Unix, ["-f"], [], SMALL_LEN;
    // -g on both sides with PFS on both: nothing to refuse.
    both_g_real_e_to_our_d: RealEncrypts, Tcp, ["-g"], ["-g"], SMALL_LEN;
    both_g_our_e_to_real_d: OurEncrypts, Tcp, ["-g"], ["-g"], SMALL_LEN;
}

// ---------------------------------------------------------------------------------------------
// -g against -f

/// Our `-d` (started with `d_flags`) refuses a real `-e` started with `bad_flags` and, if
/// `wrong_key`, another key: that client gets nothing back, our log names the reason (`log`),
/// and the target is never contacted (we connect only after authentication). A real `-e` with
/// the right key and no flags is then served by the same daemon.
fn our_d_refuses_real_e(tag: &str, net: Net, d_flags: &[&str], wrong_key: bool, bad_flags: &[&str], log: &str) {
    let sc = Scratch::new(tag);
    let key = sc.key("key");
    let bad_key = if wrong_key { sc.key("other") } else { key.clone() };
    let echo = Echo::start(&sc, net);
    let dec = sc.addr(net, "dec");
    let (enc_bad, enc_good) = (sc.addr(net, "enc-bad"), sc.addr(net, "enc-good"));
    let mut d = our_spiped("-d", &dec, &echo.addr, &key, d_flags, sc.path("our-d.log"));
    let _bad = real_spiped("-e", &enc_bad, &dec, &bad_key, bad_flags, sc.path("real-e-bad.log"));
    let _good = real_spiped("-e", &enc_good, &dec, &key, &[], sc.path("real-e-good.log"));
    expect_nothing_back(&enc_bad);
    d.wait_log(log, 1);
    assert_eq!(
        echo.connections.load(Ordering::Relaxed),
        0,
        "target contacted before authentication"
    );
    socket_round_trip(&enc_good, &random_data(SMALL_LEN));
    d.assert_running();
}

/// Our `-d -g` refuses a real `-e -f` client, logs why, forwards nothing, and still serves a
/// real PFS client afterwards.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn our_d_g_refuses_real_e_f() {
    our_d_refuses_real_e("our-d-g", Net::Tcp, &["-g"], false, &["-f"], LOG_PFS_REQUIRED);
}

/// Our `-e -g` refuses a real `-d -f` server and logs why; the client gets nothing.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn our_e_g_refuses_real_d_f() {
    let sc = Scratch::new("our-e-g");
    let key = sc.key("key");
    let echo = Echo::start(&sc, Net::Unix);
    let (dec, enc) = (sc.addr(Net::Unix, "dec"), sc.addr(Net::Unix, "enc"));
    let _d = real_spiped("-d", &dec, &echo.addr, &key, &["-f"], sc.path("real-d.log"));
    let mut e = our_spiped("-e", &enc, &dec, &key, &["-g"], sc.path("our-e.log"));
    expect_nothing_back(&enc);
    e.wait_log(LOG_PFS_REQUIRED, 1);
    assert_eq!(echo.received.load(Ordering::Relaxed), 0);
    e.assert_running();
}

/// The real `-d -g` refuses our `-e -f`; our client side delivers nothing.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn real_d_g_refuses_our_e_f() {
    let sc = Scratch::new("real-d-g");
    let key = sc.key("key");
    let echo = Echo::start(&sc, Net::Tcp);
    let (dec, enc) = (sc.addr(Net::Tcp, "dec"), sc.addr(Net::Tcp, "enc"));
    let _d = real_spiped("-d", &dec, &echo.addr, &key, &["-g"], sc.path("real-d.log"));
    let mut e = our_spiped("-e", &enc, &dec, &key, &["-f"], sc.path("our-e.log"));
    expect_nothing_back(&enc);
    assert_eq!(echo.received.load(Ordering::Relaxed), 0);
    e.assert_running();
}

/// The real `-e -g` refuses our `-d -f`; nothing reaches the target.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn real_e_g_refuses_our_d_f() {
    let sc = Scratch::new("real-e-g");
    let key = sc.key("key");
    let echo = Echo::start(&sc, Net::Unix);
    let (dec, enc) = (sc.addr(Net::Unix, "dec"), sc.addr(Net::Unix, "enc"));
    let mut d = our_spiped("-d", &dec, &echo.addr, &key, &["-f"], sc.path("our-d.log"));
    let _e = real_spiped("-e", &enc, &dec, &key, &["-g"], sc.path("real-e.log"));
    expect_nothing_back(&enc);
    assert_eq!(echo.received.load(Ordering::Relaxed), 0);
    d.assert_running();
}

/// Real `spipe -g` against our `-d -f` exits 1 ("Handshake failed" or a connection error).
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn real_spipe_g_refuses_our_d_f() {
    let sc = Scratch::new("real-spipe-g");
    let key = sc.key("key");
    let echo = Echo::start(&sc, Net::Tcp);
    let dec = sc.addr(Net::Tcp, "dec");
    let mut d = our_spiped("-d", &dec, &echo.addr, &key, &["-f"], sc.path("our-d.log"));
    let args = [
        "-t".to_string(),
        dec.spec(),
        "-k".into(),
        key.display().to_string(),
        "-g".into(),
    ];
    spipe_must_fail(REAL_SPIPE, &args);
    assert_eq!(echo.received.load(Ordering::Relaxed), 0);
    d.assert_running();
}

/// Our `spipe -g` against the real `-d -f` exits non-zero and names the reason.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn our_spipe_g_refuses_real_d_f() {
    let sc = Scratch::new("our-spipe-g");
    let key = sc.key("key");
    let echo = Echo::start(&sc, Net::Tcp);
    let dec = sc.addr(Net::Tcp, "dec");
    let _d = real_spiped("-d", &dec, &echo.addr, &key, &["-f"], sc.path("real-d.log"));
    let mut args = vec![
        "-t".to_string(),
        dec.spec(),
        "-k".into(),
        key.display().to_string(),
        "-g".into(),
    ];
    args.extend(OUR_PROTOCOL.iter().map(|s| s.to_string()));
    let err = spipe_must_fail(OUR_SPIPE, &args);
    assert!(
        err.contains(LOG_PFS_REQUIRED),
        "our spipe stderr does not name the reason: {err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Tampering and wrong keys

/// A bit flipped in the first client-to-server packet (real `-e` -> MITM -> our `-d`): our `-d`
/// logs the MAC failure, forwards nothing of the connection, and the next connection works.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn flipped_bit_rejected_by_our_d() {
    let sc = Scratch::new("flip-our-d");
    let key = sc.key("key");
    let echo = Echo::start(&sc, Net::Tcp);
    let (dec, enc) = (sc.addr(Net::Tcp, "dec"), sc.addr(Net::Tcp, "enc"));
    let mut d = our_spiped("-d", &dec, &echo.addr, &key, &[], sc.path("our-d.log"));
    let mitm = Mitm::start(dec.clone(), Dir::ClientToServer);
    let _e = real_spiped("-e", &enc, &mitm.addr, &key, &[], sc.path("real-e.log"));
    expect_nothing_back(&enc);
    d.wait_log(LOG_BAD_MAC, 1);
    assert_eq!(
        echo.received.load(Ordering::Relaxed),
        0,
        "data after the fault reached the target"
    );
    socket_round_trip(&enc, &random_data(SMALL_LEN));
    d.assert_running();
}

/// A bit flipped in the first server-to-client packet (our `-e` -> MITM -> real `-d`): our `-e`
/// logs the MAC failure, gives the plaintext client nothing, and the next connection works.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn flipped_bit_rejected_by_our_e() {
    let sc = Scratch::new("flip-our-e");
    let key = sc.key("key");
    let echo = Echo::start(&sc, Net::Tcp);
    let (dec, enc) = (sc.addr(Net::Tcp, "dec"), sc.addr(Net::Tcp, "enc"));
    let _d = real_spiped("-d", &dec, &echo.addr, &key, &[], sc.path("real-d.log"));
    let mitm = Mitm::start(dec.clone(), Dir::ServerToClient);
    let mut e = our_spiped("-e", &enc, &mitm.addr, &key, &[], sc.path("our-e.log"));
    expect_nothing_back(&enc);
    e.wait_log(LOG_BAD_MAC, 1);
    socket_round_trip(&enc, &random_data(SMALL_LEN));
    e.assert_running();
}

/// A real `-e` with another key is refused by our `-d` ("bad key" in the log) before the
/// target is contacted; a real `-e` with the right key is served by the same daemon afterwards.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn wrong_key_rejected_by_our_d() {
    for net in [Net::Tcp, Net::Unix] {
        our_d_refuses_real_e(&format!("wrong-key-our-d-{net:?}"), net, &[], true, &[], LOG_BAD_KEY);
    }
}

/// Our `-e` against a real `-d` with another key: the real server drops the handshake, our
/// `-e` logs a handshake failure for each attempt, delivers nothing, and keeps accepting.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn wrong_key_our_e_to_real_d() {
    let sc = Scratch::new("wrong-key-our-e");
    let (key, other) = (sc.key("key"), sc.key("other"));
    let echo = Echo::start(&sc, Net::Tcp);
    let (dec, enc) = (sc.addr(Net::Tcp, "dec"), sc.addr(Net::Tcp, "enc"));
    let _d = real_spiped("-d", &dec, &echo.addr, &other, &[], sc.path("real-d.log"));
    let mut e = our_spiped("-e", &enc, &dec, &key, &[], sc.path("our-e.log"));
    for attempt in 1..=2 {
        expect_nothing_back(&enc);
        e.wait_log("handshake", attempt);
        e.assert_running();
    }
    assert_eq!(echo.received.load(Ordering::Relaxed), 0);
}

/// Real `spipe` with another key is refused by our `-d` ("bad key") and exits 1.
#[test]
#[ignore = "needs Debian spiped: run by tests/run.sh"]
fn wrong_key_real_spipe_to_our_d() {
    let sc = Scratch::new("wrong-key-spipe");
    let (key, other) = (sc.key("key"), sc.key("other"));
    let echo = Echo::start(&sc, Net::Unix);
    let dec = sc.addr(Net::Unix, "dec");
    let mut d = our_spiped("-d", &dec, &echo.addr, &key, &[], sc.path("our-d.log"));
    let args = [
        "-t".to_string(),
        dec.spec(),
        "-k".into(),
        other.display().to_string(),
    ];
    spipe_must_fail(REAL_SPIPE, &args);
    d.wait_log(LOG_BAD_KEY, 1);
    assert_eq!(echo.connections.load(Ordering::Relaxed), 0);
    d.assert_running();
}
