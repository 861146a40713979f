//! TLS material of a cluster: one CA, a certificate per node and one for
//! clients, all in one directory:
//!
//! | file | what |
//! |---|---|
//! | `ca.pem`, `ca.key` | the cluster CA (self-signed) and its key |
//! | `n1.pem`, `n1.key`, ... | a node's certificate (SAN and CN = the node's name, server and client auth) |
//! | `client.pem`, `client.key` | the client certificate (SAN and CN = `client`, client auth) |
//!
//! Keys are PKCS#8 ECDSA P-256, written with mode 0600.

use super::CLIENT_NAME;
use crate::protocol::{node_name, NodeId};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why certificates could not be written or read; every variant names the
/// file.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("bad node name {0:?}: names are DNS labels (letters, digits, '-'), distinct, and not 'ca' or 'client'")]
    Name(String),
}

/// What one endpoint presents and trusts: the cluster CA, its own
/// certificate chain and private key.
#[derive(Debug)]
pub struct Credentials {
    pub ca: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Credentials {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// The paths of the certificate and key called `name` in `dir`.
pub fn paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// Writes a fresh cluster CA, a certificate for every node in `node_names`
/// and a client certificate into `out_dir` (created if missing). Existing
/// files are overwritten.
pub fn generate(out_dir: &Path, node_names: &[String]) -> Result<(), CertError> {
    check_names(node_names)?;
    fs::create_dir_all(out_dir).map_err(|source| CertError::Io {
        path: out_dir.into(),
        source,
    })?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gpaxos cluster CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let (ca_pem, ca_key_path) = paths(out_dir, "ca");
    write(&ca_pem, ca_cert.pem().as_bytes(), false)?;
    write(&ca_key_path, ca_key.serialize_pem().as_bytes(), true)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |name: &str, ekus: Vec<ExtendedKeyUsagePurpose>| -> Result<(), CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![name.to_string()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = ekus;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &issuer)?;
        let (pem, key_path) = paths(out_dir, name);
        write(&pem, cert.pem().as_bytes(), false)?;
        write(&key_path, key.serialize_pem().as_bytes(), true)
    };
    for name in node_names {
        leaf(
            name,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
    }
    leaf(CLIENT_NAME, vec![ExtendedKeyUsagePurpose::ClientAuth])
}

/// The names `n1..nN` of an `n`-node cluster.
pub fn node_names(n: usize) -> Vec<String> {
    (0..n as NodeId).map(node_name).collect()
}

/// Loads `ca.pem`, `<name>.pem` and `<name>.key` from `dir`.
pub fn load(dir: &Path, name: &str) -> Result<Credentials, CertError> {
    let ca_path = dir.join("ca.pem");
    let ca = load_certs(&ca_path)?
        .into_iter()
        .next()
        .expect("load_certs returns at least one");
    let (pem, key_path) = paths(dir, name);
    let chain = load_certs(&pem)?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| pem_error(&key_path, e))?;
    Ok(Credentials { ca, chain, key })
}

/// Loads the credentials of node `id` (file stem `node_name(id)`).
pub fn load_node(dir: &Path, id: NodeId) -> Result<Credentials, CertError> {
    load(dir, &node_name(id))
}

/// Loads the client credentials (`client.pem`, `client.key`).
pub fn load_client(dir: &Path) -> Result<Credentials, CertError> {
    load(dir, CLIENT_NAME)
}

/// Every certificate in a PEM file; an error if there is none.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = fs::read(path).map_err(|source| CertError::Io {
        path: path.into(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(CertError::Pem {
            path: path.into(),
            reason: "no CERTIFICATE in the file".into(),
        });
    }
    Ok(certs)
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> CertError {
    let reason = match e {
        rustls::pki_types::pem::Error::Io(io) => {
            return CertError::Io {
                path: path.into(),
                source: io,
            };
        }
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the expected kind".into(),
        other => other.to_string(),
    };
    CertError::Pem {
        path: path.into(),
        reason,
    }
}

fn check_names(names: &[String]) -> Result<(), CertError> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        let label_ok = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !label_ok || name == "ca" || name == CLIENT_NAME || !seen.insert(name) {
            return Err(CertError::Name(name.clone()));
        }
    }
    Ok(())
}

fn write(path: &Path, contents: &[u8], secret: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.into(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(io)?;
    #[cfg(unix)]
    if secret {
        // `mode` only applies to a file it creates.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}
