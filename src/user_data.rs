//! [`UserData`]: the program's own state attached to a socket or a server,
//! of any type, reached from their slots without `Rc<RefCell<_>>`.
//!
//! A box and a downcast; it knows nothing of sockets or servers.

use std::any::Any;

/// At most one value of any type.
#[derive(Default)]
pub(crate) struct UserData(Option<Box<dyn Any>>);

impl UserData {
    /// Attaches `data`, replacing any earlier value.
    pub(crate) fn set<T: Any>(&mut self, data: T) {
        self.0 = Some(Box::new(data));
    }

    /// The value, if it is a `T`.
    pub(crate) fn get<T: Any>(&mut self) -> Option<&mut T> {
        self.0.as_mut()?.downcast_mut()
    }

    /// The value, read only, if it is a `T`.
    pub(crate) fn get_ref<T: Any>(&self) -> Option<&T> {
        self.0.as_ref()?.downcast_ref()
    }
}
