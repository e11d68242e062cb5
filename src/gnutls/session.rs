//! [`Session`]: an owned `gnutls_session_t` bound to an in-memory
//! [`Transport`], and the record-layer calls the engine makes on it.
//!
//! A session owns everything GnuTLS only points to: the transport its
//! callbacks reach, the credentials and priority cache (shared `Arc`s), and
//! the name verification checks against. It knows nothing of sockets.

mod keying;

use std::ffi::{c_uint, CString};
use std::ptr::{self, NonNull};
use std::sync::Arc;

use gnutls_sys as sys;
use zeroize::Zeroizing;

use super::auth::SessionOptions;
use super::credentials::CertificateCredentials;
use super::datum::{borrowed, OwnedDatum};
use super::error::{check, check_size, code, static_str, GnutlsError};
use super::priority::Priority;
use super::session_db::{self, SessionDb};
use super::transport::{self, Framing, PeerCheck, Purpose, Transport};
use super::verify::{self, Verification, VerifyStatus};

/// Which end of the connection a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// Whether a server asks for a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientCertificate {
    Ignore,
    Request,
    Require,
}

/// An alert as it travels on the wire: level (1 warning, 2 fatal) and
/// description number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawAlert {
    pub(crate) fatal: bool,
    pub(crate) description: u8,
}

/// The name GnuTLS gives an alert description ("Handshake failed", …).
pub(crate) fn alert_name(description: u8) -> &'static str {
    // SAFETY: any description number is accepted; the result is static or NULL.
    static_str(unsafe {
        sys::gnutls_alert_get_name(sys::gnutls_alert_description_t::from(description))
    })
}

/// A TLS session over an in-memory transport.
pub(crate) struct Session {
    raw: NonNull<sys::gnutls_session_int>,
    /// Allocated with `Box::into_raw`; GnuTLS's callbacks reach it through the
    /// transport and session user pointers. Freed in Drop after deinit.
    transport: NonNull<Transport>,
    _credentials: Arc<CertificateCredentials>,
    _priority: Arc<Priority>,
    /// The server's session database GnuTLS points to, if any.
    session_db: Option<Arc<SessionDb>>,
}

impl Session {
    /// A non-blocking session for `role`, TLS or DTLS as `framing` says,
    /// with certificate credentials (and those `options` add) and priorities
    /// set and the transport callbacks installed.
    pub(crate) fn new(
        role: Role,
        framing: Framing,
        credentials: Arc<CertificateCredentials>,
        priority: Arc<Priority>,
        options: SessionOptions,
    ) -> Result<Self, GnutlsError> {
        super::global::init();
        // A server sends its TLS 1.3 session tickets itself, once it has
        // judged the client (Session::send_session_tickets). A client with
        // one certificate sends it even when the server names other CAs, as
        // OpenSSL and Qt do: the server then reports what is wrong with it,
        // rather than that none came.
        let mut flags = match role {
            Role::Client => sys::GNUTLS_CLIENT | sys::GNUTLS_FORCE_CLIENT_CERT,
            Role::Server => sys::GNUTLS_SERVER | sys::GNUTLS_NO_AUTO_SEND_TICKET,
        } | sys::GNUTLS_NONBLOCK;
        if options.raw_public_keys {
            flags |= sys::GNUTLS_ENABLE_RAWPK;
        }
        if framing == Framing::Datagram {
            flags |= sys::GNUTLS_DATAGRAM;
        }
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the session.
        check(unsafe { sys::gnutls_init(&mut raw, flags) })?;
        let raw = NonNull::new(raw).ok_or(GnutlsError::from_code(sys::GNUTLS_E_MEMORY_ERROR))?;
        let purpose = match role {
            Role::Client => Purpose::Server,
            Role::Server => Purpose::Client,
        };
        let mut transport = Box::new(Transport::new(purpose, framing));
        transport.psk = options.psk;
        let transport = NonNull::from(Box::leak(transport));
        let mut session = Self {
            raw,
            transport,
            _credentials: credentials,
            _priority: priority,
            session_db: None,
        };
        session.install()?;
        if framing == Framing::Datagram {
            session.install_datagram_timeouts();
        }
        Ok(session)
    }

