//! getslash: fetch one URL over HTTPS with sslsocket, like a tiny curl.
//!
//! ```text
//! getslash [--cafile FILE] [--insecure] [--pinnedpubkey PINS] [--tlsv1.2|--tlsv1.3]
//!          [--tls-max VERSION] [--timeout SECS] [--proxy URL] [-i] [-o FILE] [URL]
//! ```
//!
//! With `https://HOST[:PORT][/PATH]` it sends `GET PATH` (HTTP/1.1, `Host`,
//! `Connection: close`) and writes the response body, byte for byte, to
//! stdout (`-i`: status line and headers first; `-o FILE`: to a file). It
//! exits 0 only when the whole response arrived (`Content-Length`, chunked,
//! or a close-delimited body ended by the server's TLS `close_notify`) and
//! nothing more came before the server closed the connection; after a
//! complete response it waits up to 2 s for that close, then takes the
//! response as it is. On failure it prints one line on stderr (naming the
//! certificate problem for verification failures) and exits 1. The whole
//! fetch has a time limit, so a server that accepts and never answers
//! cannot hang it: 60 seconds unless `--timeout SECS` says otherwise
//! (`--timeout 0`: none). `--help` lists the options.
//!
//! Interim responses (100 Continue, 103 Early Hints, …) come before the
//! final one and are skipped (`-i` prints them too); 101 Switching
//! Protocols, which a GET does not ask for, is an error. The framing is read
//! as RFC 9112 writes it: a `Content-Length` is digits only (repeated, it
//! must agree), a chunk size is hex digits only, and a response with both
//! `Transfer-Encoding` and `Content-Length` is refused, as is anything else
//! that another reader could frame differently. In the head, a line may
//! end in LF alone (RFC 9112 §2.2 allows a recipient to take it so; some
//! servers send it), while a CR elsewhere than before an LF is refused; chunk
//! lines must end in CRLF. A head, a chunk line and the trailer section
//! may each take at most 64 KiB.
//!
//! `--pinnedpubkey sha256//BASE64[;sha256//BASE64…]` accepts the server
//! only if its public key is one of these, as curl's option does (only the
//! `sha256//` form): on top of the certificate's verification, or, with
//! `--insecure`, in place of it.
//!
//! `--tlsv1.2` and `--tlsv1.3` set the lowest TLS version and `--tls-max
//! 1.2|1.3` the highest, as curl's options do (by default, 1.2 to 1.3).
//! When the server and getslash find no version, cipher suite, group or
//! signature algorithm in common, the error line says who refused what and
//! names the GnuTLS priority string in force.
//!
//! `--proxy` goes through an HTTP CONNECT (`http://[user:pass@]host:port`) or
//! SOCKS5 (`socks5://…`, `socks5h://…` for names resolved by the proxy)
//! proxy; without it, `https_proxy`/`HTTPS_PROXY`, `all_proxy` and
//! `no_proxy` are honoured as curl does.
//!
//! Without a URL it starts an HTTPS server on 127.0.0.1 in the same reactor,
//! with the test certificates from `ca/`, and fetches `/` from it, verified
//! against the test CA: a self-contained demonstration that needs no network.
//!
//! `RUST_LOG=debug` shows the connection and handshake steps
//! (`RUST_LOG=trace` adds GnuTLS's own log).

use std::fs::File;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use sslsocket::{
    Context, Error, PeerVerifyMode, Proxy, Reactor, SocketId, SslConfiguration, SslError,
    SslErrorKind, SslProtocol, SslSocket,
};

const TEST_CA: &[u8] = include_bytes!("../ca/root-ca.pem");
const TEST_SERVER_CHAIN: &[u8] = include_bytes!("../ca/server.pem");
const TEST_SERVER_KEY: &[u8] = include_bytes!("../ca/server.key");
const EMBEDDED_PAGE: &str = "<!DOCTYPE html>\n<html><body><h1>Hello from sslsocket</h1>\n\
<p>This page was served over TLS by an SslServer and fetched by an SslSocket, both in one reactor.</p>\n\
</body></html>\n";

const USAGE: &str =
    "usage: getslash [--cafile FILE] [--insecure] [--pinnedpubkey PINS] [--tlsv1.2|--tlsv1.3] \
[--tls-max VERSION] [--timeout SECS] [--proxy URL] [-i] [-o FILE] [URL]";

