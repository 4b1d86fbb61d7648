//! The spiped 1.6.4-compatible command lines of `spiped` and `spipe`.
//!
//! Contract: [`SpipedArgs`] / [`SpipeArgs`] accept exactly spiped's flags with spiped's defaults
//! and meanings, plus a few documented extras (`--protocol`, `--keygen`, `--socket-mode`, `-1`,
//! `--threads`). [`SpipedArgs::into_command`] and [`SpipeArgs::into_config`] apply spiped's
//! cross-flag rules (`-e`/`-d` exactly one, `-f` with `-g`, `-r` with `-R`, `-o 0` and `-r 0`
//! meaning the default) and return a validated configuration. Every usage error exits 1 with the
//! usage text, as spiped does; `-v` prints `spiped <version>` and exits 0.
//!
//! `docs/spiped-cli.md` holds the flag tables; a unit test below keeps it and `--help` in step.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, Parser, ValueEnum};

use crate::addr::Address;
use crate::limits::{DEFAULT_MAX_CONNS, DEFAULT_RERESOLVE, DEFAULT_TIMEOUT};
use crate::proto::{Pfs, ProtocolKind};

/// `--protocol` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ProtocolArg {
    /// Our protocol: X25519, HKDF, AEAD records up to 16 KiB, authenticated close.
    #[default]
    Native,
    /// spiped 1.x wire format, to talk to existing spiped/spipe installations.
    Spiped1,
}

impl From<ProtocolArg> for ProtocolKind {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::Native => ProtocolKind::Native,
            ProtocolArg::Spiped1 => ProtocolKind::Spiped1,
        }
    }
}

const SPIPED_USAGE: &str = "spiped {-e | -d} -s <source socket> -t <target socket> -k <key file>
       [-b <bind address>] [-DFj] [-f | -g] [-n <max # connections>]
       [-o <connection timeout>] [-p <pidfile>] [-r <rtime> | -R] [--syslog]
       [-u {<username> | <:groupname> | <username:groupname>}] [-1]
       [--protocol native|spiped1] [--socket-mode <octal>] [--threads <n>]
       spiped --keygen <file>
       spiped -v";

const SPIPE_USAGE: &str = "spipe -t <target socket> -k <key file> [-b <bind address>] [-f | -g] [-j]
       [-o <connection timeout>] [--protocol native|spiped1]
       spipe -v";

/// `spiped`: accept connections on a source address and pipe each one, encrypted or decrypted,
/// to a target address.
#[derive(Parser, Debug)]
#[command(
    name = "spiped",
    version,
    disable_version_flag = true,
    override_usage = SPIPED_USAGE,
    about = "Secure pipe daemon: encrypts (-e) or decrypts (-d) every connection from SOURCE to TARGET with a pre-shared key"
)]
pub struct SpipedArgs {
    /// Encrypt: accept plaintext on -s, send encrypted to -t (client end).
    #[arg(short = 'e', conflicts_with = "decrypt")]
    pub encrypt: bool,
    /// Decrypt: accept encrypted on -s, send plaintext to -t (server end).
    #[arg(short = 'd')]
    pub decrypt: bool,
    /// Address to listen on: host:port, [ip]:port or /unix/socket/path.
    #[arg(short = 's', value_name = "SOURCE", value_parser = Address::parse, required_unless_present = "keygen")]
    pub source: Option<Address>,
    /// Address to connect to for each connection (re-resolved every -r seconds).
    #[arg(short = 't', value_name = "TARGET", value_parser = Address::parse, required_unless_present = "keygen")]
    pub target: Option<Address>,
    /// Key file: any bytes (32 random bytes recommended), "-" for standard input.
    #[arg(short = 'k', value_name = "KEYFILE", required_unless_present = "keygen")]
    pub keyfile: Option<PathBuf>,
    /// Bind outgoing connections to this address (port optional).
    #[arg(short = 'b', value_name = "ADDR", value_parser = Address::parse_bind)]
    pub bind: Option<Address>,
    /// Wait for DNS: daemonize first, then retry name resolution every second until it works.
    #[arg(short = 'D')]
    pub wait_dns: bool,
    /// Stay in the foreground (no daemonizing, no pid file).
    #[arg(short = 'F')]
    pub foreground: bool,
    /// No forward secrecy: skip the ephemeral key exchange (cheaper handshake).
    #[arg(short = 'f', conflicts_with = "require_pfs")]
    pub no_pfs: bool,
    /// Require forward secrecy: refuse peers that skip the ephemeral key exchange.
    #[arg(short = 'g')]
    pub require_pfs: bool,
    /// Do not enable TCP keep-alives (SO_KEEPALIVE) on connections.
    #[arg(short = 'j')]
    pub no_keepalive: bool,
    /// Maximum simultaneous connections; 0 = unlimited [default: 100].
    #[arg(short = 'n', value_name = "NUM")]
    pub max_conns: Option<usize>,
    /// Connect timeout and, separately, handshake timeout in seconds; 0 = default [default: 5].
    #[arg(short = 'o', value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<f64>,
    /// Pid file (written when daemonized) [default: <SOURCE>.pid].
    #[arg(short = 'p', value_name = "PIDFILE")]
    pub pidfile: Option<PathBuf>,
    /// Re-resolve the target every SECS seconds; 0 = default [default: 60].
    #[arg(short = 'r', value_name = "SECS", value_parser = parse_secs)]
    pub reresolve: Option<f64>,
    /// Never re-resolve the target.
    #[arg(short = 'R')]
    pub no_reresolve: bool,
    /// After daemonizing, send log messages to syslog (no effect with -F).
    #[arg(long = "syslog")]
    pub syslog: bool,
    /// Drop privileges after binding: USER, :GROUP or USER:GROUP (names or numeric ids).
    #[arg(short = 'u', value_name = "USER[:GROUP]", value_parser = UserSpec::parse)]
    pub user: Option<UserSpec>,
    /// Print "spiped <version>" and exit.
    #[arg(short = 'v', action = ArgAction::Version)]
    pub version: Option<bool>,
    /// Wire protocol: native (default) or spiped1 (talks to spiped 1.x).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Native, value_name = "PROTO")]
    pub protocol: ProtocolArg,
    /// Write a new random 32-byte key to FILE (mode 0600, never overwrites) and exit.
    #[arg(long, value_name = "FILE", exclusive = true)]
    pub keygen: Option<PathBuf>,
    /// Permissions of a UNIX-socket source, in octal (e.g. 660).
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    pub socket_mode: Option<u32>,
    /// Exit after the first connection closes.
    #[arg(short = '1')]
    pub once: bool,
    /// I/O worker threads [default: number of CPUs].
    #[arg(long, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
}

