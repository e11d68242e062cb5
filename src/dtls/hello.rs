//! Recognising, without any state, the one datagram a DTLS server answers
//! from an address it knows nothing of: an initial ClientHello (RFC 6347
//! §4.1, §4.2.2): a handshake record of epoch 0 holding one whole
//! ClientHello message.
//!
//! Only the headers are read; the cookie inside is the verifier's business
//! (`verifier.rs`), the rest GnuTLS's.

/// Record header: type, version, epoch, sequence number, length.
const RECORD_HEADER: usize = 13;

/// Handshake header: type, length, message sequence, fragment offset and
/// fragment length.
const HANDSHAKE_HEADER: usize = 12;

/// The shortest ClientHello body: version, random, empty session ID and
/// cookie, one cipher suite, one compression method (RFC 6347 §4.2.1).
const MIN_BODY: usize = 2 + 32 + 1 + 1 + 2 + 2 + 1 + 1;

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
/// The first byte of every DTLS version (1.0 is 0xfeff, 1.2 0xfefd).
const DTLS_MAJOR: u8 = 0xfe;

/// Whether `datagram` starts with an initial ClientHello: a DTLS handshake
/// record of epoch 0 whose fragment is one whole, unfragmented ClientHello
/// no shorter than the shortest valid one (so the HelloVerifyRequest that
/// answers it is always shorter than it: no amplification).
pub(super) fn is_initial_client_hello(datagram: &[u8]) -> bool {
    let Some(record) = datagram.get(..RECORD_HEADER) else {
        return false;
    };
    let epoch = u16::from_be_bytes([record[3], record[4]]);
    let length = usize::from(u16::from_be_bytes([record[11], record[12]]));
    let plausible = record[0] == HANDSHAKE && record[1] == DTLS_MAJOR && epoch == 0;
    let Some(body) = datagram.get(RECORD_HEADER..RECORD_HEADER + length) else {
        return false;
    };
    let Some(header) = body.get(..HANDSHAKE_HEADER) else {
        return false;
    };
    let message = u24(&header[1..4]);
    let offset = u24(&header[6..9]);
    let fragment = u24(&header[9..12]);
    plausible
        && header[0] == CLIENT_HELLO
        && offset == 0
        && fragment == message
        && fragment >= MIN_BODY
        && HANDSHAKE_HEADER + fragment <= body.len()
}

/// The low byte of the record sequence number, which a HelloVerifyRequest
/// echoes (RFC 6347 §4.2.1); 0 for a datagram too short to have one.
pub(super) fn record_sequence(datagram: &[u8]) -> u8 {
    datagram.get(10).copied().unwrap_or(0)
}

fn u24(bytes: &[u8]) -> usize {
    bytes.iter().fold(0, |n, &b| n << 8 | usize::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record holding a ClientHello of `body_len` bytes.
    fn hello(body_len: usize) -> Vec<u8> {
        let fragment = HANDSHAKE_HEADER + body_len;
        let mut d = vec![HANDSHAKE, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 5];
        d.extend_from_slice(&(fragment as u16).to_be_bytes());
        let len = (body_len as u32).to_be_bytes();
        d.extend_from_slice(&[CLIENT_HELLO, len[1], len[2], len[3], 0, 0, 0, 0, 0]);
        d.extend_from_slice(&[len[1], len[2], len[3]]);
        d.resize(d.len() + body_len, 0x33);
        d
    }

    #[test]
    fn only_a_whole_epoch_0_client_hello_counts() {
        let good = hello(60);
        assert!(is_initial_client_hello(&good));
        assert_eq!(record_sequence(&good), 5);
        let mut epoch1 = good.clone();
        epoch1[4] = 1;
        assert!(!is_initial_client_hello(&epoch1), "encrypted epoch");
        let mut server_hello = good.clone();
        server_hello[RECORD_HEADER] = 2;
        assert!(!is_initial_client_hello(&server_hello));
        let mut tls = good.clone();
        tls[1] = 3;
        assert!(!is_initial_client_hello(&tls), "a TLS record");
        let mut fragment = good.clone();
        fragment[RECORD_HEADER + 8] = 1;
        assert!(!is_initial_client_hello(&fragment), "a later fragment");
        assert!(
            !is_initial_client_hello(&good[..good.len() - 1]),
            "cut short"
        );
        assert!(!is_initial_client_hello(&good[..5]));
        assert!(
            !is_initial_client_hello(&hello(MIN_BODY - 1)),
            "too short to be one"
        );
        assert!(is_initial_client_hello(&hello(MIN_BODY)));
        assert!(!is_initial_client_hello(&[]));
        assert_eq!(record_sequence(&[]), 0);
    }
}
