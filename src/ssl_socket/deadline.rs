//! A socket's deadlines: the timeouts of its phases ([`Timeouts`]), the
//! moments they count from ([`Deadlines`]), and which one falls due next.
//!
//! Each phase a connection goes through can be bounded, each reported as
//! its own [`TimeoutKind`]: looking up and connecting, the handshake, no
//! progress in either direction (idle), output the peer takes none of
//! (send), a graceful close, and a deadline of the program's own. This file
//! only keeps time; `drive.rs` tells it what happened and fails the socket
//! when a deadline passed (DTLS sockets keep theirs the same way).

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::SocketState;
use crate::error::TimeoutKind;
use crate::timer::later;

/// The timeouts of a socket's phases, in milliseconds (compact: every
/// socket has them); `None` waits forever. A server keeps one for the
/// sockets it accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Timeouts {
    connect: Option<NonZeroU32>,
    handshake: Option<NonZeroU32>,
    idle: Option<NonZeroU32>,
    send: Option<NonZeroU32>,
    close: Option<NonZeroU32>,
}

impl Timeouts {
    /// Sets the timeout of `kind` (not [`TimeoutKind::Deadline`], which is
    /// a moment, not a timeout).
    pub(crate) fn set(&mut self, kind: TimeoutKind, timeout: Option<Duration>) {
        if let Some(slot) = self.slot(kind) {
            *slot = encode(timeout);
        }
    }

    /// The timeout of `kind`.
    pub(crate) fn get(&self, kind: TimeoutKind) -> Option<Duration> {
        let ms = match kind {
            TimeoutKind::Connect => self.connect,
            TimeoutKind::Handshake => self.handshake,
            TimeoutKind::Idle => self.idle,
            TimeoutKind::Send => self.send,
            TimeoutKind::Close => self.close,
            TimeoutKind::Deadline => None,
        };
        ms.map(|ms| Duration::from_millis(u64::from(ms.get())))
    }

    fn slot(&mut self, kind: TimeoutKind) -> Option<&mut Option<NonZeroU32>> {
        match kind {
            TimeoutKind::Connect => Some(&mut self.connect),
            TimeoutKind::Handshake => Some(&mut self.handshake),
            TimeoutKind::Idle => Some(&mut self.idle),
            TimeoutKind::Send => Some(&mut self.send),
            TimeoutKind::Close => Some(&mut self.close),
            TimeoutKind::Deadline => None,
        }
    }
}

/// Milliseconds, at least 1, at most about 49 days.
fn encode(timeout: Option<Duration>) -> Option<NonZeroU32> {
    let ms = timeout?.as_millis().clamp(1, u128::from(u32::MAX));
    NonZeroU32::new(u32::try_from(ms).unwrap_or(u32::MAX))
}

/// The timeouts and the moments they count from.
#[derive(Debug)]
pub(crate) struct Deadlines {
    pub(crate) timeouts: Timeouts,
    /// When the current lookup, handshake or close began.
    phase_started: Instant,
    /// When bytes last moved, either way.
    last_progress: Instant,
    /// Since when output has waited for the peer to take some.
    output_waiting_since: Option<Instant>,
    /// The program's own deadline.
    program: Option<Instant>,
}

impl Deadlines {
    pub(crate) fn new(timeouts: Timeouts) -> Self {
        let now = Instant::now();
        Self {
            timeouts,
            phase_started: now,
            last_progress: now,
            output_waiting_since: None,
            program: None,
        }
    }

    /// The socket entered `state`.
    pub(crate) fn entered(&mut self, state: SocketState) {
        let now = Instant::now();
        match state {
            SocketState::HostLookup | SocketState::Handshaking | SocketState::Closing => {
                self.phase_started = now;
            }
            SocketState::Connected | SocketState::Encrypted => self.last_progress = now,
            SocketState::Unconnected => self.output_waiting_since = None,
            SocketState::Connecting => {}
        }
    }

