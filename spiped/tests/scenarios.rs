//! spiped's own test scenarios (tests/0*-*.sh in the spiped repository), rewritten for our
//! binaries, plus the behaviours our CLI adds. Everything runs on 127.0.0.1 or UNIX sockets in
//! a temporary directory; every daemon runs in the foreground and is killed by PID on failure.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use util::*;

const T: Duration = Duration::from_secs(10);

/// An -e/-d pair over TCP: client → -e (port e) → -d (port d) → `target`.
struct Pair {
    e: Daemon,
    d: Daemon,
    port: u16,
}

fn pair(dir: &TempDir, key: &str, target: u16, extra: &[&str]) -> Pair {
    let (pe, pd) = (free_port(), free_port());
    let ad = addr(pd);
    let t = addr(target);
    let mut da = vec!["-d", "-s", ad.as_str(), "-t", t.as_str(), "-k", key];
    da.extend_from_slice(extra);
    let ae = addr(pe);
    let mut ea = vec!["-e", "-s", ae.as_str(), "-t", ad.as_str(), "-k", key];
    ea.extend_from_slice(extra);
    let d = Daemon::spiped(dir, "d", &da);
    let e = Daemon::spiped(dir, "e", &ea);
    wait_for_port(pd, T);
    wait_for_port(pe, T);
    Pair { e, d, port: pe }
}

fn stop_cleanly(mut daemons: Vec<&mut Daemon>) {
    for d in &daemons {
        d.term();
    }
    for d in &mut daemons {
        let st = d.wait_exit(T).unwrap_or_else(|| panic!("daemon did not exit on SIGTERM; log:\n{}", d.log()));
        assert!(st.success(), "daemon exited with {st}; log:\n{}", d.log());
    }
}

/// Sends `data` through `s`, half-closes, and returns everything read back until EOF.
fn round_trip(mut s: TcpStream, data: &[u8]) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let send = data.to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&send).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    got
}

/// spiped test 01 (TCP): one connection opens and closes through an -e/-d pair; both daemons
/// exit 0 on SIGTERM.
#[test]
fn open_close_single_tcp() {
    let dir = TempDir::new("s01");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let mut p = pair(&dir, key.to_str().unwrap(), echo.port, &[]);
    let got = round_trip(TcpStream::connect(("127.0.0.1", p.port)).unwrap(), b"hello through the pipe");
    assert_eq!(got, b"hello through the pipe");
    stop_cleanly(vec![&mut p.e, &mut p.d]);
}

/// spiped test 01 (UNIX sockets): the same with both daemons listening on UNIX sockets and the
/// -e side targeting the -d side's socket; the socket files are removed on exit.
#[test]
fn open_close_single_unix() {
    let dir = TempDir::new("s01u");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let (se, sd) = (dir.join("e.sock"), dir.join("d.sock"));
    let (se_s, sd_s) = (se.to_str().unwrap(), sd.to_str().unwrap());
    let k = key.to_str().unwrap();
    let t = addr(echo.port);
    let mut d = Daemon::spiped(&dir, "d", &["-d", "-s", sd_s, "-t", &t, "-k", k, "--socket-mode", "600"]);
    let mut e = Daemon::spiped(&dir, "e", &["-e", "-s", se_s, "-t", sd_s, "-k", k]);
    wait_for_unix(&sd, T);
    wait_for_unix(&se, T);
    assert_eq!(std::fs::metadata(&sd).unwrap().permissions().mode() & 0o777, 0o600, "--socket-mode");
    let mut c = UnixStream::connect(&se).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    c.write_all(b"over unix sockets").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"over unix sockets");
    stop_cleanly(vec![&mut e, &mut d]);
    assert!(!sd.exists() && !se.exists(), "socket files left behind");
}

