//! Real applications through our `spiped`/`spipe` (the deployment of DESIGN.md: ssh, SMTP and
//! HTTP behind spiped on one host).
//!
//! Each test starts the real server (`/usr/sbin/sshd`, a Python MTA, nginx) on a free 127.0.0.1
//! port with a throw-away configuration in a private temp dir, puts our daemons in front of it,
//! drives it with the real client (ssh/scp through `spipe` as `ProxyCommand`, Python smtplib,
//! curl) and compares checksums of what went in and what came out. All processes are killed by
//! PID when the test ends, pass or fail.
//!
//! Run (as root): `cargo test -p spiped --release --test real_traffic -- --include-ignored`.

mod harness;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use harness::*;

/// Runs `cmd` to completion with a deadline (it is killed by PID after `timeout`).
fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
    }
}

/// Like [`run`] but asserts exit status 0 and returns stdout.
fn run_ok(cmd: &mut Command, timeout: Duration) -> String {
    let out = run(cmd, timeout);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into())
}

/// ssh and scp through `spipe` (as `ProxyCommand`) to a real sshd behind our `spiped -d`: a
/// remote command runs, and a 10 MiB random file survives the upload and the download (SHA-256
/// compared locally and remotely).
#[test]
#[ignore = "needs sshd/MTA/nginx: run by tests/run.sh"]
fn ssh_and_scp_through_spipe_proxycommand() {
    let dir = TempDir::new("ssh");
    let d = dir.path();
    for k in ["hostkey", "userkey"] {
        run_ok(
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "spiped-test", "-f"]).arg(d.join(k)),
            Duration::from_secs(20),
        );
    }
    // sshd refuses to start without its privilege-separation directory.
    fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
    let sshd_port = free_port();
    let cfg = d.join("sshd_config");
    fs::write(
        &cfg,
        format!(
            "Port {sshd_port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nPidFile none\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\nLogLevel VERBOSE\n",
            hk = d.join("hostkey").display(),
            ak = d.join("userkey.pub").display(),
        ),
    )
    .unwrap();
    let sshd = Proc::spawn("sshd", d, Command::new("/usr/sbin/sshd").args(["-D", "-e", "-f"]).arg(&cfg));
    wait_listening(sshd_port, "sshd");

    let key = write_key(&dir, "spiped.key");
    let middle = free_port();
    let dec = spiped(&dir, "spiped-d", Mode::Decrypt, middle, sshd_port, &key, &[]);

    let proxy = format!("ProxyCommand={} -t {} -k {}", bin("spipe").display(), spiped_addr(middle), key.display());
    let common = |c: &mut Command| {
        c.args(["-o", &proxy])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
            .args(["-o", "LogLevel=ERROR", "-i"])
            .arg(d.join("userkey"));
    };
    let target = format!("{}@127.0.0.1", current_user());

    // A remote command.
    let mut ssh = Command::new("ssh");
    common(&mut ssh);
    let out = run_ok(ssh.arg(&target).arg("echo spiped-ssh-ok; uname -s"), Duration::from_secs(60));
    assert!(out.contains("spiped-ssh-ok") && out.contains("Linux"), "ssh output: {out:?}");

    // 10 MiB up with scp, check remotely, then down again.
    let up = d.join("up.bin");
    write_random_file(&up, 10 << 20, 0x55AA);
    let want = sha256_file(&up);
    let remote = d.join("remote.bin");
    let mut scp = Command::new("scp");
    common(&mut scp);
    run_ok(scp.arg("-q").arg(&up).arg(format!("{target}:{}", remote.display())), Duration::from_secs(120));
    let mut ssh = Command::new("ssh");
    common(&mut ssh);
    let remote_sum = run_ok(ssh.arg(&target).arg(format!("sha256sum {}", remote.display())), Duration::from_secs(60));
    assert!(remote_sum.starts_with(&want), "remote checksum {remote_sum:?}, local {want}");

    let down = d.join("down.bin");
    let mut scp = Command::new("scp");
    common(&mut scp);
    run_ok(scp.arg("-q").arg(format!("{target}:{}", remote.display())).arg(&down), Duration::from_secs(120));
    assert_eq!(sha256_file(&down), want, "downloaded file differs");

    // No integrity or handshake failure at -d, and every session ended with a close record:
    // ssh SIGHUPs its ProxyCommand as soon as a session is over, and spipe finishes the
    // connection cleanly instead of dying (spipe.rs, "SIGHUP").
    let log = dec.stderr().to_lowercase();
    for bad in ["failed authentication", "handshake failed", "exceeds the limit", "truncated"] {
        assert!(!log.contains(bad), "spiped -d logged `{bad}`:\n{log}");
    }
    drop(sshd);
}

