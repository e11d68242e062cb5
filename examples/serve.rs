//! serve: an HTTPS static-file server on sslsocket, like `openssl s_server -WWW`.
//!
//! ```text
//! serve --cert FILE --key FILE|PKCS11-URL [--pass PASSPHRASE|PIN] [--ca FILE [--require-client-cert]]
//!       [--listen ADDR:PORT] [--root DIR] [--request-timeout SECS]
//!       [--send-timeout SECS] [--max-connections N]
//! ```
//!
//! With the test certificates, from the repository's top folder:
//!
//! ```text
//! cargo run --example serve -- --cert ca/server.pem --key ca/server.key
//! curl --cacert ca/root-ca.pem https://localhost:8443/README.md
//! ```
//!
//! The key may stay on a PKCS#11 token (a smart card, an HSM): give its URL
//! as `--key` and the token's PIN as `--pass`, for example
//! `--key 'pkcs11:token=web;object=server;type=private' --pass 1234`
//! (`p11tool --list-privkeys --login` prints the URLs).
//!
//! It answers `GET` and `HEAD` with the files under `--root` (default: the
//! current folder), one request per connection (`Connection: close`), with a
//! `Content-Length` and a `Content-Type` guessed from the file's extension. A
//! folder serves its `index.html`. Nothing outside the root is served: `..`
//! (also percent-encoded) is refused, and a path must still lie inside the
//! root once symbolic links are resolved, checked again on the opened file
//! (so a link swapped into the path meanwhile leads nowhere outside). Only
//! regular files are served: a
//! file is opened without blocking and its type checked on the open handle,
//! so a FIFO or a device (even one renamed into place at the last moment) is
//! refused with 404 and never stalls the server. Files are streamed in
//! chunks: the next chunk is read when the socket's `bytes_written` signal
//! shows that the client took the previous ones, so a slow client costs no
//! more memory than a fast one. ALPN offers `http/1.1`.
//!
//! `--ca FILE` asks clients for a certificate issued by that CA (`QueryPeer`);
//! with `--require-client-cert` a client without a valid one is refused
//! (`VerifyPeer`).
//!
//! What a client can hold, and for how long, is bounded: the handshake and
//! the whole request head must arrive within `--request-timeout` seconds of
//! the connection (default 10; a deadline, not an idle timeout, so dripping
//! bytes does not extend it); a client that takes none of the response for
//! `--send-timeout` seconds is cut (default 30); at most `--max-connections`
//! connections are served at once (default 1000), the others wait in the
//! kernel's backlog; when the process runs out of descriptors the server
//! retries accepting on its own. The closing goodbye waits 2 s at most.
//!
//! The first line on stdout is the address the server listens on (handy with
//! `--listen 127.0.0.1:0`). Then each request logs one line on stderr: peer,
//! method, path, status, body bytes sent, and the client certificate's common
//! name when there is one; failed connections log the error. If the server
//! cannot start (unreadable certificate or key, wrong passphrase or PIN,
//! address in use) it prints one line on stderr and exits 1; bad usage
//! exits 2.
//! `RUST_LOG=debug` shows the library's log.

use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use sslsocket::{Context, PeerVerifyMode, Reactor, SocketId, SslConfiguration, SslSocket};

const USAGE: &str = "usage: serve --cert FILE --key FILE|PKCS11-URL [--pass PASSPHRASE|PIN] \
[--ca FILE [--require-client-cert]] [--listen ADDR:PORT] [--root DIR] \
[--request-timeout SECS] [--send-timeout SECS] [--max-connections N]";

/// The longest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;

/// How much of a file is read at a time.
const CHUNK: usize = 64 * 1024;

/// A socket holding less than this much unsent data gets the next chunk.
const LOW_WATER: u64 = 256 * 1024;

/// How long a client may take, from its connection, to complete the
/// handshake and send its whole request head (`--request-timeout`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take none of the response (`--send-timeout`).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections are served at once (`--max-connections`).
const MAX_CONNECTIONS: usize = 1000;