/// spiped test 03: two overlapping connections through the same pair both work.
#[test]
fn open_close_double() {
    let dir = TempDir::new("s03");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let mut p = pair(&dir, key.to_str().unwrap(), echo.port, &[]);
    let mut a = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    let mut b = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    for s in [&mut a, &mut b] {
        s.set_read_timeout(Some(T)).unwrap();
    }
    a.write_all(b"first").unwrap();
    b.write_all(b"second").unwrap();
    let mut ba = [0u8; 5];
    let mut bb = [0u8; 6];
    a.read_exact(&mut ba).unwrap();
    b.read_exact(&mut bb).unwrap();
    assert_eq!((&ba, &bb), (b"first", b"second"));
    drop(a);
    drop(b);
    stop_cleanly(vec![&mut p.e, &mut p.d]);
}

/// spiped's `-o 1`: a peer that connects to -d and never speaks is dropped after about a
/// second, and the reason is logged.
#[test]
fn handshake_timeout_drops_silent_peer() {
    let dir = TempDir::new("s02");
    let key = write_key(&dir, "key");
    let sink = SinkServer::start();
    let pd = free_port();
    let mut d = Daemon::spiped(&dir, "d", &["-d", "-s", &addr(pd), "-t", &addr(sink.port), "-k", key.to_str().unwrap(), "-o", "1"]);
    wait_for_port(pd, T);
    let mut c = TcpStream::connect(("127.0.0.1", pd)).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    let t0 = Instant::now();
    // The responder may speak first; read whatever it sends until it closes.
    let mut junk = Vec::new();
    let _ = c.read_to_end(&mut junk);
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(800) && waited < Duration::from_secs(4), "dropped after {waited:?}");
    d.wait_log("handshake timed out", T);
    assert!(!sink.saw_connection(Duration::from_millis(200)), "-d connected to the target for an unauthenticated peer");
    stop_cleanly(vec![&mut d]);
}

fn bulk_to_sink(protocol: &str) {
    let dir = TempDir::new(&format!("s05-{protocol}"));
    let key = write_key(&dir, "key");
    let sink = SinkServer::start();
    let mut p = pair(&dir, key.to_str().unwrap(), sink.port, &["--protocol", protocol]);
    let data = random_bytes(64 << 20, 5);
    let mut c = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    c.write_all(&data).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    // Skip the empty connection made by pair()'s readiness probe.
    let got = loop {
        let got = sink.next(Duration::from_secs(120)).expect("sink connection failed");
        if !got.is_empty() {
            break got;
        }
    };
    assert_eq!(got.len(), data.len(), "length");
    assert!(got == data, "64 MiB differ");
    drop(c);
    stop_cleanly(vec![&mut p.e, &mut p.d]);
}

/// spiped test 05: 64 MiB of random bytes through -e → -d → sink arrive byte for byte
/// (native protocol).
#[test]
fn bulk_64mib_to_sink_native() {
    bulk_to_sink("native");
}

/// spiped test 05 with `--protocol spiped1` on both daemons.
#[test]
fn bulk_64mib_to_sink_spiped1() {
    bulk_to_sink("spiped1");
}

/// 64 MiB in both directions at once through the pair and an echo server.
#[test]
fn bulk_64mib_echo_both_directions() {
    let dir = TempDir::new("s05e");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let mut p = pair(&dir, key.to_str().unwrap(), echo.port, &[]);
    let data = random_bytes(64 << 20, 6);
    let got = round_trip(TcpStream::connect(("127.0.0.1", p.port)).unwrap(), &data);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed 64 MiB differ");
    stop_cleanly(vec![&mut p.e, &mut p.d]);
}

fn spipe_bulk(protocol: &str) {
    let dir = TempDir::new(&format!("s04-{protocol}"));
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let pd = free_port();
    let k = key.to_str().unwrap();
    let mut d = Daemon::spiped(&dir, "d", &["-d", "-s", &addr(pd), "-t", &addr(echo.port), "-k", k, "--protocol", protocol]);
    wait_for_port(pd, T);
    let data = random_bytes(64 << 20, 4);
    let (st, out, err) = run_spipe(&["-t", &addr(pd), "-k", k, "--protocol", protocol], data.clone(), Duration::from_secs(120));
    assert!(st.success(), "spipe failed: {st}: {err}");
    assert_eq!(out.len(), data.len());
    assert!(out == data, "spipe output differs");
    stop_cleanly(vec![&mut d]);
}