/// `spipe`: join standard input and output to one encrypted connection (ssh ProxyCommand).
#[derive(Parser, Debug)]
#[command(
    name = "spipe",
    version,
    disable_version_flag = true,
    override_usage = SPIPE_USAGE,
    about = "Secure pipe client: joins standard input/output to one encrypted connection to TARGET"
)]
pub struct SpipeArgs {
    /// Address of the spiped -d to connect to: host:port, [ip]:port or /unix/socket/path.
    #[arg(short = 't', value_name = "TARGET", value_parser = Address::parse)]
    pub target: Address,
    /// Key file: any bytes, "-" for standard input (which then cannot carry data).
    #[arg(short = 'k', value_name = "KEYFILE")]
    pub keyfile: PathBuf,
    /// Bind the outgoing connection to this address (port optional).
    #[arg(short = 'b', value_name = "ADDR", value_parser = Address::parse_bind)]
    pub bind: Option<Address>,
    /// No forward secrecy: skip the ephemeral key exchange.
    #[arg(short = 'f', conflicts_with = "require_pfs")]
    pub no_pfs: bool,
    /// Require forward secrecy: fail if the server skips the ephemeral key exchange.
    #[arg(short = 'g')]
    pub require_pfs: bool,
    /// Do not enable TCP keep-alives (SO_KEEPALIVE).
    #[arg(short = 'j')]
    pub no_keepalive: bool,
    /// Connect timeout and, separately, handshake timeout in seconds; 0 = default [default: 5].
    #[arg(short = 'o', value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<f64>,
    /// Print "spipe <version>" and exit.
    #[arg(short = 'v', action = ArgAction::Version)]
    pub version: Option<bool>,
    /// Wire protocol: native (default) or spiped1 (talks to spiped 1.x).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Native, value_name = "PROTO")]
    pub protocol: ProtocolArg,
}