fn main() -> ExitCode {
    env_logger::init();
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("serve: {message}");
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("serve: {message}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    cert: PathBuf,
    key: PathBuf,
    passphrase: Option<String>,
    ca: Option<PathBuf>,
    require_client_cert: bool,
    listen: SocketAddr,
    root: PathBuf,
    request_timeout: Duration,
    send_timeout: Duration,
    max_connections: usize,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let (mut cert, mut key, mut passphrase, mut ca) = (None, None, None, None);
        let mut require_client_cert = false;
        let mut listen = SocketAddr::from(([127, 0, 0, 1], 8443));
        let mut root = PathBuf::from(".");
        let (mut request_timeout, mut send_timeout) = (REQUEST_TIMEOUT, SEND_TIMEOUT);
        let mut max_connections = MAX_CONNECTIONS;
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--cert" => cert = Some(PathBuf::from(value()?)),
                "--key" => key = Some(PathBuf::from(value()?)),
                "--pass" => passphrase = Some(value()?),
                "--ca" => ca = Some(PathBuf::from(value()?)),
                "--require-client-cert" => require_client_cert = true,
                "--listen" => {
                    let text = value()?;
                    listen = text.parse().map_err(|_| {
                        format!("--listen needs ADDR:PORT with a numeric address, not {text:?}")
                    })?;
                }
                "--root" => root = PathBuf::from(value()?),
                "--request-timeout" => request_timeout = seconds(&arg, &value()?)?,
                "--send-timeout" => send_timeout = seconds(&arg, &value()?)?,
                "--max-connections" => {
                    let text = value()?;
                    max_connections = text.parse().ok().filter(|&n| n > 0).ok_or(format!(
                        "--max-connections needs a positive count, not {text:?}"
                    ))?;
                }
                _ => return Err(format!("unexpected argument {arg:?}")),
            }
        }
        if require_client_cert && ca.is_none() {
            return Err("--require-client-cert needs --ca".into());
        }
        Ok(Options {
            cert: cert.ok_or("--cert is required")?,
            key: key.ok_or("--key is required")?,
            passphrase,
            ca,
            require_client_cert,
            listen,
            root,
            request_timeout,
            send_timeout,
            max_connections,
        })
    }
}

/// A flag's number of seconds: positive, at most a day.
fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or(format!(
            "{flag} needs a number of seconds from 0 to 86400, not {text:?}"
        ))
}

fn run(options: Options) -> Result<(), String> {
    let root = served_root(&options.root)?;
    let config = configuration(&options)?;
    let mut reactor = Reactor::new().map_err(|e| format!("cannot create the reactor: {e}"))?;
    let server = reactor
        .listen(options.listen, config)
        .map_err(|e| e.to_string())?;
    let server = reactor.server(server).expect("just created");
    announce(server.local_address())?;
    // The request deadline covers the handshake too.
    server.set_handshake_timeout(Some(options.request_timeout));
    server.set_send_timeout(Some(options.send_timeout));
    server.set_max_connections(Some(options.max_connections));
    let request_timeout = options.request_timeout;
    server
        .new_connection()
        .connect(move |_, cx, &id| accept(cx, id, &root, request_timeout));
    server
        .accept_error()
        .connect(|_, _, e| log_line(format_args!("accept failed: {e}")));
    reactor.run().map_err(|e| format!("reactor: {e}"))
}

/// The root folder, with symbolic links resolved (paths are checked against
/// this form).
fn served_root(root: &Path) -> Result<PathBuf, String> {
    let resolved = root
        .canonicalize()
        .map_err(|e| format!("cannot serve {}: {e}", root.display()))?;
    if !resolved.is_dir() {
        return Err(format!("cannot serve {}: not a folder", root.display()));
    }
    Ok(resolved)
}

