//! Socket address syntax, as spiped 1.6 accepts it, and its resolution.
//!
//! Accepted forms (spiped's `sock_resolve`):
//! - `/absolute/path`: a UNIX-domain stream socket;
//! - `host.name:port`: a name resolved with the system resolver (every address is kept, in the
//!   resolver's order);
//! - `[1.2.3.4]:port` and `[2001:db8::1]:port`: literal addresses, no resolution.
//!
//! Ports are decimal numbers 1..=65535. A bind address (`-b`) may leave the port out
//! (`[::1]`, `host`), meaning "any port", as spiped's `sock_addr_ensure_port` does.
//! Unbracketed IPv6 (`::1:80`) is refused with a hint instead of being guessed at.
//!
//! Parsing never touches the network; [`Address::resolve`] does.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Longest UNIX socket path the kernel accepts (`sizeof(sun_path) - 1` on Linux).
pub const MAX_UNIX_PATH: usize = 107;

/// A parsed, not yet resolved, socket address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A UNIX-domain socket path (absolute).
    Unix(PathBuf),
    /// A literal IP address and port (`[v4]:port` or `[v6]:port`).
    Ip(SocketAddr),
    /// A host name to resolve, and a port.
    Host { host: String, port: u16 },
}

/// One concrete address a socket can bind or connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// TCP over IPv4 or IPv6.
    Inet(SocketAddr),
    /// A UNIX-domain stream socket.
    Unix(PathBuf),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // spiped prints `[addr]:port` for both families.
            Target::Inet(SocketAddr::V4(a)) => write!(f, "[{}]:{}", a.ip(), a.port()),
            Target::Inet(SocketAddr::V6(a)) => write!(f, "[{}]:{}", a.ip(), a.port()),
            Target::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Why an address string was refused. Each message says what form is expected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AddrError {
    #[error("empty socket address (expected host:port, [ip]:port or /path/to/socket)")]
    Empty,
    #[error("no host in {0:?} (expected host:port, [ip]:port or /path/to/socket)")]
    NoHost(String),
    #[error("address {0:?} must end with :port (expected host:port, [ip]:port or /path/to/socket)")]
    NoPort(String),
    #[error("invalid port {0:?}: ports are decimal numbers from 1 to 65535")]
    BadPort(String),
    #[error("invalid [IP address] in {0:?}: expected [1.2.3.4]:port or [2001:db8::1]:port")]
    BadBracket(String),
    #[error("invalid IP address {0:?}")]
    BadIp(String),
    #[error("IPv6 address {0:?} must be written in brackets, e.g. [::1]:8025")]
    UnbracketedIpv6(String),
    #[error("invalid host name {0:?}")]
    BadHost(String),
    #[error("UNIX socket path {0:?} is longer than {MAX_UNIX_PATH} bytes")]
    PathTooLong(String),
    #[error("relative path {0:?}: UNIX socket paths must be absolute (start with /)")]
    RelativePath(String),
}

/// Why resolution failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("could not resolve {addr}: {source}")]
    Lookup {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no addresses found for {0}")]
    NoAddresses(String),
}

impl Address {
    /// Parses a source or target address: the port is required.
    pub fn parse(s: &str) -> Result<Address, AddrError> {
        parse(s, false)
    }

    /// Parses a `-b` bind address: the port may be omitted (any port). UNIX paths are accepted
    /// by the parser; the caller decides whether they make sense.
    pub fn parse_bind(s: &str) -> Result<Address, AddrError> {
        parse(s, true)
    }

    /// True for a UNIX-domain socket path.
    pub fn is_unix(&self) -> bool {
        matches!(self, Address::Unix(_))
    }

