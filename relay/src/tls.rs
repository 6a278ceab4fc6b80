//! HTTPS for the one listener: certificate files, or certificates over ACME.
//!
//! Browsers give OPFS, `crypto.subtle` and WebRTC's full API only to secure
//! contexts, and an `https` page may open only `wss` sockets, so a public
//! relay serves TLS itself (`--tls-cert`/`--tls-key`, or `--acme-domain`
//! with TLS-ALPN-01 on the same port) or sits behind a proxy that does.
//! rustls with the *ring* provider; HTTP/1.1 only (WebSockets upgrade from
//! it).

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsConfig;
use futures::StreamExt;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tracing::{info, warn};

use crate::config::TlsArgs;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read the certificate chain {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("no certificate in {0}")]
    NoCert(PathBuf),
    #[error("cannot read the private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the certificate and key do not fit together: {0}")]
    Mismatch(rustls::Error),
    #[error("cannot read the ACME directory's CA {path}: {reason}")]
    DirectoryCa { path: PathBuf, reason: String },
    #[error("cannot create the ACME cache directory {path}: {reason}")]
    Cache { path: PathBuf, reason: io::Error },
}

/// How the listener speaks.
pub enum Tls {
    /// Plain HTTP: loopback, a LAN, or behind a TLS-terminating proxy.
    Off,
    /// A certificate the operator has (reloaded on restart).
    Files(RustlsConfig),
    /// Certificates from an ACME CA, ordered and renewed by a background task.
    Acme(rustls_acme::axum::AxumAcceptor),
}

impl Tls {
    pub fn is_on(&self) -> bool {
        !matches!(self, Tls::Off)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(
    builder: impl FnOnce() -> Result<ServerConfig, TlsError>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = builder()?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Sets up what `args` ask for. ACME starts its background task here (it
/// needs a Tokio runtime): the first certificate is ordered at once and
/// renewed before it expires; until one exists, handshakes fail.
pub fn setup(args: &TlsArgs) -> Result<Tls, TlsError> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let config = server_config(|| from_files(cert, key))?;
        info!("serving HTTPS with {}", cert.display());
        return Ok(Tls::Files(RustlsConfig::from_config(config)));
    }
    if !args.acme_domains.is_empty() {
        return acme(args).map(Tls::Acme);
    }
    Ok(Tls::Off)
}

fn from_files(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| TlsError::Cert {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCert(cert.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Mismatch)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Mismatch)
}

fn acme(args: &TlsArgs) -> Result<rustls_acme::axum::AxumAcceptor, TlsError> {
    std::fs::create_dir_all(&args.acme_cache).map_err(|reason| TlsError::Cache {
        path: args.acme_cache.clone(),
        reason,
    })?;
    let config = match &args.acme_directory_ca {
        None => rustls_acme::AcmeConfig::new_with_provider(&args.acme_domains, provider()),
        Some(path) => {
            let client = directory_client(path)?;
            rustls_acme::AcmeConfig::new_with_client_config(&args.acme_domains, client)
        }
    };
    let mut state = config
        .contact(args.acme_contact.iter())
        .directory(&args.acme_directory)
        .cache(rustls_acme::caches::DirCache::new(args.acme_cache.clone()))
        .state();
    let mut rustls_config = (*state.default_rustls_config_with_provider(provider())).clone();
    // TLS-ALPN-01 answers on `acme-tls/1`; the state's config lists it, and
    // ordinary clients get HTTP/1.1.
    rustls_config
        .alpn_protocols
        .retain(|p| p.as_slice() != b"h2");
    if !rustls_config
        .alpn_protocols
        .iter()
        .any(|p| p.as_slice() == b"http/1.1")
    {
        rustls_config.alpn_protocols.push(b"http/1.1".to_vec());
    }
    let acceptor = state.axum_acceptor(Arc::new(rustls_config));
    info!(
        domains = ?args.acme_domains, directory = %args.acme_directory, cache = %args.acme_cache.display(),
        "ordering certificates over ACME (TLS-ALPN-01)"
    );
    tokio::spawn(async move {
        while let Some(event) = state.next().await {
            match event {
                Ok(event) => info!("acme: {event:?}"),
                Err(error) => warn!("acme: {error}"),
            }
        }
    });
    Ok(acceptor)
}

/// A client config that trusts only `ca` (a private or test ACME server).
fn directory_client(ca: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let bad = |reason: String| TlsError::DirectoryCa {
        path: ca.to_owned(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(e.to_string()))? {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Wraps an acceptor so that its handshake must finish within `timeout`.
#[derive(Clone)]
pub struct Timeout<A> {
    inner: A,
    timeout: Duration,
}

impl<A> Timeout<A> {
    pub fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A, I, S> Accept<I, S> for Timeout<A>
where
    A: Accept<I, S>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = TimeoutFuture<A::Future>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        TimeoutFuture {
            inner: Box::pin(tokio::time::timeout(
                self.timeout,
                self.inner.accept(stream, service),
            )),
        }
    }
}

pub struct TimeoutFuture<F> {
    inner: Pin<Box<tokio::time::Timeout<F>>>,
}

impl<F, T> std::future::Future for TimeoutFuture<F>
where
    F: std::future::Future<Output = io::Result<T>>,
{
    type Output = io::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(Ok(res)) => Poll::Ready(res),
            Poll::Ready(Err(_)) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.cert.pem()).expect("write cert");
        std::fs::write(&k, cert.key_pair.serialize_pem()).expect("write key");
        (c, k)
    }

    #[test]
    fn files_load_and_speak_http1() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, k) = self_signed(dir.path());
        let config = server_config(|| from_files(&c, &k)).expect("config");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_files_name_the_file_and_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, k) = self_signed(dir.path());
        let missing = dir.path().join("missing.pem");
        let err = from_files(&missing, &k).expect_err("missing cert");
        assert!(matches!(err, TlsError::Cert { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        assert!(matches!(from_files(&empty, &k), Err(TlsError::NoCert(_))));
        assert!(matches!(from_files(&c, &empty), Err(TlsError::Key { .. })));
        // A key that is not the certificate's.
        let (_, other_key) = self_signed(&{
            let d = dir.path().join("other");
            std::fs::create_dir(&d).expect("mkdir");
            d
        });
        assert!(matches!(
            from_files(&c, &other_key),
            Err(TlsError::Mismatch(_))
        ));
    }

    #[test]
    fn directory_ca_must_hold_a_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, _) = self_signed(dir.path());
        assert!(directory_client(&c).is_ok());
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        assert!(matches!(
            directory_client(&empty),
            Err(TlsError::DirectoryCa { .. })
        ));
    }
}
