//! The control socket: a non-blocking UNIX stream listener polled by the control loop.
//!
//! Contract:
//! - One JSON object per line in, one JSON object per line out, in order. A client may send
//!   several requests on one connection; each is answered before the next is read
//!   (backpressure: a client that does not read its answers is not served further).
//! - Never blocks: accept, read and write are all non-blocking and resumed on the next poll.
//!   Between polls the control thread sleeps in [`Server::wait`] (epoll through mio) until a
//!   client connects, sends, or can take more of its answer, or a timeout passes: a request is
//!   served at once, and an idle control thread does not wake the CPU it shares.
//! - Bounded: at most [`MAX_CONTROL_CLIENTS`] connections (more are closed at once) and
//!   [`MAX_CONTROL_REQUEST`] bytes per request line (a longer line is answered with an error
//!   and the connection closed).
//! - The socket file is created mode 0600 (only its owner, root, may reload or shut down);
//!   a stale file left by a crashed instance is replaced, a live instance's socket is not.
//!   The file is removed when the server is dropped.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};

use serde::Deserialize;

use super::ControlError;
use crate::limits::{MAX_CONTROL_CLIENTS, MAX_CONTROL_REQUEST};

/// A control request, `{"cmd": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `stats`, `reload`, `shutdown`, `config` or `neighbors`.
    pub cmd: String,
}

#[derive(Debug)]
struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    out_pos: usize,
    /// Close once `outbuf` is flushed (protocol error, or the peer closed its side).
    closing: bool,
}

impl Client {
    /// Its next request may be read: it is not closing and its last answer is fully sent.
    fn takes_requests(&self) -> bool {
        !self.closing && self.out_pos >= self.outbuf.len()
    }
}

/// The listening socket and its clients.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    clients: Vec<Client>,
    /// Readiness of the listener and the clients, for [`Server::wait`]. Edge-triggered: `poll`
    /// always goes on until `WouldBlock`, so no readiness is lost between two waits.
    poll: Poll,
    events: Events,
    /// Token of the next accepted client (the listener is token 0); tokens only need to be
    /// distinct, `wait` does not look at which source woke it.
    next_token: usize,
}

/// Events taken per `epoll_wait` (more stay queued for the next wait).
const WAIT_EVENTS: usize = 64;

/// Identifies the client a request came from, valid until the next [`Server::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientId(usize);

