//! Certificate, key and configuration loaders on arbitrary bytes, and every
//! accessor of whatever certificate parses.
//!
//! Input: `HOST:u8 SPLIT:u16be DATA`. The one-argument loaders get all of
//! `DATA`, also wrapped in PEM armour (so DER mutations reach the PEM
//! paths too); `add_local_certificate_pem` gets `DATA` split at `SPLIT`
//! (modulo its length + 1) as chain and key. `HOST` picks the name given to
//! `matches_host` and `verify_chain`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslsocket::{Certificate, DigestAlgorithm, PrivateKey, SslConfiguration, SubjectInfo};
use sslsocket_fuzz::{pem, Input};

const HOSTS: [&str; 6] = [
    "localhost",
    "127.0.0.1",
    "::1",
    "other.localhost",
    "xn--nxasmq6b.example",
    "",
];

const ATTRIBUTES: [SubjectInfo; 6] = [
    SubjectInfo::CommonName,
    SubjectInfo::Organization,
    SubjectInfo::OrganizationalUnitName,
    SubjectInfo::CountryName,
    SubjectInfo::LocalityName,
    SubjectInfo::StateOrProvinceName,
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let host = HOSTS[usize::from(input.byte().unwrap_or(0)) % HOSTS.len()];
    let split = usize::from(input.u16());
    let data = input.rest();
    let (chain, key) = data.split_at(split % (data.len() + 1));
    let armoured = pem("CERTIFICATE", data);

    let mut certificates = Vec::new();
    for pem_data in [data, &armoured[..]] {
        if let Ok(chain) = Certificate::from_pem_chain(pem_data) {
            assert!(!chain.is_empty(), "from_pem_chain returned no certificate");
            certificates.extend(chain);
        }
    }
    if let Ok(certificate) = Certificate::from_der(data) {
        certificates.push(certificate);
    }
    for certificate in &certificates {
        exercise(certificate, &certificates, host);
    }

    for passphrase in [None, Some("sslsocket-test")] {
        if let Ok(key) = PrivateKey::from_bytes(data, passphrase) {
            let _ = (key.algorithm(), key.bits(), format!("{key:?}"));
        }
    }

    let ca = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_data(data)
        .build();
    if let Ok(config) = ca {
        for certificate in config.ca_certificates() {
            exercise(certificate, &certificates, host);
        }
        let _ = config.verify_chain(&certificates, Some(host));
        let _ = config.verify_chain(&certificates, None);
    }

    let local = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_pem(chain, key, None)
        .build();
    if let Ok(config) = local {
        for chain in config.local_certificate_chains() {
            for certificate in chain {
                exercise(certificate, chain, host);
            }
        }
        let _ = config.local_certificate().map(Certificate::to_der);
    }
});

/// Calls every accessor of `certificate`.
fn exercise(certificate: &Certificate, others: &[Certificate], host: &str) {
    let der = certificate.to_der();
    assert!(!der.is_empty(), "a certificate with empty DER");
    let pem = certificate.to_pem();
    if !pem.is_empty() {
        let again = Certificate::from_pem_chain(pem.as_bytes());
        assert!(again.is_ok(), "to_pem output does not parse: {again:?}");
    }
    let _ = (certificate.subject_dn(), certificate.issuer_dn());
    for attribute in ATTRIBUTES {
        let _ = certificate.subject_info(attribute);
        let _ = certificate.issuer_info(attribute);
    }
    let _ = certificate.subject_common_name();
    let _ = certificate.subject_alternative_names();
    let _ = (certificate.effective_date(), certificate.expiry_date());
    let _ = (certificate.serial_number(), certificate.version());
    let _ = certificate.digest(DigestAlgorithm::Sha256);
    let _ = certificate.digest(DigestAlgorithm::Sha1);
    let _ = (
        certificate.public_key_algorithm(),
        certificate.public_key_bits(),
    );
    let _ = certificate.signature_algorithm();
    let _ = certificate.is_self_signed();
    for other in others {
        let _ = (
            certificate.is_issued_by(other),
            other.is_issued_by(certificate),
        );
    }
    let _ = certificate.matches_host(host);
    let _ = format!("{certificate:?}");
    let _ = certificate == &certificate.clone();
}
