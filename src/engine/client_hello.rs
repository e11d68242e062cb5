//! [`ClientHello`]: what a client offered in its hello — protocol versions,
//! cipher suites, groups and signature algorithms, as TLS code points —
//! read from the message's bytes, so that a server that refuses a client
//! can say what the client offered.
//!
//! A plain parser over a byte slice: bounds-checked, it never panics, and a
//! malformed hello yields whatever was read before the damage.

/// The offers of one ClientHello, as IANA code points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientHello {
    /// The versions in `supported_versions`, or else the legacy version.
    pub(crate) versions: Vec<u16>,
    /// No `supported_versions`: the client also accepts every version below
    /// its legacy version.
    pub(crate) legacy_versions: bool,
    pub(crate) cipher_suites: Vec<u16>,
    pub(crate) groups: Vec<u16>,
    pub(crate) signature_algorithms: Vec<u16>,
    /// The `server_certificate_type` extension (RFC 7250), if sent.
    pub(crate) server_certificate_types: Option<Vec<u8>>,
}

/// What a client that sent no `signature_algorithms` accepts in TLS 1.2:
/// SHA-1 with RSA, DSA or ECDSA (RFC 5246 §7.4.1.4.1).
const IMPLIED_SIGNATURE_ALGORITHMS: [u16; 3] = [0x0201, 0x0202, 0x0203];

const SUPPORTED_GROUPS: u16 = 10;
const SIGNATURE_ALGORITHMS: u16 = 13;
const SERVER_CERTIFICATE_TYPE: u16 = 20;
const SUPPORTED_VERSIONS: u16 = 43;

/// A cursor over the message.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a one- or two-byte length.
    fn vector(&mut self, length_bytes: usize) -> Option<&'a [u8]> {
        let len = match length_bytes {
            1 => usize::from(self.u8()?),
            _ => usize::from(self.u16()?),
        };
        self.take(len)
    }
}

/// The 16-bit values of `bytes`.
fn u16s(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect()
}

impl ClientHello {
    /// The signature algorithms the client accepts in TLS 1.2: those it
    /// listed, or SHA-1's when it sent no `signature_algorithms`.
    pub(crate) fn tls12_signature_algorithms(&self) -> &[u16] {
        if self.signature_algorithms.is_empty() {
            return &IMPLIED_SIGNATURE_ALGORITHMS;
        }
        &self.signature_algorithms
    }

    /// Reads the body of a ClientHello handshake message (after its
    /// four-byte header).
    pub(crate) fn parse(body: &[u8]) -> Self {
        let mut hello = ClientHello::default();
        hello.read(&mut Reader(body));
        hello
    }

    fn read(&mut self, r: &mut Reader<'_>) -> Option<()> {
        let legacy_version = r.u16()?;
        self.versions = vec![legacy_version];
        self.legacy_versions = true;
        r.take(32)?; // random
        r.vector(1)?; // legacy session id
        self.cipher_suites = u16s(r.vector(2)?);
        r.vector(1)?; // compression methods
        let mut extensions = Reader(r.vector(2)?);
        while let (Some(kind), Some(data)) = (extensions.u16(), extensions.vector(2)) {
            self.extension(kind, data);
        }
        Some(())
    }

    fn extension(&mut self, kind: u16, data: &[u8]) {
        let mut r = Reader(data);
        let list = match kind {
            SUPPORTED_VERSIONS | SERVER_CERTIFICATE_TYPE => r.vector(1),
            SUPPORTED_GROUPS | SIGNATURE_ALGORITHMS => r.vector(2),
            _ => return,
        };
        let Some(list) = list else { return };
        match kind {
            SUPPORTED_VERSIONS => {
                self.versions = u16s(list);
                self.legacy_versions = false;
            }
            SERVER_CERTIFICATE_TYPE => self.server_certificate_types = Some(list.to_vec()),
            SUPPORTED_GROUPS => self.groups = u16s(list),
            _ => self.signature_algorithms = u16s(list),
        }
    }
}