    /// Resolves to every concrete address, in resolver order. Blocks for DNS on host names.
    pub fn resolve(&self) -> Result<Vec<Target>, ResolveError> {
        match self {
            Address::Unix(p) => Ok(vec![Target::Unix(p.clone())]),
            Address::Ip(sa) => Ok(vec![Target::Inet(*sa)]),
            Address::Host { host, port } => {
                let addrs: Vec<Target> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|source| ResolveError::Lookup { addr: self.to_string(), source })?
                    .map(Target::Inet)
                    .collect();
                if addrs.is_empty() {
                    return Err(ResolveError::NoAddresses(self.to_string()));
                }
                Ok(addrs)
            }
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Ip(sa) => Target::Inet(*sa).fmt(f),
            Address::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl std::str::FromStr for Address {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

fn parse_port(s: &str, allow_zero: bool) -> Result<u16, AddrError> {
    // Decimal digits only: no sign, no spaces, no service names.
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::BadPort(s.to_owned()));
    }
    match s.parse::<u16>() {
        Ok(0) if !allow_zero => Err(AddrError::BadPort(s.to_owned())),
        Ok(p) => Ok(p),
        Err(_) => Err(AddrError::BadPort(s.to_owned())),
    }
}

fn parse_bracketed(inner: &str, whole: &str) -> Result<IpAddr, AddrError> {
    if inner.is_empty() {
        return Err(AddrError::BadBracket(whole.to_owned()));
    }
    // As spiped: a ':' inside the brackets means IPv6, otherwise IPv4.
    if inner.contains(':') {
        inner.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| AddrError::BadIp(inner.to_owned()))
    } else {
        inner.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| AddrError::BadIp(inner.to_owned()))
    }
}

