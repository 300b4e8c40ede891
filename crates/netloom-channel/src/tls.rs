//! TLS as a pipeline handler (rustls): non-blocking handshakes, a handshake-complete event,
//! and STARTTLS by inserting the handler into a live pipeline.
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::{ChannelError, CloseMode, Context, Handler, HandlerResult, Msg, TlsInfo, UserEvent};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_err(what: impl Into<String>, reason: impl ToString) -> ChannelError {
    ChannelError::TlsConfig {
        what: what.into(),
        reason: reason.to_string(),
    }
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, ChannelError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_err(what, e))?;
    if certs.is_empty() {
        return Err(config_err(what, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

fn parse_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, ChannelError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| config_err(what, e))
}

fn roots(pem: &[u8], what: &str) -> Result<RootCertStore, ChannelError> {
    let mut store = RootCertStore::empty();
    for cert in parse_certs(pem, what)? {
        store.add(cert).map_err(|e| config_err(what, e))?;
    }
    Ok(store)
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, ChannelError> {
    std::fs::read(path).map_err(|e| config_err(format!("{what} {}", path.display()), e))
}

/// A PEM certificate chain (leaf first), for the `with_client_auth` constructors.
///
/// ```
/// let _chain = netloom_channel::CertChainPem(b"-----BEGIN CERTIFICATE-----\n...");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CertChainPem<'a>(pub &'a [u8]);

/// A PEM private key, for the `with_client_auth` constructors.
///
/// ```
/// let _key = netloom_channel::PrivateKeyPem(b"-----BEGIN PRIVATE KEY-----\n...");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PrivateKeyPem<'a>(pub &'a [u8]);

/// PEM CA certificates to trust, for the `with_client_auth` constructors.
///
/// ```
/// let _roots = netloom_channel::RootsPem(b"-----BEGIN CERTIFICATE-----\n...");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RootsPem<'a>(pub &'a [u8]);

/// A TLS server configuration: certificate chain and key, optionally client certificates.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::TlsServerConfig;
/// let cfg = TlsServerConfig::from_pem_files("cert.pem", "key.pem")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsServerConfig(Arc<ServerConfig>);

impl TlsServerConfig {
    /// From a PEM certificate chain (leaf first) and a PEM private key.
    ///
    /// ```
    /// use netloom_channel::TlsServerConfig;
    /// let err = TlsServerConfig::from_pem(b"not pem", b"").err().unwrap();
    /// assert!(err.to_string().contains("certificate PEM"));
    /// ```
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, ChannelError> {
        let certs = parse_certs(cert_chain, "certificate PEM")?;
        let key = parse_key(key, "private key PEM")?;
        let cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| config_err("certificate and key", e))?;
        Ok(TlsServerConfig(Arc::new(cfg)))
    }

    /// From PEM files.
    ///
    /// ```
    /// use netloom_channel::TlsServerConfig;
    /// assert!(TlsServerConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").is_err());
    /// ```
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, ChannelError> {
        let certs = read_file(cert_chain.as_ref(), "certificate file")?;
        let key = read_file(key.as_ref(), "key file")?;
        Self::from_pem(&certs, &key)
    }

    /// Presents `cert_chain` with `key` and requires clients to present a certificate
    /// issued by one of `client_roots`. The PEM inputs are typed, so they cannot be
    /// passed in the wrong order.
    ///
    /// ```
    /// use netloom_channel::{CertChainPem, PrivateKeyPem, RootsPem, TlsServerConfig};
    /// let err = TlsServerConfig::with_client_auth(CertChainPem(b""), PrivateKeyPem(b""), RootsPem(b""));
    /// assert!(err.is_err());
    /// ```
    ///
    /// Swapped arguments do not compile:
    ///
    /// ```compile_fail
    /// use netloom_channel::{CertChainPem, PrivateKeyPem, RootsPem, TlsServerConfig};
    /// let _ = TlsServerConfig::with_client_auth(RootsPem(b""), PrivateKeyPem(b""), CertChainPem(b""));
    /// ```
    pub fn with_client_auth(
        cert_chain: CertChainPem<'_>,
        key: PrivateKeyPem<'_>,
        client_roots: RootsPem<'_>,
    ) -> Result<Self, ChannelError> {
        let certs = parse_certs(cert_chain.0, "certificate PEM")?;
        let key = parse_key(key.0, "private key PEM")?;
        let roots = roots(client_roots.0, "client root PEM")?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| config_err("client verifier", e))?;
        let cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err("protocol versions", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|e| config_err("certificate and key", e))?;
        Ok(TlsServerConfig(Arc::new(cfg)))
    }

    /// Wraps a rustls configuration built by hand (ALPN, resumption, ...).
    ///
    /// ```no_run
    /// # fn f(cfg: std::sync::Arc<rustls::ServerConfig>) {
    /// let _c = netloom_channel::TlsServerConfig::from_rustls(cfg);
    /// # }
    /// ```
    pub fn from_rustls(config: Arc<ServerConfig>) -> Self {
        TlsServerConfig(config)
    }
}

