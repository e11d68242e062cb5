//! A server engine fed arbitrary bytes as its peer's side, in chunks, with
//! sends, end of stream and close mixed in (see `sslsocket_fuzz` for the
//! input format).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sslsocket_fuzz::{run_engine_target, Role};

fuzz_target!(|data: &[u8]| run_engine_target(Role::Server, data, false));
