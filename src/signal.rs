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
///
/// A signal nobody connected to is one null pointer: a socket carries some
/// twenty of them, and most programs connect a few.
pub struct Signal<O, T> {
    slots: Option<Box<Slots<O, T>>>,
}

struct Slots<O, T> {
    list: Vec<(SlotId, Slot<O, T>)>,
    /// Slots disconnected while the list was out for an emission.
    removed: Vec<SlotId>,
    emitting: bool,
    next: u64,
}

impl<O, T> Default for Signal<O, T> {
    fn default() -> Self {
        Self { slots: None }
    }
}

impl<O, T> fmt::Debug for Signal<O, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connected = self.slots.as_ref().map_or(0, |s| s.list.len());
        f.debug_struct("Signal").field("slots", &connected).finish()
    }
}

impl<O, T> Signal<O, T> {
    /// Connects a slot; it runs on every emission until disconnected.
    pub fn connect(&mut self, slot: impl FnMut(&mut O, &mut Context, &T) + 'static) -> SlotId {
        let slots = self.slots.get_or_insert_with(|| {
            Box::new(Slots {
                // Most signals get one slot: no room for four up front.
                list: Vec::with_capacity(1),
                removed: Vec::new(),
                emitting: false,
                next: 0,
            })
        });
        let id = SlotId(slots.next);
        slots.next += 1;
        slots.list.push((id, Box::new(slot)));
        id
    }

    /// Disconnects a slot. Returns whether it was connected. A slot may
    /// disconnect itself (or any other) while the signal is emitting.
    pub fn disconnect(&mut self, id: SlotId) -> bool {
        let Some(slots) = self.slots.as_mut() else {
            return false;
        };
        if let Some(index) = slots.list.iter().position(|(s, _)| *s == id) {
            drop(slots.list.remove(index));
            return true;
        }
        if slots.emitting && id.0 < slots.next && !slots.removed.contains(&id) {
            slots.removed.push(id);
            return true;
        }
        false
    }

    /// Disconnects every slot.
    pub fn disconnect_all(&mut self) {
        let Some(slots) = self.slots.as_mut() else {
            return;
        };
        slots.list.clear();
        if slots.emitting {
            slots.removed.extend((0..slots.next).map(SlotId));
        }
    }

    /// Whether any slot is connected.
    pub fn is_connected(&self) -> bool {
        self.slots.as_ref().is_some_and(|s| !s.list.is_empty())
    }
}

/// Declares an object's signals: a struct `$signals` with one
/// [`Signal`] per name, which the object keeps in its field `signals`, and
/// a public method per name, with the docs given, that returns the signal
/// for slots to connect to.
macro_rules! declare_signals {
    ($owner:ident, $signals:ident; $( $(#[$doc:meta])* $name:ident : $payload:ty ),* $(,)?) => {
        /// The signals of one object.
        #[derive(Default)]
        pub(super) struct $signals {
            $( $name: $crate::signal::Signal<$owner, $payload>, )*
        }

        /// # Signals
        ///
        /// Each method returns a signal to [`connect`](crate::Signal::connect)
        /// slots to. A slot gets the object that emits, the reactor's
        /// [`Context`](crate::Context) and the payload.
        impl $owner {
            $(
                $(#[$doc])*
                pub fn $name(&mut self) -> &mut $crate::signal::Signal<$owner, $payload> {
                    &mut self.signals.$name
                }
            )*
        }
    };
}
pub(crate) use declare_signals;

/// Emits the signal that `select` picks out of `owner` to every connected
/// slot, in connection order.
pub(crate) fn emit<O, T>(
    owner: &mut O,
    cx: &mut Context,
    select: fn(&mut O) -> &mut Signal<O, T>,
    payload: &T,
) {
    let Some(slots) = select(owner).slots.as_mut().filter(|s| !s.list.is_empty()) else {
        return;
    };
    let mut list = std::mem::take(&mut slots.list);
    slots.emitting = true;
    for (id, slot) in &mut list {
        if removed_meanwhile(select(owner), *id) {
            continue;
        }
        let result = catch_unwind(AssertUnwindSafe(|| slot(owner, cx, payload)));
        if let Err(panic) = result {
            cx.hold_panic(panic);
            break;
        }
    }
    let slots = select(owner)
        .slots
        .as_mut()
        .expect("slots exist while emitting");
    slots.emitting = false;
    if !slots.removed.is_empty() {
        let removed = std::mem::take(&mut slots.removed);
        list.retain(|(id, _)| !removed.contains(id));
    }
    list.append(&mut slots.list);
    slots.list = list;
}

fn removed_meanwhile<O, T>(signal: &Signal<O, T>, id: SlotId) -> bool {
    signal
        .slots
        .as_ref()
        .is_some_and(|s| s.removed.contains(&id))
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