fn configuration(options: &Options) -> Result<SslConfiguration, String> {
    let builder = SslConfiguration::builder()
        .system_ca_certificates(false)
        .alpn_protocols(["http/1.1"]);
    let pass = options.passphrase.as_deref();
    let mut builder = match options.key.to_str().filter(|k| k.starts_with("pkcs11:")) {
        Some(url) => builder.add_local_certificate_pkcs11(&options.cert, url, pass),
        None => builder.add_local_certificate_files(&options.cert, &options.key, pass),
    };
    builder = match &options.ca {
        None => builder.peer_verify_mode(PeerVerifyMode::VerifyNone),
        Some(ca) => builder.add_ca_certificates_file(ca).peer_verify_mode(
            match options.require_client_cert {
                true => PeerVerifyMode::VerifyPeer,
                false => PeerVerifyMode::QueryPeer,
            },
        ),
    };
    let config = builder.build().map_err(|e| e.to_string())?;
    // A token key without --pass: the handshakes would wait for a PIN
    // nobody gives.
    match config.pin_requests().first() {
        Some(request) => Err(format!(
            "the key on PKCS#11 token {:?} needs its PIN: give it with --pass",
            request.token_label()
        )),
        None => Ok(config),
    }
}

/// Prints the listening address as stdout's first line.
fn announce(address: SocketAddr) -> Result<(), String> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{address}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// One line on stderr; a closed stderr is no reason to stop serving.
fn log_line(line: std::fmt::Arguments) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Wires a new connection: its exchange lives in the socket's user data,
/// and its request head must arrive before `request_timeout`.
fn accept(cx: &mut Context, id: SocketId, root: &Path, request_timeout: Duration) {
    let Some(socket) = cx.socket(id) else { return };
    let peer = socket
        .peer_address()
        .map_or_else(|| "?".to_owned(), |a| a.to_string());
    socket.set_user_data(Exchange::new(root.to_owned(), peer));
    socket.set_deadline(Some(request_timeout));
    socket.handshake_complete().connect(|s, _, _| {
        let name = s.peer_certificate().and_then(|c| c.subject_common_name());
        exchange(s).client_name = name;
    });
    socket.ready_read().connect(|s, _, _| on_ready_read(s));
    socket.bytes_written().connect(|s, _, &n| {
        if let Some(response) = &mut exchange(s).response {
            response.written += n;
        }
        send_body(s);
    });
    socket
        .error_occurred()
        .connect(|s, _, e| log_line(format_args!("{} error: {e}", exchange(s).peer)));
    socket.disconnected().connect(|s, _, _| exchange(s).log());
}

fn exchange(socket: &mut SslSocket) -> &mut Exchange {
    socket
        .user_data::<Exchange>()
        .expect("every connection has an exchange")
}

/// One connection: the request as it arrives, then the response.
struct Exchange {
    root: PathBuf,
    peer: String,
    client_name: Option<String>,
    head: Vec<u8>,
    response: Option<Response>,
}

/// The response being sent, and what the log line says about it.
struct Response {
    method: String,
    target: String,
    status: Status,
    head_len: u64,
    /// Plaintext bytes the socket handed to the network (head included).
    written: u64,
    /// The body still to send.
    body: Option<Body>,
}

impl Exchange {
    fn new(root: PathBuf, peer: String) -> Self {
        Exchange {
            root,
            peer,
            client_name: None,
            head: Vec::new(),
            response: None,
        }
    }

    /// Prints the request's log line (when a request was answered).
    fn log(&self) {
        let Some(r) = &self.response else { return };
        let body = r.written.saturating_sub(r.head_len);
        let name = match &self.client_name {
            Some(name) => format!(" cn={name:?}"),
            None => String::new(),
        };
        log_line(format_args!(
            "{} {} {} {} {body}{name}",
            self.peer,
            r.method,
            r.target,
            r.status.code()
        ));
    }
}

