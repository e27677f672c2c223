//! `--database-url` as libpq reads it: one host, or several
//! (`postgres://user@h1:5432,h2:5433/db?target_session_attrs=read-write`), each tried in
//! order. sqlx's `PgConnectOptions` takes one host, so the host list is split here into one
//! set of options per host, everything else in the URL (user, password, database, `sslmode`,
//! `sslrootcert`, ...) the same for each and parsed by sqlx itself.

use std::fmt;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

/// The default port, as libpq's (Roster does not read `PGPORT` for a host without one).
pub const DEFAULT_PORT: u16 = 5432;

/// Which session a connection must find on its host to be kept (libpq's
/// `target_session_attrs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionAttrs {
    /// The first host that accepts a connection.
    #[default]
    Any,
    /// A host whose sessions accept writes (`SHOW transaction_read_only` is off): the
    /// primary, wherever it is now.
    ReadWrite,
    /// A host not in recovery (`pg_is_in_recovery()` is false).
    Primary,
}

/// One host of the URL: where it is, said as an operator wrote it, and how to connect.
#[derive(Debug, Clone)]
pub struct Host {
    /// `host:port`, IPv6 in brackets; for messages and logs (never the password).
    pub name: String,
    pub options: PgConnectOptions,
}

/// The URL's hosts, in the order they are tried, and what a session must be.
#[derive(Debug, Clone)]
pub struct PgUrl {
    pub hosts: Vec<Host>,
    pub attrs: SessionAttrs,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("it must start with postgres:// or postgresql://")]
    Scheme,
    #[error("host {0} of its host list is empty (hosts are separated by commas)")]
    EmptyHost(usize),
    #[error("host {0}: an IPv6 address opened with [ is not closed with ]")]
    UnclosedBracket(usize),
    #[error("host {host}: the port {port:?} is not a number from 1 to 65535")]
    BadPort { host: String, port: String },
    #[error("host {0}: its percent-encoding is not UTF-8")]
    BadEncoding(usize),
    #[error(
        "target_session_attrs={0:?}: Roster writes, so it takes any, read-write or primary \
         (read-write finds the primary after a failover)"
    )]
    SessionAttrs(String),
    #[error(
        "the query parameter {0} names a host or port: with several hosts, give them as \
         host:port,host:port before the database's path"
    )]
    HostInQuery(&'static str),
    /// sqlx's own complaint about the rest of the URL (never the URL itself: it may hold a
    /// password).
    #[error("{0}")]
    Options(String),
}

impl FromStr for SessionAttrs {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        match s {
            "any" => Ok(SessionAttrs::Any),
            "read-write" => Ok(SessionAttrs::ReadWrite),
            "primary" => Ok(SessionAttrs::Primary),
            // read-only, standby, prefer-standby: Roster's writes would all fail there.
            other => Err(UrlError::SessionAttrs(other.to_string())),
        }
    }
}

impl fmt::Display for SessionAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionAttrs::Any => "any",
            SessionAttrs::ReadWrite => "read-write",
            SessionAttrs::Primary => "primary",
        })
    }
}

impl From<PgConnectOptions> for PgUrl {
    /// One host, as sqlx parsed it.
    fn from(options: PgConnectOptions) -> PgUrl {
        let name = format!("{}:{}", options.get_host(), options.get_port());
        PgUrl {
            hosts: vec![Host { name, options }],
            attrs: SessionAttrs::Any,
        }
    }
}

impl PgUrl {
    /// Whether connections must be checked, and the host followed when it changes: more
    /// than one host, or a session that must accept writes.
    pub fn fails_over(&self) -> bool {
        self.hosts.len() > 1 || self.attrs != SessionAttrs::Any
    }
}

