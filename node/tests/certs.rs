//! Key material: every node gets only its own key, its certificate and the
//! CA certificate; the CA's key is written apart; certificates expire (a
//! year by default) and are renewed from the same CA, keeping the keys.

use gpaxos_node::net::certs::{self, CertOptions, Credentials};
use gpaxos_node::net::tls;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::RootCertStore;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const DAY: u64 = 86_400;

fn names(n: usize) -> Vec<String> {
    certs::node_names(n)
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap();
                out.insert(rel.display().to_string());
            }
        }
    }
    out
}

/// `days` from now, as rustls counts time.
fn in_days(days: u64) -> UnixTime {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    UnixTime::since_unix_epoch(now + Duration::from_secs(days * DAY))
}

fn roots(creds: &Credentials) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(creds.ca.clone()).unwrap();
    Arc::new(roots)
}

/// Whether a peer would accept `name`'s certificate as a server `days`
/// from now.
fn server_valid_in(creds: &Credentials, name: &str, days: u64) -> bool {
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots(creds), tls::provider())
            .build()
            .unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    verifier
        .verify_server_cert(
            &creds.chain[0],
            &creds.chain[1..],
            &name,
            &[],
            in_days(days),
        )
        .is_ok()
}

/// Whether a node would accept `creds` as a client `days` from now.
fn client_valid_in(creds: &Credentials, days: u64) -> bool {
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots(creds), tls::provider())
            .build()
            .unwrap();
    verifier
        .verify_client_cert(&creds.chain[0], &creds.chain[1..], in_days(days))
        .is_ok()
}

#[test]
fn each_node_directory_holds_only_its_own_key_and_the_ca_key_is_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, ca_dir) = (tmp.path().join("tls"), tmp.path().join("ca-offline"));
    let options = CertOptions {
        ca_dir: Some(ca_dir.clone()),
        ..CertOptions::default()
    };
    certs::generate_with(&out, &names(3), &options).unwrap();
    let expected: BTreeSet<String> = [
        "ca.pem",
        "client.key",
        "client.pem",
        "n1/ca.pem",
        "n1/n1.key",
        "n1/n1.pem",
        "n2/ca.pem",
        "n2/n2.key",
        "n2/n2.pem",
        "n3/ca.pem",
        "n3/n3.key",
        "n3/n3.pem",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(files(&out), expected);
    assert_eq!(
        files(&ca_dir),
        ["ca.key", "ca.pem"].into_iter().map(String::from).collect()
    );
    let ca_key = std::fs::read_to_string(ca_dir.join("ca.key")).unwrap();
    for f in files(&out) {
        let text = std::fs::read_to_string(out.join(&f)).unwrap();
        assert!(!text.contains(ca_key.trim()), "{f} holds the CA key");
    }
    // A node loads from its own directory alone, or from the whole output.
    for (id, name) in names(3).iter().enumerate() {
        let own = certs::load(&out.join(name), name).unwrap();
        let whole = certs::load_node(&out, id as u32).unwrap();
        assert_eq!(own.chain, whole.chain);
        assert!(server_valid_in(&own, name, 0));
    }
    // By default the CA goes to OUT/ca, a directory no node is given.
    let out2 = tmp.path().join("tls2");
    certs::generate(&out2, &names(1)).unwrap();
    assert!(out2.join("ca/ca.key").is_file());
    assert!(!files(&out2.join("n1")).iter().any(|f| f.contains("ca.key")));
}

#[test]
fn certificates_expire_after_a_year_by_default_and_as_configured() {
    let tmp = tempfile::tempdir().unwrap();
    certs::generate(tmp.path(), &names(2)).unwrap();
    let n1 = certs::load_node(tmp.path(), 0).unwrap();
    let client = certs::load_client(tmp.path()).unwrap();
    assert!(server_valid_in(&n1, "n1", 0));
    assert!(server_valid_in(&n1, "n1", 364));
    assert!(!server_valid_in(&n1, "n1", 366), "valid beyond a year");
    assert!(client_valid_in(&client, 364));
    assert!(!client_valid_in(&client, 366), "valid beyond a year");

    let short = tmp.path().join("short");
    let options = CertOptions {
        days: 30,
        ..CertOptions::default()
    };
    certs::generate_with(&short, &names(1), &options).unwrap();
    let n1 = certs::load_node(&short, 0).unwrap();
    assert!(server_valid_in(&n1, "n1", 29));
    assert!(!server_valid_in(&n1, "n1", 31));
}

#[test]
fn renewal_keeps_the_ca_and_the_keys_and_extends_validity() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let short = CertOptions {
        days: 2,
        ..CertOptions::default()
    };
    certs::generate_with(out, &names(2), &short).unwrap();
    let before = certs::load_node(out, 1).unwrap();
    let ca_before = std::fs::read(out.join("ca.pem")).unwrap();
    assert!(!server_valid_in(&before, "n2", 3));

    certs::renew(out, &names(2), &CertOptions::default()).unwrap();
    let after = certs::load_node(out, 1).unwrap();
    assert_eq!(std::fs::read(out.join("ca.pem")).unwrap(), ca_before);
    assert_eq!(std::fs::read(out.join("n2/ca.pem")).unwrap(), ca_before);
    assert_eq!(after.key.secret_der(), before.key.secret_der(), "key kept");
    assert_ne!(after.chain, before.chain, "a new certificate");
    // Trusted under the unchanged CA, by peers still holding the old files.
    assert!(server_valid_in(&after, "n2", 300));
    assert!(server_valid_in(&before_roots(&before, &after), "n2", 300));
    assert!(client_valid_in(&certs::load_client(out).unwrap(), 300));

    let missing = tmp.path().join("nowhere");
    let options = CertOptions {
        ca_dir: Some(missing),
        ..CertOptions::default()
    };
    let err = certs::renew(out, &names(2), &options).unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
}

/// `after`'s chain and key checked against `before`'s CA.
fn before_roots(before: &Credentials, after: &Credentials) -> Credentials {
    Credentials {
        ca: before.ca.clone(),
        chain: after.chain.clone(),
        key: after.key.clone_key(),
    }
}