    fn install(&self) -> Result<(), GnutlsError> {
        let s = self.raw.as_ptr();
        let t = self.transport.as_ptr().cast();
        // SAFETY: `s` is a live session; the credentials and priority are kept
        // alive by the Arcs in `self` (the PSK credentials by the transport's)
        // until after gnutls_deinit; `t` stays valid until Drop, after
        // deinit; the callbacks match GnuTLS's types.
        unsafe {
            check(sys::gnutls_priority_set(s, self._priority.as_raw()))?;
            check(sys::gnutls_credentials_set(
                s,
                sys::GNUTLS_CRD_CERTIFICATE,
                self._credentials.as_raw().cast(),
            ))?;
            if let Some(psk) = &self.transport().psk {
                check(sys::gnutls_credentials_set(
                    s,
                    sys::GNUTLS_CRD_PSK,
                    psk.credentials().as_raw(),
                ))?;
            }
            sys::gnutls_transport_set_ptr(s, t);
            sys::gnutls_session_set_ptr(s, t);
            sys::gnutls_transport_set_pull_function(s, Some(transport::pull));
            sys::gnutls_transport_set_pull_timeout_function(s, Some(transport::pull_timeout));
            sys::gnutls_transport_set_push_function(s, Some(transport::push));
            sys::gnutls_transport_set_vec_push_function(s, Some(transport::vec_push));
            sys::gnutls_transport_set_errno_function(s, Some(transport::errno));
            sys::gnutls_handshake_set_timeout(s, 0);
            // GnuTLS's default key log function writes every secret to the
            // file SSLKEYLOGFILE names: none unless the configuration asks
            // (Session::log_keys).
            sys::gnutls_session_set_keylog_function(s, None);
            // Notes the peer's hello and session tickets in the transport.
            sys::gnutls_handshake_set_hook_function(
                s,
                transport::ANY_HANDSHAKE_MESSAGE,
                sys::GNUTLS_HOOK_BOTH,
                Some(transport::handshake_message),
            );
        }
        Ok(())
    }

    /// The raw handle, for the other files of this module.
    pub(super) fn as_raw(&self) -> sys::gnutls_session_t {
        self.raw.as_ptr()
    }

    /// The transport: ciphertext queues and the peer check.
    pub(crate) fn transport(&self) -> &Transport {
        // SAFETY: the transport lives until Drop; GnuTLS only touches it
        // during calls that take `&mut self`, so no callback runs while this
        // shared borrow is alive.
        unsafe { self.transport.as_ref() }
    }

    /// The transport, mutably.
    pub(crate) fn transport_mut(&mut self) -> &mut Transport {
        // SAFETY: as in `transport`; `&mut self` makes this borrow exclusive.
        unsafe { self.transport.as_mut() }
    }

    /// Re-raises a panic a callback caught during the last GnuTLS call.
    fn after_call(&mut self) {
        if let Some(panic) = self.transport_mut().take_panic() {
            std::panic::resume_unwind(panic);
        }
    }

    /// Sends `name` in the server name indication extension.
    pub(crate) fn set_server_name(&mut self, name: &str) -> Result<(), GnutlsError> {
        // SAFETY: the session is live; GnuTLS copies the name.
        check(unsafe {
            sys::gnutls_server_name_set(
                self.raw.as_ptr(),
                sys::GNUTLS_NAME_DNS,
                name.as_ptr().cast(),
                name.len(),
            )
        })?;
        Ok(())
    }

    /// Turns on peer verification in the handshake: chain, purpose, and
    /// `name` (a host name or IP address) when given. See [`PeerCheck`].
    pub(crate) fn enable_peer_check(&mut self, name: Option<&str>) -> Result<(), GnutlsError> {
        let name = name
            .map(|n| CString::new(n).map_err(|_| GnutlsError::from_code(code::INVALID_REQUEST)))
            .transpose()?;
        self.transport_mut().check_name = name;
        // SAFETY: the session is live and the callbacks match GnuTLS's types;
        // the verify function reaches the transport through the session's
        // user pointer, the output function only this thread's collector.
        unsafe {
            sys::gnutls_session_set_verify_function(
                self.raw.as_ptr(),
                Some(transport::verify_peer),
            );
            sys::gnutls_session_set_verify_output_function(
                self.raw.as_ptr(),
                Some(verify::step_reported),
            );
        };
        Ok(())
    }