fn on_ready_read(s: &mut SslSocket) {
    if exchange(s).response.is_some() {
        s.skip(s.bytes_available());
        return; // one request per connection: the rest is ignored
    }
    let mut head = std::mem::take(&mut exchange(s).head);
    s.read_all_into(&mut head);
    let current = exchange(s);
    current.head = head;
    let Some(request) = request_head(&current.head) else {
        return;
    };
    let (response, head) = respond(&current.root, request);
    current.response = Some(response);
    s.set_deadline(None);
    match s.write(&head) {
        Ok(_) => send_body(s),
        Err(e) => log_line(format_args!("{} cannot answer: {e}", exchange(s).peer)),
    }
}

/// Tops the socket's queue up from the file, and closes once all is queued.
fn send_body(s: &mut SslSocket) {
    let Some(response) = &mut exchange(s).response else {
        return;
    };
    // Out of the exchange while the socket takes its chunks.
    let mut body = response.body.take();
    while s.bytes_to_write() < LOW_WATER {
        let Some(rest) = &mut body else {
            s.disconnect_from_host();
            return;
        };
        match rest.next_chunk() {
            Ok(chunk) => {
                if s.write(chunk).is_err() {
                    return;
                }
            }
            Err(e) => {
                log_line(format_args!(
                    "{} cannot read the file: {e}",
                    exchange(s).peer
                ));
                s.abort();
                return;
            }
        }
        if rest.left == 0 {
            body = None;
        }
    }
    if let Some(response) = &mut exchange(s).response {
        response.body = body;
    }
}

/// The rest of a file to send as a body, read through one buffer that
/// every chunk reuses.
struct Body {
    file: File,
    /// Bytes of the file still to send.
    left: u64,
    chunk: Vec<u8>,
}

impl Body {
    fn new(file: File, length: u64) -> Self {
        Body {
            file,
            left: length,
            chunk: Vec::new(),
        }
    }

    /// The next piece of the file (at most [`CHUNK`] bytes, never none
    /// while some is left).
    fn next_chunk(&mut self) -> io::Result<&[u8]> {
        let wanted = usize::try_from(self.left).map_or(CHUNK, |left| left.min(CHUNK));
        self.chunk.resize(wanted, 0);
        let n = self.file.read(&mut self.chunk)?;
        if n == 0 {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "the file shrank"));
        }
        self.left -= n as u64;
        Ok(&self.chunk[..n])
    }
}

/// A parsed request line.
struct Request {
    method: String,
    target: String,
}

/// The request once its head is complete (`None` while it is not), or the
/// error status it deserves.
fn request_head(head: &[u8]) -> Option<Result<Request, Status>> {
    let end = find(head, b"\r\n\r\n").or_else(|| find(head, b"\n\n"));
    match end {
        Some(end) if end <= MAX_HEAD => Some(request_line(&head[..end])),
        None if head.len() <= MAX_HEAD => None,
        _ => Some(Err(Status::BadRequest)),
    }
}

/// `METHOD TARGET HTTP/1.x`, with a target in visible ASCII.
fn request_line(head: &[u8]) -> Result<Request, Status> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).map_err(|_| Status::BadRequest)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let visible = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !token(method) || !visible(target) || !version.starts_with("HTTP/1.") {
        return Err(Status::BadRequest);
    }
    Ok(Request {
        method: method.to_owned(),
        target: target.to_owned(),
    })
}

/// Builds the response to a request: its record (holding the file to
/// stream, if any) and the bytes to write first (the head, and for errors
/// a one-line body).
fn respond(root: &Path, request: Result<Request, Status>) -> (Response, Vec<u8>) {
    let (method, target, file) = match request {
        Ok(r) => {
            let file = match r.method.as_str() {
                "GET" | "HEAD" => open(root, &r.target),
                _ => Err(Status::MethodNotAllowed),
            };
            (r.method, r.target, file)
        }
        Err(status) => ("-".to_owned(), "-".to_owned(), Err(status)),
    };
    let send_body = method != "HEAD";
    let (status, mut bytes, text, body) = match file {
        Ok((file, length, content_type)) => {
            let head = response_head(Status::Ok, content_type, length);
            let body = (send_body && length > 0).then(|| Body::new(file, length));
            (Status::Ok, head, String::new(), body)
        }
        Err(status) => {
            let text = format!("{} {}\n", status.code(), status.reason());
            let head = response_head(status, "text/plain; charset=utf-8", text.len() as u64);
            (status, head, text, None)
        }
    };
    let head_len = bytes.len() as u64;
    if send_body {
        bytes.extend_from_slice(text.as_bytes());
    }
    let response = Response {
        method,
        target,
        status,
        head_len,
        written: 0,
        body,
    };
    (response, bytes)
}