const HELP: &str = "\
Fetches an https:// URL and writes the response body to stdout; without a
URL, fetches / from an HTTPS server it starts on 127.0.0.1 itself.

  --cafile FILE      trust only the CA certificates in FILE
  -k, --insecure     do not verify the server's certificate
  --pinnedpubkey PINS  accept only these public keys: sha256//BASE64[;...]
                     (with -k, only the key is checked)
  --tlsv1.2, --tlsv1.3  use this TLS version or a later one (default 1.2)
  --tls-max VERSION  use at most TLS VERSION: 1.2 or 1.3 (default 1.3)
  --timeout SECS     give up after SECS seconds in all (default 60; 0: never)
  -x, --proxy URL    http://[user:pass@]host:port, socks5://... or socks5h://...
  -i, --include      print the status line and headers too (also of 1xx responses)
  -o, --output FILE  write to FILE instead of stdout
  -h, --help         print this help

Exit status: 0 when the whole response arrived, 1 when not, 2 for bad usage.
";

/// How much of the response one read takes from the socket.
const READ_CHUNK: usize = 64 * 1024;

/// How long the server may keep the connection open after a complete
/// response before getslash closes it and exits 0.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long a fetch may take in all, unless `--timeout` says otherwise.
const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(60);

/// The longest `--timeout` accepted, in seconds (about 31 years).
const MAX_TIME_LIMIT_SECS: f64 = 1e9;

fn main() -> ExitCode {
    env_logger::init();
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("getslash: {message}");
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if options.help {
        print!("{USAGE}\n\n{HELP}");
        return ExitCode::SUCCESS;
    }
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("getslash: {message}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    cafile: Option<PathBuf>,
    insecure: bool,
    /// The server's public key pins, as curl's `--pinnedpubkey` takes them.
    pins: Option<String>,
    /// The lowest and highest TLS versions.
    tls_min: SslProtocol,
    tls_max: SslProtocol,
    /// `None`: no time limit.
    timeout: Option<Duration>,
    include_headers: bool,
    output: Option<PathBuf>,
    proxy: Option<String>,
    url: Option<String>,
    help: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Options {
            cafile: None,
            insecure: false,
            pins: None,
            tls_min: SslProtocol::TlsV1_2,
            tls_max: SslProtocol::TlsV1_3,
            timeout: Some(DEFAULT_TIME_LIMIT),
            include_headers: false,
            output: None,
            proxy: None,
            url: None,
            help: false,
        };
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--cafile" => options.cafile = Some(value("--cafile")?.into()),
                "--insecure" | "-k" => options.insecure = true,
                "--pinnedpubkey" => options.pins = Some(value("--pinnedpubkey")?),
                "--tlsv1.2" => options.tls_min = SslProtocol::TlsV1_2,
                "--tlsv1.3" => options.tls_min = SslProtocol::TlsV1_3,
                "--tls-max" => options.tls_max = tls_version(&value("--tls-max")?)?,
                "--timeout" => options.timeout = time_limit(&value("--timeout")?)?,
                "-i" | "--include" => options.include_headers = true,
                "-o" | "--output" => options.output = Some(value("-o")?.into()),
                "--proxy" | "-x" => options.proxy = Some(value("--proxy")?),
                "-h" | "--help" => options.help = true,
                _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
                _ if options.url.is_none() => options.url = Some(arg),
                _ => return Err("only one URL, please".into()),
            }
        }
        Ok(options)
    }
}

/// The value of `--tls-max`.
fn tls_version(text: &str) -> Result<SslProtocol, String> {
    match text {
        "1.2" => Ok(SslProtocol::TlsV1_2),
        "1.3" => Ok(SslProtocol::TlsV1_3),
        _ => Err(format!("--tls-max takes 1.2 or 1.3, not {text:?}")),
    }
}

/// The value of `--timeout`: seconds, `None` for 0 (no limit).
fn time_limit(text: &str) -> Result<Option<Duration>, String> {
    let secs = text
        .parse::<f64>()
        .ok()
        .filter(|secs| (0.0..=MAX_TIME_LIMIT_SECS).contains(secs))
        .ok_or_else(|| {
            format!("--timeout needs seconds, from 0 (no limit) to {MAX_TIME_LIMIT_SECS:e}, not {text:?}")
        })?;
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
}

/// `https://HOST[:PORT][/PATH]`.
struct Url {
    host: String,
    port: u16,
    path: String,
}

