//! The certificate a server presents, swapped in place: the webhook server's when its files are
//! reloaded ([`super::tls`]), the gRPC server's when its identity is renewed ([`super::grpc`]).
//! One rustls `ServerConfig` per server resolves every handshake through it, so a swap reaches new
//! connections at once and nothing is parsed per connection.

use parking_lot::RwLock;
use rustls::{
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use std::sync::Arc;
use tokio_rustls::rustls;

/// The key and chain a server's handshakes use now.
#[derive(Debug)]
pub struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    pub fn new(certified: Arc<CertifiedKey>) -> Self {
        Self(RwLock::new(certified))
    }

    /// The key and chain in use.
    pub fn get(&self) -> Arc<CertifiedKey> {
        self.0.read().clone()
    }

    /// Serves `certified` to the handshakes from now on.
    pub fn set(&self, certified: Arc<CertifiedKey>) {
        *self.0.write() = certified;
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}