/// `-u` argument: `user`, `:group` or `user:group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    /// User name or numeric uid.
    pub user: Option<String>,
    /// Group name or numeric gid.
    pub group: Option<String>,
}

impl UserSpec {
    /// Parses spiped's `-u` syntax.
    pub fn parse(s: &str) -> Result<UserSpec, String> {
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        if group == Some("") {
            return Err("empty group name after ':' (expected USER, :GROUP or USER:GROUP)".into());
        }
        if user.is_empty() && group.is_none() {
            return Err("empty user name (expected USER, :GROUP or USER:GROUP)".into());
        }
        Ok(UserSpec {
            user: (!user.is_empty()).then(|| user.to_owned()),
            group: group.map(str::to_owned),
        })
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err("expected a number of seconds (0 or more, fractions allowed)".into()),
    }
}

fn parse_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err("expected an octal permission mode from 000 to 777, e.g. 660".into()),
    }
}

/// `-e` or `-d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-e`: plaintext in on the source, encrypted out to the target (protocol initiator).
    Encrypt,
    /// `-d`: encrypted in on the source, plaintext out to the target (protocol responder).
    Decrypt,
}

/// Settings shared by `spiped` and `spipe` for each connection.
#[derive(Clone, Debug)]
pub struct ConnSettings {
    /// Wire protocol.
    pub protocol: ProtocolKind,
    /// `-f` / `-g`.
    pub pfs: Pfs,
    /// SO_KEEPALIVE on both sockets (off with `-j`).
    pub keepalive: bool,
    /// `-o`: connect timeout, and separately handshake timeout.
    pub timeout: Duration,
    /// `-b`: local address for outgoing connections.
    pub bind: Option<Address>,
    /// Key file path (`-` = stdin).
    pub keyfile: PathBuf,
    /// `-t`.
    pub target: Address,
}

/// A validated `spiped` run.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// `-e` / `-d`.
    pub mode: Mode,
    /// `-s`.
    pub source: Address,
    /// Per-connection settings (target, key, timeouts, protocol).
    pub conn: ConnSettings,
    /// `-D`.
    pub wait_dns: bool,
    /// `-F`.
    pub foreground: bool,
    /// `-n`; `None` = unlimited.
    pub max_conns: Option<usize>,
    /// `-p`, defaulting to `<source>.pid`.
    pub pidfile: PathBuf,
    /// `-r`; `None` with `-R`.
    pub reresolve: Option<Duration>,
    /// `--syslog`.
    pub syslog: bool,
    /// `-u`.
    pub user: Option<UserSpec>,
    /// `--socket-mode`.
    pub socket_mode: Option<u32>,
    /// `-1`.
    pub once: bool,
    /// `--threads`, defaulting to the number of CPUs.
    pub threads: usize,
}

/// What a `spiped` invocation asks for.
#[derive(Clone, Debug)]
pub enum SpipedCommand {
    /// Run the daemon.
    Run(Box<DaemonConfig>),
    /// `--keygen FILE`.
    Keygen(PathBuf),
}

fn secs_or_default(v: Option<f64>, default: Duration) -> Duration {
    // spiped: 0 (or unset) means the default.
    match v {
        Some(s) if s > 0.0 => Duration::from_secs_f64(s),
        _ => default,
    }
}

fn pfs(no: bool, required: bool) -> Pfs {
    match (no, required) {
        (true, _) => Pfs::Disabled,
        (false, true) => Pfs::Required,
        (false, false) => Pfs::Preferred,
    }
}

fn usage_error<C: CommandFactory>(msg: impl std::fmt::Display) -> clap::Error {
    C::command().error(clap::error::ErrorKind::ArgumentConflict, msg)
}