/// A TLS client configuration. Certificates are always verified against the roots.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::TlsClientConfig;
/// let public = TlsClientConfig::system_roots()?;
/// let private = TlsClientConfig::from_roots_pem(&std::fs::read("ca.pem").unwrap())?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsClientConfig(Arc<ClientConfig>);

impl TlsClientConfig {
    /// Trusts the CA certificates in `roots` (PEM).
    ///
    /// ```
    /// use netloom_channel::TlsClientConfig;
    /// assert!(TlsClientConfig::from_roots_pem(b"").is_err());
    /// ```
    pub fn from_roots_pem(roots_pem: &[u8]) -> Result<Self, ChannelError> {
        Self::from_root_store(roots(roots_pem, "root certificate PEM")?)
    }

    fn from_root_store(roots: RootCertStore) -> Result<Self, ChannelError> {
        let cfg = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err("protocol versions", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClientConfig(Arc::new(cfg)))
    }

    /// Trusts the system's CA certificates, found by `rustls-native-certs`
    /// (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the platform's store). Fails when
    /// none can be loaded, naming the first error met.
    ///
    /// ```no_run
    /// let _c = netloom_channel::TlsClientConfig::system_roots().unwrap();
    /// ```
    pub fn system_roots() -> Result<Self, ChannelError> {
        let found = rustls_native_certs::load_native_certs();
        let mut store = RootCertStore::empty();
        let (added, _unparsable) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            let reason = found.errors.first().map_or_else(
                || "no CA certificate found".to_string(),
                ToString::to_string,
            );
            return Err(config_err("system CA roots", reason));
        }
        Self::from_root_store(store)
    }

    /// Presents a client certificate chain and key, and trusts `roots` — the same order
    /// as [`TlsServerConfig::with_client_auth`], with typed PEM inputs that cannot be
    /// swapped.
    ///
    /// ```
    /// use netloom_channel::{CertChainPem, PrivateKeyPem, RootsPem, TlsClientConfig};
    /// let err = TlsClientConfig::with_client_auth(CertChainPem(b""), PrivateKeyPem(b""), RootsPem(b""));
    /// assert!(err.is_err());
    /// ```
    pub fn with_client_auth(
        cert_chain: CertChainPem<'_>,
        key: PrivateKeyPem<'_>,
        roots: RootsPem<'_>,
    ) -> Result<Self, ChannelError> {
        let certs = parse_certs(cert_chain.0, "client certificate PEM")?;
        let key = parse_key(key.0, "client key PEM")?;
        let roots = self::roots(roots.0, "root certificate PEM")?;
        let cfg = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err("protocol versions", e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| config_err("client certificate and key", e))?;
        Ok(TlsClientConfig(Arc::new(cfg)))
    }

    /// Wraps a rustls configuration built by hand.
    ///
    /// ```no_run
    /// # fn f(cfg: std::sync::Arc<rustls::ClientConfig>) {
    /// let _c = netloom_channel::TlsClientConfig::from_rustls(cfg);
    /// # }
    /// ```
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        TlsClientConfig(config)
    }
}

