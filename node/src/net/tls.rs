//! rustls and quinn configurations with one crypto provider (ring), mutual
//! TLS under the cluster CA, and the endpoint keys that let a restarted node
//! be noticed at once.

use super::certs::Credentials;
use super::{Identity, NetError, ALPN_CLIENT, ALPN_PEER, CLIENT_NAME};
use crate::protocol::{node_name, NodeId};
use quinn::crypto::rustls::{HandshakeData, QuicClientConfig, QuicServerConfig};
use quinn::{EndpointConfig, IdleTimeout, TransportConfig};
use quinn_proto::HashedConnectionIdGenerator;
use ring::hmac;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use std::sync::Arc;
use std::time::Duration;

/// The one crypto provider of the process: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(e: impl std::fmt::Display) -> NetError {
    NetError::Tls(e.to_string())
}

fn roots(creds: &Credentials) -> Result<Arc<RootCertStore>, NetError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(creds.ca.clone())
        .map_err(|e| tls_error(format!("cluster CA: {e}")))?;
    Ok(Arc::new(roots))
}

/// Keep-alive and idle timeout; both sides of a connection use the same.
pub fn transport_config(
    keep_alive: Duration,
    idle_timeout: Duration,
) -> Result<Arc<TransportConfig>, NetError> {
    base_transport(keep_alive, idle_timeout).map(Arc::new)
}

fn base_transport(
    keep_alive: Duration,
    idle_timeout: Duration,
) -> Result<TransportConfig, NetError> {
    if keep_alive >= idle_timeout {
        return Err(NetError::Config(format!(
            "keep-alive interval {keep_alive:?} must be below the idle timeout {idle_timeout:?}"
        )));
    }
    let idle = IdleTimeout::try_from(idle_timeout)
        .map_err(|e| NetError::Config(format!("idle timeout: {e}")))?;
    let mut transport = TransportConfig::default();
    transport
        .keep_alive_interval(Some(keep_alive))
        .max_idle_timeout(Some(idle));
    Ok(transport)
}

/// The transport of connections a node accepts: [`transport_config`],
/// with at most `max_bidi_streams` client request streams open at once per
/// connection and 4 unidirectional streams (a peer uses one).
pub fn server_transport_config(
    keep_alive: Duration,
    idle_timeout: Duration,
    max_bidi_streams: u32,
) -> Result<Arc<TransportConfig>, NetError> {
    let mut transport = base_transport(keep_alive, idle_timeout)?;
    transport
        .max_concurrent_bidi_streams(max_bidi_streams.into())
        .max_concurrent_uni_streams(4u32.into());
    Ok(Arc::new(transport))
}

/// The server side of a node's endpoint: presents the node's certificate,
/// requires a client certificate signed by the cluster CA, and offers both
/// ALPNs.
pub fn server_config(
    creds: &Credentials,
    transport: Arc<TransportConfig>,
) -> Result<quinn::ServerConfig, NetError> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(creds)?, provider.clone())
        .build()
        .map_err(tls_error)?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(creds.chain.clone(), creds.key.clone_key())
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![ALPN_PEER.to_vec(), ALPN_CLIENT.to_vec()];
    let quic = QuicServerConfig::try_from(tls).map_err(tls_error)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(transport);
    Ok(config)
}

/// The dialing side: verifies the server's certificate against the cluster
/// CA and the name dialed, presents our certificate, speaks `alpn`.
pub fn client_config(
    creds: &Credentials,
    alpn: &[u8],
    transport: Arc<TransportConfig>,
) -> Result<quinn::ClientConfig, NetError> {
    let provider = provider();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots(creds)?,
        provider.clone(),
    )
    .build()
    .map_err(tls_error)?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(creds.chain.clone(), creds.key.clone_key())
        .map_err(tls_error)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    let quic = QuicClientConfig::try_from(tls).map_err(tls_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(transport);
    Ok(config)
}

/// An endpoint configuration whose stateless-reset key and connection-ID key
/// are derived from `secret` (the node's private key), so they survive a
/// restart: a peer still holding a connection to the previous incarnation
/// gets a stateless reset on its next packet instead of waiting out the idle
/// timeout.
pub fn endpoint_config(secret: &[u8]) -> EndpointConfig {
    let master = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let reset = hmac::sign(&master, b"gpaxos/quic stateless reset key");
    let cid = hmac::sign(&master, b"gpaxos/quic connection id key");
    let mut cid_key = [0u8; 8];
    cid_key.copy_from_slice(&cid.as_ref()[..8]);
    let cid_key = u64::from_le_bytes(cid_key);
    let mut config =
        EndpointConfig::new(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, reset.as_ref())));
    config.cid_generator(move || Box::new(HashedConnectionIdGenerator::from_key(cid_key)));
    config
}

/// The ALPN a connection negotiated.
pub fn alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<HandshakeData>()
        .ok()?
        .protocol
}

/// The end-entity certificate the other side presented.
pub fn peer_certificate(conn: &quinn::Connection) -> Option<CertificateDer<'static>> {
    let chain = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    chain.into_iter().next()
}

/// True when `cert` is valid for the subject name `name` (its SAN).
pub fn certificate_names(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(end_entity) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let Ok(server_name) = ServerName::try_from(name) else {
        return false;
    };
    end_entity
        .verify_is_valid_for_subject_name(&server_name)
        .is_ok()
}

/// Who a certificate names: the client identity, or one of the `n` nodes.
pub fn identity_of(cert: &CertificateDer<'_>, n: usize) -> Option<Identity> {
    if certificate_names(cert, CLIENT_NAME) {
        return Some(Identity::Client);
    }
    (0..n as NodeId)
        .find(|&id| certificate_names(cert, &node_name(id)))
        .map(Identity::Node)
}