impl Url {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("only https:// URLs are supported: {url}"))?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let path = path.split('#').next().unwrap_or("/").to_owned();
        let (host, port) =
            split_host_port(authority).ok_or_else(|| format!("bad host or port in {url}"))?;
        Ok(Url { host, port, path })
    }

    /// The `Host` header value.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn split_host_port(authority: &str) -> Option<(String, u16)> {
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        (&rest[..end], rest[end + 1..].strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok().filter(|&p| p != 0)?,
        None => 443,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

fn run(options: &Options) -> Result<(), String> {
    let mut reactor = Reactor::new().map_err(|e| format!("cannot create the reactor: {e}"))?;
    let (url, config, proxy) = match &options.url {
        Some(url) => {
            let url = Url::parse(url)?;
            let proxy = proxy_for(options, &url.host)?;
            let config = client_configuration(options, &url.host)?;
            (url, config, proxy)
        }
        None => {
            let (url, config) = embedded_server(&mut reactor)?;
            (url, config, None)
        }
    };
    let output: Box<dyn Write> = match &options.output {
        Some(path) => Box::new(
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let id = reactor.ssl_socket(config);
    let fetch = Fetch::new(output, options.include_headers);
    let socket = reactor.socket(id).expect("just created");
    if let Some(proxy) = proxy {
        log::info!("connecting through {proxy}");
        socket.set_proxy(Some(proxy));
    }
    if options.insecure && options.pins.is_some() {
        accept_only_the_pin(socket);
    }
    start_fetch(socket, &url, fetch)?;
    match options.timeout {
        Some(timeout) => log::info!("time limit: {timeout:?}"),
        None => log::info!("no time limit"),
    }
    if let Some(timeout) = options.timeout {
        reactor.start_timer(timeout, move |cx, _| {
            if let Some(socket) = cx.socket(id) {
                fetch_of(socket).time_out(timeout);
            }
            end(cx, id);
        });
    }
    reactor.run().map_err(|e| format!("reactor: {e}"))?;
    let socket = reactor.socket(id).expect("the client socket stays");
    fetch_of(socket).conclude()
}

/// The fetch the client socket holds.
fn fetch_of(socket: &mut SslSocket) -> &mut Fetch {
    socket
        .user_data::<Fetch>()
        .expect("the client socket holds the fetch")
}

/// From a timer: closes the client socket and stops the reactor.
fn end(cx: &mut Context, id: SocketId) {
    if let Some(socket) = cx.socket(id) {
        socket.abort();
    }
    cx.quit();
}

/// The response is complete. The server, asked for `Connection: close`,
/// should close now, and whatever it sends before is an error; one that
/// keeps the connection open is given [`CLOSE_GRACE`].
fn await_close(cx: &mut Context, id: SocketId) {
    cx.start_timer(CLOSE_GRACE, move |cx, _| {
        log::info!("the server keeps the connection open after the response");
        end(cx, id);
    });
}

/// `--proxy`, or else the environment's proxy for this host.
fn proxy_for(options: &Options, host: &str) -> Result<Option<Proxy>, String> {
    match &options.proxy {
        Some(url) => Proxy::parse(url).map(Some),
        None => Proxy::from_env("https", host),
    }
    .map_err(|e| e.to_string())
}

fn client_configuration(options: &Options, host: &str) -> Result<SslConfiguration, String> {
    let mut builder = SslConfiguration::builder().protocols(options.tls_min, options.tls_max);
    if let Some(cafile) = &options.cafile {
        builder = builder
            .system_ca_certificates(false)
            .add_ca_certificates_file(cafile);
    }
    match &options.pins {
        Some(pins) => builder = builder.pin_public_keys(host, [pins]),
        // With pins, --insecure keeps verification on and ignores all but
        // the pin (see `accept_only_the_pin`).
        None if options.insecure => builder = builder.peer_verify_mode(PeerVerifyMode::VerifyNone),
        None => {}
    }
    builder.build().map_err(|e| e.to_string())
}

/// `--insecure` with pins, as curl does: the server's key must be pinned,
/// and nothing else of its certificate matters.
fn accept_only_the_pin(socket: &mut SslSocket) {
    socket.ssl_errors().connect(|s, _, errors| {
        let others: Vec<SslError> = errors
            .iter()
            .filter(|e| e.kind() != SslErrorKind::PublicKeyPinMismatch)
            .cloned()
            .collect();
        s.ignore_ssl_errors(&others);
    });
}

/// Wires the client socket: the request is written at once (it is queued
/// until the connection is encrypted), the response parsed as it arrives.
fn start_fetch(socket: &mut SslSocket, url: &Url, fetch: Fetch) -> Result<(), String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: getslash (sslsocket)\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path,
        url.authority()
    );
    socket.set_user_data(fetch);
    socket
        .write(request.as_bytes())
        .map_err(|e| e.to_string())?;
    socket.handshake_complete().connect(|s, _, _| {
        log::info!(
            "connected: {:?}, {}",
            s.protocol(),
            s.session_cipher().unwrap_or_default()
        );
    });
    // The slot's own buffer, reused for every read: the response streams
    // through it without an allocation per event.
    let mut buffer = vec![0; READ_CHUNK];
    socket.ready_read().connect(move |s, cx, _| {
        let was_complete = fetch_of(s).response.is_complete();
        while let Ok(n @ 1..) = s.read(&mut buffer) {
            fetch_of(s).receive(&buffer[..n]);
        }
        let fetch = fetch_of(s);
        if fetch.failure.is_some() {
            s.abort();
            cx.quit();
        } else if fetch.response.is_complete() && !was_complete {
            await_close(cx, s.id());
        }
    });
    socket.read_channel_finished().connect(|s, cx, _| {
        fetch_of(s).peer_finished();
        s.abort();
        cx.quit();
    });
    socket.error_occurred().connect(|s, cx, error: &Error| {
        fetch_of(s).connection_failed(error);
        cx.quit();
    });
    socket.disconnected().connect(|_, cx, _| cx.quit());
    socket
        .connect_to_host_encrypted(&url.host, url.port)
        .map_err(|e| e.to_string())
}

/// The response as it arrives, where the body goes, and why the fetch
/// failed once it did. It succeeds when the response is complete and nothing
/// else came before the connection ended.
struct Fetch {
    output: Box<dyn Write>,
    include_headers: bool,
    response: Response,
    failure: Option<String>,
}

impl Fetch {
    fn new(output: Box<dyn Write>, include_headers: bool) -> Self {
        Self {
            output,
            include_headers,
            response: Response::default(),
            failure: None,
        }
    }

    fn receive(&mut self, data: &[u8]) {
        if self.failure.is_some() {
            return;
        }
        if let Err(message) = self
            .response
            .feed(data, &mut self.output, self.include_headers)
        {
            self.fail(message);
        }
    }

    /// The server sent `close_notify`: a close-delimited body is complete.
    fn peer_finished(&mut self) {
        if !self.response.end_at_close() {
            self.fail("the server closed the connection before the response was complete".into());
        }
    }

    /// The connection failed: the fetch too, unless the response was
    /// complete (its end was known from its framing, so a TCP close without
    /// `close_notify` or a reset afterwards takes nothing from it).
    fn connection_failed(&mut self, error: &Error) {
        if self.response.is_complete() {
            log::info!("after the complete response: {error}");
        } else {
            self.fail(error.to_string());
        }
    }

    fn time_out(&mut self, limit: Duration) {
        if !self.response.is_complete() {
            self.fail(format!("timed out after {limit:?}"));
        }
    }

    fn fail(&mut self, message: String) {
        if self.failure.is_none() {
            self.failure = Some(message);
        }
    }

    /// The result, once the connection is over.
    fn conclude(&mut self) -> Result<(), String> {
        if let Some(message) = self.failure.take() {
            return Err(message);
        }
        if !self.response.is_complete() {
            return Err("the connection ended before the response was complete".into());
        }
        self.output
            .flush()
            .map_err(|e| format!("cannot write the output: {e}"))
    }
}

/// An incremental HTTP/1.1 response parser: head, then a body delimited by
/// `Content-Length`, chunked encoding, or the end of the connection.
#[derive(Default)]
struct Response {
    head: Vec<u8>,
    body: Option<Body>,
}

enum Body {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

enum Chunked {
    Size(Vec<u8>),
    Data(u64),
    DataEnd(u8),
    /// The trailer section: the line so far, and the size of those before.
    Trailer(Vec<u8>, usize),
}

/// The largest response head, chunk line or trailer section accepted.
const MAX_HEAD: usize = 64 * 1024;

impl Response {
    /// Consumes `data`, writing what should be output to `out` as it goes
    /// (the body in place, without collecting it first). Bytes after a
    /// complete response are an error.
    fn feed(
        &mut self,
        mut data: &[u8],
        out: &mut dyn Write,
        include_headers: bool,
    ) -> Result<(), String> {
        while self.body.is_none() {
            let Some(rest) = self.read_head(data, out, include_headers)? else {
                return Ok(());
            };
            data = rest;
        }
        while !data.is_empty() || matches!(self.body, Some(Body::Length(0))) {
            let body = self.body.as_mut().expect("head parsed");
            match body {
                Body::Length(0) => {
                    *body = Body::Done;
                }
                Body::Length(left) => {
                    let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    output(out, &data[..n])?;
                    *left -= n as u64;
                    data = &data[n..];
                }
                Body::UntilClose => {
                    output(out, data)?;
                    data = &[];
                }
                Body::Chunked(state) => match feed_chunked(state, data, out)? {
                    Some(rest) => {
                        *body = Body::Done;
                        data = rest;
                    }
                    None => data = &[],
                },
                Body::Done => return Err("the server sent more than the response".into()),
            }
        }
        Ok(())
    }

    /// Reads a response head from `data`; returns the rest of `data` once
    /// the head is complete. An interim (1xx) response is skipped: its head
    /// is read and the body stays unknown until the final one.
    fn read_head<'a>(
        &mut self,
        data: &'a [u8],
        out: &mut dyn Write,
        include: bool,
    ) -> Result<Option<&'a [u8]>, String> {
        let old = self.head.len();
        self.head.extend_from_slice(data);
        let head_len = head_length(&self.head, old);
        if head_len.unwrap_or(self.head.len()) > MAX_HEAD {
            return Err("the response head is too long".into());
        }
        let Some(head_len) = head_len else {
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&self.head[..head_len]).into_owned();
        if include {
            output(out, &self.head[..head_len])?;
        }
        self.body = parse_head(&head)?;
        self.head.clear();
        Ok(Some(&data[head_len - old..]))
    }

    fn is_complete(&self) -> bool {
        matches!(self.body, Some(Body::Done))
    }

    /// The server closed with `close_notify`, which completes a
    /// close-delimited body; returns whether the response is complete.
    fn end_at_close(&mut self) -> bool {
        if matches!(self.body, Some(Body::UntilClose)) {
            self.body = Some(Body::Done);
        }
        self.is_complete()
    }
}