    /// Verifies the peer's certificates with `gnutls_certificate_verify_peers`
    /// against the credentials' trust list, for the name and purpose set by
    /// [`enable_peer_check`](Self::enable_peer_check), with the failing steps
    /// of the path GnuTLS built. Called while the handshake is paused on
    /// [`PeerCheck::Requested`], or once a resumed handshake is complete.
    pub(crate) fn verify_peer(&self) -> Result<Verification, GnutlsError> {
        let t = self.transport();
        let purpose: &[u8] = match t.purpose {
            Purpose::Server => sys::GNUTLS_KP_TLS_WWW_SERVER,
            Purpose::Client => sys::GNUTLS_KP_TLS_WWW_CLIENT,
        };
        let mut data = vec![sys::gnutls_typed_vdata_st {
            type_: sys::GNUTLS_DT_KEY_PURPOSE_OID,
            data: purpose.as_ptr().cast_mut(),
            size: 0,
        }];
        if let Some(name) = &t.check_name {
            data.push(sys::gnutls_typed_vdata_st {
                type_: sys::GNUTLS_DT_DNS_HOSTNAME,
                data: name.as_ptr().cast_mut().cast(),
                size: 0,
            });
        }
        let mut status: c_uint = 0;
        // SAFETY: the session is live and no GnuTLS call is in progress
        // (`&self`); `data` holds NUL-terminated strings that outlive the
        // call (GnuTLS reads strings when size is 0) and is not written.
        let (rc, steps) = verify::collect_steps(|| unsafe {
            sys::gnutls_certificate_verify_peers(
                self.raw.as_ptr(),
                data.as_mut_ptr(),
                data.len() as c_uint,
                &mut status,
            )
        });
        check(rc)?;
        Ok(Verification {
            status: VerifyStatus(status),
            steps,
        })
    }

    /// Resolves a paused peer check (see [`PeerCheck`]).
    pub(crate) fn decide_peer_check(&mut self, accept: bool) {
        self.transport_mut().peer_check = if accept {
            PeerCheck::Accepted
        } else {
            PeerCheck::Rejected
        };
    }

    /// On a server: whether to ask the client for a certificate.
    pub(crate) fn set_client_certificate(&mut self, request: ClientCertificate) {
        let request = match request {
            ClientCertificate::Ignore => sys::GNUTLS_CERT_IGNORE,
            ClientCertificate::Request => sys::GNUTLS_CERT_REQUEST,
            ClientCertificate::Require => sys::GNUTLS_CERT_REQUIRE,
        };
        // SAFETY: the session is live.
        unsafe { sys::gnutls_certificate_server_set_request(self.raw.as_ptr(), request) }
    }

    /// One step of the handshake (`gnutls_handshake`).
    pub(crate) fn handshake(&mut self) -> Result<(), GnutlsError> {
        // SAFETY: the session is live; callbacks reach the transport, which is
        // not otherwise borrowed while `&mut self` is held here.
        let rc = unsafe { sys::gnutls_handshake(self.raw.as_ptr()) };
        self.after_call();
        check(rc).map(drop)
    }

    /// Decrypts at most one record's plaintext into `out`
    /// (`gnutls_record_recv`); `Ok(0)` means the peer sent `close_notify`.
    pub(crate) fn recv(&mut self, out: &mut [u8]) -> Result<usize, GnutlsError> {
        // SAFETY: the session is live and `out` is writable for its length.
        let rc = unsafe {
            sys::gnutls_record_recv(self.raw.as_ptr(), out.as_mut_ptr().cast(), out.len())
        };
        self.after_call();
        check_size(rc)
    }

    /// Encrypts up to one record of `data` (`gnutls_record_send`); returns
    /// how many plaintext bytes were taken. An empty `data` resumes a send
    /// that returned `GNUTLS_E_AGAIN`.
    pub(crate) fn send(&mut self, data: &[u8]) -> Result<usize, GnutlsError> {
        let ptr = if data.is_empty() {
            ptr::null()
        } else {
            data.as_ptr()
        };
        // SAFETY: the session is live and `data` is readable for its length.
        let rc = unsafe { sys::gnutls_record_send(self.raw.as_ptr(), ptr.cast(), data.len()) };
        self.after_call();
        check_size(rc)
    }

    /// Bytes of decrypted plaintext GnuTLS holds internally.
    pub(crate) fn pending(&self) -> usize {
        // SAFETY: the session is live; this only reads its buffers.
        unsafe { sys::gnutls_record_check_pending(self.raw.as_ptr()) }
    }

