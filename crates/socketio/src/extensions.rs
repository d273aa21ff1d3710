//! A socket's typed extensions: values of any type, one per type, that a
//! connection middleware or a handler puts on the socket and handlers read
//! back (the [`Extension`](crate::extract::Extension) extractor). Unlike
//! [`SocketRef::data`](crate::SocketRef::data), they never leave this
//! process: `fetch_sockets` and connection state recovery carry `data`
//! only.

use std::sync::Mutex;

use crate::locks::lock;

/// One value per type, behind a short lock. Values are cloned out: keep
/// them cheap to clone (an `Arc`, an id, a small struct).
#[derive(Default)]
pub struct Extensions(Mutex<::http::Extensions>);

impl Extensions {
    /// Stores `value`, returning the previous value of its type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        lock(&self.0).insert(value)
    }

    /// A clone of the value of type `T`, if there is one.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.0).get::<T>().cloned()
    }

    /// Removes the value of type `T`, returning it.
    pub fn remove<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.0).remove::<T>()
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        lock(&self.0).get::<T>().is_some()
    }

    /// Adds every value of `other` (a request's extensions), replacing
    /// those of the same types.
    pub(crate) fn extend(&self, other: ::http::Extensions) {
        lock(&self.0).extend(other);
    }

    /// Takes every value out, leaving it empty.
    pub(crate) fn take(&self) -> ::http::Extensions {
        std::mem::take(&mut *lock(&self.0))
    }

    pub(crate) fn from_map(map: ::http::Extensions) -> Extensions {
        Extensions(Mutex::new(map))
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions").finish_non_exhaustive()
    }
}
