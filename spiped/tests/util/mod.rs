//! Shared helpers for `spiped` integration tests (`mod util;` in a test file).
//!
//! - [`bin`]: paths of our binaries (`env!("CARGO_BIN_EXE_...")`, so cargo builds them first).
//! - [`free_port`], [`addr`], [`wait_for_port`]: loopback ports only (127.0.0.1).
//! - [`Daemon`]: a child process killed (SIGKILL, by its PID) when dropped, with stderr captured
//!   to a file so tests can wait for log lines; [`Daemon::term`] sends SIGTERM.
//! - [`EchoServer`] (optionally rate-limited, half-close aware) and [`SinkServer`] (collects
//!   what each connection sent): thread-based servers on free ports, bounded by timeouts.
//! - [`TempDir`], [`random_bytes`], [`write_key`].
//!
//! Everything is bounded: every wait has a timeout and panics with a message naming what did
//! not happen.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Path of one of our binaries: "spiped" or "spipe".
pub fn bin(name: &str) -> PathBuf {
    match name {
        "spiped" => PathBuf::from(env!("CARGO_BIN_EXE_spiped")),
        "spipe" => PathBuf::from(env!("CARGO_BIN_EXE_spipe")),
        other => panic!("unknown binary {other}"),
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

/// spiped's literal address form for a loopback port: `[127.0.0.1]:port`.
pub fn addr(port: u16) -> String {
    format!("[127.0.0.1]:{port}")
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port} after {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a UNIX socket at `path` accepts connections.
pub fn wait_for_unix(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {} after {timeout:?}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temporary directory removed on drop; unique per process and tag.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/spiped-test-<tag>-<pid>`.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("spiped-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so a failure reproduces.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes a 32-byte key file into `dir`.
pub fn write_key(dir: &TempDir, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, random_bytes(32, 0x5eed ^ name.len() as u64)).unwrap();
    p
}

/// A child process with captured stderr, killed by PID when dropped.
pub struct Daemon {
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Daemon {
    /// Spawns `bin(name) args...` with stdin closed, stdout discarded, stderr into `log`.
    pub fn spawn(name: &str, args: &[&str], log: PathBuf) -> Daemon {
        let mut cmd = Command::new(bin(name));
        cmd.args(args);
        Daemon::spawn_command(cmd, log)
    }

    /// Spawns `cmd` (which must end up exec'ing the program, so the PID is the daemon's) with
    /// stdin closed, stdout discarded, stderr into `log`.
    pub fn spawn_command(mut cmd: Command, log: PathBuf) -> Daemon {
        let err = std::fs::File::create(&log).expect("create log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn daemon");
        Daemon { child, log, status: None }
    }

    /// `spiped` in the foreground with `args` (-F is added), logging to `dir/<tag>.log`.
    pub fn spiped(dir: &TempDir, tag: &str, args: &[&str]) -> Daemon {
        let mut a = vec!["-F"];
        a.extend_from_slice(args);
        Daemon::spawn("spiped", &a, dir.join(&format!("{tag}.log")))
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until stderr contains `needle`; returns the log.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let l = self.log();
            if l.contains(needle) {
                return l;
            }
            assert!(Instant::now() < deadline, "log never contained {needle:?} within {timeout:?}; log:\n{l}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by PID.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig);
    }

    /// SIGTERM: graceful shutdown.
    pub fn term(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Waits for the process to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
                return self.status;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn accept_loop(l: TcpListener, handler: impl Fn(TcpStream) + Send + Sync + Clone + 'static) {
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let h = handler.clone();
            std::thread::spawn(move || h(s));
        }
    });
}

/// An echo server on a free loopback port: echoes every byte, then half-closes after the
/// client's FIN. With `rate`, sends at most `rate` bytes per second (spiped's test 08).
pub struct EchoServer {
    /// Its port.
    pub port: u16,
}

impl EchoServer {
    /// Starts it; it lives until the test process exits.
    pub fn start(rate: Option<usize>) -> EchoServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        accept_loop(l, move |mut s: TcpStream| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
            let mut r = s.try_clone().unwrap();
            let chunk = rate.map_or(64 * 1024, |r| (r / 10).max(1));
            let mut buf = vec![0u8; chunk];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
                if rate.is_some() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            let _ = s.shutdown(Shutdown::Write);
        });
        EchoServer { port }
    }
}

/// A sink on a free loopback port: reads each connection to EOF and reports the bytes (or the
/// error that ended it) on a channel.
pub struct SinkServer {
    /// Its port.
    pub port: u16,
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
}

impl SinkServer {
    /// Starts it.
    pub fn start() -> SinkServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Arc::new(std::sync::Mutex::new(tx));
        accept_loop(l, move |mut s: TcpStream| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
            let mut v = Vec::new();
            let r = s.read_to_end(&mut v).map(|_| v);
            let _ = tx.lock().unwrap().send(r);
        });
        SinkServer { port, rx }
    }

    /// The next connection's bytes (or its error), waiting at most `timeout`.
    pub fn next(&self, timeout: Duration) -> std::io::Result<Vec<u8>> {
        self.rx.recv_timeout(timeout).expect("sink received no connection in time")
    }

    /// True if some connection reached the sink within `timeout`.
    pub fn saw_connection(&self, timeout: Duration) -> bool {
        self.rx.recv_timeout(timeout).is_ok()
    }
}

/// Starts `spipe` with `args`, its stdin, stdout and stderr piped to the test.
pub fn spawn_spipe(args: &[&str]) -> Child {
    Command::new(bin("spipe"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spipe")
}

/// Waits for `child` to exit; past `timeout` it is killed and the test fails naming `what`.
pub fn wait_child(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `spipe` with `args`, feeding `input` on stdin; returns (status, stdout, stderr).
pub fn run_spipe(args: &[&str], input: Vec<u8>, timeout: Duration) -> (ExitStatus, Vec<u8>, String) {
    let mut child = spawn_spipe(args);
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_child(&mut child, timeout, &format!("spipe {args:?}"));
    feeder.join().unwrap();
    (status, reader.join().unwrap(), err_reader.join().unwrap())
}
