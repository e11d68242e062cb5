//! Reads the GnuTLS version that `gnutls-sys` found (`DEP_GNUTLS_VERSION`)
//! and sets `cfg` flags for calls that need a newer GnuTLS than the minimum
//! `gnutls-sys` accepts.

/// `(cfg flag, first GnuTLS version that has the call)`.
const NEWER_CALLS: &[(&str, (u32, u32, u32))] = &[
    // gnutls_ciphersuite_get: the IANA name of the negotiated suite.
    ("gnutls_ciphersuite_get", (3, 7, 4)),
];

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_GNUTLS_VERSION");
    let version = std::env::var("DEP_GNUTLS_VERSION").unwrap_or_default();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    for &(flag, needed) in NEWER_CALLS {
        println!("cargo:rustc-check-cfg=cfg({flag})");
        if found >= needed {
            println!("cargo:rustc-cfg={flag}");
        }
    }
}
