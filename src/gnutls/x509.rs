//! [`X509Crt`]: an owned `gnutls_x509_crt_t` and the questions we ask of it.
//!
//! This file parses and describes certificates; it does not decide whether
//! one is trusted (that is `credentials.rs` and the engine's verification).

use std::ffi::{c_uint, CStr};
use std::net::IpAddr;
use std::ptr::{self, NonNull};

use gnutls_sys as sys;

use super::datum::{borrowed, with_sized_buffer, OwnedDatum};
use super::error::{check, static_str, GnutlsError};

/// Encoding of certificate and key data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Pem,
    Der,
}

impl Encoding {
    pub(crate) fn raw(self) -> sys::gnutls_x509_crt_fmt_t {
        match self {
            Encoding::Pem => sys::GNUTLS_X509_FMT_PEM,
            Encoding::Der => sys::GNUTLS_X509_FMT_DER,
        }
    }
}

/// A subject alternative name entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AltName {
    Dns(String),
    Ip(IpAddr),
    Email(String),
    Uri(String),
}

/// An owned, parsed X.509 certificate (`gnutls_x509_crt_t`).
pub(crate) struct X509Crt {
    raw: NonNull<sys::gnutls_x509_crt_int>,
}

impl X509Crt {
    fn init() -> Result<Self, GnutlsError> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success GnuTLS stores a new
        // certificate object that we own and free in Drop.
        check(unsafe { sys::gnutls_x509_crt_init(&mut raw) })?;
        let raw = NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?;
        Ok(Self { raw })
    }

    /// Parses one certificate (the first, for PEM input).
    pub(crate) fn import(data: &[u8], encoding: Encoding) -> Result<Self, GnutlsError> {
        let crt = Self::init()?;
        let datum = borrowed(data)?;
        // SAFETY: `crt.raw` is a live certificate object and `datum` borrows
        // `data`, which outlives the call; GnuTLS copies what it keeps.
        check(unsafe { sys::gnutls_x509_crt_import(crt.raw.as_ptr(), &datum, encoding.raw()) })?;
        Ok(crt)
    }

    /// Parses every certificate in `data` (a PEM bundle, or one DER blob).
    pub(crate) fn import_list(data: &[u8], encoding: Encoding) -> Result<Vec<Self>, GnutlsError> {
        if encoding == Encoding::Der {
            return Ok(vec![Self::import(data, encoding)?]);
        }
        let datum = borrowed(data)?;
        let mut list: *mut sys::gnutls_x509_crt_t = ptr::null_mut();
        let mut size: c_uint = 0;
        // SAFETY: out-pointers are valid; `datum` borrows `data` for the call.
        // On success GnuTLS returns an array of `size` certificates that we
        // take ownership of (each freed by X509Crt's Drop) and an array we
        // free with gnutls_free below.
        check(unsafe {
            sys::gnutls_x509_crt_list_import2(&mut list, &mut size, &datum, encoding.raw(), 0)
        })?;
        // SAFETY: on success GnuTLS returned `size` certificates we own.
        Ok(unsafe { Self::take_array(list, size) })
    }

    /// Takes ownership of an array of `size` certificates allocated by
    /// GnuTLS, and frees the array itself.
    ///
    /// # Safety
    /// `list` must hold `size` certificate handles that nothing else owns,
    /// in an array allocated with `gnutls_malloc` (or be NULL).
    pub(crate) unsafe fn take_array(list: *mut sys::gnutls_x509_crt_t, size: c_uint) -> Vec<Self> {
        if list.is_null() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(size as usize);
        for i in 0..size as usize {
            // SAFETY: the caller guarantees `size` valid handles.
            if let Some(raw) = NonNull::new(unsafe { *list.add(i) }) {
                out.push(Self { raw });
            }
        }
        // SAFETY: the elements are now owned by `out`; only the array is
        // freed, with the allocator GnuTLS used.
        unsafe {
            if let Some(free) = sys::gnutls_free {
                free(list.cast());
            }
        }
        out
    }

    /// The raw handle, for calls that read it.
    pub(crate) fn as_raw(&self) -> sys::gnutls_x509_crt_t {
        self.raw.as_ptr()
    }

    /// Serialises the certificate.
    pub(crate) fn export(&self, encoding: Encoding) -> Result<Vec<u8>, GnutlsError> {
        // SAFETY: the certificate is live while `self` is.
        unsafe { export_raw(self.as_raw(), encoding) }
    }

    /// The subject distinguished name in RFC 4514 form.
    pub(crate) fn subject_dn(&self) -> String {
        let mut out = OwnedDatum::empty();
        // SAFETY: the certificate is live; `out` receives a GnuTLS allocation.
        let rc = unsafe { sys::gnutls_x509_crt_get_dn3(self.as_raw(), out.as_mut_ptr(), 0) };
        if rc < 0 {
            String::new()
        } else {
            out.to_string_lossy()
        }
    }

    /// The issuer distinguished name in RFC 4514 form.
    pub(crate) fn issuer_dn(&self) -> String {
        let mut out = OwnedDatum::empty();
        // SAFETY: the certificate is live; `out` receives a GnuTLS allocation.
        let rc = unsafe { sys::gnutls_x509_crt_get_issuer_dn3(self.as_raw(), out.as_mut_ptr(), 0) };
        if rc < 0 {
            String::new()
        } else {
            out.to_string_lossy()
        }
    }

    /// Every value of the attribute `oid` (a NUL-terminated OID string) in the
    /// subject (or the issuer), as the certificate holds it: GnuTLS's RFC 4514
    /// escapes are taken out (they belong in a whole DN, not in a value).
    pub(crate) fn dn_attribute(&self, oid: &CStr, issuer: bool) -> Vec<String> {
        let mut values = Vec::new();
        for index in 0.. {
            let value = with_sized_buffer(|buf, size| {
                // SAFETY: the certificate is live, `oid` is NUL-terminated and
                // `buf`/`size` describe a writable buffer of `*size` bytes.
                unsafe {
                    if issuer {
                        sys::gnutls_x509_crt_get_issuer_dn_by_oid(
                            self.as_raw(),
                            oid.as_ptr(),
                            index,
                            0,
                            buf,
                            size,
                        )
                    } else {
                        sys::gnutls_x509_crt_get_dn_by_oid(
                            self.as_raw(),
                            oid.as_ptr(),
                            index,
                            0,
                            buf,
                            size,
                        )
                    }
                }
            });
            match value {
                Ok(bytes) => values.push(unescape_dn_value(&c_text(&bytes))),
                Err(_) => break,
            }
        }
        values
    }

    /// The subject alternative names GnuTLS understands (DNS, IP, e-mail, URI).
    pub(crate) fn alt_names(&self) -> Vec<AltName> {
        let mut names = Vec::new();
        for seq in 0.. {
            let mut kind = 0;
            let value = with_sized_buffer(|buf, size| {
                // SAFETY: the certificate is live and `buf`/`size` describe a
                // writable buffer; `critical` may be NULL.
                kind = unsafe {
                    sys::gnutls_x509_crt_get_subject_alt_name(
                        self.as_raw(),
                        seq,
                        buf,
                        size,
                        ptr::null_mut(),
                    )
                };
                kind.min(0)
            });
            let Ok(bytes) = value else { break };
            let name = match kind as sys::gnutls_x509_subject_alt_name_t {
                sys::GNUTLS_SAN_DNSNAME => AltName::Dns(c_text(&bytes)),
                sys::GNUTLS_SAN_RFC822NAME => AltName::Email(c_text(&bytes)),
                sys::GNUTLS_SAN_URI => AltName::Uri(c_text(&bytes)),
                sys::GNUTLS_SAN_IPADDRESS => match ip_from_bytes(&bytes) {
                    Some(ip) => AltName::Ip(ip),
                    None => continue,
                },
                _ => continue,
            };
            names.push(name);
        }
        names
    }

    /// Start of validity, seconds since the Unix epoch.
    pub(crate) fn activation_time(&self) -> i64 {
        // SAFETY: the certificate is live.
        unsafe { sys::gnutls_x509_crt_get_activation_time(self.as_raw()) }
    }

    /// End of validity, seconds since the Unix epoch.
    pub(crate) fn expiration_time(&self) -> i64 {
        // SAFETY: the certificate is live.
        unsafe { sys::gnutls_x509_crt_get_expiration_time(self.as_raw()) }
    }

    /// The serial number, big-endian bytes.
    pub(crate) fn serial(&self) -> Vec<u8> {
        with_sized_buffer(|buf, size| {
            // SAFETY: the certificate is live and `buf`/`size` are writable.
            unsafe { sys::gnutls_x509_crt_get_serial(self.as_raw(), buf, size) }
        })
        .unwrap_or_default()
    }

    /// The X.509 version (1 to 3).
    pub(crate) fn version(&self) -> i32 {
        // SAFETY: the certificate is live.
        unsafe { sys::gnutls_x509_crt_get_version(self.as_raw()) }
    }

    /// The SHA-256 (`sha256 == true`) or SHA-1 digest of the DER encoding.
    pub(crate) fn fingerprint(&self, sha256: bool) -> Vec<u8> {
        let algorithm = if sha256 {
            sys::GNUTLS_DIG_SHA256
        } else {
            sys::GNUTLS_DIG_SHA1
        };
        with_sized_buffer(|buf, size| {
            // SAFETY: the certificate is live and `buf`/`size` are writable.
            unsafe { sys::gnutls_x509_crt_get_fingerprint(self.as_raw(), algorithm, buf, size) }
        })
        .unwrap_or_default()
    }

    /// The SHA-256 digest of the certificate's SubjectPublicKeyInfo (DER):
    /// what public key pins (RFC 7469, curl's `--pinnedpubkey`) name.
    pub(crate) fn public_key_sha256(&self) -> Result<Vec<u8>, GnutlsError> {
        with_sized_buffer(|buf, size| {
            // SAFETY: the certificate is live and `buf`/`size` are writable.
            unsafe {
                sys::gnutls_x509_crt_get_key_id(
                    self.as_raw(),
                    sys::GNUTLS_KEYID_USE_SHA256,
                    buf.cast(),
                    size,
                )
            }
        })
    }

    /// The public key algorithm's name ("RSA", "EC/ECDSA", …) and key size
    /// in bits.
    pub(crate) fn public_key(&self) -> (&'static str, u32) {
        let mut bits: c_uint = 0;
        // SAFETY: the certificate is live and `bits` is a valid out-pointer.
        let algorithm = unsafe { sys::gnutls_x509_crt_get_pk_algorithm(self.as_raw(), &mut bits) };
        if algorithm < 0 {
            return ("", 0);
        }
        // SAFETY: any algorithm number is accepted; the result is static.
        let name = static_str(unsafe {
            sys::gnutls_pk_algorithm_get_name(algorithm as sys::gnutls_pk_algorithm_t)
        });
        (name, bits)
    }

    /// The signature algorithm's name ("ECDSA-SHA256", "RSA-SHA1", …).
    pub(crate) fn signature_algorithm(&self) -> &'static str {
        // SAFETY: the certificate is live.
        let algorithm = unsafe { sys::gnutls_x509_crt_get_signature_algorithm(self.as_raw()) };
        if algorithm < 0 {
            return "";
        }
        // SAFETY: any algorithm number is accepted; the result is static.
        static_str(unsafe { sys::gnutls_sign_get_name(algorithm as sys::gnutls_sign_algorithm_t) })
    }

    /// Whether `issuer`'s subject is this certificate's issuer.
    pub(crate) fn is_issued_by(&self, issuer: &X509Crt) -> bool {
        // SAFETY: both certificates are live.
        unsafe { sys::gnutls_x509_crt_check_issuer(self.as_raw(), issuer.as_raw()) != 0 }
    }

    /// Whether the certificate's names match `hostname` (a DNS name or an IP
    /// address in text form), as RFC 6125 says.
    pub(crate) fn matches_hostname(&self, hostname: &str) -> bool {
        let Ok(name) = std::ffi::CString::new(hostname) else {
            return false;
        };
        // SAFETY: the certificate is live and `name` is NUL-terminated.
        unsafe { sys::gnutls_x509_crt_check_hostname2(self.as_raw(), name.as_ptr(), 0) != 0 }
    }
}

