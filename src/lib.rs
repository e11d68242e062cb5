//! sslsocket (work in progress)
#![deny(unsafe_code)]
mod buffer;
mod certificate;
mod config;
mod context;
mod engine;
mod error;
mod forward;
mod gnutls;
mod handle;
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
pub use context::{Context, ServerId, SocketId};
pub use error::{Alert, AlertLevel, Error, Result, SslError, SslErrorKind, TimeoutKind};
pub use forward::SocketMessage;
pub use gnutls::GnutlsError;
pub use handle::{ReactorGone, ReactorHandle};
pub use private_key::PrivateKey;
pub use proxy::{Proxy, ProxyErrorKind, ProxyKind};
pub use reactor::Reactor;
pub use server::SslServer;
pub use signal::{Signal, SlotId};
pub use ssl_socket::{SocketState, SslMode, SslSocket};
pub use timer::TimerId;