impl SpipedArgs {
    /// Applies spiped's cross-flag rules and defaults.
    pub fn into_command(self) -> Result<SpipedCommand, clap::Error> {
        if let Some(path) = self.keygen {
            return Ok(SpipedCommand::Keygen(path));
        }
        let mode = match (self.encrypt, self.decrypt) {
            (true, false) => Mode::Encrypt,
            (false, true) => Mode::Decrypt,
            _ => return Err(usage_error::<Self>("exactly one of -e (encrypt) or -d (decrypt) is required")),
        };
        let (Some(source), Some(target), Some(keyfile)) = (self.source, self.target, self.keyfile) else {
            return Err(usage_error::<Self>("-s, -t and -k are required"));
        };
        let reresolve_set = self.reresolve.filter(|&r| r > 0.0);
        if self.no_reresolve && reresolve_set.is_some_and(|r| r != 60.0) {
            return Err(usage_error::<Self>("-r and -R cannot be combined (-R disables re-resolution)"));
        }
        if self.bind.is_some() && target.is_unix() {
            return Err(usage_error::<Self>("-b cannot be used with a UNIX-socket target"));
        }
        if self.socket_mode.is_some() && !source.is_unix() {
            return Err(usage_error::<Self>("--socket-mode applies only to a UNIX-socket source (-s /path)"));
        }
        // spiped: `-p` defaults to the source address as typed, plus ".pid".
        let pidfile = self.pidfile.unwrap_or_else(|| PathBuf::from(format!("{source}.pid")));
        let threads = self
            .threads
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        Ok(SpipedCommand::Run(Box::new(DaemonConfig {
            mode,
            conn: ConnSettings {
                protocol: self.protocol.into(),
                pfs: pfs(self.no_pfs, self.require_pfs),
                keepalive: !self.no_keepalive,
                timeout: secs_or_default(self.timeout, DEFAULT_TIMEOUT),
                bind: self.bind,
                keyfile,
                target,
            },
            source,
            wait_dns: self.wait_dns,
            foreground: self.foreground,
            max_conns: match self.max_conns {
                None => Some(DEFAULT_MAX_CONNS),
                Some(0) => None,
                Some(n) => Some(n),
            },
            pidfile,
            reresolve: (!self.no_reresolve).then(|| secs_or_default(self.reresolve, DEFAULT_RERESOLVE)),
            syslog: self.syslog,
            user: self.user,
            socket_mode: self.socket_mode,
            once: self.once,
            threads,
        })))
    }
}

impl SpipeArgs {
    /// Applies spipe's rules and defaults.
    pub fn into_config(self) -> Result<ConnSettings, clap::Error> {
        if self.bind.is_some() && self.target.is_unix() {
            return Err(usage_error::<Self>("-b cannot be used with a UNIX-socket target"));
        }
        Ok(ConnSettings {
            protocol: self.protocol.into(),
            pfs: pfs(self.no_pfs, self.require_pfs),
            keepalive: !self.no_keepalive,
            timeout: secs_or_default(self.timeout, DEFAULT_TIMEOUT),
            bind: self.bind,
            keyfile: self.keyfile,
            target: self.target,
        })
    }
}

/// Parses the process arguments like spiped: `--help`/`-v` exit 0, any usage error prints the
/// message and usage to stderr and exits 1 (clap's default would be 2).
pub fn parse_or_exit<T: Parser>() -> T {
    match T::try_parse() {
        Ok(t) => t,
        Err(e) => exit_with(e),
    }
}