impl FromStr for PgUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<PgUrl, UrlError> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or(UrlError::Scheme)?;
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        // The password may hold an '@' only percent-encoded, as in any URL: the last one
        // ends the user.
        let (userinfo, hostlist) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, query),
            None => (tail, ""),
        };
        let mut attrs = SessionAttrs::default();
        let mut kept = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "target_session_attrs" => attrs = value.parse()?,
                "host" | "hostaddr" if value.contains(',') => {
                    return Err(UrlError::HostInQuery("host"));
                }
                "port" if value.contains(',') => return Err(UrlError::HostInQuery("port")),
                _ => {
                    kept.append_pair(&key, &value);
                }
            }
        }
        let kept = kept.finish();
        let query = if kept.is_empty() {
            String::new()
        } else {
            format!("?{kept}")
        };
        let options = |host: &str| -> Result<PgConnectOptions, UrlError> {
            format!("postgres://{userinfo}{host}{path}{query}")
                .parse::<PgConnectOptions>()
                .map_err(|e| UrlError::Options(e.to_string()))
        };
        // No host at all (postgres:///db): sqlx's default, its one target.
        if hostlist.is_empty() {
            let options = options("")?;
            let name = format!("{}:{}", options.get_host(), options.get_port());
            return Ok(PgUrl {
                hosts: vec![Host { name, options }],
                attrs,
            });
        }
        let mut hosts = Vec::new();
        for (i, entry) in hostlist.split(',').enumerate() {
            let n = i + 1;
            let (raw_host, port) = if let Some(v6) = entry.strip_prefix('[') {
                let (addr, after) = v6.split_once(']').ok_or(UrlError::UnclosedBracket(n))?;
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':').ok_or_else(|| UrlError::BadPort {
                        host: format!("[{addr}]"),
                        port: after.to_string(),
                    })?),
                };
                (&entry[..addr.len() + 2], port)
            } else {
                match entry.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (entry, None),
                }
            };
            if raw_host.is_empty() || raw_host == "[]" {
                return Err(UrlError::EmptyHost(n));
            }
            let decoded = percent_encoding::percent_decode_str(raw_host)
                .decode_utf8()
                .map_err(|_| UrlError::BadEncoding(n))?;
            let port = match port {
                // libpq: an empty port is the default.
                None | Some("") => DEFAULT_PORT,
                Some(port) => port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| UrlError::BadPort {
                        host: decoded.to_string(),
                        port: port.to_string(),
                    })?,
            };
            // The raw host in the URL sqlx parses (its password file is looked up by it,
            // and a percent-encoded path is a Unix socket there); then the address itself,
            // as sqlx connects to what it is given (an IPv6 address without brackets).
            let mut options = options(&format!("{raw_host}:{port}"))?.port(port);
            let name = if decoded.starts_with('/') {
                format!("{decoded}:{port}")
            } else if let Some(v6) = decoded.strip_prefix('[') {
                let addr = v6.trim_end_matches(']');
                options = options.host(addr);
                format!("[{addr}]:{port}")
            } else {
                options = options.host(&decoded);
                format!("{decoded}:{port}")
            };
            hosts.push(Host { name, options });
        }
        Ok(PgUrl { hosts, attrs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> PgUrl {
        url.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn hosts(url: &str) -> Vec<(String, u16)> {
        parse(url)
            .hosts
            .iter()
            .map(|h| (h.options.get_host().to_string(), h.options.get_port()))
            .collect()
    }

    #[test]
    fn one_host_is_what_sqlx_makes_of_the_url() {
        let url = parse("postgres://me:secret@db.example:6000/roster?sslmode=require");
        assert_eq!(url.attrs, SessionAttrs::Any);
        assert!(!url.fails_over());
        let [host] = &url.hosts[..] else { panic!() };
        assert_eq!(host.name, "db.example:6000");
        let direct: PgConnectOptions =
            "postgres://me:secret@db.example:6000/roster?sslmode=require"
                .parse()
                .unwrap();
        assert_eq!(format!("{:?}", host.options), format!("{direct:?}"));
    }

    #[test]
    fn every_host_gets_its_own_port_or_the_default() {
        assert_eq!(
            hosts("postgresql://u@h1:5433,h2,h3:/db"),
            [
                ("h1".into(), 5433),
                ("h2".into(), 5432),
                ("h3".into(), 5432)
            ]
        );
    }

    #[test]
    fn ipv6_addresses_are_bracketed_in_the_url_and_bare_to_connect() {
        let url = parse("postgres://u@[::1]:5433,[fe80::1],127.0.0.1/db");
        let names: Vec<&str> = url.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["[::1]:5433", "[fe80::1]:5432", "127.0.0.1:5432"]);
        assert_eq!(url.hosts[0].options.get_host(), "::1");
        assert_eq!(url.hosts[1].options.get_port(), 5432);
    }

    #[test]
    fn the_rest_of_the_url_is_the_same_for_every_host() {
        let url = parse(
            "postgres://us%40er:p%2Fss%40@h1:1,h2:2/my%20db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&target_session_attrs=read-write&application_name=r",
        );
        assert_eq!(url.attrs, SessionAttrs::ReadWrite);
        assert!(url.fails_over());
        for host in &url.hosts {
            let o = &host.options;
            assert_eq!(o.get_username(), "us@er");
            assert_eq!(o.get_database(), Some("my db"));
            assert_eq!(o.get_application_name(), Some("r"));
            assert!(matches!(
                o.get_ssl_mode(),
                sqlx::postgres::PgSslMode::VerifyFull
            ));
            let debug = format!("{o:?}");
            assert!(debug.contains("/tmp/ca.pem"), "{debug}");
            assert!(debug.contains("p/ss@"), "the password: {debug}");
        }
        assert_eq!(hosts("postgres://u@h%31:7,h2/db")[0], ("h1".into(), 7));
    }

    #[test]
    fn session_attrs_roster_can_write_through() {
        let attrs = |a: &str| {
            format!("postgres://u@h1,h2/db?target_session_attrs={a}")
                .parse::<PgUrl>()
                .map(|u| u.attrs)
        };
        assert_eq!(attrs("any"), Ok(SessionAttrs::Any));
        assert_eq!(attrs("read-write"), Ok(SessionAttrs::ReadWrite));
        assert_eq!(attrs("primary"), Ok(SessionAttrs::Primary));
        let standby = attrs("standby").unwrap_err().to_string();
        assert!(standby.contains("\"standby\""), "{standby}");
        assert!(standby.contains("read-write"), "{standby}");
        assert!(attrs("prefer-standby").is_err());
        assert!(attrs("read-only").is_err());
        // Two hosts are tried in order even without it: any, as libpq.
        assert!(parse("postgres://u@h1,h2/db").fails_over());
    }

    #[test]
    fn mistakes_are_named_without_the_url() {
        let err = |url: &str| url.parse::<PgUrl>().unwrap_err();
        assert_eq!(err("mysql://u@h/db"), UrlError::Scheme);
        assert_eq!(err("postgres://u:pw@h1,,h2/db"), UrlError::EmptyHost(2));
        assert_eq!(err("postgres://u:pw@h1,/db"), UrlError::EmptyHost(2));
        assert_eq!(err("postgres://u:pw@[::1/db"), UrlError::UnclosedBracket(1));
        assert_eq!(
            err("postgres://u:pw@h1:5432,h2:99999/db"),
            UrlError::BadPort {
                host: "h2".into(),
                port: "99999".into()
            }
        );
        assert_eq!(
            err("postgres://u:pw@h1:0/db"),
            UrlError::BadPort {
                host: "h1".into(),
                port: "0".into()
            }
        );
        assert_eq!(
            err("postgres://u:pw@[::1]5432/db"),
            UrlError::BadPort {
                host: "[::1]".into(),
                port: "5432".into()
            }
        );
        assert_eq!(err("postgres://u:pw@h%ff/db"), UrlError::BadEncoding(1));
        assert_eq!(
            err("postgres://u:pw@/db?host=a,b"),
            UrlError::HostInQuery("host")
        );
        let sqlx = err("postgres://u:pw@h1,h2/db?sslmode=sometimes").to_string();
        assert!(!sqlx.contains("pw"), "{sqlx}");
    }

    #[test]
    fn no_host_is_sqlxs_default() {
        let url = parse("postgres:///roster");
        assert_eq!(url.hosts.len(), 1);
        assert_eq!(url.hosts[0].options.get_database(), Some("roster"));
    }
}