    /// Sends `close_notify` without waiting for the peer's
    /// (`gnutls_bye(GNUTLS_SHUT_WR)`).
    pub(crate) fn bye(&mut self) -> Result<(), GnutlsError> {
        // SAFETY: the session is live.
        let rc = unsafe { sys::gnutls_bye(self.raw.as_ptr(), sys::GNUTLS_SHUT_WR) };
        self.after_call();
        check(rc).map(drop)
    }

    /// The alert the peer sent last (after `*_ALERT_RECEIVED`).
    pub(crate) fn received_alert(&self, fatal: bool) -> RawAlert {
        // SAFETY: the session is live.
        let description = unsafe { sys::gnutls_alert_get(self.raw.as_ptr()) };
        RawAlert {
            fatal,
            description: u8::try_from(description).unwrap_or(u8::MAX),
        }
    }

    /// Sends the alert GnuTLS associates with `error` and returns it, or
    /// `None` when the error has no alert.
    pub(crate) fn send_alert_for(&mut self, error: GnutlsError) -> Option<RawAlert> {
        let mut level = 0;
        // SAFETY: pure mapping from an error code to an alert.
        let description = unsafe { sys::gnutls_error_to_alert(error.code(), &mut level) };
        let description = u8::try_from(description).ok()?;
        self.send_alert(RawAlert {
            fatal: level == sys::GNUTLS_AL_FATAL as i32,
            description,
        })
    }

    /// Sends one alert.
    pub(crate) fn send_alert(&mut self, alert: RawAlert) -> Option<RawAlert> {
        let level = if alert.fatal {
            sys::GNUTLS_AL_FATAL
        } else {
            sys::GNUTLS_AL_WARNING
        };
        // SAFETY: the session is live.
        let rc = unsafe {
            sys::gnutls_alert_send(
                self.raw.as_ptr(),
                level,
                sys::gnutls_alert_description_t::from(alert.description),
            )
        };
        self.after_call();
        (rc >= 0).then_some(alert)
    }

    /// Refuses a TLS 1.2 renegotiation request with a warning alert.
    pub(crate) fn refuse_renegotiation(&mut self) -> Option<RawAlert> {
        self.send_alert(RawAlert {
            fatal: false,
            description: sys::GNUTLS_A_NO_RENEGOTIATION as u8,
        })
    }

    /// The peer's certificate chain as DER, leaf first, borrowed from the
    /// session.
    pub(crate) fn peer_certificates(&self) -> Vec<&[u8]> {
        let mut count: c_uint = 0;
        // SAFETY: the session is live; the returned array (or NULL) belongs to
        // the session and stays valid until the next handshake step, which
        // needs `&mut self` and so cannot happen while these borrows live.
        let list = unsafe { sys::gnutls_certificate_get_peers(self.raw.as_ptr(), &mut count) };
        if list.is_null() {
            return Vec::new();
        }
        (0..count as usize)
            .map(|i| {
                // SAFETY: `list` holds `count` datums of `size` readable bytes
                // (a NULL one is taken as empty).
                unsafe {
                    let d = &*list.add(i);
                    match d.data.is_null() {
                        true => &[][..],
                        false => std::slice::from_raw_parts(d.data, d.size as usize),
                    }
                }
            })
            .collect()
    }