/// Encrypts outbound `Bytes` and decrypts inbound ones. Put it first in the pipeline (or
/// insert it there mid-stream for STARTTLS). The handshake runs as bytes arrive — it never
/// blocks the loop; `UserEvent::TlsHandshakeComplete` follows it, and a failure (untrusted
/// certificate, wrong name, alert) reaches `exception_caught` as [`ChannelError::Tls`].
///
/// # Closing
///
/// rustls may be called no more once it sent a fatal alert, so the handler keeps to one
/// rule: after a failure it only flushes the pending alert, and a `close_notify` is only
/// ever sent after the handshake completed. A close asked for during the handshake
/// ([`CloseMode::Output`], or [`CloseMode::Graceful`] after writes that rustls holds until
/// the handshake is done) waits for the handshake: then the held writes go out, then
/// `close_notify`, then the close. A graceful close with nothing held closes at once.
/// With [`TlsHandler::half_close`] the peer's `close_notify` becomes
/// [`UserEvent::InputShutdown`] instead of a close, as a TCP FIN does with
/// `ChannelOptions::allow_half_closure`.
///
/// ```no_run
/// # fn main() -> Result<(), netloom_channel::ChannelError> {
/// use netloom_channel::{Bootstrap, EventLoopGroup, TlsClientConfig, TlsHandler};
/// let group = EventLoopGroup::new(1, "tls")?;
/// let roots = TlsClientConfig::system_roots()?;
/// let ch = Bootstrap::new(&group)
///     .handler(move |p| { p.add_last("tls", TlsHandler::client(&roots, "example.com")?)?; Ok(()) })
///     .connect("example.com:443")
///     .sync()?;
/// # Ok(()) }
/// ```
pub struct TlsHandler {
    conn: rustls::Connection,
    server_name: Option<String>,
    plaintext_writes_left: usize,
    handshake_done: bool,
    failed: bool,
    /// Whether `close_notify` went out (rustls must not be handed input after a full close).
    closed: bool,
    /// A close asked for before the handshake completed, done when it completes.
    deferred_close: Option<CloseMode>,
    /// Plaintext was written during the handshake (rustls holds it until the handshake is done).
    holds_writes: bool,
    /// The peer's `close_notify` becomes `InputShutdown` (see `half_close`).
    half_close: bool,
    /// `InputShutdown` was passed on (once, from `close_notify` or a TCP FIN).
    input_ended: bool,
    out: BytesMut,
    plain: BytesMut,
    handshake_timeout: Option<Duration>,
}