    /// Bytes moved (received, or taken by the peer).
    pub(crate) fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// After a write to the network: whether output is still waiting, and
    /// whether the peer took some of it.
    pub(crate) fn output(&mut self, waiting: bool, sent: bool) {
        self.output_waiting_since = match (waiting, self.output_waiting_since) {
            (false, _) => None,
            (true, since) if sent || since.is_none() => Some(Instant::now()),
            (true, since) => since,
        };
    }

    /// Sets (from now) or clears the program's deadline.
    pub(crate) fn set_program(&mut self, after: Option<Duration>) {
        self.program = after.map(|after| later(Instant::now(), after));
    }

    /// The program's deadline.
    pub(crate) fn program(&self) -> Option<Instant> {
        self.program
    }

    /// The first deadline that applies in `state`, and its kind.
    pub(crate) fn next(&self, state: SocketState) -> Option<(Instant, TimeoutKind)> {
        let after = |start: Instant, kind| Some((start + self.timeouts.get(kind)?, kind));
        let waiting = |kind| after(self.output_waiting_since?, kind);
        let program = self.program.map(|at| (at, TimeoutKind::Deadline));
        let candidates = match state {
            SocketState::Unconnected => [None, None, None, None],
            SocketState::HostLookup | SocketState::Connecting => [
                after(self.phase_started, TimeoutKind::Connect),
                program,
                None,
                None,
            ],
            SocketState::Handshaking => [
                after(self.phase_started, TimeoutKind::Handshake),
                waiting(TimeoutKind::Send),
                program,
                None,
            ],
            SocketState::Connected | SocketState::Encrypted => [
                after(self.last_progress, TimeoutKind::Idle),
                waiting(TimeoutKind::Send),
                program,
                None,
            ],
            // A close in progress is still a connection: a peer that takes
            // nothing and sends nothing is idle there too.
            SocketState::Closing => [
                after(self.phase_started, TimeoutKind::Close),
                after(self.last_progress, TimeoutKind::Idle),
                waiting(TimeoutKind::Send),
                program,
            ],
        };
        candidates.into_iter().flatten().min_by_key(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(kind: TimeoutKind, ms: u64) -> Deadlines {
        let mut timeouts = Timeouts::default();
        timeouts.set(kind, Some(Duration::from_millis(ms)));
        Deadlines::new(timeouts)
    }

    #[test]
    fn each_phase_has_its_own_deadline() {
        let d = with(TimeoutKind::Handshake, 50);
        assert_eq!(
            d.next(SocketState::Handshaking).unwrap().1,
            TimeoutKind::Handshake
        );
        assert_eq!(d.next(SocketState::Encrypted), None);
        let d = with(TimeoutKind::Close, 50);
        assert_eq!(d.next(SocketState::Closing).unwrap().1, TimeoutKind::Close);
        assert_eq!(d.next(SocketState::Encrypted), None);
    }

    #[test]
    fn the_send_timeout_runs_only_while_output_waits_and_restarts_on_progress() {
        let mut d = with(TimeoutKind::Send, 50);
        assert_eq!(d.next(SocketState::Encrypted), None);
        d.output(true, false);
        let (first, kind) = d.next(SocketState::Encrypted).unwrap();
        assert_eq!(kind, TimeoutKind::Send);
        std::thread::sleep(Duration::from_millis(2));
        d.output(true, false);
        assert_eq!(
            d.next(SocketState::Encrypted).unwrap().0,
            first,
            "no progress"
        );
        d.output(true, true);
        assert!(
            d.next(SocketState::Encrypted).unwrap().0 > first,
            "progress"
        );
        d.output(false, true);
        assert_eq!(d.next(SocketState::Encrypted), None);
    }

    #[test]
    fn the_program_deadline_applies_in_every_connected_state_and_the_earliest_wins() {
        let mut d = with(TimeoutKind::Idle, 60_000);
        d.set_program(Some(Duration::from_millis(10)));
        for state in [
            SocketState::Connecting,
            SocketState::Handshaking,
            SocketState::Encrypted,
            SocketState::Closing,
        ] {
            assert_eq!(d.next(state).unwrap().1, TimeoutKind::Deadline, "{state:?}");
        }
        d.set_program(None);
        assert_eq!(d.next(SocketState::Encrypted).unwrap().1, TimeoutKind::Idle);
    }
}