fn response_head(status: Status, content_type: &str, length: u64) -> Vec<u8> {
    let allow = match status {
        Status::MethodNotAllowed => "Allow: GET, HEAD\r\n",
        _ => "",
    };
    format!(
        "HTTP/1.1 {} {}\r\nServer: sslsocket-serve\r\nContent-Type: {content_type}\r\n\
         Content-Length: {length}\r\n{allow}Connection: close\r\n\r\n",
        status.code(),
        status.reason()
    )
    .into_bytes()
}

/// Opens the regular file `target` names under `root` (a folder stands for
/// its `index.html`): the file, its length and its content type.
///
/// The type is checked on the opened handle, never on the path before
/// opening it: something else renamed into place in between is what gets
/// checked, and refused unless it is a regular file.
fn open(root: &Path, target: &str) -> Result<(File, u64, &'static str), Status> {
    let mut path = resolve(root, target)?;
    let mut file = open_inside(root, &path)?;
    if metadata(&file)?.is_dir() {
        path = inside(root, &path.join("index.html"))?;
        file = open_inside(root, &path)?;
    }
    let metadata = metadata(&file)?;
    if !metadata.is_file() {
        return Err(Status::NotFound);
    }
    Ok((file, metadata.len(), content_type(&path)))
}

/// Opens `path` (checked to lie under `root`) for reading with
/// `O_NONBLOCK`, so that opening a FIFO does not wait for a writer (and
/// stall every connection of the reactor); reading a regular file is not
/// affected by the flag. `O_NOCTTY`: a terminal device is never made the
/// controlling terminal.
///
/// The check is made again on the opened handle: the kernel's name for it
/// (`/proc/self/fd/N`) must lie under `root`, so a folder on the path
/// swapped for a symbolic link to elsewhere between the check and the
/// open is refused, not followed out of the root.
fn open_inside(root: &Path, path: &Path) -> Result<File, Status> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| status_of(&e))?;
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| status_of(&e))?;
    match opened.starts_with(root) {
        true => Ok(file),
        false => Err(Status::Forbidden),
    }
}

/// What `fstat` says about the opened file.
fn metadata(file: &File) -> Result<Metadata, Status> {
    file.metadata().map_err(|e| status_of(&e))
}

/// The path `target` names: percent-decoded, query ignored, `..` refused,
/// symbolic links resolved and the result checked to lie under `root`.
fn resolve(root: &Path, target: &str) -> Result<PathBuf, Status> {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(Status::BadRequest);
    }
    let decoded = percent_decode(path).ok_or(Status::BadRequest)?;
    let mut joined = root.to_path_buf();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return Err(Status::Forbidden),
            _ if segment.contains(&0) => return Err(Status::BadRequest),
            _ => joined.push(OsStr::from_bytes(segment)),
        }
    }
    inside(root, &joined)
}

/// `path` with symbolic links resolved, if that lies under `root`.
fn inside(root: &Path, path: &Path) -> Result<PathBuf, Status> {
    let resolved = path.canonicalize().map_err(|e| status_of(&e))?;
    match resolved.starts_with(root) {
        true => Ok(resolved),
        false => Err(Status::Forbidden),
    }
}

/// `%XX` escapes decoded; `None` for a malformed escape.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(OsStr::to_str).unwrap_or_default();
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn status_of(error: &io::Error) -> Status {
    match error.kind() {
        ErrorKind::PermissionDenied => Status::Forbidden,
        _ => Status::NotFound,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
}

impl Status {
    fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
