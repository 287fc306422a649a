//! WSGITrustedProxies entries: an IP address or subnet, as apr_ipsubnet_create reads them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    /// The network address (host bits cleared).
    pub network: IpAddr,
    pub prefix_len: u8,
}

impl TrustedProxy {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_v4(ip, self.prefix_len) == net,
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_v6(ip, self.prefix_len) == net,
            _ => false,
        }
    }
}

fn mask_v4(ip: Ipv4Addr, bits: u8) -> Ipv4Addr {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
    Ipv4Addr::from(u32::from(ip) & mask)
}

fn mask_v6(ip: Ipv6Addr, bits: u8) -> Ipv6Addr {
    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
    Ipv6Addr::from(u128::from(ip) & mask)
}

fn unparsable(value: &str, why: &str) -> ConfigError {
    ConfigError::Other(format!("Unable to parse trusted proxy IP address/subnet of \"{value}\".{why}"))
}

const BAD_IP: &str = " The specified IP address is invalid.";
const BAD_MASK: &str = " The specified network mask is invalid.";

/// `10`, `10.1`, `10.1.2` are /8, /16, /24 networks (apr allows this without a mask).
fn partial_v4(text: &str) -> Option<(Ipv4Addr, u8)> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse().ok()?;
    }
    Some((Ipv4Addr::from(octets), 8 * parts.len() as u8))
}

fn v4_mask_bits(mask: &str) -> Option<u8> {
    let m = u32::from(mask.parse::<Ipv4Addr>().ok()?);
    let bits = m.leading_ones();
    // Only contiguous masks make sense for a subnet.
    (m.count_ones() == bits && bits > 0).then_some(bits as u8)
}

/// Parses one WSGITrustedProxies word: `ADDR`, `ADDR/BITS` or `IPv4/NETMASK`.
pub fn parse_trusted_proxy(value: &str) -> Result<TrustedProxy, ConfigError> {
    // C first screens the characters (lower-case hex only for IPv6).
    let allowed: &str = if value.contains(':') { "0123456789abcdef:/" } else { "0123456789./" };
    if value.is_empty() || !value.chars().all(|c| allowed.contains(c)) {
        return Err(unparsable(value, ""));
    }
    let (ip, mask) = match value.split_once('/') {
        Some((ip, mask)) => (ip, Some(mask)),
        None => (value, None),
    };
    if value.contains(':') {
        let addr: Ipv6Addr = ip.parse().map_err(|_| unparsable(value, BAD_IP))?;
        let bits = match mask {
            None => 128,
            Some(m) => match m.parse::<u8>() {
                Ok(b) if (1..=128).contains(&b) => b,
                _ => return Err(unparsable(value, BAD_MASK)),
            },
        };
        return Ok(TrustedProxy { network: IpAddr::V6(mask_v6(addr, bits)), prefix_len: bits });
    }
    let (addr, bits) = match mask {
        None => partial_v4(ip).ok_or_else(|| unparsable(value, BAD_IP))?,
        Some(m) => {
            let addr: Ipv4Addr = ip.parse().map_err(|_| unparsable(value, BAD_IP))?;
            let bits = match m.parse::<u8>() {
                Ok(b) if (1..=32).contains(&b) => Some(b),
                Ok(_) => None,
                Err(_) => v4_mask_bits(m),
            };
            (addr, bits.ok_or_else(|| unparsable(value, BAD_MASK))?)
        }
    };
    Ok(TrustedProxy { network: IpAddr::V4(mask_v4(addr, bits)), prefix_len: bits })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> TrustedProxy {
        parse_trusted_proxy(v).unwrap()
    }

    #[test]
    fn addresses_and_subnets() {
        assert_eq!(p("1.2.3.4"), TrustedProxy { network: "1.2.3.4".parse().unwrap(), prefix_len: 32 });
        assert_eq!(p("10.1.2.3/8"), TrustedProxy { network: "10.0.0.0".parse().unwrap(), prefix_len: 8 });
        assert_eq!(p("10.0.0.0/255.255.0.0").prefix_len, 16);
        assert_eq!(p("10.1").prefix_len, 16);
        assert_eq!(p("10").network, "10.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(p("::1").prefix_len, 128);
        assert_eq!(p("fd00::/8").network, "fd00::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn contains() {
        assert!(p("10.0.0.0/8").contains("10.9.8.7".parse().unwrap()));
        assert!(!p("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(!p("10.0.0.0/8").contains("::1".parse().unwrap()));
        assert!(p("fd00::/8").contains("fd12::1".parse().unwrap()));
    }

    #[test]
    fn messages() {
        let m = |v| parse_trusted_proxy(v).unwrap_err().to_string();
        assert_eq!(m("bogus"), r#"Unable to parse trusted proxy IP address/subnet of "bogus"."#);
        assert_eq!(m(""), r#"Unable to parse trusted proxy IP address/subnet of ""."#);
        assert_eq!(m("FD00::1"), r#"Unable to parse trusted proxy IP address/subnet of "FD00::1"."#);
        assert_eq!(
            m("1.2.3.4/99"),
            r#"Unable to parse trusted proxy IP address/subnet of "1.2.3.4/99". The specified network mask is invalid."#
        );
        assert_eq!(
            m("1.2.3.4/0"),
            r#"Unable to parse trusted proxy IP address/subnet of "1.2.3.4/0". The specified network mask is invalid."#
        );
        assert_eq!(
            m("1.2.3.400"),
            r#"Unable to parse trusted proxy IP address/subnet of "1.2.3.400". The specified IP address is invalid."#
        );
        assert!(m("1.2.3/8").ends_with("The specified IP address is invalid."));
        assert!(m("::1/129").ends_with("The specified network mask is invalid."));
        assert!(m("10.0.0.0/255.0.255.0").ends_with("The specified network mask is invalid."));
    }
}