    /// The negotiated protocol's name ("TLS1.3", …).
    pub(crate) fn protocol_name(&self) -> &'static str {
        // SAFETY: the session is live; names are static.
        static_str(unsafe {
            sys::gnutls_protocol_get_name(sys::gnutls_protocol_get_version(self.raw.as_ptr()))
        })
    }

    /// The negotiated cipher suite's IANA name ("TLS_AES_128_GCM_SHA256",
    /// "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256").
    #[cfg(gnutls_ciphersuite_get)]
    pub(crate) fn cipher_suite_name(&self) -> String {
        // SAFETY: the session is live; the name is static (or NULL).
        static_str(unsafe { sys::gnutls_ciphersuite_get(self.raw.as_ptr()) }).to_owned()
    }

    /// The negotiated cipher suite's name as GnuTLS before 3.7.4 spells it
    /// (from key exchange, cipher and MAC).
    #[cfg(not(gnutls_ciphersuite_get))]
    pub(crate) fn cipher_suite_name(&self) -> String {
        let s = self.raw.as_ptr();
        // SAFETY: the session is live; the lookups return numbers and the
        // suite name is static (or NULL).
        let name = unsafe {
            static_str(sys::gnutls_cipher_suite_get_name(
                sys::gnutls_kx_get(s),
                sys::gnutls_cipher_get(s),
                sys::gnutls_mac_get(s),
            ))
        };
        name.to_owned()
    }

    /// The negotiated key exchange group's name ("X25519", "SECP256R1", …).
    pub(crate) fn group_name(&self) -> &'static str {
        // SAFETY: the session is live; names are static (or NULL).
        static_str(unsafe { sys::gnutls_group_get_name(sys::gnutls_group_get(self.raw.as_ptr())) })
    }

    /// The negotiated cipher's name ("AES-128-GCM", …).
    pub(crate) fn cipher_name(&self) -> &'static str {
        // SAFETY: the session is live; names are static.
        static_str(unsafe {
            sys::gnutls_cipher_get_name(sys::gnutls_cipher_get(self.raw.as_ptr()))
        })
    }

    /// GnuTLS's one-line description of the session.
    pub(crate) fn description(&self) -> String {
        let mut datum = OwnedDatum::empty();
        // SAFETY: the session is live; gnutls_session_get_desc returns a
        // gnutls_malloc'd string (or NULL) that we hand to OwnedDatum to free.
        unsafe {
            let p = sys::gnutls_session_get_desc(self.raw.as_ptr());
            if p.is_null() {
                return String::new();
            }
            let len = std::ffi::CStr::from_ptr(p).to_bytes().len();
            *datum.as_mut_ptr() = sys::gnutls_datum_t {
                data: p.cast(),
                size: len as c_uint,
            };
        }
        datum.to_string_lossy()
    }

    /// Whether this handshake resumed an earlier session.
    pub(crate) fn is_resumed(&self) -> bool {
        // SAFETY: the session is live.
        unsafe { sys::gnutls_session_is_resumed(self.raw.as_ptr()) != 0 }
    }

    /// Offers (client) or accepts (server) these ALPN protocols.
    pub(crate) fn set_alpn_protocols(
        &mut self,
        protocols: &[Vec<u8>],
        server_precedence: bool,
    ) -> Result<(), GnutlsError> {
        let datums = protocols
            .iter()
            .map(|p| borrowed(p))
            .collect::<Result<Vec<_>, _>>()?;
        let flags = if server_precedence {
            sys::GNUTLS_ALPN_SERVER_PRECEDENCE
        } else {
            0
        };
        // SAFETY: the session is live; GnuTLS copies the protocol names.
        check(unsafe {
            sys::gnutls_alpn_set_protocols(
                self.raw.as_ptr(),
                datums.as_ptr(),
                datums.len() as c_uint,
                flags,
            )
        })?;
        Ok(())
    }

    /// The protocol ALPN selected, if any.
    pub(crate) fn alpn_protocol(&self) -> Option<Vec<u8>> {
        let mut datum = sys::gnutls_datum_t {
            data: ptr::null_mut(),
            size: 0,
        };
        // SAFETY: the session is live; the datum points into session memory,
        // which we copy before returning.
        let rc = unsafe { sys::gnutls_alpn_get_selected_protocol(self.raw.as_ptr(), &mut datum) };
        if rc < 0 || datum.data.is_null() {
            return None;
        }
        // SAFETY: GnuTLS filled `datum` with `size` readable bytes.
        Some(unsafe { std::slice::from_raw_parts(datum.data, datum.size as usize) }.to_vec())
    }
}

/// Session resumption and OCSP.
impl Session {
    /// Offers to resume the session described by `data` (from
    /// [`session_data`](Self::session_data) of an earlier connection).
    pub(crate) fn set_session_data(&mut self, data: &[u8]) -> Result<(), GnutlsError> {
        // SAFETY: the session is live; GnuTLS copies the data.
        check(unsafe {
            sys::gnutls_session_set_data(self.raw.as_ptr(), data.as_ptr().cast(), data.len())
        })?;
        Ok(())
    }

    /// The data needed to resume this session later. It holds the session's
    /// master secret: it is wiped when dropped (the buffer GnuTLS returned
    /// it in is wiped before it is freed).
    pub(crate) fn session_data(&self) -> Result<Zeroizing<Vec<u8>>, GnutlsError> {
        let mut datum = OwnedDatum::empty();
        // SAFETY: the session is live; the datum receives a GnuTLS allocation.
        check(unsafe { sys::gnutls_session_get_data2(self.raw.as_ptr(), datum.as_mut_ptr()) })?;
        Ok(Zeroizing::new(datum.as_bytes().to_vec()))
    }

