//! sslsocket (work in progress)
#![deny(unsafe_code)]
mod buffer;
mod certificate;
mod config;
mod engine;
mod error;
mod gnutls;
mod private_key;
mod proxy;
mod reactor;
mod resolver;
mod server;
mod signal;
mod ssl_socket;
mod tcp;
mod timer;

pub use certificate::{AlternativeName, Certificate, DigestAlgorithm, SubjectInfo};
pub use config::{PeerVerifyMode, SslConfiguration, SslConfigurationBuilder, SslProtocol};
pub use error::{Alert, AlertLevel, Error, Result, SslError, SslErrorKind, TimeoutKind};
pub use gnutls::GnutlsError;
pub use private_key::PrivateKey;
pub use proxy::{Proxy, ProxyErrorKind, ProxyKind};
pub use reactor::{Context, Reactor, ServerId, SocketId};
pub use server::SslServer;
pub use signal::{Signal, SlotId};
pub use ssl_socket::{SocketState, SslMode, SslSocket};
pub use timer::TimerId;
