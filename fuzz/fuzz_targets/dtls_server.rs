//! A DTLS server fed arbitrary datagrams from one address: each goes
//! through the stateless check a `DtlsServer` makes before keeping any
//! state (is it an initial ClientHello, does its cookie admit its sender),
//! then into one session, as if the first datagram's cookie had been good.
//!
//! Input: `(LEN:u16be DATAGRAM)*`, the last datagram taking what is left
//! when the input runs short.
//!
//! Oracles: beyond "no panic, no crash, no hang" (the session's receive
//! loop must end on every datagram), no cookie admits a fuzzer's hello
//! (the secret is random per run), and the handshake never completes nor
//! delivers a datagram (the fuzzer cannot forge the client's Finished).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslsocket::fuzzing::FuzzDtlsServer;
use sslsocket_fuzz::{config, Flags, Input, Role};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let config = config(Role::Server, Flags::from_byte(1));
    let mut server = FuzzDtlsServer::new(config).expect("a DTLS server");
    while !input.is_empty() {
        let len = usize::from(input.u16());
        let datagram = input.take(len);
        match server.receive(datagram) {
            Ok(admitted) => assert!(!admitted, "a forged cookie admitted its sender"),
            Err(_) => break,
        }
        assert!(!server.is_established() && server.records() == 0);
    }
});
