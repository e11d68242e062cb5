//! A client engine given a real handshake prefix by a genuine peer engine, up
//! to a stage the input chooses, then the fuzz operations (see
//! `sslsocket_fuzz`): reaches later handshake stages and the record layer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslsocket_fuzz::{run_engine_target, Role};

fuzz_target!(|data: &[u8]| run_engine_target(Role::Client, data, true));