/// How long a [`TlsHandler`] waits for the handshake by default (10 s).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsHandler {
    /// The server side.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::{TlsHandler, TlsServerConfig};
    /// let cfg = TlsServerConfig::from_pem_files("cert.pem", "key.pem")?;
    /// let _h = TlsHandler::server(&cfg)?;
    /// # Ok(()) }
    /// ```
    pub fn server(config: &TlsServerConfig) -> Result<TlsHandler, ChannelError> {
        let conn = ServerConnection::new(config.0.clone())
            .map_err(|e| config_err("server connection", e))?;
        Ok(Self::with(rustls::Connection::Server(conn), None))
    }

    /// The client side; `server_name` is sent as SNI and must match the certificate.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::{TlsClientConfig, TlsHandler};
    /// let roots = TlsClientConfig::system_roots()?;
    /// let _h = TlsHandler::client(&roots, "example.com")?;
    /// assert!(TlsHandler::client(&roots, "not a name!").is_err());
    /// # Ok(()) }
    /// ```
    pub fn client(config: &TlsClientConfig, server_name: &str) -> Result<TlsHandler, ChannelError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| config_err(format!("server name {server_name:?}"), e))?;
        let conn = ClientConnection::new(config.0.clone(), name)
            .map_err(|e| config_err("client connection", e))?;
        Ok(Self::with(
            rustls::Connection::Client(conn),
            Some(server_name.to_owned()),
        ))
    }

    fn with(mut conn: rustls::Connection, server_name: Option<String>) -> TlsHandler {
        // The channel's water marks bound what we buffer; rustls must not refuse writes.
        conn.set_buffer_limit(None);
        TlsHandler {
            conn,
            server_name,
            plaintext_writes_left: 0,
            handshake_done: false,
            failed: false,
            closed: false,
            deferred_close: None,
            holds_writes: false,
            half_close: false,
            input_ended: false,
            out: BytesMut::new(),
            plain: BytesMut::new(),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Closes the channel (with [`ChannelError::TlsHandshakeTimeout`] to its pipeline)
    /// when the handshake is not complete this long after the handler was added — a
    /// ClientHello followed by silence, or no hello at all. Default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]; `None` waits forever.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use std::time::Duration;
    /// use netloom_channel::{TlsHandler, TlsServerConfig};
    /// let cfg = TlsServerConfig::from_pem_files("cert.pem", "key.pem")?;
    /// let _h = TlsHandler::server(&cfg)?.handshake_timeout(Some(Duration::from_secs(3)));
    /// # Ok(()) }
    /// ```
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> TlsHandler {
        self.handshake_timeout = timeout;
        self
    }

    /// Half-close: the peer's `close_notify` is passed on as [`UserEvent::InputShutdown`]
    /// (once; a later TCP FIN is not passed on again) and this side may go on writing,
    /// instead of closing the channel. For a channel with
    /// `ChannelOptions::allow_half_closure` (the forwarder sets both); off by default.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::{TlsHandler, TlsServerConfig};
    /// let cfg = TlsServerConfig::from_pem_files("cert.pem", "key.pem")?;
    /// let _h = TlsHandler::server(&cfg)?.half_close(true);
    /// # Ok(()) }
    /// ```
    pub fn half_close(mut self, on: bool) -> TlsHandler {
        self.half_close = on;
        self
    }

    /// STARTTLS: lets the first outbound write through unencrypted (the "go ahead" reply
    /// that was written just before this handler was inserted).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), netloom_channel::ChannelError> {
    /// use netloom_channel::{TlsHandler, TlsServerConfig};
    /// let cfg = TlsServerConfig::from_pem_files("cert.pem", "key.pem")?;
    /// let _h = TlsHandler::server(&cfg)?.start_tls();
    /// # Ok(()) }
    /// ```
    pub fn start_tls(mut self) -> TlsHandler {
        self.plaintext_writes_left = 1;
        self
    }

    /// Moves TLS records rustls wants to send into the pipeline (not flushed).
    fn write_records(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        while self.conn.wants_write() {
            let mut w = (&mut self.out).writer();
            self.conn.write_tls(&mut w)?;
        }
        if !self.out.is_empty() {
            ctx.write(self.out.split().freeze());
        }
        Ok(())
    }

    /// rustls failed: from now on rustls is never called again, except to take the alert
    /// it queued (sending anything after a fatal alert breaks its invariants).
    fn fail(&mut self, ctx: &mut Context<'_>, err: rustls::Error) -> HandlerResult {
        self.failed = true;
        // Send the alert rustls queued, then report.
        self.write_records(ctx)?;
        ctx.flush();
        ctx.fire_exception_caught(ChannelError::Tls {
            channel: ctx.channel().to_string(),
            source: Box::new(err),
        });
        if self.deferred_close.take().is_some() {
            // The close asked for during the handshake: the alert goes out first.
            ctx.close_with(CloseMode::Graceful);
        }
        Ok(())
    }

    /// Sends `close_notify` after what is pending, then passes the close on. Only after
    /// the handshake: rustls asserts that no fatal alert follows a `close_notify`, and a
    /// handshake step can still fail.
    fn close_after_handshake(&mut self, ctx: &mut Context<'_>, mode: CloseMode) -> HandlerResult {
        self.conn.send_close_notify();
        self.write_records(ctx)?;
        ctx.flush();
        if mode != CloseMode::Output {
            self.closed = true;
        }
        ctx.close_with(mode);
        Ok(())
    }

    /// The peer ended its input (`close_notify`, or a TCP FIN reported by the channel).
    fn input_ended(&mut self, ctx: &mut Context<'_>) {
        if !std::mem::replace(&mut self.input_ended, true) {
            ctx.fire_user_event(UserEvent::InputShutdown);
        }
    }

    fn info(&self) -> TlsInfo {
        let server_name = match &self.conn {
            rustls::Connection::Server(s) => s.server_name().map(str::to_owned),
            rustls::Connection::Client(_) => self.server_name.clone(),
        };
        TlsInfo {
            protocol_version: self.conn.protocol_version().map(|v| format!("{v:?}")),
            cipher_suite: self
                .conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite())),
            alpn: self.conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name,
        }
    }

    /// Hands decrypted bytes on; returns true when the peer sent close_notify.
    fn read_plaintext(&mut self, ctx: &mut Context<'_>) -> Result<bool, std::io::Error> {
        let mut peer_closed = false;
        let mut reader = self.conn.reader();
        loop {
            match reader.fill_buf() {
                Ok([]) => {
                    peer_closed = true;
                    break;
                }
                Ok(chunk) => {
                    let n = chunk.len();
                    self.plain.extend_from_slice(chunk);
                    reader.consume(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if !self.plain.is_empty() {
            ctx.fire_channel_read(self.plain.split().freeze());
        }
        Ok(peer_closed)
    }
}

#[crate::handler]
impl Handler for TlsHandler {
    fn handler_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some(timeout) = self.handshake_timeout {
            ctx.schedule_timer(timeout);
        }
        if ctx.channel().is_active() {
            // Inserted into a live channel (STARTTLS): a client says hello now.
            self.write_records(ctx)?;
            ctx.flush();
        }
        Ok(())
    }

    fn channel_active(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.write_records(ctx)?;
        ctx.flush();
        ctx.fire_channel_active();
        Ok(())
    }

    fn channel_read(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        let bytes = match msg.downcast::<Bytes>() {
            Ok(b) => b,
            Err(other) => {
                ctx.fire_channel_read(other);
                return Ok(());
            }
        };
        if self.failed || self.closed {
            return Ok(());
        }
        let mut input: &[u8] = &bytes;
        let mut peer_closed = false;
        while !input.is_empty() {
            if self.conn.read_tls(&mut input)? == 0 {
                break;
            }
            if let Err(err) = self.conn.process_new_packets() {
                return self.fail(ctx, err);
            }
            if !self.handshake_done && !self.conn.is_handshaking() {
                self.handshake_done = true;
                ctx.cancel_timer();
                ctx.fire_user_event(UserEvent::TlsHandshakeComplete(Box::new(self.info())));
                if let Some(mode) = self.deferred_close.take() {
                    // The held writes are queued now: close_notify follows them.
                    self.close_after_handshake(ctx, mode)?;
                }
            }
            peer_closed |= self.read_plaintext(ctx)?;
            if self.closed {
                break;
            }
        }
        self.write_records(ctx)?;
        ctx.flush();
        if peer_closed {
            if self.half_close {
                self.input_ended(ctx);
            } else {
                ctx.close();
            }
        }
        Ok(())
    }

    fn write(&mut self, ctx: &mut Context<'_>, msg: Msg) -> HandlerResult {
        if self.plaintext_writes_left > 0 {
            self.plaintext_writes_left -= 1;
            ctx.write(msg);
            return Ok(());
        }
        match msg.downcast::<Bytes>() {
            Ok(bytes) => {
                if self.failed || self.closed || self.deferred_close.is_some() {
                    // Like writes after a close reaching the transport: dropped.
                    return Ok(());
                }
                self.holds_writes |= !self.handshake_done;
                self.conn.writer().write_all(&bytes)?;
                self.write_records(ctx)
            }
            Err(other) => {
                ctx.write(other);
                Ok(())
            }
        }
    }

    fn timer_expired(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some(timeout) = self.handshake_timeout
            && !self.handshake_done
            && !self.failed
        {
            self.failed = true;
            ctx.fire_exception_caught(ChannelError::TlsHandshakeTimeout(timeout));
            ctx.close_with(CloseMode::Forced);
        }
        Ok(())
    }

    fn user_event(&mut self, ctx: &mut Context<'_>, event: UserEvent) -> HandlerResult {
        match event {
            // The TCP FIN: passed on once, whether or not a close_notify came first.
            UserEvent::InputShutdown => self.input_ended(ctx),
            other => ctx.fire_user_event(other),
        }
        Ok(())
    }

    fn close(&mut self, ctx: &mut Context<'_>, mode: CloseMode) -> HandlerResult {
        match mode {
            CloseMode::Forced => ctx.close_with(mode),
            _ if self.failed || self.closed => ctx.close_with(mode),
            _ if self.handshake_done => self.close_after_handshake(ctx, mode)?,
            // During the handshake: nothing held and no half-close to keep, close now
            // (no close_notify: the handshake could still fail and need a fatal alert).
            CloseMode::Graceful if !self.holds_writes => ctx.close_with(mode),
            _ => {
                // Wait for the handshake (bounded by its timeout); a full close wins over
                // a half-close.
                self.deferred_close = match (self.deferred_close, mode) {
                    (Some(CloseMode::Graceful), _) | (_, CloseMode::Graceful) => {
                        Some(CloseMode::Graceful)
                    }
                    _ => Some(CloseMode::Output),
                };
            }
        }
        Ok(())
    }
}