/// The length of the head at the start of `buffer`, through the empty line
/// that ends it, once that has arrived; the first `searched` bytes were
/// searched before. A line may end in LF alone: RFC 9112 §2.2 lets a
/// recipient take it for a line end, and servers that send it exist.
fn head_length(buffer: &[u8], searched: usize) -> Option<usize> {
    let start = searched.saturating_sub(2);
    (start..buffer.len())
        .filter(|&i| buffer[i] == b'\n')
        .find_map(|i| match &buffer[i + 1..] {
            [b'\n', ..] => Some(i + 2),
            [b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        })
}

/// The lines of a head, each without its LF or CRLF; a CR anywhere else is
/// refused (RFC 9112 §2.2).
fn head_lines(head: &str) -> Result<Vec<&str>, String> {
    head.split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            match line.contains('\r') {
                true => Err("a bare CR in the response head".to_owned()),
                false => Ok(line),
            }
        })
        .collect()
}

/// How the body of the response with this head is delimited; `None` for an
/// interim response (1xx), which has no body and is followed by another.
fn parse_head(head: &str) -> Result<Option<Body>, String> {
    let mut lines = head_lines(head)?.into_iter();
    let (minor_version, status) = status_line(lines.next().unwrap_or_default())?;
    let fields = header_fields(lines)?;
    match status {
        101 => Err("the server switched protocols (101), which a GET never asks for".into()),
        100..=199 => Ok(None),
        204 | 304 => Ok(Some(Body::Done)),
        _ => body_framing(minor_version, &fields).map(Some),
    }
}