    /// On a server: issues session tickets encrypted under `key` (a key
    /// from [`ticket_key`]); GnuTLS rotates the keys it derives from it
    /// every `lifetime_secs`.
    pub(crate) fn enable_session_tickets(
        &mut self,
        key: &[u8],
        lifetime_secs: u32,
    ) -> Result<(), GnutlsError> {
        let datum = borrowed(key)?;
        // SAFETY: the session is live; GnuTLS copies the key.
        check(unsafe { sys::gnutls_session_ticket_enable_server(self.raw.as_ptr(), &datum) })?;
        // SAFETY: the session is live.
        unsafe {
            sys::gnutls_db_set_cache_expiration(
                self.raw.as_ptr(),
                i32::try_from(lifetime_secs).unwrap_or(i32::MAX),
            )
        };
        Ok(())
    }

    /// On a server, after a TLS 1.3 handshake: sends `count` session
    /// tickets (`gnutls_session_ticket_send`).
    pub(crate) fn send_session_tickets(&mut self, count: u32) -> Result<(), GnutlsError> {
        // SAFETY: the session is live; GnuTLS writes the tickets through the
        // push callback, which only queues bytes in the transport.
        let rc = unsafe { sys::gnutls_session_ticket_send(self.raw.as_ptr(), count, 0) };
        self.after_call();
        check(rc).map(drop)
    }

    /// On a server: remembers TLS 1.2 sessions by ID in `db`, so clients
    /// that do not use tickets can resume.
    pub(crate) fn enable_session_db(&mut self, db: Arc<SessionDb>) {
        let s = self.raw.as_ptr();
        let ptr = Arc::as_ptr(&db).cast_mut().cast();
        // SAFETY: the session is live; `db` is kept alive by `self` until
        // after gnutls_deinit, and the callbacks only reach it through the
        // shared reference `with_db` makes.
        unsafe {
            sys::gnutls_db_set_ptr(s, ptr);
            sys::gnutls_db_set_store_function(s, Some(session_db::store));
            sys::gnutls_db_set_retrieve_function(s, Some(session_db::retrieve));
            sys::gnutls_db_set_remove_function(s, Some(session_db::remove));
        }
        self.session_db = Some(db);
    }

    /// The OCSP response the server stapled (DER), if any.
    pub(crate) fn ocsp_response(&self) -> Option<Vec<u8>> {
        let mut datum = sys::gnutls_datum_t {
            data: ptr::null_mut(),
            size: 0,
        };
        // SAFETY: the session is live; the datum points into session memory,
        // which we copy before returning.
        let rc = unsafe { sys::gnutls_ocsp_status_request_get2(self.raw.as_ptr(), 0, &mut datum) };
        if rc < 0 || datum.data.is_null() {
            return None;
        }
        // SAFETY: GnuTLS filled `datum` with `size` readable bytes.
        Some(unsafe { std::slice::from_raw_parts(datum.data, datum.size as usize) }.to_vec())
    }

    /// Whether a stapled OCSP response was received and found valid during
    /// verification.
    pub(crate) fn ocsp_checked(&self) -> bool {
        // SAFETY: the session is live.
        unsafe { sys::gnutls_ocsp_status_request_is_checked(self.raw.as_ptr(), 0) != 0 }
    }
}

/// A fresh random master key for session tickets, wiped when dropped (the
/// buffer GnuTLS returned it in is wiped before it is freed).
pub(crate) fn ticket_key() -> Result<Zeroizing<Vec<u8>>, GnutlsError> {
    let mut datum = OwnedDatum::empty();
    // SAFETY: the datum receives a GnuTLS allocation that OwnedDatum frees.
    check(unsafe { sys::gnutls_session_ticket_key_generate(datum.as_mut_ptr()) })?;
    Ok(Zeroizing::new(datum.as_bytes().to_vec()))
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: we own the session and free it once; no GnuTLS call is in
        // progress (Drop has exclusive access). The transport was leaked from
        // a Box in `new` and is reclaimed only after deinit, when no callback
        // can reach it any more. The credentials and priority Arcs drop after.
        unsafe {
            sys::gnutls_deinit(self.raw.as_ptr());
            drop(Box::from_raw(self.transport.as_ptr()));
        }
    }
}
