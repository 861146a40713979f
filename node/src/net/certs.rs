//! TLS material of a cluster: one CA, a certificate per node and one for
//! clients. Each node gets a directory of its own holding all it needs and
//! nothing more; the CA's key is written apart, for the operator:
//!
//! | file | what |
//! |---|---|
//! | `OUT/ca.pem` | the cluster CA's certificate (public) |
//! | `OUT/client.pem`, `OUT/client.key` | the client certificate (SAN and CN = `client`, client auth) |
//! | `OUT/n1/ca.pem`, `OUT/n1/n1.pem`, `OUT/n1/n1.key`, ... | node `n1`'s directory: the CA certificate, its certificate (SAN and CN = its name, server and client auth) and its key; what `n1` is given (`--tls OUT/n1`) |
//! | `CA_DIR/ca.pem`, `CA_DIR/ca.key` | the CA and its key (`CA_DIR` defaults to `OUT/ca`); needed only to issue or renew certificates, never by a node |
//!
//! Keys are PKCS#8 ECDSA P-256, written with mode 0600. Node and client
//! certificates are valid for [`CertOptions::days`] (365 by default), the
//! CA for [`CertOptions::ca_days`] (3650). [`renew`] issues fresh node and
//! client certificates from the existing CA, keeping each key, so nodes can
//! be restarted one at a time onto them.

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
use time::{Duration, OffsetDateTime};

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

/// How certificates are issued.
#[derive(Clone, Debug)]
pub struct CertOptions {
    /// Where the CA's certificate and key go (`OUT/ca` when `None`).
    pub ca_dir: Option<PathBuf>,
    /// Validity of node and client certificates, in days.
    pub days: u32,
    /// Validity of a new CA, in days.
    pub ca_days: u32,
}

impl Default for CertOptions {
    fn default() -> Self {
        CertOptions {
            ca_dir: None,
            days: 365,
            ca_days: 3650,
        }
    }
}

impl CertOptions {
    fn ca_dir(&self, out_dir: &Path) -> PathBuf {
        self.ca_dir.clone().unwrap_or_else(|| out_dir.join("ca"))
    }
}

/// Writes a fresh cluster CA, a certificate for every node in `node_names`
/// and a client certificate into `out_dir` (created if missing), laid out
/// as the module says, with the default [`CertOptions`]. Existing files are
/// overwritten.
pub fn generate(out_dir: &Path, node_names: &[String]) -> Result<(), CertError> {
    generate_with(out_dir, node_names, &CertOptions::default())
}

/// [`generate`] with chosen options.
pub fn generate_with(
    out_dir: &Path,
    node_names: &[String],
    options: &CertOptions,
) -> Result<(), CertError> {
    check_names(node_names)?;
    let ca_dir = options.ca_dir(out_dir);
    create_dir(&ca_dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = ca_params();
    ca_params.not_before = OffsetDateTime::now_utc() - CLOCK_SKEW;
    ca_params.not_after = OffsetDateTime::now_utc() + Duration::days(options.ca_days.into());
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let (ca_pem, ca_key_path) = paths(&ca_dir, "ca");
    write(&ca_pem, ca_cert.pem().as_bytes(), false)?;
    write(&ca_key_path, ca_key.serialize_pem().as_bytes(), true)?;
    issue_all(
        out_dir,
        node_names,
        options,
        &ca_cert.pem(),
        &Issuer::new(ca_params, ca_key),
    )
}

/// Issues fresh node and client certificates in `out_dir` from the CA
/// kept in `options.ca_dir` (written by [`generate_with`]), valid for
/// `options.days` from now. A node or client that already has a key keeps
/// it; the CA certificate is unchanged, so renewed and old certificates
/// are trusted alike and nodes can move over one at a time.
pub fn renew(
    out_dir: &Path,
    node_names: &[String],
    options: &CertOptions,
) -> Result<(), CertError> {
    check_names(node_names)?;
    let (ca_pem, ca_key_path) = paths(&options.ca_dir(out_dir), "ca");
    let ca_cert = read_text(&ca_pem)?;
    let ca_key = KeyPair::from_pem(&read_text(&ca_key_path)?).map_err(|e| CertError::Pem {
        path: ca_key_path.clone(),
        reason: e.to_string(),
    })?;
    // The issuer is named by its distinguished name and identified by its
    // key: both as when the CA was made.
    let issuer = Issuer::new(ca_params(), ca_key);
    issue_all(out_dir, node_names, options, &ca_cert, &issuer)
}

/// Leeway for clocks behind the issuer's.
const CLOCK_SKEW: Duration = Duration::hours(1);

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "gpaxos cluster CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Writes the public CA certificate, every node's directory and the client
/// credentials.
fn issue_all(
    out_dir: &Path,
    node_names: &[String],
    options: &CertOptions,
    ca_pem: &str,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(), CertError> {
    create_dir(out_dir)?;
    write(&out_dir.join("ca.pem"), ca_pem.as_bytes(), false)?;
    let both = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    for name in node_names {
        let dir = out_dir.join(name);
        create_dir(&dir)?;
        write(&dir.join("ca.pem"), ca_pem.as_bytes(), false)?;
        leaf(&dir, name, both.clone(), options.days, issuer)?;
    }
    let client = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf(out_dir, CLIENT_NAME, client, options.days, issuer)
}

/// Writes `dir/name.pem`, signed by `issuer`, for the key in
/// `dir/name.key` (made if missing), valid for `days` from now.
fn leaf(
    dir: &Path,
    name: &str,
    ekus: Vec<ExtendedKeyUsagePurpose>,
    days: u32,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(), CertError> {
    let (pem, key_path) = paths(dir, name);
    let key = match fs::read_to_string(&key_path) {
        Ok(text) => KeyPair::from_pem(&text).map_err(|e| CertError::Pem {
            path: key_path.clone(),
            reason: e.to_string(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = KeyPair::generate()?;
            write(&key_path, key.serialize_pem().as_bytes(), true)?;
            key
        }
        Err(source) => {
            return Err(CertError::Io {
                path: key_path,
                source,
            })
        }
    };
    let mut params = CertificateParams::new(vec![name.to_string()])?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = ekus;
    params.use_authority_key_identifier_extension = true;
    params.not_before = OffsetDateTime::now_utc() - CLOCK_SKEW;
    params.not_after = OffsetDateTime::now_utc() + Duration::days(days.into());
    let cert = params.signed_by(&key, issuer)?;
    write(&pem, cert.pem().as_bytes(), false)
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.into(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.into(),
        source,
    })
}

/// The names `n1..nN` of an `n`-node cluster.
pub fn node_names(n: usize) -> Vec<String> {
    (0..n as NodeId).map(node_name).collect()
}

/// Loads `ca.pem`, `<name>.pem` and `<name>.key` from `dir`, or from
/// `dir/<name>` when that holds them (a whole output of `certs`, of which a
/// node reads only its own directory).
pub fn load(dir: &Path, name: &str) -> Result<Credentials, CertError> {
    let own = dir.join(name);
    let dir = if paths(&own, name).0.is_file() {
        own.as_path()
    } else {
        dir
    };
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