/// `HTTP/1.DIGIT SP 3DIGIT [SP reason]`: the minor version and the status
/// code.
fn status_line(line: &str) -> Result<(u64, u16), String> {
    let bad = || format!("not an HTTP/1.x response: {line:?}");
    let (version, rest) = line.split_once(' ').ok_or_else(bad)?;
    let minor_version = version
        .strip_prefix("HTTP/1.")
        .filter(|minor| minor.len() == 1)
        .and_then(decimal)
        .ok_or_else(bad)?;
    let code = rest.split(' ').next().unwrap_or_default();
    let status = decimal(code)
        .filter(|status| code.len() == 3 && *status >= 100)
        .and_then(|status| u16::try_from(status).ok())
        .ok_or_else(bad)?;
    Ok((minor_version, status))
}

/// The header fields as `(name, value)` (RFC 9112 §5): the name is a token
/// right before the colon, the value loses the whitespace around it. A
/// line that starts with whitespace continues the previous field's value
/// (obsolete line folding, replaced by a space as §5.2 asks).
fn header_fields<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<(&'a str, String)>, String> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    for line in lines.filter(|line| !line.is_empty()) {
        let bad = || format!("bad header line {line:?}");
        if line.starts_with([' ', '\t']) {
            let (_, value) = fields.last_mut().ok_or_else(bad)?;
            value.push(' ');
            value.push_str(trim_whitespace(line));
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(name, _)| is_token(name))
            .ok_or_else(bad)?;
        fields.push((name, trim_whitespace(value).to_owned()));
    }
    Ok(fields)
}

