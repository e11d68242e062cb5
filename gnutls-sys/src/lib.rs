//! Raw declarations of the system's GnuTLS: the functions, types and
//! constants of `gnutls/gnutls.h`, `x509.h`, `x509-ext.h`, `abstract.h`,
//! `pkcs12.h`, `ocsp.h`, `crypto.h` and `dtls.h`, as bindgen writes them.
//!
//! This crate holds declarations only. Everything here is `unsafe` to call
//! and follows GnuTLS's C contract; the safe layer lives in the `sslsocket`
//! crate (`src/gnutls/`). The bindings are committed in `src/bindings.rs`
//! and regenerated from the installed headers with the `bindgen` feature.
//!
//! The build script checks the installed version with pkg-config and
//! exports it to dependents as `DEP_GNUTLS_VERSION`.

#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]
#![allow(clippy::all)]
#![allow(missing_docs, rustdoc::all)]

include!("bindings.rs");