fn valid_host(h: &str) -> bool {
    // RFC 1123 names plus the characters resolvers accept in practice ('_' in SRV-ish labels).
    !h.is_empty()
        && h.len() <= 253
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn parse(s: &str, port_optional: bool) -> Result<Address, AddrError> {
    if s.is_empty() {
        return Err(AddrError::Empty);
    }
    if s.starts_with('/') {
        if s.len() > MAX_UNIX_PATH {
            return Err(AddrError::PathTooLong(s.to_owned()));
        }
        return Ok(Address::Unix(PathBuf::from(s)));
    }
    if !s.starts_with('[') && s.matches(':').count() >= 2 {
        return Err(AddrError::UnbracketedIpv6(s.to_owned()));
    }
    if s.starts_with(':') {
        return Err(AddrError::NoHost(s.to_owned()));
    }
    if let Some(rest) = s.strip_prefix('[') {
        // `[ip]:port` or, for bind addresses, `[ip]`.
        let Some(close) = rest.find(']') else {
            return Err(AddrError::BadBracket(s.to_owned()));
        };
        let ip = parse_bracketed(&rest[..close], s)?;
        let after = &rest[close + 1..];
        let port = if after.is_empty() && port_optional {
            0
        } else if let Some(p) = after.strip_prefix(':') {
            parse_port(p, port_optional)?
        } else if after.is_empty() {
            return Err(AddrError::NoPort(s.to_owned()));
        } else {
            return Err(AddrError::BadBracket(s.to_owned()));
        };
        return Ok(Address::Ip(SocketAddr::new(ip, port)));
    }
    if s.contains('/') && !s.contains(':') {
        return Err(AddrError::RelativePath(s.to_owned()));
    }
    let (host, port) = match s.rfind(':') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if host.contains(':') || host.parse::<Ipv6Addr>().is_ok() {
        return Err(AddrError::UnbracketedIpv6(s.to_owned()));
    }
    if !valid_host(host) {
        return Err(AddrError::BadHost(host.to_owned()));
    }
    let port = match port {
        Some(p) => parse_port(p, port_optional)?,
        None if port_optional => 0,
        None => return Err(AddrError::NoPort(s.to_owned())),
    };
    // A dotted quad without brackets is still a literal: skip the resolver for it.
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Ok(Address::Ip(SocketAddr::new(IpAddr::V4(v4), port)));
    }
    Ok(Address::Host { host: host.to_owned(), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Address {
        Address::Ip(s.parse().unwrap())
    }

    /// Every accepted form of a source/target address, and its canonical display.
    #[test]
    fn accepts_every_documented_form() {
        let cases: &[(&str, Address, &str)] = &[
            ("[127.0.0.1]:8025", ip("127.0.0.1:8025"), "[127.0.0.1]:8025"),
            ("127.0.0.1:8025", ip("127.0.0.1:8025"), "[127.0.0.1]:8025"),
            ("[::1]:22", ip("[::1]:22"), "[::1]:22"),
            ("[2001:db8::1]:65535", ip("[2001:db8::1]:65535"), "[2001:db8::1]:65535"),
            ("[::ffff:1.2.3.4]:1", ip("[::ffff:1.2.3.4]:1"), "[::ffff:1.2.3.4]:1"),
            (
                "localhost:80",
                Address::Host { host: "localhost".into(), port: 80 },
                "localhost:80",
            ),
            (
                "mail.example.com:25",
                Address::Host { host: "mail.example.com".into(), port: 25 },
                "mail.example.com:25",
            ),
            ("/var/run/spiped.sock", Address::Unix("/var/run/spiped.sock".into()), "/var/run/spiped.sock"),
            ("/a:b", Address::Unix("/a:b".into()), "/a:b"),
        ];
        for (input, want, shown) in cases {
            let got = Address::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(&got, want, "{input}");
            assert_eq!(got.to_string(), *shown, "{input}");
        }
    }

    /// Every rejection reason, with the variant that names it.
    #[test]
    fn rejects_every_malformed_form_with_its_reason() {
        let long = format!("/{}", "x".repeat(MAX_UNIX_PATH));
        let cases: Vec<(&str, AddrError)> = vec![
            ("", AddrError::Empty),
            (":80", AddrError::NoHost(":80".into())),
            ("localhost", AddrError::NoPort("localhost".into())),
            ("[127.0.0.1]", AddrError::NoPort("[127.0.0.1]".into())),
            ("localhost:", AddrError::BadPort("".into())),
            ("localhost:0", AddrError::BadPort("0".into())),
            ("localhost:65536", AddrError::BadPort("65536".into())),
            ("localhost:ssh", AddrError::BadPort("ssh".into())),
            ("localhost:+80", AddrError::BadPort("+80".into())),
            ("localhost:123456", AddrError::BadPort("123456".into())),
            ("[127.0.0.1:80", AddrError::BadBracket("[127.0.0.1:80".into())),
            ("[]:80", AddrError::BadBracket("[]:80".into())),
            ("[::1]x:80", AddrError::BadBracket("[::1]x:80".into())),
            ("[1.2.3]:80", AddrError::BadIp("1.2.3".into())),
            ("[1.2.3.256]:80", AddrError::BadIp("1.2.3.256".into())),
            ("[::g]:80", AddrError::BadIp("::g".into())),
            ("::1:80", AddrError::UnbracketedIpv6("::1:80".into())),
            ("2001:db8::1:80", AddrError::UnbracketedIpv6("2001:db8::1:80".into())),
            ("bad host:80", AddrError::BadHost("bad host".into())),
            ("relative/sock", AddrError::RelativePath("relative/sock".into())),
            (&long, AddrError::PathTooLong(long.clone())),
        ];
        for (input, want) in cases {
            assert_eq!(Address::parse(input), Err(want), "{input:?}");
        }
    }

    /// `-b` accepts a missing port (any port) and port 0, as spiped's `sock_addr_ensure_port`.
    #[test]
    fn bind_address_port_is_optional() {
        assert_eq!(Address::parse_bind("[127.0.0.2]").unwrap(), ip("127.0.0.2:0"));
        assert_eq!(Address::parse_bind("[::1]").unwrap(), ip("[::1]:0"));
        assert_eq!(Address::parse_bind("127.0.0.2").unwrap(), ip("127.0.0.2:0"));
        assert_eq!(Address::parse_bind("[127.0.0.2]:0").unwrap(), ip("127.0.0.2:0"));
        assert_eq!(Address::parse_bind("[127.0.0.2]:4000").unwrap(), ip("127.0.0.2:4000"));
        assert_eq!(
            Address::parse_bind("localhost").unwrap(),
            Address::Host { host: "localhost".into(), port: 0 }
        );
        assert_eq!(Address::parse_bind(""), Err(AddrError::Empty));
        assert_eq!(Address::parse_bind("[::1]:x"), Err(AddrError::BadPort("x".into())));
    }

    /// Literal and UNIX addresses resolve without DNS; `localhost` resolves to loopback.
    #[test]
    fn resolution() {
        assert_eq!(
            Address::parse("[::1]:9").unwrap().resolve().unwrap(),
            vec![Target::Inet("[::1]:9".parse().unwrap())]
        );
        assert_eq!(
            Address::parse("/tmp/x").unwrap().resolve().unwrap(),
            vec![Target::Unix("/tmp/x".into())]
        );
        let lo = Address::parse("localhost:9").unwrap().resolve().unwrap();
        assert!(!lo.is_empty());
        for t in lo {
            match t {
                Target::Inet(sa) => assert!(sa.ip().is_loopback() && sa.port() == 9),
                Target::Unix(_) => panic!("localhost resolved to a path"),
            }
        }
        let bad = Address::Host { host: "no-such-host.invalid".into(), port: 1 };
        assert!(bad.resolve().is_err());
    }
}