/// How the body of a final response is delimited (RFC 9112 §6.3): chunked
/// when that is the last transfer coding, to the close for another coding;
/// else by `Content-Length`; else to the close. `Transfer-Encoding` with
/// `Content-Length`, or in an HTTP/1.0 response, is refused: a framing that
/// others could read differently (§6.1, §6.3).
fn body_framing(minor_version: u64, fields: &[(&str, String)]) -> Result<Body, String> {
    let values = |name: &'static str| {
        fields
            .iter()
            .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    let length = content_length(values("content-length"))?;
    let codings: Vec<&str> = values("transfer-encoding")
        .flat_map(|value| value.split(','))
        .map(trim_whitespace)
        .collect();
    let Some(last_coding) = codings.last() else {
        return Ok(length.map_or(Body::UntilClose, Body::Length));
    };
    if length.is_some() {
        return Err("the response has both Transfer-Encoding and Content-Length".into());
    }
    if minor_version == 0 {
        return Err("an HTTP/1.0 response with Transfer-Encoding".into());
    }
    Ok(match last_coding.eq_ignore_ascii_case("chunked") {
        true => Body::Chunked(Chunked::Size(Vec::new())),
        false => Body::UntilClose,
    })
}

/// The length the `Content-Length` fields give: each `1*DIGIT`, all equal.
fn content_length<'a>(values: impl Iterator<Item = &'a str>) -> Result<Option<u64>, String> {
    let mut length = None;
    for value in values {
        let n = decimal(value).ok_or_else(|| format!("bad Content-Length {value:?}"))?;
        if length.is_some_and(|l| l != n) {
            return Err("conflicting Content-Length headers".into());
        }
        length = Some(n);
    }
    Ok(length)
}

/// `1*DIGIT` as a number; `None` for anything else (a sign, a space) or a
/// number too large.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The size a chunk line gives, `chunk-size [ chunk-ext ]` (RFC 9112
/// §7.1): hex digits, then nothing, or extensions starting with `;` (after
/// optional whitespace).
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    let extensions = rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .map_or(&[][..], |i| &rest[i..]);
    if digits == 0 || !(rest.is_empty() || extensions.starts_with(b";")) {
        let line = String::from_utf8_lossy(line);
        return Err(format!("bad chunk size line {line:?}"));
    }
    line[..digits]
        .iter()
        .try_fold(0u64, |size, &digit| {
            let value = char::from(digit).to_digit(16)?;
            size.checked_mul(16)?.checked_add(u64::from(value))
        })
        .ok_or_else(|| {
            format!(
                "the chunk size {} is too large",
                String::from_utf8_lossy(&line[..digits])
            )
        })
}

fn is_token(text: &str) -> bool {
    let special = |b: u8| b"!#$%&'*+-.^_`|~".contains(&b);
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || special(b))
}

