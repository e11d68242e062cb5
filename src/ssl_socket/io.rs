//! `std::io` for [`SslSocket`]: `Read`, `BufRead` and `Write` over the
//! socket's buffers, for code written against the standard traits.
//!
//! Nothing here blocks or does network I/O except `Write::flush`, which
//! writes what the network takes now (as [`SslSocket::flush`] does): an empty
//! read buffer on an open connection is `WouldBlock`, to be retried after the
//! next `ready_read`; a connection that ended reads as end of file.
//! [`BufRead::fill_buf`] hands out the received plaintext in place, so a
//! program can process it without copying it out first.

use std::io::{self, BufRead, ErrorKind, Read, Write};

use super::{SocketState, SslSocket};

impl SslSocket {
    /// `WouldBlock` while more data may come, end of file once the
    /// connection is over (or the peer finished sending).
    fn nothing_to_read(&self) -> io::Result<()> {
        let over = self.state == SocketState::Unconnected || self.close.peer_finished_reading();
        if over {
            Ok(())
        } else {
            Err(ErrorKind::WouldBlock.into())
        }
    }
}

impl Read for SslSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read_buffer.is_empty() && !buf.is_empty() {
            self.nothing_to_read()?;
            return Ok(0);
        }
        Ok(self.read_buffer.take_into(buf))
    }
}

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
