//! [`Timers`]: the reactor's single-shot and repeating timers, kept in a
//! binary heap of deadlines.
//!
//! A timer either runs a user closure or wakes an object of the reactor (a
//! socket's connect, handshake or closing timeout). Cancelling removes the
//! timer at once; its heap entry is skipped when it surfaces. This module
//! knows nothing of sockets: an object timer only names the object to wake.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use slotmap::SlotMap;

use crate::context::{Context, ObjectKey};

/// The longest a timer or deadline waits: beyond it, "never" for any
/// program, and far from the end of `Instant`'s range.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `from` plus `after`, at most [`FOREVER`] later: a huge duration from
/// the program means "never", not a panic.
pub(crate) fn later(from: Instant, after: Duration) -> Instant {
    from + after.min(FOREVER)
}

slotmap::new_key_type! {
    /// Identifies a timer, for [`Context::cancel_timer`].
    pub struct TimerId;
}

/// A timer's callback: gets the reactor's context and the timer's id.
pub(crate) type TimerCallback = Box<dyn FnMut(&mut Context, TimerId)>;

/// What happens when a timer fires.
pub(crate) enum TimerAction {
    /// Run a closure.
    Callback(TimerCallback),
    /// Service an object of the reactor (it checks its own deadlines).
    Wake(ObjectKey),
}

struct Timer {
    deadline: Instant,
    interval: Option<Duration>,
    /// Taken out while the callback runs.
    action: Option<TimerAction>,
}

/// The reactor's timers.
#[derive(Default)]
pub(crate) struct Timers {
    timers: SlotMap<TimerId, Timer>,
    heap: BinaryHeap<Reverse<(Instant, TimerId)>>,
}

impl Timers {
    /// Starts a timer that fires at `deadline`, then every `interval` if
    /// one is given.
    pub(crate) fn start(
        &mut self,
        deadline: Instant,
        interval: Option<Duration>,
        action: TimerAction,
    ) -> TimerId {
        let id = self.timers.insert(Timer {
            deadline,
            interval,
            action: Some(action),
        });
        self.heap.push(Reverse((deadline, id)));
        id
    }

    /// Stops a timer; returns whether it was running.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        self.timers.remove(id).is_some()
    }

    /// Whether any timer runs a user closure (object timers alone do not
    /// keep the reactor running).
    pub(crate) fn has_callbacks(&self) -> bool {
        self.timers
            .values()
            .any(|t| matches!(t.action, Some(TimerAction::Callback(_)) | None))
    }

    /// The earliest deadline of a running timer.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, id))) = self.heap.peek().copied() {
            match self.timers.get(id) {
                Some(timer) if timer.deadline == deadline => return Some(deadline),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Takes the action of the next timer due at `now`, rescheduling a
    /// repeating timer (its action is given back with
    /// [`restore`](Self::restore)) and forgetting a single-shot one.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<(TimerId, TimerAction)> {
        loop {
            let deadline = self.next_deadline()?;
            if deadline > now {
                return None;
            }
            let Reverse((_, id)) = self.heap.pop()?;
            let timer = self.timers.get_mut(id)?;
            let Some(action) = timer.action.take() else {
                continue;
            };
            match timer.interval {
                Some(interval) => {
                    timer.deadline = now.max(later(timer.deadline, interval));
                    self.heap.push(Reverse((timer.deadline, id)));
                }
                None => {
                    self.timers.remove(id);
                }
            }
            return Some((id, action));
        }
    }

    /// Gives a repeating timer its action back after it ran (unless it was
    /// cancelled meanwhile).
    pub(crate) fn restore(&mut self, id: TimerId, action: TimerAction) {
        if let Some(timer) = self.timers.get_mut(id) {
            timer.action = Some(action);
        }
    }
}

/// The one reactor wake-up an object keeps: the earliest moment asked for
/// since the last one fired. An object asks again on every service for
/// each moment it still needs, so a later moment is not lost when an
/// earlier one replaces it.
#[derive(Debug, Default)]
pub(crate) struct Wake(Option<(Instant, TimerId)>);

impl Wake {
    /// Makes sure the reactor services the object `key` at `when`.
    pub(crate) fn at(&mut self, cx: &mut Context, key: ObjectKey, when: Instant) {
        let pending = self.0.filter(|&(at, _)| at > Instant::now());
        if pending.is_some_and(|(at, _)| at <= when) {
            return;
        }
        if let Some((_, timer)) = self.0.take() {
            cx.cancel_timer(timer);
        }
        self.0 = Some((when, cx.wake_at(key, when)));
    }

    /// Cancels the wake-up, if one is pending.
    pub(crate) fn cancel(&mut self, timers: &mut Timers) {
        if let Some((_, timer)) = self.0.take() {
            timers.cancel(timer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_duration_means_never_not_a_panic() {
        let now = Instant::now();
        assert_eq!(later(now, Duration::MAX), now + FOREVER);
        let mut timers = Timers::default();
        timers.start(later(now, Duration::MAX), Some(Duration::MAX), wake());
        assert!(timers.take_due(now + Duration::from_secs(1)).is_none());
    }

    fn wake() -> TimerAction {
        TimerAction::Wake(ObjectKey::default())
    }

    #[test]
    fn due_timers_come_out_in_deadline_order_and_cancelled_ones_never() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let late = timers.start(t0 + Duration::from_millis(30), None, wake());
        let early = timers.start(t0 + Duration::from_millis(10), None, wake());
        let cancelled = timers.start(t0 + Duration::from_millis(20), None, wake());
        assert!(timers.cancel(cancelled));
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert!(timers.take_due(t0).is_none());
        let now = t0 + Duration::from_millis(40);
        assert_eq!(timers.take_due(now).map(|(id, _)| id), Some(early));
        assert_eq!(timers.take_due(now).map(|(id, _)| id), Some(late));
        assert!(timers.take_due(now).is_none());
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn repeating_timers_reschedule() {
        let mut timers = Timers::default();
        let t0 = Instant::now();
        let id = timers.start(t0, Some(Duration::from_millis(5)), wake());
        let (fired, action) = timers.take_due(t0).unwrap();
        assert_eq!(fired, id);
        timers.restore(id, action);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(5)));
        assert!(timers.cancel(id));
        assert_eq!(timers.next_deadline(), None);
    }
}