/// Prints a clap error (or help/version) and exits with spiped's status codes.
pub fn exit_with(e: clap::Error) -> ! {
    let code = if e.use_stderr() { 1 } else { 0 };
    let _ = e.print();
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spiped(args: &[&str]) -> Result<SpipedCommand, clap::Error> {
        let mut v = vec!["spiped"];
        v.extend_from_slice(args);
        SpipedArgs::try_parse_from(v)?.into_command()
    }

    fn run(args: &[&str]) -> DaemonConfig {
        match spiped(args).unwrap_or_else(|e| panic!("{args:?}: {e}")) {
            SpipedCommand::Run(c) => *c,
            SpipedCommand::Keygen(_) => panic!("keygen"),
        }
    }

    const BASE: [&str; 7] = ["-e", "-s", "[127.0.0.1]:8001", "-t", "[127.0.0.1]:8002", "-k", "/dev/null"];

    /// spiped's defaults: -n 100, -o 5, -r 60, pid file <source>.pid, daemonize, keep-alives,
    /// PFS preferred, native protocol.
    #[test]
    fn defaults_match_spiped() {
        let c = run(&BASE);
        assert_eq!(c.mode, Mode::Encrypt);
        assert_eq!(c.max_conns, Some(100));
        assert_eq!(c.conn.timeout, Duration::from_secs(5));
        assert_eq!(c.reresolve, Some(Duration::from_secs(60)));
        assert_eq!(c.pidfile, PathBuf::from("[127.0.0.1]:8001.pid"));
        assert!(!c.foreground && c.conn.keepalive && !c.once && !c.wait_dns);
        assert_eq!(c.conn.pfs, Pfs::Preferred);
        assert_eq!(c.conn.protocol, ProtocolKind::Native);
        assert!(c.threads >= 1);
    }

    /// Each flag maps to its meaning; 0 means "unlimited" for -n and "default" for -o and -r.
    #[test]
    fn flags_and_zero_values() {
        let mut a = BASE.to_vec();
        a.extend(["-n", "0", "-o", "0", "-r", "0", "-f", "-j", "-F", "-D", "-1", "--syslog"]);
        a.extend(["-p", "/run/x.pid", "-u", "nobody:nogroup", "-b", "[127.0.0.2]", "--protocol", "spiped1"]);
        let c = run(&a);
        assert_eq!(c.max_conns, None);
        assert_eq!(c.conn.timeout, Duration::from_secs(5));
        assert_eq!(c.reresolve, Some(Duration::from_secs(60)));
        assert_eq!(c.conn.pfs, Pfs::Disabled);
        assert!(!c.conn.keepalive && c.foreground && c.wait_dns && c.once && c.syslog);
        assert_eq!(c.pidfile, PathBuf::from("/run/x.pid"));
        assert_eq!(c.user, Some(UserSpec { user: Some("nobody".into()), group: Some("nogroup".into()) }));
        assert_eq!(c.conn.bind, Some(Address::Ip("127.0.0.2:0".parse().unwrap())));
        assert_eq!(c.conn.protocol, ProtocolKind::Spiped1);

        let mut a = BASE.to_vec();
        a.extend(["-o", "1.5", "-n", "7", "-g", "-R"]);
        let c = run(&a);
        assert_eq!(c.conn.timeout, Duration::from_millis(1500));
        assert_eq!(c.max_conns, Some(7));
        assert_eq!(c.conn.pfs, Pfs::Required);
        assert_eq!(c.reresolve, None);
        // -R with -r 60 is allowed (spiped's rule).
        let mut a = BASE.to_vec();
        a.extend(["-R", "-r", "60"]);
        assert_eq!(run(&a).reresolve, None);
    }

    /// Every usage error spiped rejects is rejected, and is a stderr (exit 1) error.
    #[test]
    fn usage_errors() {
        let bad: Vec<Vec<&str>> = vec![
            vec!["-e", "-d", "-s", "/a", "-t", "/b", "-k", "k"],
            vec!["-s", "/a", "-t", "/b", "-k", "k"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "-f", "-g"],
            vec!["-e", "-s", "/a", "-t", "/b"],
            vec!["-e", "-s", "/a", "-k", "k"],
            vec!["-e", "-t", "/a", "-k", "k"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "-r", "30", "-R"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "-o", "-1"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "-o", "x"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "-n", "-3"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "-e"],
            vec!["-e", "-s", "/a", "-s", "/c", "-t", "/b", "-k", "k"],
            vec!["-e", "-s", "nope", "-t", "/b", "-k", "k"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "stray"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "-x"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "-b", "[::1]"],
            vec!["-e", "-s", "[::1]:1", "-t", "/b", "-k", "k", "--socket-mode", "600"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "--socket-mode", "999"],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "-u", ""],
            vec!["-e", "-s", "/a", "-t", "/b", "-k", "k", "--protocol", "tls"],
            vec!["--keygen", "/tmp/k", "-e"],
        ];
        for args in bad {
            let e = spiped(&args).err().unwrap_or_else(|| panic!("accepted {args:?}"));
            assert!(e.use_stderr(), "{args:?} should be a usage error");
        }
    }

    /// `--keygen FILE` alone is a complete command.
    #[test]
    fn keygen_command() {
        assert!(matches!(spiped(&["--keygen", "/tmp/k"]).unwrap(), SpipedCommand::Keygen(p) if p == std::path::Path::new("/tmp/k")));
    }

    /// `-u` forms: user, :group, user:group.
    #[test]
    fn user_spec_forms() {
        assert_eq!(UserSpec::parse("www"), Ok(UserSpec { user: Some("www".into()), group: None }));
        assert_eq!(UserSpec::parse(":www"), Ok(UserSpec { user: None, group: Some("www".into()) }));
        assert_eq!(UserSpec::parse("1:2"), Ok(UserSpec { user: Some("1".into()), group: Some("2".into()) }));
        assert!(UserSpec::parse("").is_err());
        assert!(UserSpec::parse("u:").is_err());
    }

    /// spipe: -t and -k required, -f/-g exclusive, defaults as spiped's spipe.
    #[test]
    fn spipe_args() {
        let c = SpipeArgs::try_parse_from(["spipe", "-t", "[::1]:8022", "-k", "key"]).unwrap().into_config().unwrap();
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.pfs, Pfs::Preferred);
        assert!(c.keepalive);
        assert!(SpipeArgs::try_parse_from(["spipe", "-t", "[::1]:8022"]).is_err());
        assert!(SpipeArgs::try_parse_from(["spipe", "-k", "k"]).is_err());
        assert!(SpipeArgs::try_parse_from(["spipe", "-t", "/a", "-k", "k", "-f", "-g"]).is_err());
        assert!(SpipeArgs::try_parse_from(["spipe", "-t", "/a", "-k", "k", "-s", "/b"]).is_err());
    }

    /// `-v` is a version request (exit 0, not an error).
    #[test]
    fn version_flag() {
        let e = SpipedArgs::try_parse_from(["spiped", "-v"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(!e.use_stderr());
        assert!(e.to_string().starts_with("spiped "));
        let e = SpipeArgs::try_parse_from(["spipe", "-v"]).unwrap_err();
        assert!(e.to_string().starts_with("spipe "));
    }

    /// Flags as `-x` / `--long` from a rendered --help.
    fn help_flags<C: CommandFactory>() -> std::collections::BTreeSet<String> {
        let mut c = C::command();
        let help = c.render_help().to_string();
        let mut out = std::collections::BTreeSet::new();
        for line in help.lines() {
            let t = line.trim_start();
            if !t.starts_with('-') {
                continue;
            }
            for tok in t.split([' ', ',']) {
                if tok.starts_with('-') && tok.len() > 1 {
                    out.insert(tok.trim_end_matches('=').to_owned());
                } else if !tok.is_empty() {
                    break;
                }
            }
        }
        out
    }

    /// Flags in the first column of the markdown table that follows `heading` in the doc.
    fn doc_flags(doc: &str, heading: &str) -> std::collections::BTreeSet<String> {
        let start = doc.find(heading).unwrap_or_else(|| panic!("no {heading} in docs/spiped-cli.md"));
        let mut out = std::collections::BTreeSet::new();
        let mut in_table = false;
        for line in doc[start..].lines().skip(1) {
            if line.starts_with('|') {
                in_table = true;
                let first = line.split('|').nth(1).unwrap_or("");
                for part in first.split('`').skip(1).step_by(2) {
                    let flag = part.split([' ', '=']).next().unwrap_or("");
                    if flag.starts_with('-') {
                        out.insert(flag.to_owned());
                    }
                }
            } else if in_table {
                break;
            }
        }
        out
    }

    /// The flag tables in docs/spiped-cli.md (copied into the README) list exactly the flags of
    /// `spiped --help` and `spipe --help`, so neither can drift from the other.
    #[test]
    fn docs_table_matches_help() {
        for file in ["docs/spiped-cli.md", "README.md"] {
            let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
            let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(doc_flags(&doc, "## spiped flags"), help_flags::<SpipedArgs>(), "{file}: spiped table vs --help");
            assert_eq!(doc_flags(&doc, "## spipe flags"), help_flags::<SpipeArgs>(), "{file}: spipe table vs --help");
        }
    }

    /// clap's own consistency checks on both commands.
    #[test]
    fn clap_debug_assert() {
        SpipedArgs::command().debug_assert();
        SpipeArgs::command().debug_assert();
    }
}
