//! [`Signal`]: Qt-style signals: a list of slots (closures) that an owner
//! emits to, with connect and disconnect by [`SlotId`].
//!
//! A slot receives `&mut` access to the object that emitted (`O`, an
//! [`SslSocket`](crate::SslSocket) or [`SslServer`](crate::SslServer)), the
//! reactor's [`Context`], and the signal's payload. While a signal emits,
//! its slot list is taken out of the owner, so a slot may connect or
//! disconnect slots of the very signal that is running: new slots are kept
//! (they run from the next emission), disconnected ones are dropped when the
//! emission ends and do not run meanwhile. Emitting allocates nothing.
//!
//! This module knows nothing of TLS or sockets; the owners decide when to
//! emit, and they only do so from the reactor's dispatch, never from inside
//! a GnuTLS call.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::context::Context;

/// Identifies a connected slot, for [`Signal::disconnect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotId(u64);

type Slot<O, T> = Box<dyn FnMut(&mut O, &mut Context, &T)>;

/// A signal of an object `O` carrying a payload `T`.
pub struct Signal<O, T> {
    slots: Vec<(SlotId, Slot<O, T>)>,
    /// Slots disconnected while the list was out for an emission.
    removed: Vec<SlotId>,
    emitting: bool,
    next: u64,
}

impl<O, T> Default for Signal<O, T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            removed: Vec::new(),
            emitting: false,
            next: 0,
        }
    }
}

impl<O, T> fmt::Debug for Signal<O, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl<O, T> Signal<O, T> {
    /// Connects a slot; it runs on every emission until disconnected.
    pub fn connect(&mut self, slot: impl FnMut(&mut O, &mut Context, &T) + 'static) -> SlotId {
        let id = SlotId(self.next);
        self.next += 1;
        self.slots.push((id, Box::new(slot)));
        id
    }

    /// Disconnects a slot. Returns whether it was connected. A slot may
    /// disconnect itself (or any other) while the signal is emitting.
    pub fn disconnect(&mut self, id: SlotId) -> bool {
        if let Some(index) = self.slots.iter().position(|(s, _)| *s == id) {
            drop(self.slots.remove(index));
            return true;
        }
        if self.emitting && id.0 < self.next && !self.removed.contains(&id) {
            self.removed.push(id);
            return true;
        }
        false
    }

    /// Disconnects every slot.
    pub fn disconnect_all(&mut self) {
        self.slots.clear();
        if self.emitting {
            self.removed.extend((0..self.next).map(SlotId));
        }
    }

    /// Whether any slot is connected.
    pub fn is_connected(&self) -> bool {
        !self.slots.is_empty()
    }
}

/// Emits the signal that `select` picks out of `owner` to every connected
/// slot, in connection order.
pub(crate) fn emit<O, T>(
    owner: &mut O,
    cx: &mut Context,
    select: fn(&mut O) -> &mut Signal<O, T>,
    payload: &T,
) {
    let signal = select(owner);
    if signal.slots.is_empty() {
        return;
    }
    let mut slots = std::mem::take(&mut signal.slots);
    signal.emitting = true;
    for (id, slot) in &mut slots {
        if select(owner).removed.contains(id) {
            continue;
        }
        let result = catch_unwind(AssertUnwindSafe(|| slot(owner, cx, payload)));
        if let Err(panic) = result {
            cx.hold_panic(panic);
            break;
        }
    }
    let signal = select(owner);
    signal.emitting = false;
    if !signal.removed.is_empty() {
        let removed = std::mem::take(&mut signal.removed);
        slots.retain(|(id, _)| !removed.contains(id));
    }
    slots.append(&mut signal.slots);
    signal.slots = slots;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::Reactor;

    #[derive(Default)]
    struct Owner {
        changed: Signal<Owner, u32>,
        log: Vec<String>,
    }

    fn changed(o: &mut Owner) -> &mut Signal<Owner, u32> {
        &mut o.changed
    }

    #[test]
    fn slots_run_in_order_and_may_reconnect_while_emitting() {
        let mut reactor = Reactor::new().unwrap();
        let mut owner = Owner::default();
        let first = owner
            .changed
            .connect(|o, _, v| o.log.push(format!("first {v}")));
        owner.changed.connect(move |o, _, v| {
            o.log.push(format!("second {v}"));
            o.changed.disconnect(first);
            o.changed.connect(|o, _, v| o.log.push(format!("late {v}")));
        });
        emit(&mut owner, reactor.context(), changed, &1);
        emit(&mut owner, reactor.context(), changed, &2);
        assert_eq!(owner.log, ["first 1", "second 1", "second 2", "late 2"]);
    }

    #[test]
    fn a_slot_disconnected_during_emission_does_not_run() {
        let mut reactor = Reactor::new().unwrap();
        let mut owner = Owner::default();
        let mut ids = Vec::new();
        ids.push(owner.changed.connect(|o, _, _| {
            let victim = SlotId(1);
            assert!(o.changed.disconnect(victim));
        }));
        ids.push(
            owner
                .changed
                .connect(|o, _, _| o.log.push("victim ran".into())),
        );
        emit(&mut owner, reactor.context(), changed, &0);
        assert!(owner.log.is_empty());
        assert!(!owner.changed.disconnect(ids[1]));
        assert!(owner.changed.disconnect(ids[0]));
        assert!(!owner.changed.is_connected());
    }
}
