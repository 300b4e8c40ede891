//! TLS for the tests: certificates made by rcgen at test time (no key files), and a
//! recording TLS echo server and client over loopback.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use netloom_channel::{
    Bootstrap, Channel, EchoHandler, EventLoopGroup, ServerBootstrap, TlsClientConfig, TlsHandler,
    TlsServerConfig,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use super::{Log, Recorder, bind_local};

/// A CA that issues leaf certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A distinct name per CA, so a foreign CA is "unknown", not "same name, bad signature".
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("netloom test CA {n}"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// The CA's certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// (certificate PEM, key PEM) for `names`.
    pub fn leaf(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server configuration with a certificate for `names`.
    pub fn server(&self, names: &[&str]) -> TlsServerConfig {
        let (cert, key) = self.leaf(names);
        TlsServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap()
    }

    /// A client configuration that trusts this CA only.
    pub fn client(&self) -> TlsClientConfig {
        TlsClientConfig::from_roots_pem(self.pem().as_bytes()).unwrap()
    }
}

/// A TLS server on 127.0.0.1 (port chosen by the system) whose connections record into
/// `log` and echo; returns where it listens.
pub fn tls_server(group: &EventLoopGroup, cfg: TlsServerConfig, log: &Log) -> SocketAddr {
    let l = log.clone();
    let server = ServerBootstrap::new(group, group).child_handler(move |p| {
        p.add_last("tls", TlsHandler::server(&cfg)?)?
            .add_last("rec", Recorder(l.clone()))?
            .add_last("echo", EchoHandler)?;
        Ok(())
    });
    bind_local(server).1
}

/// A TLS client of `addr` that expects the server to be `name` and records into `log`.
pub fn tls_client(
    group: &EventLoopGroup,
    addr: SocketAddr,
    cfg: TlsClientConfig,
    name: &'static str,
    log: &Log,
) -> Channel {
    let l = log.clone();
    Bootstrap::new(group)
        .handler(move |p| {
            p.add_last("tls", TlsHandler::client(&cfg, name)?)?
                .add_last("rec", Recorder(l.clone()))?;
            Ok(())
        })
        .connect(addr)
        .sync()
        .unwrap()
}

/// The TLS errors `log` recorded.
pub fn tls_errors(log: &Log) -> Vec<String> {
    log.events()
        .into_iter()
        .filter(|e| e.starts_with("exception:TLS"))
        .collect()
}