/// Serialises a certificate we do not own.
///
/// # Safety
/// `raw` must be a live certificate handle for the duration of the call.
pub(crate) unsafe fn export_raw(
    raw: sys::gnutls_x509_crt_t,
    encoding: Encoding,
) -> Result<Vec<u8>, GnutlsError> {
    let mut out = OwnedDatum::empty();
    // SAFETY: the caller guarantees `raw` is live; `out` receives a GnuTLS
    // allocation that OwnedDatum frees.
    check(unsafe { sys::gnutls_x509_crt_export2(raw, encoding.raw(), out.as_mut_ptr()) })?;
    Ok(out.as_bytes().to_vec())
}

impl Drop for X509Crt {
    fn drop(&mut self) {
        // SAFETY: we own the handle and free it exactly once.
        unsafe { sys::gnutls_x509_crt_deinit(self.raw.as_ptr()) }
    }
}

/// One DN attribute value as GnuTLS prints it, without its escapes: GnuTLS
/// puts a backslash before `,` `+` `"` `\` `<` `>` `;`, a leading `#` or
/// space and a trailing space, and nothing else (lib/x509/common.c,
/// `str_escape`). A value GnuTLS cannot decode stays in its `#hex` form.
fn unescape_dn_value(escaped: &str) -> String {
    let mut value = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            c => value.push(c),
        }
    }
    value
}

/// Text from a GnuTLS buffer that may end in NUL.
fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}
