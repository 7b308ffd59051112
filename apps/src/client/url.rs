//! `http://IPv4[:port]/path` URLs: the only form the bypass client can reach (there is no
//! resolver on the bypass stack, so host names are refused with a clear message).

use anyhow::{bail, Context};
use std::net::Ipv4Addr;

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// Path and query as sent in the request line (starts with `/`).
    pub target: String,
    /// The `Host` field value.
    pub host: String,
}

impl Url {
    pub fn parse(s: &str) -> anyhow::Result<Url> {
        let Some(rest) = s.strip_prefix("http://") else {
            bail!("{s}: only http:// URLs are supported");
        };
        let (authority, target) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().with_context(|| format!("{s}: bad port {p:?}"))?),
            None => (authority, 80),
        };
        let addr: Ipv4Addr = host
            .parse()
            .with_context(|| format!("{s}: the host must be an IPv4 address (no DNS on the bypass stack)"))?;
        if port == 0 {
            bail!("{s}: port 0 is not a valid destination");
        }
        if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            bail!("{s}: the path contains spaces or control characters; percent-encode them");
        }
        Ok(Url { addr, port, target: target.to_owned(), host: authority.to_owned() })
    }

    /// The last path segment, for naming the output file (`index.html` for a directory).
    pub fn file_name(&self) -> String {
        let path = self.target.split(['?', '#']).next().unwrap_or("");
        match path.rsplit('/').next() {
            Some(name) if !name.is_empty() && name != "." && name != ".." => name.to_owned(),
            _ => "index.html".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let u = Url::parse("http://198.18.0.1:8080/a/b.bin?x=1").unwrap();
        assert_eq!((u.addr, u.port, u.target.as_str()), (Ipv4Addr::new(198, 18, 0, 1), 8080, "/a/b.bin?x=1"));
        assert_eq!(u.file_name(), "b.bin");
        let u = Url::parse("http://198.18.0.1").unwrap();
        assert_eq!((u.port, u.target.as_str(), u.file_name().as_str()), (80, "/", "index.html"));
        assert!(Url::parse("https://198.18.0.1/").is_err());
        assert!(Url::parse("http://example.com/").is_err());
        assert!(Url::parse("http://198.18.0.1:0/").is_err());
    }
}
