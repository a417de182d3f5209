//! Addresses for the phone demo: which URL students' phones can reach when the runner listens on all interfaces,
//! which URL this machine uses (the instructor page is loopback-only), and what counts as "this machine" in a
//! `Host` or `Origin` header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use crate::config::PublicUrl;

/// Where phones reach the runner, and a hint to print when that could not be worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachable {
    pub url: PublicUrl,
    pub hint: Option<String>,
}

/// The URL for phones and QR codes: `--public-url` if given; for an unspecified listen address (`0.0.0.0`,
/// `[::]`), this machine's LAN address as its outbound route shows it; otherwise the listen address itself.
pub fn reachable(bound: SocketAddr, configured: Option<&PublicUrl>) -> Reachable {
    if let Some(url) = configured {
        return Reachable {
            url: url.clone(),
            hint: None,
        };
    }
    if !bound.ip().is_unspecified() {
        let hint = bound.ip().is_loopback().then(|| {
            format!(
                "this listens on loopback only; to try the form from a phone on the same network, start with \
                 --listen 0.0.0.0:{}",
                bound.port()
            )
        });
        return Reachable {
            url: PublicUrl::http(bound),
            hint,
        };
    }
    match lan_address(bound.ip()) {
        Some(ip) => Reachable {
            url: PublicUrl::http(SocketAddr::new(ip, bound.port())),
            hint: None,
        },
        None => Reachable {
            url: PublicUrl::http(loopback(bound)),
            hint: Some(format!(
                "could not find this machine's network address; give the one phones use with --public-url \
                 http://ADDRESS:{}",
                bound.port()
            )),
        },
    }
}

/// The address this machine uses to reach the runner: loopback when listening on loopback or on all interfaces,
/// `None` when the runner listens on one network address only (loopback clients can't connect then, and the
/// instructor page answers loopback clients only).
pub fn local(bound: SocketAddr) -> Option<SocketAddr> {
    let ip = bound.ip();
    (ip.is_unspecified() || ip.is_loopback()).then(|| loopback(bound))
}

fn loopback(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V6(ip) if ip.is_loopback() || ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), bound.port())
        }
        IpAddr::V4(ip) if ip.is_loopback() => bound,
        _ => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), bound.port()),
    }
}

/// This machine's address on its outbound route. Connecting a UDP socket sends nothing: it only asks the kernel
/// which local address would be used. Private and documentation addresses are tried so that a LAN without a
/// default route works too.
fn lan_address(listen: IpAddr) -> Option<IpAddr> {
    let v4 = [
        "192.0.2.1:9",
        "10.254.254.254:9",
        "192.168.254.254:9",
        "172.31.254.254:9",
    ];
    let v6 = ["[2001:db8::1]:9", "[fd00::1]:9"];
    let probes: Vec<&str> = match listen {
        // `[::]` accepts IPv4 too on most systems; phones are likelier to have an IPv4 route.
        IpAddr::V6(_) => v4.iter().chain(v6.iter()).copied().collect(),
        IpAddr::V4(_) => v4.to_vec(),
    };
    probes.into_iter().find_map(|probe| {
        let target: SocketAddr = probe.parse().ok()?;
        let bind: SocketAddr = match target {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(bind).ok()?;
        socket.connect(target).ok()?;
        let ip = socket.local_addr().ok()?.ip();
        (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
    })
}

/// Whether a `Host` header (or an origin's `host[:port]`) names this machine's loopback runner at `port`. Names
/// that merely resolve to loopback don't count: a DNS-rebinding page reaches the runner under its own name.
pub fn is_loopback_authority(authority: &str, port: u16) -> bool {
    let authority = authority.to_ascii_lowercase();
    let Some((host, given)) = authority.rsplit_once(':') else {
        return false;
    };
    if given.parse::<u16>().ok() != Some(port) {
        return false;
    }
    match host {
        "localhost" | "[::1]" => true,
        _ => host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_with_the_right_port_are_this_machine() {
        let cases = [
            ("127.0.0.1:3000", true),
            ("localhost:3000", true),
            ("LOCALHOST:3000", true),
            ("[::1]:3000", true),
            ("127.0.0.2:3000", true),
            ("127.0.0.1:3001", false),
            ("127.0.0.1", false),
            ("evil.example:3000", false),
            ("127.0.0.1.nip.io:3000", false),
            ("localhost.evil.example:3000", false),
            ("192.168.1.20:3000", false),
            ("", false),
        ];
        for (authority, expected) in cases {
            assert_eq!(is_loopback_authority(authority, 3000), expected, "{authority:?}");
        }
    }

    #[test]
    fn the_public_url_is_the_configured_one_or_the_listen_address() {
        let configured = PublicUrl::parse("https://qa.example.org").expect("url");
        let any: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        assert_eq!(reachable(any, Some(&configured)).url, configured);

        let lan: SocketAddr = "192.168.1.20:8080".parse().expect("addr");
        assert_eq!(reachable(lan, None).url.to_string(), "http://192.168.1.20:8080");
        assert_eq!(
            local(lan),
            None,
            "loopback clients can't connect to a LAN-only listener"
        );

        let loopback: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let r = reachable(loopback, None);
        assert_eq!(r.url.to_string(), "http://127.0.0.1:8080");
        assert!(
            r.hint.is_some_and(|h| h.contains("--listen")),
            "says how to reach it from a phone"
        );
    }

    #[test]
    fn listening_on_all_interfaces_never_gives_phones_an_unspecified_address() {
        let r = reachable("0.0.0.0:8080".parse().expect("addr"), None);
        let url = r.url.to_string();
        assert!(!url.contains("0.0.0.0"), "{url}");
        if url.starts_with("http://127.0.0.1") {
            assert!(r.hint.is_some(), "falling back to loopback comes with a hint");
        }
        assert_eq!(
            local("0.0.0.0:8080".parse().expect("addr")),
            Some("127.0.0.1:8080".parse().expect("addr"))
        );
        assert_eq!(
            local("[::]:8080".parse().expect("addr")),
            Some("[::1]:8080".parse().expect("addr"))
        );
    }
}
