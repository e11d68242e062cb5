//! The `tls-server-end-point` channel binding (RFC 5929 §4.1): the hash of
//! the server's certificate, with the hash function of the certificate's
//! signature algorithm (SHA-256 when that is MD5 or SHA-1).
//!
//! GnuTLS 3.7.2 and later compute it too (`gnutls_session_channel_binding`
//! with `GNUTLS_CB_TLS_SERVER_END_POINT`); this works from the 3.6.14
//! minimum, and refuses EdDSA signatures, whose hash RFC 5929 leaves
//! undefined (GnuTLS would use SHA-512 for Ed25519).

use gnutls_sys as sys;

use super::error::check;
use super::x509::{Encoding, X509Crt};

/// Why a certificate has no `tls-server-end-point` binding.
pub(crate) type NoEndPoint = &'static str;

/// The `tls-server-end-point` binding of the certificate `der`.
pub(crate) fn server_end_point(der: &[u8]) -> Result<Vec<u8>, NoEndPoint> {
    let crt = X509Crt::import(der, Encoding::Der)
        .map_err(|_| "the server's certificate cannot be parsed")?;
    let digest = end_point_digest(&crt)?;
    // SAFETY: any digest number is accepted; 0 for unknown ones.
    let size = unsafe { sys::gnutls_hash_get_len(digest) } as usize;
    if size == 0 {
        return Err("the server certificate's signature hash cannot be computed");
    }
    let mut out = vec![0u8; size];
    // SAFETY: `der` is readable for its length and `out` holds the digest's
    // full output size.
    check(unsafe {
        sys::gnutls_hash_fast(
            digest,
            der.as_ptr().cast(),
            der.len(),
            out.as_mut_ptr().cast(),
        )
    })
    .map_err(|_| "the server certificate's signature hash cannot be computed")?;
    Ok(out)
}

/// The hash RFC 5929 §4.1 names for `crt`: its signature's, SHA-256 for
/// MD5 and SHA-1, none for signatures without one single hash function.
fn end_point_digest(crt: &X509Crt) -> Result<sys::gnutls_digest_algorithm_t, NoEndPoint> {
    // SAFETY: the certificate is live.
    let sign = unsafe { sys::gnutls_x509_crt_get_signature_algorithm(crt.as_raw()) };
    let sign = sys::gnutls_sign_algorithm_t::try_from(sign)
        .ok()
        .filter(|&s| s != sys::GNUTLS_SIGN_UNKNOWN)
        .ok_or("the server certificate's signature algorithm is unknown")?;
    // SAFETY: pure lookups on any signature algorithm number.
    let (pk, digest) = unsafe {
        (
            sys::gnutls_sign_get_pk_algorithm(sign),
            sys::gnutls_sign_get_hash_algorithm(sign),
        )
    };
    if pk == sys::GNUTLS_PK_EDDSA_ED25519 || pk == sys::GNUTLS_PK_EDDSA_ED448 {
        return Err("the server certificate's signature (EdDSA) has no hash of its own: RFC 5929 leaves tls-server-end-point undefined");
    }
    match digest {
        sys::GNUTLS_DIG_MD5 | sys::GNUTLS_DIG_SHA1 => Ok(sys::GNUTLS_DIG_SHA256),
        sys::GNUTLS_DIG_UNKNOWN | sys::GNUTLS_DIG_NULL | sys::GNUTLS_DIG_MD5_SHA1 => {
            Err("the server certificate's signature uses no single hash function")
        }
        _ => Ok(digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_der(name: &str) -> Vec<u8> {
        let path = format!("{}/ca/{name}", env!("CARGO_MANIFEST_DIR"));
        let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        X509Crt::import(&pem, Encoding::Pem)
            .and_then(|c| c.export(Encoding::Der))
            .unwrap()
    }

    #[test]
    fn a_sha256_signature_gives_the_sha256_of_the_certificate() {
        let der = leaf_der("server-leaf.pem");
        let crt = X509Crt::import(&der, Encoding::Der).unwrap();
        assert_eq!(server_end_point(&der).unwrap(), crt.fingerprint(true));
    }

    /// RFC 5929 §4.1: MD5 and SHA-1 are replaced by SHA-256.
    #[test]
    fn a_sha1_signature_gives_the_sha256_of_the_certificate() {
        let der = leaf_der("broken/sha1.pem");
        let crt = X509Crt::import(&der, Encoding::Der).unwrap();
        assert_eq!(crt.signature_algorithm(), "ECDSA-SHA1");
        let binding = server_end_point(&der).unwrap();
        assert_eq!(binding, crt.fingerprint(true));
        assert_ne!(binding, crt.fingerprint(false));
    }

    #[test]
    fn garbage_is_refused_without_a_panic() {
        assert!(server_end_point(b"not a certificate").is_err());
        assert!(server_end_point(&[]).is_err());
    }
}
