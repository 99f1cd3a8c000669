//! The Destination API's `Update` messages as text: the current endpoints as a table, and each
//! later message as change lines (`+ ADDRESS ...`, `- ADDRESS`). Pure: [`Resolution::apply`]
//! folds a message into the state and says what changed.

use linkerd2_proxy_api::destination::{
    protocol_hint::Protocol, tls_identity::Strategy, update, Update, WeightedAddr,
};
use std::{collections::BTreeMap, net::SocketAddr};

/// The table's header.
pub const HEADER: [&str; 5] = ["ADDRESS", "POD", "SERVICEACCOUNT", "IDENTITY", "HINT"];
/// The IDENTITY of an endpoint without a TLS identity: the proxy connects in plaintext.
pub const NOT_MESHED: &str = "- (not meshed)";

/// One endpoint as the table shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub pod: Option<String>,
    pub service_account: Option<String>,
    /// The TLS identity the proxy would require; `None` when the endpoint is not meshed.
    pub identity: Option<String>,
    /// `h2` or `opaque`, and the transport port when the proxy would use one.
    pub hint: Option<String>,
}

/// A message the controller should not send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUpdate {
    #[error("the controller sent an update without a kind (Add, Remove or NoEndpoints)")]
    Empty,
    #[error("the controller sent an endpoint without a valid IP address and port")]
    Address,
}

fn socket_addr(
    addr: Option<linkerd2_proxy_api::net::TcpAddress>,
) -> Result<SocketAddr, InvalidUpdate> {
    let addr = addr.ok_or(InvalidUpdate::Address)?;
    if addr.port == 0 || addr.port > u32::from(u16::MAX) {
        return Err(InvalidUpdate::Address);
    }
    SocketAddr::try_from(addr).map_err(|_| InvalidUpdate::Address)
}

impl TryFrom<WeightedAddr> for Endpoint {
    type Error = InvalidUpdate;

    fn try_from(weighted: WeightedAddr) -> Result<Self, InvalidUpdate> {
        let label = |key: &str| {
            weighted
                .metric_labels
                .get(key)
                .filter(|v| !v.is_empty())
                .cloned()
        };
        let identity = weighted
            .tls_identity
            .as_ref()
            .and_then(|tls| tls.strategy.as_ref())
            .map(|strategy| match strategy {
                Strategy::DnsLikeIdentity(dns) => dns.name.clone(),
                Strategy::UriLikeIdentity(uri) => uri.uri.clone(),
            });
        let hint = weighted.protocol_hint.as_ref().and_then(|hint| {
            let protocol = match hint.protocol {
                Some(Protocol::H2(_)) => "h2",
                Some(Protocol::Opaque(_)) => "opaque",
                None => "-",
            };
            match (hint.protocol, hint.opaque_transport) {
                (None, None) => None,
                (_, None) => Some(protocol.to_string()),
                (_, Some(transport)) => Some(format!(
                    "{protocol} (transport port {})",
                    transport.inbound_port
                )),
            }
        });
        Ok(Endpoint {
            addr: socket_addr(weighted.addr)?,
            pod: label("pod"),
            service_account: label("serviceaccount"),
            identity,
            hint,
        })
    }
}

impl Endpoint {
    fn columns(&self) -> [String; 5] {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        [
            self.addr.to_string(),
            or_dash(&self.pod),
            or_dash(&self.service_account),
            self.identity.clone().unwrap_or_else(|| NOT_MESHED.into()),
            or_dash(&self.hint),
        ]
    }
}

/// What a proxy would resolve for the Service port, after the messages so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The endpoints by address (possibly none: the Service exists without ready endpoints).
    Endpoints(BTreeMap<SocketAddr, Endpoint>),
    /// `NoEndpoints`: the Service has no endpoints (`exists`), or no such port or Service.
    NoEndpoints { exists: bool },
}

impl Default for Resolution {
    fn default() -> Self {
        Resolution::Endpoints(BTreeMap::new())
    }
}

impl Resolution {
    /// Folds `update` into the state and returns one line per change: `+ ADDRESS POD ...` for an
    /// endpoint that is new or changed, `- ADDRESS` for one removed, and the NoEndpoints
    /// sentence (`service` names the Service and port in it). Nothing when nothing changed.
    pub fn apply(
        &mut self,
        update: Update,
        service: &str,
        port: u16,
    ) -> Result<Vec<String>, InvalidUpdate> {
        let mut lines = vec![];
        match update.update.ok_or(InvalidUpdate::Empty)? {
            update::Update::Add(set) => {
                let mut added = set
                    .addrs
                    .into_iter()
                    .map(Endpoint::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                added.sort_by_key(|endpoint| endpoint.addr);
                if !matches!(self, Resolution::Endpoints(_)) {
                    *self = Resolution::default();
                }
                if let Resolution::Endpoints(endpoints) = self {
                    for endpoint in added {
                        if endpoints.get(&endpoint.addr) != Some(&endpoint) {
                            lines.push(format!("+ {}", endpoint.columns().join("  ")));
                            endpoints.insert(endpoint.addr, endpoint);
                        }
                    }
                }
            }
            update::Update::Remove(set) => {
                let mut removed = set
                    .addrs
                    .into_iter()
                    .map(|addr| socket_addr(Some(addr)))
                    .collect::<Result<Vec<_>, _>>()?;
                removed.sort();
                if let Resolution::Endpoints(endpoints) = self {
                    for addr in removed {
                        if endpoints.remove(&addr).is_some() {
                            lines.push(format!("- {addr}"));
                        }
                    }
                }
            }
            update::Update::NoEndpoints(no) => {
                if let Resolution::Endpoints(endpoints) = self {
                    lines.extend(endpoints.keys().map(|addr| format!("- {addr}")));
                }
                let next = Resolution::NoEndpoints { exists: no.exists };
                if *self != next || !lines.is_empty() {
                    lines.push(no_endpoints(no.exists, service, port));
                }
                *self = next;
            }
        }
        Ok(lines)
    }

    /// The state as text: a table of the endpoints sorted by address, or a sentence when there
    /// are none. Ends with a newline.
    pub fn table(&self, service: &str, port: u16) -> String {
        let endpoints = match self {
            Resolution::NoEndpoints { exists } => {
                return format!("{}\n", no_endpoints(*exists, service, port))
            }
            Resolution::Endpoints(endpoints) if endpoints.is_empty() => {
                return format!("{}\n", no_endpoints(true, service, port))
            }
            Resolution::Endpoints(endpoints) => endpoints,
        };
        let rows: Vec<[String; 5]> = std::iter::once(HEADER.map(String::from))
            .chain(endpoints.values().map(Endpoint::columns))
            .collect();
        let mut widths = [0; 5];
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The sentence for `NoEndpoints`.
fn no_endpoints(exists: bool, service: &str, port: u16) -> String {
    if exists {
        format!("no endpoints (the Service {service} exists)")
    } else {
        format!("Service {service} has no port {port} or does not exist")
    }
}

/// The state after the first message, as a proxy sees it when it starts resolving.
pub fn first(update: Update, service: &str, port: u16) -> Result<Resolution, InvalidUpdate> {
    let mut resolution = Resolution::default();
    resolution.apply(update, service, port)?;
    Ok(resolution)
}

#[cfg(test)]
mod tests;