/// `text` without the spaces and tabs around it (HTTP's optional
/// whitespace).
fn trim_whitespace(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// Feeds chunked data; once the last chunk and the trailer section are
/// through, returns what follows them (`None` while they are not).
fn feed_chunked<'a>(
    state: &mut Chunked,
    mut data: &'a [u8],
    out: &mut dyn Write,
) -> Result<Option<&'a [u8]>, String> {
    while !data.is_empty() {
        match state {
            Chunked::Size(line) => {
                let Some(end) = take_line(line, &mut data, MAX_HEAD, "a chunk line")? else {
                    continue;
                };
                let size = chunk_size(&end)?;
                *state = if size == 0 {
                    Chunked::Trailer(Vec::new(), 0)
                } else {
                    Chunked::Data(size)
                };
            }
            Chunked::Data(left) => {
                let n = data.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                output(out, &data[..n])?;
                *left -= n as u64;
                data = &data[n..];
                if *left == 0 {
                    *state = Chunked::DataEnd(0);
                }
            }
            Chunked::DataEnd(seen) => {
                let expected = b"\r\n"[*seen as usize];
                if data[0] != expected {
                    return Err("a chunk does not end in CRLF".into());
                }
                data = &data[1..];
                *seen += 1;
                if *seen == 2 {
                    *state = Chunked::Size(Vec::new());
                }
            }
            Chunked::Trailer(line, size) => {
                let room = MAX_HEAD.saturating_sub(*size);
                let Some(end) = take_line(line, &mut data, room, "the trailer section")? else {
                    continue;
                };
                if end.is_empty() {
                    return Ok(Some(data));
                }
                *size += end.len() + 2;
            }
        }
    }
    Ok(None)
}

/// Writes `data` to the output.
fn output(out: &mut dyn Write, data: &[u8]) -> Result<(), String> {
    out.write_all(data)
        .map_err(|e| format!("cannot write the output: {e}"))
}

/// Moves bytes into `line` up to a CRLF; returns the line without it once
/// complete. A line longer than `limit` is an error: `what` is too long.
fn take_line(
    line: &mut Vec<u8>,
    data: &mut &[u8],
    limit: usize,
    what: &str,
) -> Result<Option<Vec<u8>>, String> {
    let end = data.iter().position(|&b| b == b'\n');
    let taken = end.unwrap_or(data.len());
    line.extend_from_slice(&data[..taken]);
    *data = &data[end.map_or(taken, |i| i + 1)..];
    if line.len() > limit {
        return Err(format!("{what} is too long"));
    }
    if end.is_none() {
        return Ok(None);
    }
    if line.pop() != Some(b'\r') {
        return Err("a chunk line does not end in CRLF".into());
    }
    Ok(Some(std::mem::take(line)))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Starts the embedded HTTPS server on 127.0.0.1 and returns the URL to
/// fetch from it and a client configuration that trusts only the test CA.
fn embedded_server(reactor: &mut Reactor) -> Result<(Url, SslConfiguration), String> {
    let server_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_local_certificate_pem(TEST_SERVER_CHAIN, TEST_SERVER_KEY, None)
        .build()
        .map_err(|e| e.to_string())?;
    let server = reactor
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), server_config)
        .map_err(|e| format!("cannot start the embedded server: {e}"))?;
    let server = reactor.server(server).expect("just created");
    let port = server.local_address().port();
    log::info!("embedded server listening on 127.0.0.1:{port}");
    server
        .new_connection()
        .connect(|_, cx, &id| serve_page(cx, id));
    let client_config = SslConfiguration::builder()
        .system_ca_certificates(false)
        .add_ca_certificates_data(TEST_CA)
        .build()
        .map_err(|e| e.to_string())?;
    let url = Url {
        host: "localhost".into(),
        port,
        path: "/".into(),
    };
    Ok((url, client_config))
}

/// The embedded server's side of one connection: read the request head,
/// answer with the page, close.
fn serve_page(cx: &mut Context, id: SocketId) {
    let Some(socket) = cx.socket(id) else { return };
    socket.set_user_data(Vec::<u8>::new());
    socket.ready_read().connect(|s, _, _| {
        let mut request = std::mem::take(s.user_data::<Vec<u8>>().expect("request buffer"));
        s.read_all_into(&mut request);
        let complete = find(&request, b"\r\n\r\n").is_some();
        *s.user_data::<Vec<u8>>().expect("request buffer") = request;
        if !complete {
            return;
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{EMBEDDED_PAGE}",
            EMBEDDED_PAGE.len()
        );
        if s.write(response.as_bytes()).is_ok() {
            s.disconnect_from_host();
        }
    });
    socket
        .error_occurred()
        .connect(|_, _, e| log::warn!("embedded server: {e}"));
}
