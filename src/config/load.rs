//! Reading trust anchors, revocation lists and local key pairs into GnuTLS
//! credentials, with an error that names the file and the problem.
//!
//! Key material (key bytes, passphrases, PKCS#12 bundles and their
//! passwords), whether read from a file or given in memory, is held in
//! `Zeroizing` buffers: wiped when dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::certificate::{
    contains, invalid, looks_like_pem, read_file, read_secret_file, Certificate,
};
use crate::error::{Error, Result};
use crate::gnutls::{code, CertificateCredentials, Encoding, GnutlsError};
use crate::pkcs11::{load_token_identity, TokenLogin};
use crate::private_key::PrivateKey;

/// Where trust anchors come from.
pub(super) enum CaSource {
    File(PathBuf),
    Dir(PathBuf),
    Data(Vec<u8>),
    Certificates(Vec<Certificate>),
}

/// A passphrase or password, wiped when dropped.
pub(super) type Secret = Zeroizing<String>;

/// Where a local certificate chain and its key come from.
pub(super) enum KeySource {
    Files {
        chain: PathBuf,
        key: PathBuf,
        passphrase: Option<Secret>,
    },
    Pem {
        chain: Vec<u8>,
        key: Zeroizing<Vec<u8>>,
        passphrase: Option<Secret>,
    },
    Loaded {
        chain: Vec<Certificate>,
        key: PrivateKey,
    },
    Pkcs12 {
        path: PathBuf,
        password: Secret,
    },
    /// A chain in a file and its key on a PKCS#11 token (the URL may hold
    /// a PIN: `pin-value`).
    Token {
        chain: PathBuf,
        key_url: Secret,
        pin: Option<Secret>,
    },
}

/// A local key pair and the OCSP response to staple for it.
pub(super) struct LocalIdentity {
    pub(super) source: KeySource,
    pub(super) ocsp_response: Option<PathBuf>,
}

/// What loading CA sources found: the certificates (for introspection and
/// out-of-handshake verification) and the CRLs, as PEM.
#[derive(Default)]
pub(super) struct LoadedAnchors {
    pub(super) certificates: Vec<Certificate>,
    pub(super) crls_pem: Vec<u8>,
}

/// Loads one CA source into the credentials.
pub(super) fn load_ca(
    credentials: &mut CertificateCredentials,
    source: &CaSource,
    found: &mut LoadedAnchors,
) -> Result<()> {
    match source {
        CaSource::File(path) => load_ca_data(
            credentials,
            &read_file(path)?,
            &path.display().to_string(),
            found,
        ),
        CaSource::Data(data) => load_ca_data(credentials, data, "CA data", found),
        CaSource::Certificates(certs) => {
            for cert in certs {
                credentials
                    .add_trust(cert.to_der(), Encoding::Der)
                    .map_err(|e| invalid("CA certificate", e.to_string()))?;
            }
            found.certificates.extend_from_slice(certs);
            Ok(())
        }
        CaSource::Dir(dir) => load_ca_dir(credentials, dir, found),
    }
}

fn load_ca_data(
    credentials: &mut CertificateCredentials,
    data: &[u8],
    origin: &str,
    found: &mut LoadedAnchors,
) -> Result<()> {
    if !looks_like_pem(data) {
        let certs = Certificate::from_bytes_named(data, origin)?;
        credentials
            .add_trust(data, Encoding::Der)
            .map_err(|e| invalid(origin, e.to_string()))?;
        found.certificates.extend(certs);
        return Ok(());
    }
    let has_crl = contains(data, b"-----BEGIN X509 CRL-----");
    let has_cert = contains(data, b"-----BEGIN CERTIFICATE-----");
    if !has_crl && !has_cert {
        return Err(invalid(origin, "no PEM certificate or CRL found".into()));
    }
    if has_cert {
        let certs = Certificate::from_bytes_named(data, origin)?;
        credentials
            .add_trust(data, Encoding::Pem)
            .map_err(|e| invalid(origin, e.to_string()))?;
        found.certificates.extend(certs);
    }
    if has_crl {
        let n = credentials
            .add_crls(data, Encoding::Pem)
            .map_err(|e| invalid(origin, format!("cannot load the CRL: {e}")))?;
        log::debug!("{origin}: loaded {n} CRLs");
        found.crls_pem.extend_from_slice(data);
    }
    Ok(())
}

fn load_ca_dir(
    credentials: &mut CertificateCredentials,
    dir: &Path,
    found: &mut LoadedAnchors,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::File {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_certificate_file_name(p))
        .collect();
    paths.sort();
    for path in paths {
        let origin = path.display().to_string();
        if let Err(e) = load_ca_data(credentials, &read_file(&path)?, &origin, found) {
            log::debug!("skipping {origin}: {e}");
        }
    }
    Ok(())
}

fn is_certificate_file_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ["pem", "crt", "cer", "der"].contains(&extension) {
        return true;
    }
    // OpenSSL's c_rehash names: eight hex digits, a dot, a number.
    name.len() >= 10
        && name[..8].bytes().all(|b| b.is_ascii_hexdigit())
        && name.as_bytes()[8] == b'.'
        && name[9..].bytes().all(|b| b.is_ascii_digit())
}

