//! IP networks in `allowed_outbound_hosts` (`*://10.0.0.0/8:5432`). Spin uses
//! `ip_network::IpNetwork::from_str_truncate`: a `/` prefix length is required (a bare
//! address is an exact host, not a network) and host bits are truncated.

use std::net::IpAddr;

/// An IPv4 or IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `addr/len`; `None` if it is not one (the caller then treats it as a host name).
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, len) = s.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = len.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        let network = mask(addr, prefix);
        Some(Self { network, prefix })
    }

    /// Whether `ip` is inside the network (an IPv4 address is never inside an IPv6 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_truncates() {
        let c = Cidr::parse("127.0.0.1/24").unwrap();
        assert_eq!(c, Cidr::parse("127.0.0.0/24").unwrap());
        assert!(c.contains(ip("127.0.0.200")));
        assert!(!c.contains(ip("127.0.1.1")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("::1")));
        let one = Cidr::parse("10.1.2.3/32").unwrap();
        assert!(one.contains(ip("10.1.2.3")));
        assert!(!one.contains(ip("10.1.2.4")));
    }

    #[test]
    fn ipv6() {
        let c = Cidr::parse("ff00::/8").unwrap();
        assert!(c.contains(ip("ff02::1")));
        assert!(!c.contains(ip("fe80::1")));
        assert!(!c.contains(ip("127.0.0.1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
    }

    #[test]
    fn rejects_non_networks() {
        for s in [
            "192.168.1.1",
            "10.0.0.0/33",
            "::/129",
            "host/8",
            "10.0.0.0/x",
            "10.0.0.0/",
        ] {
            assert!(Cidr::parse(s).is_none(), "{s}");
        }
    }
}
