//! `std::io` for [`SslSocket`]: `Read`, `BufRead` and `Write` over the
//! socket's buffers, for code written against the standard traits.
//!
//! Nothing here blocks or does network I/O except `Write::flush`, which
//! writes what the network takes now (as [`SslSocket::flush`] does): an empty
//! read buffer on an open connection is `WouldBlock`, to be retried after the
//! next `ready_read`; a connection that ended reads as end of file.
//! [`BufRead::fill_buf`] hands out the received plaintext in place, so a
//! program can process it without copying it out first.
//!
//! The standard provided methods that read until something arrives
//! (`read_until`, `read_line`, `read_exact`, and so `lines` and `split`)
//! would move a partial piece into the caller's buffer before reporting
//! `WouldBlock`, where a slot that drops its buffer loses it. They are
//! overridden here to take nothing until the whole piece is buffered;
//! `read_to_string` takes whole characters only (the standard one drops
//! everything it read when a character is split between two arrivals).

use std::io::{self, BufRead, ErrorKind, Read, Write};

use super::{SocketState, SslSocket};

impl SslSocket {
    /// Whether more plaintext may arrive: the connection is open and the
    /// peer did not finish sending.
    fn may_receive_more(&self) -> bool {
        self.state != SocketState::Unconnected && !self.close.peer_finished_reading()
    }

    /// `WouldBlock` while more data may come, end of file once the
    /// connection is over (or the peer finished sending).
    fn nothing_to_read(&self) -> io::Result<()> {
        if self.may_receive_more() {
            Err(ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    }

    /// `InvalidData` when a read waiting for more can never complete: the
    /// read buffer is full (see `set_read_buffer_size`), so nothing more
    /// is read from the network until the program takes some.
    fn full_buffer(&self, waiting_for: &str) -> Option<io::Error> {
        let limit = self.read_buffer_size;
        (limit > 0 && self.read_buffer.len() >= limit).then(|| {
            io::Error::new(
                ErrorKind::InvalidData,
                format!("{waiting_for}, but the read buffer holds at most {limit} bytes"),
            )
        })
    }

    /// How many buffered bytes `read_until(delimiter)` takes: through the
    /// delimiter, or at the end of the stream all that is left. `WouldBlock`
    /// while the piece is incomplete; an error when it cannot complete
    /// because the read buffer is full (see `set_read_buffer_size`).
    fn piece_length(&self, delimiter: u8) -> io::Result<usize> {
        if let Some(length) = self.length_through(delimiter) {
            return Ok(length);
        }
        if !self.may_receive_more() {
            return Ok(self.read_buffer.len());
        }
        match self.full_buffer("no delimiter in the buffered bytes") {
            Some(full) => Err(full),
            None => Err(ErrorKind::WouldBlock.into()),
        }
    }
}

/// `read` returns what is buffered; on an empty buffer, `WouldBlock` while
/// the connection is open (retry after the next `ready_read`), `Ok(0)` once
/// it ended. `read_exact` takes nothing until enough is buffered.
///
/// `read_to_end` and `read_to_string` keep the standard contract: they
/// move what is buffered into the caller's buffer and, while the connection
/// is open, then return `WouldBlock`: keep that buffer for the next call, or
/// use [`SslSocket::read_all`]. `read_to_string` moves whole characters
/// only: a character split between two arrivals waits in the socket for
/// its end; bytes that are not UTF-8 are left in the socket and reported
/// as `InvalidData`.
impl Read for SslSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read_buffer.is_empty() && !buf.is_empty() {
            self.nothing_to_read()?;
            return Ok(0);
        }
        Ok(self.read_buffer.take_into(buf))
    }

