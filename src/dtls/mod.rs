//! DTLS 1.2 in the reactor: Qt's `QDtls` and `QDtlsClientVerifier`, done
//! the event-loop way.
//!
//! - [`DtlsSocket`] (`socket.rs`, `drive.rs`, `dispatch.rs`): one DTLS
//!   association with one peer, client or server, with `SslSocket`'s signal
//!   style. A client owns a connected UDP socket (`link.rs`); a server's
//!   sockets share their server's port.
//! - [`DtlsServer`] (`server.rs`, `port.rs`): one UDP port serving many
//!   peers, demultiplexed by source address. A peer gets a socket, and any
//!   state at all, only once its ClientHello echoed the cookie the
//!   [`DtlsClientVerifier`] (`verifier.rs`, `hello.rs`) made for its
//!   address: a flood of spoofed ClientHellos costs one stateless reply
//!   each. The peers still handshaking are capped.
//!
//! The TLS work is the engine's (`engine/datagram.rs`): certificates,
//! verification, ignore rules, pre-shared keys and the trust invariant are
//! exactly those of [`SslSocket`](crate::SslSocket). What is DTLS's own
//! here: whole datagrams in and out, the handshake's retransmissions on the
//! reactor's timers (no thread, no polling), the MTU, and the cookies.
//!
//! This module must not touch TCP sockets, the TLS stream path or the
//! `gnutls` module's internals.

mod context;
mod dispatch;
mod drive;
mod hello;
mod link;
mod port;
mod server;
mod socket;
mod verifier;

use crate::context::{handle_format, ObjectKey, ReactorTag};

pub use server::DtlsServer;
pub use socket::{DtlsProtocol, DtlsSocket};
pub use verifier::DtlsClientVerifier;

/// What a server does with `datagram` from `from` before keeping any
/// state, for the fuzz targets: whether it is an initial ClientHello whose
/// cookie admits its sender.
#[cfg(feature = "fuzzing")]
pub(crate) fn admits(
    verifier: &DtlsClientVerifier,
    datagram: &[u8],
    from: std::net::SocketAddr,
) -> bool {
    hello::is_initial_client_hello(datagram)
        && matches!(
            verifier.check(datagram, from),
            Ok(verifier::Verdict::Admit(_))
        )
}

/// A handle to a [`DtlsSocket`] owned by a reactor; it prints as `dtls#3`
/// (`Display`) or `DtlsSocketId(3v1)` (`Debug`), as
/// [`SocketId`](crate::SocketId) does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DtlsSocketId(pub(crate) ObjectKey, pub(crate) ReactorTag);

/// A handle to a [`DtlsServer`] owned by a reactor; it prints as
/// `dtls-server#3` (`Display`) or `DtlsServerId(3v1)` (`Debug`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DtlsServerId(pub(crate) ObjectKey, pub(crate) ReactorTag);

handle_format!(DtlsSocketId, "dtls");
handle_format!(DtlsServerId, "dtls-server");