/// Loads a local key pair (and its OCSP staple) into the credentials;
/// returns its certificate chain, leaf first. A key on a token adds its
/// login state to `tokens`.
pub(super) fn load_identity(
    credentials: &mut CertificateCredentials,
    identity: &LocalIdentity,
    tokens: &mut Vec<Arc<TokenLogin>>,
) -> Result<Vec<Certificate>> {
    let (index, chain, origin) = load_key_pair(credentials, &identity.source, tokens)?;
    if let Some(path) = &identity.ocsp_response {
        let response = read_file(path)?;
        credentials
            .set_ocsp_response(&response, index)
            .map_err(|e| {
                invalid(
                    &path.display().to_string(),
                    format!("cannot staple this OCSP response for {origin}: {e}"),
                )
            })?;
    }
    Ok(chain)
}

fn load_key_pair(
    credentials: &mut CertificateCredentials,
    source: &KeySource,
    tokens: &mut Vec<Arc<TokenLogin>>,
) -> Result<(u32, Vec<Certificate>, String)> {
    let (chain, key, origin) = match source {
        KeySource::Pkcs12 { path, password } => return load_pkcs12(credentials, path, password),
        KeySource::Token {
            chain,
            key_url,
            pin,
        } => {
            let pin = pin.as_deref().map(String::as_str);
            let (index, certificates, login) =
                load_token_identity(credentials, chain, key_url, pin)?;
            tokens.push(login);
            return Ok((index, certificates, chain.display().to_string()));
        }
        KeySource::Files {
            chain,
            key,
            passphrase,
        } => (
            Certificate::from_file(chain)?,
            PrivateKey::from_file(key, passphrase.as_deref().map(String::as_str))?,
            chain.display().to_string(),
        ),
        KeySource::Pem {
            chain,
            key,
            passphrase,
        } => (
            Certificate::from_bytes_named(chain, "local certificate data")?,
            PrivateKey::from_bytes(key, passphrase.as_deref().map(String::as_str))?,
            "local certificate data".to_owned(),
        ),
        KeySource::Loaded { chain, key } => {
            (chain.clone(), key.clone(), "local certificate".to_owned())
        }
    };
    if chain.is_empty() {
        return Err(invalid(&origin, "the certificate chain is empty".into()));
    }
    let parsed: Vec<_> = chain.iter().filter_map(Certificate::parsed).collect();
    let index = credentials.add_key_pair(&parsed, key.raw()).map_err(|e| {
        invalid(
            &origin,
            format!("cannot use this certificate with this key: {e}"),
        )
    })?;
    Ok((index, chain, origin))
}

fn load_pkcs12(
    credentials: &mut CertificateCredentials,
    path: &Path,
    password: &str,
) -> Result<(u32, Vec<Certificate>, String)> {
    let origin = path.display().to_string();
    let data = read_secret_file(path)?;
    let encoding = if looks_like_pem(&data) {
        Encoding::Pem
    } else {
        Encoding::Der
    };
    let index = credentials
        .add_pkcs12(&data, encoding, password)
        .map_err(|e| invalid(&origin, pkcs12_error(e)))?;
    let chain = credentials
        .chain(index)
        .map_err(|e| invalid(&origin, e.to_string()))?
        .iter()
        .map(|crt| Certificate::from_crt(crt, &origin))
        .collect::<Result<Vec<_>>>()?;
    Ok((index, chain, origin))
}

/// What a failed PKCS#12 import says: a bundle's integrity check (its MAC)
/// fails when the password is not the one it was made with.
fn pkcs12_error(e: GnutlsError) -> String {
    match e.code() {
        code::MAC_VERIFY_FAILED => {
            "cannot open the PKCS#12 bundle: wrong password (its integrity check failed)".into()
        }
        _ => format!("cannot load the PKCS#12 bundle: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SslConfiguration;

    /// Key material given to the builder is held in wiping buffers: the
    /// type annotations are the check.
    #[test]
    fn key_material_is_held_in_wiping_buffers() {
        let builder = SslConfiguration::builder()
            .add_local_certificate_files("chain.pem", "key.pem", Some("file passphrase"))
            .add_local_certificate_pem(b"chain".to_vec(), b"key".to_vec(), Some("pem passphrase"))
            .add_local_certificate_pkcs12("bundle.p12", "password");
        let sources: Vec<&KeySource> = builder.identities.iter().map(|i| &i.source).collect();
        let KeySource::Files { passphrase, .. } = sources[0] else {
            panic!("not Files");
        };
        let passphrase: &Option<Zeroizing<String>> = passphrase;
        assert_eq!(
            passphrase.as_deref().map(String::as_str),
            Some("file passphrase")
        );
        let KeySource::Pem {
            key, passphrase, ..
        } = sources[1]
        else {
            panic!("not Pem");
        };
        let (key, passphrase): (&Zeroizing<Vec<u8>>, &Option<Zeroizing<String>>) =
            (key, passphrase);
        assert_eq!(key.as_slice(), b"key");
        assert_eq!(
            passphrase.as_deref().map(String::as_str),
            Some("pem passphrase")
        );
        let KeySource::Pkcs12 { password, .. } = sources[2] else {
            panic!("not Pkcs12");
        };
        let password: &Zeroizing<String> = password;
        assert_eq!(password.as_str(), "password");
    }

    #[test]
    fn key_files_are_read_into_wiping_buffers() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ca/server.key");
        let data: Zeroizing<Vec<u8>> = read_secret_file(&path).unwrap();
        assert!(looks_like_pem(&data));
    }
}
