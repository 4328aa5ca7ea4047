//! Observability of the `kcl` tool: Prometheus metrics, health and the live status page.
//!
//! - [`exporter`]: installs the process's Prometheus recorder (the library never does).
//! - [`server`]: the HTTP server: `/metrics`, `/health`, `/`, `/fragment`, `/api/status`.
//! - [`status`]: the status model read from any `LeaseStore` (+ the stream for lag).
//! - [`lag_cache`]: each shard's lag, measured at most every few seconds.
//! - [`page`]: the server-rendered HTML and the lineage SVG.

pub mod exporter;
pub mod lag_cache;
pub mod page;
pub mod server;
pub mod status;

use anyhow::Context;
use std::net::{Ipv4Addr, SocketAddr};

/// `ADDR` of `--FLAG`: `HOST:PORT`, or a bare `PORT` / `:PORT` meaning loopback.
pub fn parse_listen_addr(flag: &str, text: &str) -> anyhow::Result<SocketAddr> {
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    text.parse().with_context(|| {
        format!("--{flag}: {text:?} is not an address like 127.0.0.1:9100 or a port like 9100")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_means_loopback() {
        let cases = [
            ("9100", Some("127.0.0.1:9100")),
            (":0", Some("127.0.0.1:0")),
            ("0.0.0.0:9100", Some("0.0.0.0:9100")),
            ("[::1]:80", Some("[::1]:80")),
            ("localhost", None),
            ("99999", None),
        ];
        for (text, expected) in cases {
            let parsed = parse_listen_addr("serve", text).ok().map(|a| a.to_string());
            assert_eq!(parsed.as_deref(), expected, "{text}");
        }
    }
}