/// spiped test 04: 64 MiB through `spipe` → -d → echo and back to spipe's stdout, intact,
/// spipe exits 0 (native protocol).
#[test]
fn spipe_64mib_echo_native() {
    spipe_bulk("native");
}

/// spiped test 04 with `--protocol spiped1`.
#[test]
fn spipe_64mib_echo_spiped1() {
    spipe_bulk("spiped1");
}

/// spiped test 08: half-close through a slow (2000 B/s) echo server. spipe finishes sending
/// long before the echo finishes, keeps receiving, gets everything, exits 0.
#[test]
fn half_close_through_slow_echo() {
    let dir = TempDir::new("s08");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(Some(2000));
    let pd = free_port();
    let k = key.to_str().unwrap();
    let mut d = Daemon::spiped(&dir, "d", &["-d", "-s", &addr(pd), "-t", &addr(echo.port), "-k", k]);
    wait_for_port(pd, T);
    let data = random_bytes(4000, 8);
    let t0 = Instant::now();
    let (st, out, err) = run_spipe(&["-t", &addr(pd), "-k", k], data.clone(), Duration::from_secs(30));
    assert!(st.success(), "spipe failed: {st}: {err}");
    assert_eq!(out, data);
    assert!(t0.elapsed() >= Duration::from_millis(1500), "echo was not actually slow");
    stop_cleanly(vec![&mut d]);
}

/// ssh ends a ProxyCommand by closing its stdin and sending SIGHUP at once. spipe must not die
/// on the signal before its close record left: it finishes the connection (close record out,
/// the peer's in), exits 0, and `-d` sees a clean end, not a truncation.
#[test]
fn spipe_sighup_right_after_stdin_eof_ends_cleanly() {
    let dir = TempDir::new("s-hup");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let pd = free_port();
    let k = key.to_str().unwrap();
    let mut d = Daemon::spiped(&dir, "d", &["-d", "-s", &addr(pd), "-t", &addr(echo.port), "-k", k]);
    wait_for_port(pd, T);
    for round in 0..5 {
        let mut child = spawn_spipe(&["-t", &addr(pd), "-k", k]);
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        stdin.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        stdout.read_exact(&mut got).unwrap(); // the connection is up
        assert_eq!(&got, b"ping");
        drop(stdin);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGHUP).unwrap();
        let t0 = Instant::now();
        let status = wait_child(&mut child, T, &format!("round {round}: spipe after SIGHUP"));
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(status.success(), "round {round}: spipe exited with {status} after SIGHUP: {err}");
        assert!(t0.elapsed() < Duration::from_secs(2), "round {round}: the clean end waited for the grace period");
    }
    stop_cleanly(vec![&mut d]);
    let log = d.log();
    assert!(!log.contains("truncat"), "-d saw a truncation:\n{log}");
}

/// spiped test 04 (second half): spipe to a target nobody listens on exits 1 promptly with a
/// message naming the target; the same for a UNIX socket that does not exist.
#[test]
fn spipe_unreachable_target_exits_1() {
    let dir = TempDir::new("s04u");
    let key = write_key(&dir, "key");
    let k = key.to_str().unwrap();
    let port = free_port();
    let t0 = Instant::now();
    let (st, _, err) = run_spipe(&["-t", &addr(port), "-k", k], Vec::new(), T);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("could not connect to") && err.contains(&port.to_string()), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    let missing = dir.join("nobody.sock");
    let (st, _, err) = run_spipe(&["-t", missing.to_str().unwrap(), "-k", k], Vec::new(), T);
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("could not connect"), "{err}");
}