/// Writing a hello back into bytes, for tests.
#[cfg(test)]
impl ClientHello {
    /// The body of a ClientHello with these offers: a `supported_versions`
    /// extension unless `legacy_versions` (then the first version is the
    /// legacy one), and the other extensions when their lists are
    /// non-empty.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        fn vector(width: usize, data: &[u8]) -> Vec<u8> {
            let len = data.len().to_be_bytes();
            let mut v = len[len.len() - width..].to_vec();
            v.extend(data);
            v
        }
        fn pairs(values: &[u16]) -> Vec<u8> {
            values.iter().flat_map(|v| v.to_be_bytes()).collect()
        }
        let legacy = match self.legacy_versions {
            true => self.versions.first().copied().unwrap_or(0x0303),
            false => 0x0303,
        };
        let mut body = legacy.to_be_bytes().to_vec();
        body.extend([7u8; 32]);
        body.push(0);
        body.extend(vector(2, &pairs(&self.cipher_suites)));
        body.extend([1, 0]);
        let mut extensions = Vec::new();
        let mut add = |kind: u16, data: Vec<u8>| {
            extensions.extend(kind.to_be_bytes());
            extensions.extend(vector(2, &data));
        };
        add(0, vec![0, 0]);
        if !self.legacy_versions {
            add(SUPPORTED_VERSIONS, vector(1, &pairs(&self.versions)));
        }
        if !self.groups.is_empty() {
            add(SUPPORTED_GROUPS, vector(2, &pairs(&self.groups)));
        }
        if !self.signature_algorithms.is_empty() {
            add(
                SIGNATURE_ALGORITHMS,
                vector(2, &pairs(&self.signature_algorithms)),
            );
        }
        if let Some(types) = &self.server_certificate_types {
            add(SERVER_CERTIFICATE_TYPE, vector(1, types));
        }
        body.extend(vector(2, &extensions));
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_offer() -> ClientHello {
        ClientHello {
            versions: vec![0x0304, 0x0303],
            legacy_versions: false,
            cipher_suites: vec![0x1301, 0xc02b],
            groups: vec![29, 23],
            signature_algorithms: vec![0x0403],
            server_certificate_types: Some(vec![2]),
        }
    }

    #[test]
    fn reads_every_offer() {
        let hello = every_offer();
        assert_eq!(ClientHello::parse(&hello.to_bytes()), hello);
    }

    #[test]
    fn a_hello_without_supported_versions_offers_its_legacy_version() {
        let hello = ClientHello {
            versions: vec![0x0302],
            legacy_versions: true,
            cipher_suites: vec![0x002f],
            ..ClientHello::default()
        };
        assert_eq!(ClientHello::parse(&hello.to_bytes()), hello);
        let mut body = hello.to_bytes();
        body.truncate(body.len() - 8); // no extensions at all
        let parsed = ClientHello::parse(&body);
        assert_eq!(parsed.versions, [0x0302]);
        assert!(parsed.legacy_versions);
        assert_eq!(parsed.cipher_suites, [0x002f]);
    }

    #[test]
    fn damaged_hellos_give_what_was_read_and_never_panic() {
        let body = every_offer().to_bytes();
        for cut in 0..body.len() {
            let _ = ClientHello::parse(&body[..cut]);
        }
        let parsed = ClientHello::parse(&body[..40]);
        assert_eq!(parsed.versions, [0x0303]);
        assert!(parsed.groups.is_empty());
        let mut lying = body.clone();
        lying[35] = 0xff; // a cipher suite list longer than the message
        assert!(ClientHello::parse(&lying).cipher_suites.is_empty());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = every_offer().to_bytes();
        for _ in 0..20_000 {
            let mut body = valid.clone();
            for _ in 0..next() % 8 {
                let at = next() as usize % body.len();
                body[at] = next() as u8;
            }
            let hello = ClientHello::parse(&body);
            assert!(hello.cipher_suites.len() <= body.len() / 2);
        }
    }
}