    /// Fills `buf` if that much is buffered; otherwise takes nothing and
    /// returns `WouldBlock`, or `UnexpectedEof` once the connection ended.
    /// A read that asks for more than a limited read buffer can hold is
    /// `InvalidData` once the buffer is full (see `set_read_buffer_size`).
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if self.read_buffer.len() < buf.len() {
            if self.may_receive_more() {
                let wanted = format!("{} bytes wanted", buf.len());
                return Err(self
                    .full_buffer(&wanted)
                    .unwrap_or_else(|| ErrorKind::WouldBlock.into()));
            }
            return Err(ErrorKind::UnexpectedEof.into());
        }
        self.read_buffer.take_into(buf);
        Ok(())
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let buffered = self.read_buffer.as_slice();
        let whole = match std::str::from_utf8(buffered) {
            Ok(text) => text,
            // A character cut at the end waits for the rest of it, unless
            // no rest can come.
            Err(e) if e.error_len().is_none() && self.may_receive_more() => {
                std::str::from_utf8(&buffered[..e.valid_up_to()])
                    .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?
            }
            Err(e) => return Err(io::Error::new(ErrorKind::InvalidData, e)),
        };
        buf.push_str(whole);
        let taken = whole.len();
        self.read_buffer.consume(taken);
        self.nothing_to_read()?;
        Ok(taken)
    }
}

/// Whole lines or nothing: `read_line` and `read_until` (and so `lines` and
/// `split`) take a piece only once it is complete. Until its delimiter
/// arrives they return `WouldBlock` and leave the socket's buffer and the
/// caller's untouched, so a `String` dropped after `WouldBlock` loses
/// nothing (the standard library only promises that the partial piece is
/// in the caller's buffer). At the end of the stream the last,
/// unterminated piece is returned, as usual.
///
/// When [`SslSocket::set_read_buffer_size`] limits the buffer and a line
/// fills it without a delimiter, the line cannot complete: they return
/// `InvalidData` (the data stays buffered for [`SslSocket::read`]).
///
/// Use these on the socket itself: a `std::io::BufReader` around it keeps
/// bytes in a buffer of its own, lost when the slot drops it. The end of
/// the stream comes as `read_channel_finished`, not `ready_read`: a last
/// line without its delimiter is read there (connect the same reading
/// function to both signals).
///
/// ```
/// use std::io::{BufRead, ErrorKind};
/// # let mut reactor = sslsocket::Reactor::new().unwrap();
/// # let config = sslsocket::SslConfiguration::builder().system_ca_certificates(false).build().unwrap();
/// # let id = reactor.ssl_socket(config);
/// reactor.socket(id).unwrap().ready_read().connect(|socket, _, _| loop {
///     let mut line = String::new();
///     match socket.read_line(&mut line) {
///         Ok(0) => break, // the stream ended
///         Ok(_) => print!("{line}"),
///         Err(e) if e.kind() == ErrorKind::WouldBlock => break, // more later
///         Err(e) => return eprintln!("{e}"),
///     }
/// });
/// ```
impl BufRead for SslSocket {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.read_buffer.is_empty() {
            self.nothing_to_read()?;
        }
        Ok(self.read_buffer.as_slice())
    }

    fn consume(&mut self, amount: usize) {
        self.skip(amount);
    }

    fn read_until(&mut self, delimiter: u8, buf: &mut Vec<u8>) -> io::Result<usize> {
        let length = self.piece_length(delimiter)?;
        buf.extend_from_slice(&self.read_buffer.as_slice()[..length]);
        self.read_buffer.consume(length);
        Ok(length)
    }

    /// As the standard `read_line`, but taking the line only once it is
    /// complete; a line that is not UTF-8 is taken and reported as
    /// `InvalidData`, `buf` left as it was.
    fn read_line(&mut self, buf: &mut String) -> io::Result<usize> {
        let length = self.piece_length(b'\n')?;
        let taken = match std::str::from_utf8(&self.read_buffer.as_slice()[..length]) {
            Ok(line) => {
                buf.push_str(line);
                Ok(length)
            }
            Err(e) => Err(io::Error::new(ErrorKind::InvalidData, e)),
        };
        self.read_buffer.consume(length);
        taken
    }
}

impl Write for SslSocket {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        SslSocket::write(self, data).map_err(|e| io::Error::new(ErrorKind::NotConnected, e))
    }

    /// Writes what the network takes now; `WouldBlock` if some is left
    /// (`bytes_written` reports the rest later).
    fn flush(&mut self) -> io::Result<()> {
        if SslSocket::flush(self) {
            Ok(())
        } else {
            Err(ErrorKind::WouldBlock.into())
        }
    }
}