/// A wrong key makes spipe exit 1 with a handshake message, and nothing reaches the target.
#[test]
fn spipe_wrong_key_exits_1() {
    let dir = TempDir::new("s04k");
    let key = write_key(&dir, "key");
    let other = dir.join("other");
    std::fs::write(&other, random_bytes(32, 99)).unwrap();
    let sink = SinkServer::start();
    let pd = free_port();
    let mut d = Daemon::spiped(&dir, "d", &["-d", "-s", &addr(pd), "-t", &addr(sink.port), "-k", key.to_str().unwrap()]);
    wait_for_port(pd, T);
    let (st, _, err) = run_spipe(&["-t", &addr(pd), "-k", other.to_str().unwrap()], b"secret".to_vec(), T);
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("handshake failed"), "{err}");
    d.wait_log("connection failed: handshake failed", T);
    assert!(!sink.saw_connection(Duration::from_millis(300)));
    stop_cleanly(vec![&mut d]);
}

/// `-n 2 -o 1`: two silent connections fill the cap and a warning is logged; a third client
/// waits in the backlog and is served once the silent ones time out.
#[test]
fn connection_cap_then_recovery() {
    let dir = TempDir::new("cap");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let pd = free_port();
    let k = key.to_str().unwrap();
    let mut d = Daemon::spiped(&dir, "d", &["-d", "-s", &addr(pd), "-t", &addr(echo.port), "-k", k, "-n", "2", "-o", "1"]);
    wait_for_port(pd, T);
    // wait_for_port's probe connection counts too: wait until it is gone.
    d.wait_log("connection failed", T);
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(("127.0.0.1", pd)).unwrap()).collect();
    d.wait_log("Maximum number of connections (2) reached", T);
    let t0 = Instant::now();
    let (st, out, err) = run_spipe(&["-t", &addr(pd), "-k", k, "-o", "5"], b"after the cap".to_vec(), T);
    assert!(st.success(), "{err}");
    assert_eq!(out, b"after the cap");
    assert!(t0.elapsed() >= Duration::from_millis(300), "the third client was not held back by the cap");
    drop(idle);
    stop_cleanly(vec![&mut d]);
}

/// SIGTERM: the daemon stops accepting at once, an open connection keeps working, and the
/// daemon exits 0 when it closes.
#[test]
fn sigterm_drains_open_connections() {
    let dir = TempDir::new("drain");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let mut p = pair(&dir, key.to_str().unwrap(), echo.port, &[]);
    let mut c = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    c.write_all(b"before").unwrap();
    let mut b = [0u8; 6];
    c.read_exact(&mut b).unwrap();
    p.e.term();
    p.e.wait_log("SIGTERM", T);
    // New clients are refused.
    let deadline = Instant::now() + T;
    while TcpStream::connect(("127.0.0.1", p.port)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The open connection still works, and the daemon waits for it.
    c.write_all(b"during").unwrap();
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"during");
    assert!(p.e.wait_exit(Duration::from_millis(300)).is_none(), "exited with a connection open");
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    let st = p.e.wait_exit(T).expect("did not exit after the last connection closed");
    assert!(st.success());
    stop_cleanly(vec![&mut p.d]);
}