/// A small MTA on top of Python's `smtpd` (deprecated but shipped with 3.11): stores each
/// message as `<outdir>/msg-N.eml` plus the envelope in `msg-N.env`.
const MTA_PY: &str = r#"
import asyncore, smtpd, sys, os, warnings
warnings.simplefilter("ignore")
port, outdir = int(sys.argv[1]), sys.argv[2]
class Store(smtpd.SMTPServer):
    n = 0
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        Store.n += 1
        base = os.path.join(outdir, "msg-%d" % Store.n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(data)
        with open(base + ".env", "w") as f:
            f.write(mailfrom + "\n" + "\n".join(rcpttos) + "\n")
        os.rename(base + ".eml.tmp", base + ".eml")
        return None
Store(("127.0.0.1", port), None, decode_data=False)
asyncore.loop()
"#;

/// The SMTP client: sends the body in `argv[2]` with smtplib through `127.0.0.1:argv[1]`.
const SMTP_CLIENT_PY: &str = r#"
import smtplib, sys
port, body_path = int(sys.argv[1]), sys.argv[2]
body = open(body_path, "rb").read().decode("ascii")
msg = "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: through spiped\r\n\r\n" + body
with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
    s.ehlo("client.example.org")
    refused = s.sendmail("alice@example.org", ["bob@example.net"], msg)
    assert not refused, refused
print("sent")
"#;

/// An SMTP session (EHLO, MAIL, RCPT, DATA with ~1.3 MB of text, QUIT) from Python's smtplib
/// through `spiped -e` → `spiped -d` to a Python MTA: the stored message carries the envelope
/// and the body unchanged, exactly once.
#[test]
#[ignore = "needs sshd/MTA/nginx: run by tests/run.sh"]
fn smtp_session_through_the_pipe() {
    let dir = TempDir::new("smtp");
    let d = dir.path();
    let mail = d.join("mail");
    fs::create_dir_all(&mail).unwrap();
    fs::write(d.join("mta.py"), MTA_PY).unwrap();
    fs::write(d.join("client.py"), SMTP_CLIENT_PY).unwrap();

    let mta_port = free_port();
    let _mta = Proc::spawn(
        "mta",
        d,
        Command::new("python3").args(["-W", "ignore"]).arg(d.join("mta.py")).arg(mta_port.to_string()).arg(&mail),
    );
    wait_listening(mta_port, "python MTA");

    let key = write_key(&dir, "key");
    let pair = Pair::start(&dir, &key, mta_port, &[]);

    // 20000 lines of hex text (some starting with '.', to exercise dot-stuffing end to end).
    let bytes = Stream { seed: 25 }.bytes(20_000 * 32);
    let mut body = String::new();
    for (i, chunk) in bytes.chunks(32).enumerate() {
        if i % 97 == 0 {
            body.push('.');
        }
        body.extend(chunk.iter().map(|b| format!("{b:02x}")));
        body.push_str("\r\n");
    }
    fs::write(d.join("body.txt"), &body).unwrap();
    let out = run_ok(
        Command::new("python3").arg(d.join("client.py")).arg(pair.entry.to_string()).arg(d.join("body.txt")),
        Duration::from_secs(120),
    );
    assert!(out.contains("sent"), "{out}");

    let eml = mail.join("msg-1.eml");
    for _ in 0..100 {
        if eml.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stored = fs::read(&eml).expect("the MTA stored no message");
    let stored = String::from_utf8(stored).unwrap().replace("\r\n", "\n");
    let want = body.replace("\r\n", "\n");
    let (_, stored_body) = stored.split_once("\n\n").expect("no header/body separator");
    assert_eq!(stored_body.trim_end_matches('\n'), want.trim_end_matches('\n'), "message body changed in transit");
    assert!(stored.contains("Subject: through spiped"));
    let env = fs::read_to_string(mail.join("msg-1.env")).unwrap();
    assert_eq!(env, "alice@example.org\nbob@example.net\n");
    assert!(!mail.join("msg-2.eml").exists(), "message delivered twice");
}

/// nginx config: one server on `port` serving `<d>/www`, every path under the temp dir.
fn nginx_conf(d: &Path, port: u16) -> String {
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\n\
         error_log {d}/nginx-error.log info;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/tmp-body;\n  proxy_temp_path {d}/tmp-proxy;\n\
           fastcgi_temp_path {d}/tmp-fcgi;\n  uwsgi_temp_path {d}/tmp-uwsgi;\n  scgi_temp_path {d}/tmp-scgi;\n\
           sendfile on;\n  server {{ listen 127.0.0.1:{port}; root {d}/www; }}\n}}\n",
        d = d.display()
    )
}

/// A 50 MiB HTTP download from a real nginx through `spiped -e` → `spiped -d` with curl: the
/// file arrives byte-identical and curl reports success.
#[test]
#[ignore = "needs sshd/MTA/nginx: run by tests/run.sh"]
fn http_download_through_the_pipe() {
    let dir = TempDir::new("http");
    let d = dir.path();
    fs::create_dir_all(d.join("www")).unwrap();
    let file = d.join("www/big.bin");
    write_random_file(&file, 50 << 20, 0xB16);
    let want = sha256_file(&file);

    let port = free_port();
    fs::write(d.join("nginx.conf"), nginx_conf(d, port)).unwrap();
    let _nginx = Proc::spawn(
        "nginx",
        d,
        Command::new("/usr/sbin/nginx").arg("-p").arg(d).arg("-e").arg(d.join("nginx-error.log")).arg("-c").arg(d.join("nginx.conf")),
    );
    wait_listening(port, "nginx");

    let key = write_key(&dir, "key");
    let pair = Pair::start(&dir, &key, port, &[]);
    let out = d.join("got.bin");
    run_ok(
        Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "120", "-o"])
            .arg(&out)
            .arg(format!("http://127.0.0.1:{}/big.bin", pair.entry)),
        Duration::from_secs(150),
    );
    assert_eq!(fs::metadata(&out).unwrap().len(), 50 << 20);
    assert_eq!(sha256_file(&out), want, "downloaded file differs");
}