impl Server {
    /// Binds `path` (see the module docs for stale files and permissions).
    pub fn bind(path: &Path) -> Result<Server, ControlError> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(ControlError::NotASocket { path: path.to_path_buf() });
            }
            if StdUnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse { path: path.to_path_buf() });
            }
            std::fs::remove_file(path).map_err(|source| ControlError::Bind { path: path.to_path_buf(), source })?;
        }
        // mio's listener is non-blocking from the start.
        let mut listener = UnixListener::bind(path).map_err(|source| ControlError::Bind { path: path.to_path_buf(), source })?;
        let mut setup = || -> std::io::Result<Poll> {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            let poll = Poll::new()?;
            poll.registry().register(&mut listener, Token(0), Interest::READABLE)?;
            Ok(poll)
        };
        match setup() {
            Ok(poll) => Ok(Server {
                listener,
                path: path.to_path_buf(),
                clients: Vec::new(),
                poll,
                events: Events::with_capacity(WAIT_EVENTS),
                next_token: 1,
            }),
            Err(source) => {
                let _ = std::fs::remove_file(path);
                Err(ControlError::Bind { path: path.to_path_buf(), source })
            }
        }
    }

    /// Sleeps until the socket has something for [`Server::poll`] (a connection, a request, room
    /// for a pending answer) or `timeout` passes. Returns at once when a client already has a
    /// complete request buffered (one is served per poll). A failed `epoll_wait` (other than
    /// an interrupted one) is logged and slept through, so the caller's loop keeps its pace.
    pub fn wait(&mut self, timeout: Duration) {
        if self.clients.iter().any(|c| c.takes_requests() && c.inbuf.contains(&b'\n')) {
            return;
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "control socket: epoll_wait failed");
                std::thread::sleep(timeout);
            }
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of connected clients.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Flushes pending answers, drops finished clients, accepts new ones and returns the
    /// requests that are complete: at most one per client, parsed or with the reason it could
    /// not be. Answer each with [`Server::respond`] before the next `poll`.
    pub fn poll(&mut self) -> Vec<(ClientId, Result<Request, String>)> {
        for c in &mut self.clients {
            flush(c);
        }
        self.clients.retain(|c| !(c.closing && c.out_pos >= c.outbuf.len()));
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if self.clients.len() >= MAX_CONTROL_CLIENTS {
                        tracing::warn!(max = MAX_CONTROL_CLIENTS, "control socket: too many clients, closing a new one");
                        continue;
                    }
                    let token = Token(self.next_token);
                    self.next_token = self.next_token.checked_add(1).unwrap_or(1);
                    // Closing the stream (dropping the client) removes it from the epoll set.
                    if let Err(e) = self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE) {
                        tracing::warn!(error = %e, "control socket: cannot watch a new client, closing it");
                        continue;
                    }
                    self.clients.push(Client {
                        stream,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        out_pos: 0,
                        closing: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    break;
                }
            }
        }
        let mut requests = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            if !c.takes_requests() {
                continue;
            }
            if let Some(r) = read_request(c) {
                requests.push((ClientId(i), r));
            }
        }
        requests
    }

    /// Queues `answer` (one JSON line) for the client and tries to send it now.
    pub fn respond(&mut self, id: ClientId, answer: &serde_json::Value) {
        let Some(c) = self.clients.get_mut(id.0) else { return };
        if c.out_pos >= c.outbuf.len() {
            c.outbuf.clear();
            c.out_pos = 0;
        }
        // Serializing a `Value` cannot fail.
        let _ = serde_json::to_writer(&mut c.outbuf, answer);
        c.outbuf.push(b'\n');
        flush(c);
    }

    /// Tries to send every pending answer until `deadline` (used before shutting down).
    pub fn flush_all(&mut self, deadline: std::time::Instant) {
        while std::time::Instant::now() < deadline {
            let mut pending = false;
            for c in &mut self.clients {
                flush(c);
                pending |= c.out_pos < c.outbuf.len();
            }
            if !pending {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn flush(c: &mut Client) {
    while c.out_pos < c.outbuf.len() {
        match c.stream.write(&c.outbuf[c.out_pos..]) {
            Ok(0) => {
                c.closing = true;
                c.out_pos = c.outbuf.len();
            }
            Ok(n) => c.out_pos += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                // The peer went away: drop what it will never read.
                c.closing = true;
                c.out_pos = c.outbuf.len();
            }
        }
    }
}

/// Reads what is available and returns the first complete line, parsed.
fn read_request(c: &mut Client) -> Option<Result<Request, String>> {
    loop {
        if let Some(line) = take_line(&mut c.inbuf) {
            return Some(parse(&line));
        }
        if c.inbuf.len() > MAX_CONTROL_REQUEST {
            c.closing = true;
            c.inbuf.clear();
            return Some(Err(format!("request longer than {MAX_CONTROL_REQUEST} bytes")));
        }
        let mut buf = [0u8; 1024];
        match c.stream.read(&mut buf) {
            Ok(0) => {
                // Peer closed: answer a final unterminated request, then close.
                c.closing = true;
                let rest = std::mem::take(&mut c.inbuf);
                return (!rest.iter().all(u8::is_ascii_whitespace)).then(|| parse(&rest));
            }
            Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                c.closing = true;
                return None;
            }
        }
    }
}

fn take_line(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let mut line: Vec<u8> = buf.drain(..=nl).collect();
    line.pop();
    Some(line)
}

fn parse(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice(line).map_err(|e| format!("bad request (expected {{\"cmd\":\"...\"}} on one line): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    // The clients (and the stale listener) are plain blocking std sockets.
    use std::os::unix::net::{UnixListener, UnixStream};

    fn sock(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("dp-server-{}-{tag}.sock", std::process::id()))
    }

    fn poll_until(s: &mut Server) -> Vec<(ClientId, Result<Request, String>)> {
        for _ in 0..500 {
            let r = s.poll();
            if !r.is_empty() {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("no request within 1 s");
    }

    /// Requests on one connection are answered one line each, in order; malformed JSON gets an
    /// error instead of killing the loop.
    #[test]
    fn lines_in_lines_out() {
        let path = sock("lines");
        let mut s = Server::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"{\"cmd\":\"stats\"}\n{\"cmd\":\"reload\"}\nnot json\n").unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        for want in [Ok("stats"), Ok("reload"), Err(())] {
            let reqs = poll_until(&mut s);
            assert_eq!(reqs.len(), 1);
            let (id, req) = &reqs[0];
            match (want, req) {
                (Ok(w), Ok(req)) => assert_eq!(req.cmd, w),
                (Err(()), Err(e)) => assert!(e.starts_with("bad request"), "{e}"),
                (w, got) => panic!("want {w:?}, got {got:?}"),
            }
            s.respond(*id, &serde_json::json!({"ok": true, "echo": req.as_ref().map(|r| r.cmd.clone()).ok()}));
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["ok"], true);
        }
        drop(s);
        assert!(!path.exists(), "socket file removed on drop");
    }

    /// `wait` sleeps until there is work: a connection, then the request's bytes, wake it (a
    /// lost wake-up would sleep the whole 10 s timeout), and a second request already buffered
    /// behind the first makes it return without any new readiness.
    #[test]
    fn wait_wakes_for_requests_and_buffered_lines() {
        const LONG: Duration = Duration::from_secs(10);
        let path = sock("wait");
        let mut s = Server::bind(&path).unwrap();
        let start = std::time::Instant::now();
        let client_path = path.clone();
        let client = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut c = UnixStream::connect(&client_path).unwrap();
            c.write_all(b"{\"cmd\":\"stats\"}\n{\"cmd\":\"config\"}\n").unwrap();
            c
        });
        let mut reqs = Vec::new();
        for _ in 0..4 {
            s.wait(LONG);
            reqs = s.poll();
            if !reqs.is_empty() {
                break;
            }
        }
        assert!(start.elapsed() < LONG / 2, "woken by the connection and the request, not the timeout");
        let c = client.join().unwrap();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].1.as_ref().unwrap().cmd, "stats");
        s.respond(reqs[0].0, &serde_json::json!({"ok": true}));
        // Use up the readiness already reported (the answer's write is one more), so only the
        // buffered line can end the long wait early.
        for _ in 0..3 {
            s.wait(Duration::from_millis(20));
        }
        let again = std::time::Instant::now();
        s.wait(LONG);
        assert!(again.elapsed() < LONG / 2, "the buffered second request needs no new readiness");
        let reqs = s.poll();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].1.as_ref().unwrap().cmd, "config");
        drop(c);
    }

    /// A second instance refuses to take over a live socket, but replaces a stale one.
    #[test]
    fn live_socket_is_not_stolen() {
        let path = sock("live");
        let s = Server::bind(&path).unwrap();
        assert!(matches!(Server::bind(&path), Err(ControlError::InUse { .. })));
        // A stale socket file: bound by a listener that is gone (its Drop removal skipped).
        let stale = UnixListener::bind(sock("stale")).unwrap();
        drop(stale);
        let s2 = Server::bind(&sock("stale")).expect("stale socket replaced");
        drop(s2);
        drop(s);
        std::fs::write(&path, b"x").unwrap();
        assert!(matches!(Server::bind(&path), Err(ControlError::NotASocket { .. })));
        std::fs::remove_file(&path).unwrap();
    }

    /// An over-long request is refused and its connection closed.
    #[test]
    fn long_request_is_refused() {
        let path = sock("long");
        let mut s = Server::bind(&path).unwrap();
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(&vec![b'a'; MAX_CONTROL_REQUEST + 2048]).unwrap();
        let reqs = poll_until(&mut s);
        let (id, req) = &reqs[0];
        assert!(req.as_ref().unwrap_err().contains("longer than"));
        s.respond(*id, &serde_json::json!({"ok": false}));
        // Read the answer before the server closes: closing with unread input resets the
        // connection, which would discard it.
        c.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let mut out = String::new();
        BufReader::new(&c).read_line(&mut out).unwrap();
        assert_eq!(out, "{\"ok\":false}\n");
        for _ in 0..100 {
            s.poll();
            if s.clients() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(s.clients(), 0, "connection closed after the answer");
    }
}