/// Without -F the daemon forks into the background, writes the pid file (default name
/// `<source>.pid` in the working directory, or `-p`), and removes it on SIGTERM.
#[test]
fn daemonizes_and_writes_pid_file() {
    let dir = TempDir::new("pid");
    let key = write_key(&dir, "key");
    let pd = free_port();
    let pidfile = dir.join("spiped.pid");
    let st = Command::new(bin("spiped"))
        .args(["-d", "-s", &addr(pd), "-t", "[127.0.0.1]:9", "-k", key.to_str().unwrap(), "-p", pidfile.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success(), "parent exits 0 after forking");
    wait_for_port(pd, T);
    let deadline = Instant::now() + T;
    while !pidfile.exists() {
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let p = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + T;
    while nix::sys::signal::kill(p, None).is_ok() {
        assert!(Instant::now() < deadline, "daemon {pid} did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pidfile.exists(), "pid file not removed");
}

/// `--keygen` writes 32 bytes with mode 0600 and refuses to overwrite an existing file.
#[test]
fn keygen_file_mode_and_no_overwrite() {
    let dir = TempDir::new("keygen");
    let p = dir.join("new.key");
    let st = Command::new(bin("spiped")).args(["--keygen", p.to_str().unwrap()]).status().unwrap();
    assert!(st.success());
    let m = std::fs::metadata(&p).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert_eq!(m.len(), 32);
    let before = std::fs::read(&p).unwrap();
    let out = Command::new(bin("spiped")).args(["--keygen", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

/// Usage errors exit 1 with a message (spiped's status, not clap's 2); `-v` exits 0 with
/// "spiped <version>"; an unreadable key file is refused before anything starts.
#[test]
fn cli_errors_exit_1() {
    let dir = TempDir::new("cli");
    let key = write_key(&dir, "key");
    let k = key.to_str().unwrap();
    let port = addr(free_port());
    let cases: &[(&[&str], &str)] = &[
        (&["-e", "-d", "-s", &port, "-t", "[127.0.0.1]:9", "-k", k], "cannot be used with"),
        (&["-e", "-f", "-g", "-s", &port, "-t", "[127.0.0.1]:9", "-k", k], "cannot be used with"),
        (&["-e", "-s", &port, "-t", "[127.0.0.1]:9"], "-k"),
        (&["-s", &port, "-t", "[127.0.0.1]:9", "-k", k], "-e"),
        (&["-e", "-s", "nonsense", "-t", "[127.0.0.1]:9", "-k", k], "port"),
        (&["-e", "-F", "-s", &port, "-t", "[127.0.0.1]:9", "-k", "/nonexistent/key"], "cannot read key file"),
    ];
    for (args, needle) in cases {
        let out = Command::new(bin("spiped")).args(*args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
    }
    let out = Command::new(bin("spiped")).arg("-v").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("spiped "));
    let out = Command::new(bin("spipe")).args(["-t", "[127.0.0.1]:9"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Memory per idle established connection pair stays under 100 KiB across both daemons
/// (measured: RSS growth of -e plus -d over 200 connections that each moved a few bytes and
/// then went idle). Data buffers are given back when they drain, so idle pairs hold none.
#[test]
fn idle_connection_memory_is_bounded() {
    const N: usize = 200;
    let dir = TempDir::new("rss");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let mut p = pair(&dir, key.to_str().unwrap(), echo.port, &["-n", "0"]);
    let open = |n: usize| -> Vec<TcpStream> {
        (0..n)
            .map(|i| {
                let mut c = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
                c.set_read_timeout(Some(T)).unwrap();
                let msg = random_bytes(1000, i as u64);
                c.write_all(&msg).unwrap();
                let mut back = vec![0u8; msg.len()];
                c.read_exact(&mut back).unwrap();
                assert_eq!(back, msg);
                c
            })
            .collect()
    };
    // Warm up: every worker's scratch buffers and pool exist before the baseline.
    let warm = open(16);
    drop(warm);
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(p.e.pid()) + rss_kib(p.d.pid());
    let conns = open(N);
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kib(p.e.pid()) + rss_kib(p.d.pid());
    let per_pair = after.saturating_sub(before) * 1024 / N as u64;
    eprintln!("RSS {before} KiB -> {after} KiB for {N} idle pairs: {per_pair} bytes per pair");
    assert!(per_pair <= 100 * 1024, "{per_pair} bytes per idle connection pair");
    drop(conns);
    stop_cleanly(vec![&mut p.e, &mut p.d]);
}

/// SIGINT exits at once, even with a connection open (SIGTERM would wait for it).
#[test]
fn sigint_exits_immediately() {
    let dir = TempDir::new("sigint");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let mut p = pair(&dir, key.to_str().unwrap(), echo.port, &[]);
    let mut c = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    c.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    p.e.signal(nix::sys::signal::Signal::SIGINT);
    let st = p.e.wait_exit(Duration::from_secs(3)).expect("SIGINT did not stop the daemon");
    assert!(st.success(), "{st}");
    stop_cleanly(vec![&mut p.d]);
}

/// `-1`: the daemon serves one connection, refuses further ones, and exits 0 when it ends.
#[test]
fn once_flag_serves_one_connection() {
    let dir = TempDir::new("once");
    let key = write_key(&dir, "key");
    let echo = EchoServer::start(None);
    let k = key.to_str().unwrap();
    let sock = dir.join("d.sock");
    let mut d = Daemon::spiped(&dir, "d", &["-d", "-1", "-s", sock.to_str().unwrap(), "-t", &addr(echo.port), "-k", k]);
    let deadline = Instant::now() + T;
    while !sock.exists() {
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (st, out, err) = run_spipe(&["-t", sock.to_str().unwrap(), "-k", k], b"only one".to_vec(), T);
    assert!(st.success(), "{err}");
    assert_eq!(out, b"only one");
    let st = d.wait_exit(T).expect("-1 daemon did not exit after its connection");
    assert!(st.success());
}

/// `-u nobody:nogroup`: after binding, the daemon runs as that user and group, with no
/// supplementary groups left.
#[test]
#[ignore = "needs root: run by tests/run.sh"]
fn drops_privileges_after_binding() {
    let dir = TempDir::new("priv");
    let key = write_key(&dir, "key");
    let pd = free_port();
    let mut d = Daemon::spiped(&dir, "d", &["-d", "-s", &addr(pd), "-t", "[127.0.0.1]:9", "-k", key.to_str().unwrap(), "-u", "nobody:nogroup"]);
    wait_for_port(pd, T);
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).unwrap_or("").to_owned();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid.as_raw();
    let nogroup = nix::unistd::Group::from_name("nogroup").unwrap().unwrap().gid.as_raw();
    assert!(field("Uid:").split_whitespace().skip(1).all(|u| u == nobody.to_string()), "{}", field("Uid:"));
    assert!(field("Gid:").split_whitespace().skip(1).all(|g| g == nogroup.to_string()), "{}", field("Gid:"));
    let groups = field("Groups:");
    assert!(groups.split_whitespace().skip(1).all(|g| g == nogroup.to_string()), "{groups}");
    stop_cleanly(vec![&mut d]);
}

/// Runs `program args...` in a private mount namespace where each `(source, target)` is
/// bind-mounted first (`unshare -m`, then `exec`: the PID stays the program's). Lets a test give
/// one daemon its own /etc/hosts or syslog socket without touching the machine's.
fn in_private_mounts(binds: &[(&std::path::Path, &str)], program: &std::path::Path, args: &[&str]) -> Command {
    let mut script = String::from("set -e; ");
    for (i, (_, target)) in binds.iter().enumerate() {
        // Mount only over what exists (e.g. /dev/log is absent on machines without a syslog).
        script.push_str(&format!("if [ -e {target} ]; then mount --bind \"${}\" {target}; fi; ", i + 1));
    }
    script.push_str(&format!("shift {}; exec \"$@\"", binds.len()));
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"]);
    for (source, _) in binds {
        c.arg(source);
    }
    c.arg(program).args(args);
    c
}

/// A server on `ip:port` that writes `banner` to each client and closes.
fn banner_server(ip: &str, port: u16, banner: &'static [u8]) {
    let l = std::net::TcpListener::bind((ip, port)).unwrap_or_else(|e| panic!("bind {ip}:{port}: {e}"));
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(banner);
        }
    });
}

/// What a client of the -e end reads until EOF (empty on any error).
fn banner_through(port: u16) -> Vec<u8> {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else { return Vec::new() };
    c.set_read_timeout(Some(T)).unwrap();
    let mut v = Vec::new();
    let _ = c.read_to_end(&mut v);
    v
}

/// `-r 1`: the target name is looked up again every second. When its address changes, new
/// connections go to the new one; when the lookup fails, the daemon logs it and keeps the
/// previous addresses. The daemon gets its own /etc/hosts (a private mount), edited in place.
#[test]
#[ignore = "needs root: run by tests/run.sh"]
fn target_reresolution_follows_the_name_and_survives_lookup_failure() {
    let dir = TempDir::new("rr");
    let key = write_key(&dir, "key");
    let k = key.to_str().unwrap();
    let hosts = dir.join("hosts");
    let name = "spiped-rr-target.test";
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n127.0.0.1 {name}\n")).unwrap();
    let port = free_port();
    banner_server("127.0.0.1", port, b"first");
    banner_server("127.0.0.2", port, b"second");
    let (pe, pd) = (free_port(), free_port());
    let target = format!("{name}:{port}");
    let cmd = in_private_mounts(
        &[(hosts.as_path(), "/etc/hosts")],
        &bin("spiped"),
        &["-F", "-d", "-r", "1", "-s", &addr(pd), "-t", &target, "-k", k],
    );
    let _d = Daemon::spawn_command(cmd, dir.join("d.log"));
    let _e = Daemon::spiped(&dir, "e", &["-e", "-s", &addr(pe), "-t", &addr(pd), "-k", k]);
    wait_for_port(pd, T);
    wait_for_port(pe, T);
    assert_eq!(banner_through(pe), b"first");

    // Same inode (std::fs::write truncates in place), so the bind mount shows the new text.
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n127.0.0.2 {name}\n")).unwrap();
    let deadline = Instant::now() + T;
    while banner_through(pe) != b"second" {
        assert!(Instant::now() < deadline, "still not following the new address; log:\n{}", _d.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    _d.wait_log("now resolves to [127.0.0.2]", T);

    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    _d.wait_log("keeping the previous addresses", T);
    for _ in 0..3 {
        assert_eq!(banner_through(pe), b"second", "lost the previous addresses");
    }
}

/// `--syslog`: once daemonized, log lines go to the local syslog socket with facility daemon,
/// the program name and PID, and the usual text (here: a client with the wrong key). The
/// daemon gets its own syslog socket (a private mount over /dev/log and /run).
#[test]
#[ignore = "needs root: run by tests/run.sh"]
fn syslog_receives_daemon_log_lines() {
    let dir = TempDir::new("syslog");
    let key = write_key(&dir, "key");
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, random_bytes(32, 12345)).unwrap();
    let run = dir.join("run");
    std::fs::create_dir(&run).unwrap();
    let sock_path = run.join("syslog");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let sink = SinkServer::start();
    let pd = free_port();
    let pidfile = dir.join("d.pid");
    let cmd = in_private_mounts(
        // syslog tries /dev/log first, then /var/run/syslog (= /run/syslog on Debian).
        &[(sock_path.as_path(), "/dev/log"), (run.as_path(), "/run")],
        &bin("spiped"),
        &["-d", "--syslog", "-p", pidfile.to_str().unwrap(), "-s", &addr(pd), "-t", &addr(sink.port), "-k", key.to_str().unwrap()],
    );
    let mut launcher = Daemon::spawn_command(cmd, dir.join("launcher.log"));
    let st = launcher.wait_exit(T).expect("the launching process did not return");
    assert!(st.success(), "spiped did not daemonize: {}", launcher.log());
    let deadline = Instant::now() + T;
    let pid = loop {
        if let Some(p) = std::fs::read_to_string(&pidfile).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            break p;
        }
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Kill the daemon by its PID whatever happens below.
    struct Kill(i32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _kill = Kill(pid);
    wait_for_port(pd, T);
    let (st, _, _) = run_spipe(&["-t", &addr(pd), "-k", wrong.to_str().unwrap()], b"x".to_vec(), T);
    assert_eq!(st.code(), Some(1));

    let deadline = Instant::now() + T;
    let mut seen = Vec::new();
    let line = loop {
        let mut buf = [0u8; 2048];
        if let Ok(n) = sock.recv(&mut buf) {
            let l = String::from_utf8_lossy(&buf[..n]).into_owned();
            if l.contains("handshake failed") {
                break l;
            }
            seen.push(l);
        }
        assert!(Instant::now() < deadline, "no syslog line about the failed handshake; got {seen:?}");
    };
    // <28> = facility daemon (3 << 3) + severity warning (4); RFC 3164 tag "spiped[PID]:".
    assert!(line.starts_with("<28>"), "{line}");
    assert!(line.contains(&format!("spiped[{pid}]:")), "{line}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM).unwrap();
}
